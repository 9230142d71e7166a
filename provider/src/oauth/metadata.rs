//! Authorization server metadata (RFC 8414) and OpenID Connect Discovery 1.0, per tenant.
//! Only what the server really supports is advertised.

use serde_json::{Value, json};

use crate::{keys::material::Alg, oauth::client_assertion};

/// Client authentication methods the token, introspection and revocation endpoints accept.
pub const CLIENT_AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

/// Paths of the tenant's endpoints, relative to its issuer.
pub mod paths {
    pub const JWKS: &str = "/jwks.json";
    pub const TOKEN: &str = "/token";
    pub const INTROSPECTION: &str = "/introspect";
    pub const REVOCATION: &str = "/revoke";
    pub const USERINFO: &str = "/userinfo";
    pub const AUTHORIZATION: &str = "/authorize";
    pub const PUSHED_AUTHORIZATION: &str = "/par";
    pub const END_SESSION: &str = "/logout";
    pub const REGISTRATION: &str = "/register";
}

/// The metadata of the tenant at `issuer`; `require_par` is its RFC 9126 setting, and
/// `registration_open` whether it takes dynamic registrations (else no `registration_endpoint`).
pub fn document(issuer: &str, require_par: bool, registration_open: bool) -> Value {
    let algs: Vec<&str> = Alg::ALL.iter().map(|a| a.as_str()).collect();
    let confidential: Vec<&str> = CLIENT_AUTH_METHODS
        .iter()
        .copied()
        .filter(|m| *m != "none")
        .collect();
    let mut doc = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}{}", paths::JWKS),
        "authorization_endpoint": format!("{issuer}{}", paths::AUTHORIZATION),
        "pushed_authorization_request_endpoint": format!("{issuer}{}", paths::PUSHED_AUTHORIZATION),
        "end_session_endpoint": format!("{issuer}{}", paths::END_SESSION),
        "require_pushed_authorization_requests": require_par,
        "token_endpoint": format!("{issuer}{}", paths::TOKEN),
        "introspection_endpoint": format!("{issuer}{}", paths::INTROSPECTION),
        "revocation_endpoint": format!("{issuer}{}", paths::REVOCATION),
        "userinfo_endpoint": format!("{issuer}{}", paths::USERINFO),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login", "consent"],
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": confidential,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": client_assertion::ALGORITHMS,
        "dpop_signing_alg_values_supported": super::dpop::ALGORITHMS,
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "email", "email_verified", "name"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "access_token_signing_alg_values_supported": algs,
    });
    if registration_open {
        doc["registration_endpoint"] = format!("{issuer}{}", paths::REGISTRATION).into();
        doc["client_id_metadata_document_supported"] = true.into();
    }
    doc
}
