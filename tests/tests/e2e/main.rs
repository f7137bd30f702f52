//! End-to-end tests: the real ingress and workers against the real PostgreSQL,
//! RabbitMQ and Redis. One binary; each test has its own database and prefixes.

mod account;
mod accounts;
mod admin;
mod admin_calendar;
mod api;
mod broker;
mod catalog;
mod catalog_seed;
mod chaos;
mod connections;
mod dlq_refunds;
mod door;
mod events;
mod failures;
mod invisible;
mod journey;
mod journey_mail;
mod limits;
mod lookup;
mod mfa;
mod notifier;
mod offline;
mod oidc;
mod ops;
mod payments;
mod pipeline;
mod ratelimit;
mod recurring;
mod refunds;
mod reports;
mod scopes;
mod timezones;
mod venues;
mod webhooks;
mod zones;
