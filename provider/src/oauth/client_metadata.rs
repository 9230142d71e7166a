//! RFC 7591 §2 client metadata: what a registration may say, checked and filled with defaults.
//! Unknown fields are ignored (§2: the server "MUST ignore any client metadata ... that it does
//! not understand"); inconsistent ones are refused with `invalid_client_metadata`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::redirect_uri::{self, ApplicationType};

pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
const SUPPORTED_GRANTS: &[&str] = &[
    GRANT_AUTHORIZATION_CODE,
    GRANT_REFRESH_TOKEN,
    GRANT_CLIENT_CREDENTIALS,
];
pub const AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

const MAX_REDIRECT_URIS: usize = 32;
const MAX_TEXT: usize = 200;
const MAX_SCOPE: usize = 1000;
const MAX_CONTACTS: usize = 10;
const MAX_JWKS_BYTES: usize = 16 * 1024;

/// Metadata as a registration sends it: every field optional, unknown fields dropped.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ClientMetadataRequest {
    pub redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub scope: Option<String>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub contacts: Option<Vec<String>>,
    pub application_type: Option<String>,
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Extension: this client's access token lifetime in seconds, instead of the tenant's.
    pub access_token_ttl: Option<i64>,
    /// Extension: this client's ID token lifetime in seconds, instead of the tenant's.
    pub id_token_ttl: Option<i64>,
    /// Extension: this client's refresh retry window in seconds (0 disables it).
    pub refresh_grace_secs: Option<i64>,
}

/// The scope a self-registered client (dynamic registration or metadata document) gets when it
/// names none: MCP clients often register without one and ask for scopes later.
pub const SELF_REGISTERED_DEFAULT_SCOPE: &str = "openid profile email offline_access";

impl ClientMetadataRequest {
    /// Gives a self-registered client the default scope when it named none.
    pub fn with_default_scope(mut self) -> Self {
        self.scope
            .get_or_insert_with(|| SELF_REGISTERED_DEFAULT_SCOPE.to_owned());
        self
    }
}

/// Bounds of a per-client token lifetime, in seconds.
pub const TOKEN_TTL_RANGE: std::ops::RangeInclusive<i64> =
    60..=crate::keys::lifecycle::MAX_TOKEN_TTL;

/// Checked metadata with defaults applied; what is stored and echoed. Absent values are left out
/// of the JSON rather than written as `null`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientMetadata {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    pub application_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_grace_secs: Option<i64>,
}

impl ClientMetadata {
    /// A public client (`none`) holds no secret and must use PKCE.
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == "none"
    }

    /// Whether the token endpoint authenticates this client with a shared secret.
    pub fn uses_client_secret(&self) -> bool {
        self.token_endpoint_auth_method
            .starts_with("client_secret_")
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}

/// RFC 7591 §3.2.2 error codes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
}

impl MetadataError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRedirectUri(_) => "invalid_redirect_uri",
            Self::InvalidClientMetadata(_) => "invalid_client_metadata",
        }
    }
}

fn invalid(message: impl Into<String>) -> MetadataError {
    MetadataError::InvalidClientMetadata(message.into())
}

impl ClientMetadataRequest {
    /// Checks the request and applies RFC 7591 defaults.
    pub fn validate(self) -> Result<ClientMetadata, MetadataError> {
        let application_type = match self.application_type.as_deref() {
            None | Some("web") => ApplicationType::Web,
            Some("native") => ApplicationType::Native,
            Some(other) => {
                return Err(invalid(format!(
                    "application_type {other} is not supported"
                )));
            }
        };

        let grant_types = distinct(
            self.grant_types
                .unwrap_or_else(|| vec![GRANT_AUTHORIZATION_CODE.into()]),
            "grant_types",
        )?;
        if grant_types.is_empty() {
            return Err(invalid("grant_types must not be empty"));
        }
        if let Some(g) = grant_types
            .iter()
            .find(|g| !SUPPORTED_GRANTS.contains(&g.as_str()))
        {
            return Err(invalid(format!("grant type {g} is not supported")));
        }
        let has = |grant: &str| grant_types.iter().any(|g| g == grant);
        let uses_code = has(GRANT_AUTHORIZATION_CODE);
        if has(GRANT_REFRESH_TOKEN) && !uses_code {
            return Err(invalid("refresh_token needs the authorization_code grant"));
        }

        // §2.1: response_types defaults to ["code"]; it must agree with grant_types.
        let default_response_types = if uses_code {
            vec!["code".into()]
        } else {
            vec![]
        };
        let response_types = distinct(
            self.response_types.unwrap_or(default_response_types),
            "response_types",
        )?;
        if let Some(r) = response_types.iter().find(|r| *r != "code") {
            return Err(invalid(format!(
                "response type {r} is not supported; use code"
            )));
        }
        if uses_code == response_types.is_empty() {
            return Err(invalid(
                "response_types code and grant type authorization_code go together",
            ));
        }

        let token_endpoint_auth_method = self
            .token_endpoint_auth_method
            .unwrap_or_else(|| "client_secret_basic".into());
        if !AUTH_METHODS.contains(&token_endpoint_auth_method.as_str()) {
            return Err(invalid(format!(
                "token_endpoint_auth_method {token_endpoint_auth_method} is not supported"
            )));
        }
        if token_endpoint_auth_method == "none" && has(GRANT_CLIENT_CREDENTIALS) {
            return Err(invalid("a public client cannot use client_credentials"));
        }

        let redirect_uris = distinct(self.redirect_uris.unwrap_or_default(), "redirect_uris")?;
        if uses_code && redirect_uris.is_empty() {
            return Err(MetadataError::InvalidRedirectUri(
                "the authorization_code grant needs at least one redirect URI".into(),
            ));
        }
        check_uris(&redirect_uris, application_type)?;
        let post_logout_redirect_uris = distinct(
            self.post_logout_redirect_uris.unwrap_or_default(),
            "post_logout_redirect_uris",
        )?;
        check_uris(&post_logout_redirect_uris, application_type)?;

        if self.jwks.is_some() && self.jwks_uri.is_some() {
            return Err(invalid("jwks and jwks_uri must not both be present"));
        }
        if let Some(jwks) = &self.jwks {
            let has_keys = jwks.get("keys").is_some_and(Value::is_array);
            if !has_keys || jwks.to_string().len() > MAX_JWKS_BYTES {
                return Err(invalid(
                    "jwks must be a JWK Set with a keys array, at most 16 KiB",
                ));
            }
        }
        if let Some(uri) = &self.jwks_uri {
            check_https_uri(uri, "jwks_uri")?;
        }
        if token_endpoint_auth_method == "private_key_jwt"
            && self.jwks.is_none()
            && self.jwks_uri.is_none()
        {
            return Err(invalid("private_key_jwt needs jwks or jwks_uri"));
        }

        if let Some(scope) = &self.scope {
            check_scope(scope)?;
        }
        let client_name = self
            .client_name
            .map(|n| check_text(n, "client_name"))
            .transpose()?;
        if let Some(uri) = &self.client_uri {
            check_https_uri(uri, "client_uri")?;
        }
        if let Some(uri) = &self.logo_uri {
            check_https_uri(uri, "logo_uri")?;
        }
        let contacts = self.contacts.unwrap_or_default();
        if contacts.len() > MAX_CONTACTS {
            return Err(invalid(format!("at most {MAX_CONTACTS} contacts")));
        }
        let contacts = contacts
            .into_iter()
            .map(|c| check_text(c, "contacts"))
            .collect::<Result<_, _>>()?;

        for (field, ttl) in [
            ("access_token_ttl", self.access_token_ttl),
            ("id_token_ttl", self.id_token_ttl),
        ] {
            if ttl.is_some_and(|t| !TOKEN_TTL_RANGE.contains(&t)) {
                return Err(invalid(format!(
                    "{field} must be from {} to {} seconds",
                    TOKEN_TTL_RANGE.start(),
                    TOKEN_TTL_RANGE.end()
                )));
            }
        }

        if self
            .refresh_grace_secs
            .is_some_and(|g| !(0..=60).contains(&g))
        {
            return Err(invalid("refresh_grace_secs must be from 0 to 60"));
        }

        Ok(ClientMetadata {
            redirect_uris,
            grant_types,
            response_types,
            token_endpoint_auth_method,
            scope: self.scope.filter(|s| !s.is_empty()),
            client_name,
            client_uri: self.client_uri,
            logo_uri: self.logo_uri,
            contacts,
            application_type: match application_type {
                ApplicationType::Web => "web".into(),
                ApplicationType::Native => "native".into(),
            },
            jwks: self.jwks,
            jwks_uri: self.jwks_uri,
            post_logout_redirect_uris,
            access_token_ttl: self.access_token_ttl,
            id_token_ttl: self.id_token_ttl,
            refresh_grace_secs: self.refresh_grace_secs,
        })
    }
}

/// Refuses duplicates and over-long lists; keeps the order given.
fn distinct(values: Vec<String>, field: &str) -> Result<Vec<String>, MetadataError> {
    if values.len() > MAX_REDIRECT_URIS {
        return Err(invalid(format!(
            "{field} has more than {MAX_REDIRECT_URIS} entries"
        )));
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(invalid(format!("{field} lists {v} twice")));
        }
    }
    Ok(values)
}

fn check_uris(uris: &[String], application_type: ApplicationType) -> Result<(), MetadataError> {
    for uri in uris {
        redirect_uri::check(uri, application_type).map_err(MetadataError::InvalidRedirectUri)?;
    }
    Ok(())
}

fn check_https_uri(uri: &str, field: &str) -> Result<(), MetadataError> {
    let ok = uri.len() <= redirect_uri::MAX_LEN
        && url::Url::parse(uri).is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("{field} must be an https URL")))
    }
}

/// RFC 6749 §3.3: space-separated scope tokens of NQCHAR.
fn check_scope(scope: &str) -> Result<(), MetadataError> {
    let nqchar = |c: char| matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e');
    let ok = scope.len() <= MAX_SCOPE
        && scope
            .split(' ')
            .all(|t| !t.is_empty() && t.chars().all(nqchar));
    if ok || scope.is_empty() {
        Ok(())
    } else {
        Err(invalid("scope must be space-separated scope tokens"))
    }
}

fn check_text(value: String, field: &str) -> Result<String, MetadataError> {
    if value.chars().count() > MAX_TEXT || value.chars().any(char::is_control) {
        Err(invalid(format!(
            "{field} must be at most {MAX_TEXT} characters of text"
        )))
    } else {
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validate(value: Value) -> Result<ClientMetadata, MetadataError> {
        serde_json::from_value::<ClientMetadataRequest>(value)
            .unwrap()
            .validate()
    }

    #[test]
    fn defaults_follow_rfc7591() {
        let m = validate(json!({"redirect_uris": ["https://app.example.com/cb"]})).unwrap();
        assert_eq!(m.grant_types, ["authorization_code"]);
        assert_eq!(m.response_types, ["code"]);
        assert_eq!(m.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(m.application_type, "web");
        assert!(!m.is_public() && m.uses_client_secret());
    }

    #[test]
    fn client_credentials_needs_no_redirect_uri_or_response_type() {
        let m = validate(json!({"grant_types": ["client_credentials"]})).unwrap();
        assert!(m.response_types.is_empty() && m.redirect_uris.is_empty());
    }

    #[test]
    fn echoed_metadata_has_no_nulls() {
        let m = validate(json!({"grant_types": ["client_credentials"]})).unwrap();
        let text = serde_json::to_string(&m).unwrap();
        assert!(!text.contains("null"), "{text}");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let m = validate(json!({"grant_types": ["client_credentials"], "software_id": "x"}));
        assert!(m.is_ok());
    }

    #[test]
    fn inconsistent_metadata_is_refused() {
        let cases = [
            json!({"grant_types": ["implicit"], "redirect_uris": ["https://a.example/cb"]}),
            json!({"grant_types": ["refresh_token"]}),
            json!({"grant_types": []}),
            json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            json!({"grant_types": ["client_credentials"], "response_types": ["code"]}),
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "magic"}),
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"}),
            json!({"grant_types": ["client_credentials"], "jwks": {"keys": []}, "jwks_uri": "https://a.example/jwks"}),
            json!({"grant_types": ["client_credentials"], "jwks": {"nokeys": 1}}),
            json!({"grant_types": ["client_credentials"], "jwks_uri": "http://a.example/jwks"}),
            json!({"grant_types": ["client_credentials"], "scope": "a  b"}),
            json!({"grant_types": ["client_credentials"], "scope": "a\"b"}),
            json!({"grant_types": ["client_credentials"], "application_type": "desktop"}),
            json!({"grant_types": ["client_credentials"], "client_name": "x".repeat(201)}),
            json!({"grant_types": ["client_credentials", "client_credentials"]}),
            json!({"grant_types": ["client_credentials"], "access_token_ttl": 30}),
            json!({"grant_types": ["client_credentials"], "id_token_ttl": 86401}),
        ];
        for case in cases {
            let err = validate(case.clone()).unwrap_err();
            assert_eq!(err.code(), "invalid_client_metadata", "{case}");
        }
    }

    #[test]
    fn bad_redirect_uris_get_their_own_code() {
        for case in [
            json!({}),
            json!({"redirect_uris": ["http://app.example.com/cb"]}),
            json!({"redirect_uris": ["com.example.app:/cb"]}),
            json!({"redirect_uris": ["https://a.example/cb"], "post_logout_redirect_uris": ["javascript:x"]}),
        ] {
            let err = validate(case.clone()).unwrap_err();
            assert_eq!(err.code(), "invalid_redirect_uri", "{case}");
        }
        let native = json!({"redirect_uris": ["com.example.app:/cb"], "application_type": "native",
                            "token_endpoint_auth_method": "none"});
        assert!(validate(native).unwrap().is_public());
    }
}
