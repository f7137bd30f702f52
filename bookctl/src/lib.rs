//! The operator CLI's library: the commands themselves, accounts and tokens, and the
//! dry run of a dead-letter replay.
//!
//! - [`cli`]: the clap commands and [`cli::run`], which writes tables or JSON to any
//!   `Write` (so tests call it with a buffer).
//! - [`dry_run`]: what replaying dead-lettered commands would change, computed with
//!   the pure sequencer over the shows' current state.
//! - [`users`]: accounts and tokens.
//!
//! Seeding (the demo show, the generated catalog) is the `seed` crate.

pub mod cli;
pub mod dry_run;
pub mod users;
