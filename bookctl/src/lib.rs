//! The operator CLI's library: accounts, tokens and catalog seeding, shared with the
//! tests and the load generator.

pub mod seed;
pub mod users;
