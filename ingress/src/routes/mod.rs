//! HTTP routes.

pub mod bookings;
pub mod health;
pub mod ops;
pub mod payments;
pub mod tickets;
