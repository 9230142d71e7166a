//! Dev mode (`provider serve --dev`): seeds the `demo` tenant and the example relying party's
//! client, so a newcomer can sign in with no set-up. Relaxes nothing else.

use serde_json::json;
use shared::TenantId;

use crate::{
    audit::RequestMeta,
    http::admin::{create_client, tenants},
    oauth::client_metadata::ClientMetadataRequest,
    state::AppState,
    store::{clients, tenants as tenant_store},
};

pub const DEMO_TENANT: &str = "demo";
/// The client id the relying party uses when it is given none.
pub const RELYING_PARTY_CLIENT_ID: &str = "relying-party";
/// Where the relying party listens by default.
pub const RELYING_PARTY_URL: &str = "http://127.0.0.1:3000";

/// Creates what is missing of the demo tenant and its relying-party client; prints the tenant's
/// admin secret the one time it is created.
pub async fn seed(state: &AppState) -> anyhow::Result<()> {
    let meta = RequestMeta::default();
    let tenant = TenantId::parse(DEMO_TENANT)?;
    if tenant_store::get(state.store.reader(), &tenant)
        .await?
        .is_none()
    {
        let request = tenants::CreateTenant {
            id: DEMO_TENANT.into(),
            display_name: Some("Demo".into()),
            allowed_email_domains: None,
            self_signup: Some(true),
        };
        let (_, secret) = tenants::create_tenant(state, &meta, request)
            .await
            .map_err(|e| anyhow::anyhow!("seeding the demo tenant: {}", e.message))?;
        println!(
            "Dev mode: tenant `{DEMO_TENANT}` created; its admin secret (shown once):\n  {secret}"
        );
    }
    if clients::get(state.store.reader(), &tenant, RELYING_PARTY_CLIENT_ID)
        .await?
        .is_none()
    {
        // A public client with PKCE, so the relying party needs no secret to work out of the box.
        let request: ClientMetadataRequest = serde_json::from_value(json!({
            "client_name": "Example relying party",
            "redirect_uris": [format!("{RELYING_PARTY_URL}/callback")],
            "post_logout_redirect_uris": [format!("{RELYING_PARTY_URL}/")],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid profile email offline_access notes:read",
        }))?;
        create_client(
            state,
            &tenant,
            &meta,
            Some(RELYING_PARTY_CLIENT_ID.into()),
            true,
            request,
        )
        .await
        .map_err(|e| anyhow::anyhow!("seeding the relying party's client: {}", e.message))?;
    }
    let issuer = tenant.issuer(&state.config.public_url);
    println!("Dev mode: issuer {issuer}, client `{RELYING_PARTY_CLIENT_ID}`");
    Ok(())
}
