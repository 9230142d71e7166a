//! Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3):
//! exactly the method the client registered, secrets compared as keyed digests in constant time.

use axum::http::{HeaderMap, header};
use base64::{Engine, engine::general_purpose::STANDARD};
use url::form_urlencoded;

use crate::{
    crypto::SecretKind,
    error::OAuthError,
    oauth::params::Params,
    state::AppState,
    store::{
        clients::{self, Client},
        tenants::Tenant,
    },
};

/// How the client presented itself.
#[derive(Debug, PartialEq, Eq)]
enum Presented {
    Basic { client_id: String, secret: String },
    Post { client_id: String, secret: String },
    None { client_id: String },
}

impl Presented {
    fn method(&self) -> &'static str {
        match self {
            Self::Basic { .. } => "client_secret_basic",
            Self::Post { .. } => "client_secret_post",
            Self::None { .. } => "none",
        }
    }

    fn client_id(&self) -> &str {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::None { client_id } => client_id,
        }
    }
}

fn form_decode(raw: &str) -> String {
    form_urlencoded::parse(format!("x={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// RFC 6749 §2.3.1: `Basic base64(urlencode(id) ":" urlencode(secret))`.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || OAuthError::invalid_request("malformed Authorization header");
    let value = value.to_str().map_err(|_| malformed())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(malformed());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_request(
            "only Basic client authentication uses Authorization",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    Ok(Some((form_decode(id), form_decode(secret))))
}

fn presented(headers: &HeaderMap, params: &Params) -> Result<Presented, OAuthError> {
    let repeated = |e: crate::oauth::params::Repeated| OAuthError::invalid_request(e.to_string());
    let body_id = params.single("client_id").map_err(repeated)?;
    let body_secret = params.single("client_secret").map_err(repeated)?;
    if params.contains("client_assertion") {
        return Err(OAuthError::invalid_request(
            "client assertions are not supported",
        ));
    }
    match (basic_credentials(headers)?, body_id, body_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method",
        )),
        (Some((client_id, secret)), body_id, None) => {
            if body_id.is_some_and(|id| id != client_id) {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the credentials",
                ));
            }
            Ok(Presented::Basic { client_id, secret })
        }
        (None, Some(id), Some(secret)) => Ok(Presented::Post {
            client_id: id.to_owned(),
            secret: secret.to_owned(),
        }),
        (None, Some(id), None) => Ok(Presented::None {
            client_id: id.to_owned(),
        }),
        (None, None, _) => Err(OAuthError::invalid_client(
            "client authentication is required",
            "",
        )),
    }
}

/// The authenticated, active client of `tenant`, or `invalid_client`.
pub(super) async fn authenticate(
    state: &AppState,
    tenant: &Tenant,
    issuer: &str,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client, OAuthError> {
    let refuse = || OAuthError::invalid_client("client authentication failed", issuer);
    let presented = presented(headers, params).map_err(|mut e| {
        if e.error == "invalid_client" {
            e = refuse();
        }
        e
    })?;
    let client = clients::get(state.store.reader(), &tenant.id, presented.client_id())
        .await?
        .ok_or_else(refuse)?;
    // A suspended or revoked client is refused exactly like an unknown one.
    if !client.is_active() || client.metadata.token_endpoint_auth_method != presented.method() {
        return Err(refuse());
    }
    match &presented {
        Presented::Basic { secret, .. } | Presented::Post { secret, .. } => {
            let stored = client.secret_digest.as_deref().ok_or_else(refuse)?;
            if !state
                .digester
                .verify(SecretKind::ClientSecret, secret, stored)
            {
                return Err(refuse());
            }
        }
        Presented::None { .. } => {}
    }
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn basic(raw: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(raw));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&value).unwrap(),
        );
        headers
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let p = presented(&basic("my%3Aclient:s%2Bcret"), &Params::parse(b"")).unwrap();
        assert_eq!(
            p,
            Presented::Basic {
                client_id: "my:client".into(),
                secret: "s+cret".into()
            }
        );
    }

    #[test]
    fn each_method_is_recognised() {
        let post = presented(
            &HeaderMap::new(),
            &Params::parse(b"client_id=a&client_secret=b"),
        )
        .unwrap();
        assert_eq!(post.method(), "client_secret_post");
        let none = presented(&HeaderMap::new(), &Params::parse(b"client_id=a")).unwrap();
        assert_eq!(none.method(), "none");
    }

    #[test]
    fn two_methods_or_none_at_all_are_refused() {
        let both = presented(&basic("a:b"), &Params::parse(b"client_secret=b"));
        assert_eq!(both.unwrap_err().error, "invalid_request");
        let mismatch = presented(&basic("a:b"), &Params::parse(b"client_id=c"));
        assert_eq!(mismatch.unwrap_err().error, "invalid_request");
        let nothing = presented(&HeaderMap::new(), &Params::parse(b""));
        assert_eq!(nothing.unwrap_err().error, "invalid_client");
        let bearer = {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
            h
        };
        assert_eq!(
            presented(&bearer, &Params::parse(b"")).unwrap_err().error,
            "invalid_request"
        );
    }
}
