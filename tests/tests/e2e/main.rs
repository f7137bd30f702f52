//! End-to-end tests: the real ingress and workers against the real PostgreSQL,
//! RabbitMQ and Redis. One binary; each test has its own database and prefixes.

mod account;
mod accounts;
mod admin;
mod api;
mod broker;
mod catalog;
mod catalog_seed;
mod chaos;
mod connections;
mod door;
mod events;
mod failures;
mod invisible;
mod journey;
mod journey_mail;
mod lookup;
mod mfa;
mod notifier;
mod offline;
mod ops;
mod payments;
mod pipeline;
mod ratelimit;
mod reports;
mod scopes;
mod timezones;
mod venues;
mod webhooks;
