//! End-to-end tests: the real router over HTTP on loopback, against real SQLite and PostgreSQL,
//! and the real binary where only a process can show the behaviour. One module per feature.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_debug_implementations
)]

mod admin_auth;
mod admin_clients;
mod admin_tenants;
mod admin_users;
mod audit;
mod backup;
mod bad_input;
mod browser;
mod deployment;
mod discovery;
mod dpop;
mod group_commit;
mod health;
mod interop;
mod interop_openidconnect;
mod isolation;
mod jwt_refusals;
mod keys;
mod limits;
mod logs;
mod metadata_documents;
mod metrics;
mod protected_resource;
mod refresh;
mod registration;
mod relying_party;
mod replicas;
mod sign_in;
mod startup;
mod tokens;
mod web_sessions;
