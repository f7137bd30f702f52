//! Seeding the catalog, shared by the operator CLI, the load generator and the tests
//! (so none of them links another's binary crate).
//!
//! - [`show`]: one show at a time: the run command's demo theater, and shows of a
//!   given size for tests and benchmarks ([`create_show`], [`theater_layout`],
//!   [`inr_prices`]).
//! - [`catalog`]: a realistic generated catalog (cities, theaters, screens, movies,
//!   two weeks of shows), small or large, deterministic and idempotent.

pub mod catalog;
pub mod show;

pub use show::{NewShow, create_show, demo, inr_prices, theater_layout};
