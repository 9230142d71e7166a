//! The example relying party. Today it serves the API it protects with the provider's tokens
//! (`resource`); sign-in with the `openidconnect` crate joins it in the relying-party issue.
//! Configured by `RP_BIND` (default `127.0.0.1:3000`), `RP_PUBLIC_URL` (default
//! `http://{RP_BIND}`), `RP_PROVIDER_URL` (default `http://127.0.0.1:8080`) and `RP_TENANT`
//! (default `demo`).

use relying_party::resource::{self, Settings};
use shared::TenantId;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let get = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_owned())
    };
    let tenant = match TenantId::parse(&get("RP_TENANT", "demo")) {
        Ok(tenant) => tenant,
        Err(err) => {
            eprintln!("relying-party: RP_TENANT: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let bind = get("RP_BIND", "127.0.0.1:3000");
    let public_url = get("RP_PUBLIC_URL", &format!("http://{bind}"));
    let issuer = tenant.issuer(&get("RP_PROVIDER_URL", "http://127.0.0.1:8080"));
    let settings = Settings {
        resource: format!("{}/api", public_url.trim_end_matches('/')),
        jwks_uri: format!("{issuer}/jwks.json"),
        issuer,
    };
    let listener = match tokio::net::TcpListener::bind(&bind).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("relying-party: RP_BIND: cannot listen on {bind}: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    eprintln!(
        "relying-party: protecting {} with tokens of {}",
        settings.resource, settings.issuer
    );
    match axum::serve(listener, resource::router(settings)).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("relying-party: {err}");
            std::process::ExitCode::from(1)
        }
    }
}
