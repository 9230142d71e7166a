//! The relying party's settings, all from environment variables. The defaults match the
//! provider's dev mode (`provider serve --dev`), so it runs with no configuration at all.

use shared::TenantId;

#[derive(Clone, Debug)]
pub struct Settings {
    /// Where it listens (`RP_BIND`, default `127.0.0.1:3000`).
    pub bind: String,
    /// Its own URL as browsers see it (`RP_PUBLIC_URL`, default `http://{RP_BIND}`).
    pub public_url: String,
    /// The tenant's issuer: `{RP_PROVIDER_URL}/a/{RP_TENANT}` (defaults
    /// `http://127.0.0.1:8080` and `demo`).
    pub issuer: String,
    /// Its client at the provider (`RP_CLIENT_ID`, default `relying-party`, the client dev mode
    /// seeds) and, for a confidential client, its secret (`RP_CLIENT_SECRET`).
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Errors go to Sentry when set (`SENTRY_DSN`).
    pub sentry_dsn: Option<String>,
}

impl Settings {
    /// Reads the settings through `get`, which returns a variable's non-empty value.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let or = |name: &str, default: &str| get(name).unwrap_or_else(|| default.to_owned());
        let tenant =
            TenantId::parse(&or("RP_TENANT", "demo")).map_err(|e| format!("RP_TENANT: {e}"))?;
        let bind = or("RP_BIND", "127.0.0.1:3000");
        let public_url = or("RP_PUBLIC_URL", &format!("http://{bind}"));
        let public_url = url::Url::parse(&public_url)
            .map_err(|e| format!("RP_PUBLIC_URL: {e}"))?
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let provider = or("RP_PROVIDER_URL", "http://127.0.0.1:8080");
        url::Url::parse(&provider).map_err(|e| format!("RP_PROVIDER_URL: {e}"))?;
        Ok(Self {
            bind,
            public_url,
            issuer: tenant.issuer(provider.trim_end_matches('/')),
            client_id: or("RP_CLIENT_ID", "relying-party"),
            client_secret: get("RP_CLIENT_SECRET"),
            sentry_dsn: get("SENTRY_DSN"),
        })
    }

    /// The protected API's identifier, which its tokens name in `aud`.
    pub fn resource(&self) -> String {
        format!("{}/api", self.public_url)
    }

    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.public_url)
    }

    /// Where the provider sends the browser after sign-out.
    pub fn after_logout_uri(&self) -> String {
        format!("{}/", self.public_url)
    }

    /// Whether cookies must be `Secure`.
    pub fn https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_providers_dev_mode() {
        let settings = Settings::from_env(|_| None).unwrap();
        assert_eq!(settings.issuer, "http://127.0.0.1:8080/a/demo");
        assert_eq!(settings.redirect_uri(), "http://127.0.0.1:3000/callback");
        assert_eq!(settings.after_logout_uri(), "http://127.0.0.1:3000/");
        assert_eq!(settings.client_id, "relying-party");
        assert!(settings.client_secret.is_none() && !settings.https());
    }

    #[test]
    fn bad_values_name_their_variable() {
        let bad = |name: &'static str, value: &'static str| {
            Settings::from_env(move |n| (n == name).then(|| value.to_owned())).unwrap_err()
        };
        assert!(bad("RP_TENANT", "Not A Tenant!").starts_with("RP_TENANT"));
        assert!(bad("RP_PUBLIC_URL", "not a url").starts_with("RP_PUBLIC_URL"));
        assert!(bad("RP_PROVIDER_URL", "::").starts_with("RP_PROVIDER_URL"));
    }
}
