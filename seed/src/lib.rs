//! Seeding the catalog, shared by the operator CLI, the load generator and the tests
//! (so none of them links another's binary crate).
//!
//! - [`show`]: one show at a time: the run command's demo theater, and shows of a
//!   given size for tests and benchmarks ([`create_show`], [`theater_layout`],
//!   [`inr_prices`]).
//! - [`concert`]: the demo concert: 200 seats and a 500-place standing floor
//!   ([`concert_layout`], [`create_concert`]).
//! - [`catalog`]: a realistic generated catalog (cities, theaters, screens, movies,
//!   two weeks of shows), small or large, deterministic and idempotent.
//! - [`sales`]: bookings and payments in every final state for the catalog's shows
//!   (the reports benchmark), and the check that the sales rollup matches them.

pub mod catalog;
pub mod concert;
pub mod sales;
pub mod show;

pub use concert::{concert_layout, concert_prices, create_concert, demo_concert};
pub use show::{NewShow, create_show, demo, inr_prices, theater_layout};
