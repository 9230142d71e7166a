//! Protocol rules with no HTTP or SQL in them.

pub mod client_metadata;
pub mod redirect_uri;
