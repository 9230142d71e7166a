//! Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3):
//! exactly the method the client registered, secrets compared as keyed digests in constant time.

use axum::http::{HeaderMap, header};
use base64::{Engine, engine::general_purpose::STANDARD};
use url::form_urlencoded;

use josekit::jwt;

use crate::{
    crypto::SecretKind,
    error::OAuthError,
    limits::{Actor, Class},
    oauth::{client_assertion, metadata::paths, params::Params},
    state::AppState,
    store::{client_assertions, clients::Client, tenants::Tenant},
};

/// How the client presented itself.
#[derive(Debug, PartialEq, Eq)]
enum Presented {
    Basic {
        client_id: String,
        secret: String,
    },
    Post {
        client_id: String,
        secret: String,
    },
    PrivateKeyJwt {
        client_id: String,
        assertion: String,
    },
    None {
        client_id: String,
    },
}

impl Presented {
    fn method(&self) -> &'static str {
        match self {
            Self::Basic { .. } => "client_secret_basic",
            Self::Post { .. } => "client_secret_post",
            Self::PrivateKeyJwt { .. } => "private_key_jwt",
            Self::None { .. } => "none",
        }
    }

    fn client_id(&self) -> &str {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::PrivateKeyJwt { client_id, .. }
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
    if let Some(assertion) = params.single("client_assertion").map_err(repeated)? {
        if headers.contains_key(header::AUTHORIZATION) || body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method",
            ));
        }
        let assertion_type = params.single("client_assertion_type").map_err(repeated)?;
        if assertion_type != Some(client_assertion::ASSERTION_TYPE) {
            return Err(OAuthError::invalid_request(
                "unsupported client_assertion_type",
            ));
        }
        let issuer = unverified_issuer(assertion)
            .ok_or_else(|| OAuthError::invalid_client("client authentication failed", ""))?;
        if body_id.is_some_and(|id| id != issuer) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the assertion",
            ));
        }
        return Ok(Presented::PrivateKeyJwt {
            client_id: issuer,
            assertion: assertion.to_owned(),
        });
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

/// The `iss` an assertion claims, read before its signature is checked: only to find which
/// client's keys to check it with.
fn unverified_issuer(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// Verifies a private_key_jwt assertion against the client's registered keys, once.
async fn check_assertion(
    state: &AppState,
    tenant: &Tenant,
    issuer: &str,
    client: &Client,
    assertion: &str,
) -> Result<(), String> {
    let jwks = client
        .metadata
        .jwks
        .as_ref()
        .ok_or("keys published at a jwks_uri are not fetched; register them inline as jwks")?;
    let header = jwt::decode_header(assertion).map_err(|e| e.to_string())?;
    let alg = header
        .claim("alg")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let kid = header.claim("kid").and_then(serde_json::Value::as_str);
    let verifier = client_assertion::verifier(jwks, alg, kid)?;
    let (payload, _) =
        jwt::decode_with_verifier(assertion, verifier.as_ref()).map_err(|e| e.to_string())?;
    let audiences: Vec<String> = std::iter::once(issuer.to_owned())
        .chain(
            [paths::TOKEN, paths::INTROSPECTION, paths::REVOCATION]
                .iter()
                .map(|p| format!("{issuer}{p}")),
        )
        .collect();
    let audiences: Vec<&str> = audiences.iter().map(String::as_str).collect();
    let claims = client_assertion::check(
        payload.claims_set().clone(),
        &client.client_id,
        &audiences,
        state.clock.unix(),
    )?;
    // Each jti once until the assertion expires: in Redis when configured (shared by every
    // replica; no cache, no authentication), else in the database.
    let ttl =
        std::time::Duration::from_secs((claims.exp - state.clock.unix()).max(1).unsigned_abs());
    let cache_key = format!(
        "client_assertion:{}:{}:{}",
        tenant.id, client.client_id, claims.jti
    );
    let first_use = match state.limits.first_use(&cache_key, ttl).await {
        Some(result) => result.map_err(|e| format!("replay cache unavailable: {e}"))?,
        None => client_assertions::record_once(
            state.store.writer(),
            &tenant.id,
            &client.client_id,
            &claims.jti,
            claims.exp,
        )
        .await
        .map_err(|e| e.to_string())?,
    };
    if first_use {
        Ok(())
    } else {
        Err("the assertion was already used".into())
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
    let client = state
        .client(&tenant.id, presented.client_id())
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
        Presented::PrivateKeyJwt { assertion, .. } => {
            if let Err(why) = check_assertion(state, tenant, issuer, &client, assertion).await {
                tracing::info!(client_id = %client.client_id, why, "client assertion refused");
                return Err(refuse());
            }
        }
        Presented::None { .. } => {}
    }
    // Counted once the client is known for sure, so nobody can spend another client's quota.
    let actor = Actor::client(tenant.id.as_str(), &client.client_id);
    super::limits::enforce(state, Class::Token, &[actor])
        .await
        .map_err(|limited| limited.oauth())?;
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
