//! Protocol rules with no HTTP or SQL in them.

pub mod access_token;
pub mod authorize;
pub mod client_assertion;
pub mod client_metadata;
pub mod dpop;
pub mod id_token;
pub mod metadata;
pub mod metadata_document;
pub mod params;
pub mod redirect_uri;
pub mod resource;
pub mod scope;
