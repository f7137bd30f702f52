//! HTTP routes.

pub mod bookings;
pub mod health;
