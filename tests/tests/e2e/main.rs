//! End-to-end tests: the real ingress and workers against the real PostgreSQL,
//! RabbitMQ and Redis. One binary; each test has its own database and prefixes.

mod account;
mod admin;
mod api;
mod catalog;
mod catalog_seed;
mod chaos;
mod connections;
mod events;
mod failures;
mod notifier;
mod ops;
mod payments;
mod pipeline;
mod ratelimit;
mod timezones;
