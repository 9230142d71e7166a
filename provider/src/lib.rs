//! The multi-tenant OpenID Connect / OAuth 2 authorization server. `http::app` builds the router
//! that the binary serves and the end-to-end tests drive.

pub mod audit;
pub mod cache;
pub mod client_documents;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod dev;
pub mod email;
pub mod error;
pub mod fetch;
pub mod http;
pub mod keys;
pub mod limits;
pub mod login;
pub mod maintenance;
pub mod monitoring;
pub mod oauth;
pub mod redis_conn;
pub mod reporting;
pub mod rewrap;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tokens;

pub use http::app;
pub use state::AppState;
