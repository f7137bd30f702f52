//! The operator CLI's library: accounts, tokens and catalog seeding, shared with the
//! tests and the load generator; the commands themselves; the dry run of a
//! dead-letter replay.
//!
//! - [`cli`]: the clap commands and [`cli::run`], which writes tables or JSON to any
//!   `Write` (so tests call it with a buffer).
//! - [`dry_run`]: what replaying dead-lettered commands would change, computed with
//!   the pure sequencer over the shows' current state.
//! - [`seed`], [`users`]: the demo show, shows for tests and benchmarks, accounts.
//! - [`catalog`]: a realistic generated catalog (cities, theaters, screens, movies,
//!   two weeks of shows), small or large.

pub mod catalog;
pub mod cli;
pub mod dry_run;
pub mod seed;
pub mod users;
