//! HTTP routes.

pub mod account;
pub mod admin;
pub mod bookings;
pub mod catalog;
pub mod door;
pub mod health;
pub mod ops;
pub mod payments;
pub mod release;
pub mod tickets;
