//! The example relying party. It grows into a full `openidconnect` sign-in example once the
//! provider serves discovery, sign-in and tokens; until then it only checks its configuration.

use shared::TenantId;

fn main() -> std::process::ExitCode {
    let tenant = std::env::var("RP_TENANT").unwrap_or_else(|_| "demo".to_owned());
    match TenantId::parse(&tenant) {
        Ok(tenant) => {
            let provider = std::env::var("RP_PROVIDER_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
            eprintln!(
                "relying-party: sign-in against {} is not available yet; the provider does not \
                 serve discovery or tokens in this version",
                tenant.issuer(&provider)
            );
            std::process::ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("relying-party: RP_TENANT: {err}");
            std::process::ExitCode::from(2)
        }
    }
}
