//! The operator CLI's library: the commands themselves, accounts and tokens.
//!
//! - [`cli`]: the clap commands and [`cli::run`], which writes tables or JSON to any
//!   `Write` (so tests call it with a buffer).
//! - [`users`]: accounts and tokens.
//!
//! Seeding (the demo show, the generated catalog) is the `seed` crate; dead letters,
//! their dry run and partitions are the `ops` crate, shared with `/v1/ops`.

pub mod cli;
pub mod users;
