//! The example relying party: for now, the API it protects with the provider's tokens
//! (`resource`). Sign-in with the `openidconnect` crate joins it in the relying-party issue.

pub mod resource;
