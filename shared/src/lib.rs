//! Types the provider and the relying party both need: tenant ids and the paths built from them.

mod tenant;

pub use tenant::{InvalidTenantId, TenantId};
