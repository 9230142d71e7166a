//! Signing keys: the lifecycle (a pure state machine), key material, and the service that
//! applies transitions, caches keys per tenant, signs tokens and verifies signatures.

pub mod lifecycle;
pub mod material;
pub mod notify;
pub mod rotation;
mod service;

pub use service::{
    KeyError, KeyService, KeyView, REFRESH_MS, SignatureError, aad as private_key_aad,
};
