//! What the load generators share with other drivers (the soak): the untimed setup
//! of accounts with their tokens and of fresh shows.

pub mod setup;
