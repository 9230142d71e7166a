//! Checking an authorization request (RFC 6749 §4.1.1 and §4.1.2.1, OpenID Connect Core
//! §3.1.2.1, RFC 7636, RFC 8707, RFC 8252 §7.3, RFC 9700 §2.1). Until the client and its
//! redirect URI are verified an error is shown on a page; after that it goes back to the client.

use url::Url;

use super::{params::Params, redirect_uri, resource, scope};
use crate::store::clients::Client;

/// Longest `state` and `nonce` accepted; they are echoed and stored.
const MAX_ECHOED: usize = 1024;

/// A checked request, ready to store while the person signs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub resources: Vec<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
}

/// Why a request is refused, and where the refusal may be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The client or its redirect URI could not be verified: render, never redirect.
    Page(String),
    /// Sent back to the verified redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

/// Whether the tenant lets confidential clients skip PKCE.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub pkce_required_for_confidential: bool,
}

/// The registered redirect URI `presented` matches: exactly, or (RFC 8252 §7.3) a loopback
/// `http` URI that differs only in its port.
pub fn match_redirect_uri(registered: &[String], presented: &str) -> bool {
    if registered.iter().any(|r| r == presented) {
        return true;
    }
    let Ok(presented_url) = Url::parse(presented) else {
        return false;
    };
    if presented_url.scheme() != "http" || !redirect_uri::is_loopback(&presented_url) {
        return false;
    }
    registered
        .iter()
        .filter_map(|r| Url::parse(r).ok())
        .any(|mut r| {
            r.scheme() == "http"
                && redirect_uri::is_loopback(&r)
                && r.set_port(presented_url.port()).is_ok()
                && r == presented_url
        })
}

/// RFC 7636 §4.2: 43 to 128 unreserved characters.
fn valid_challenge(challenge: &str) -> bool {
    (43..=128).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks a request from `client` (None when the client_id names no active client).
pub fn check(
    params: &Params,
    client: Option<&Client>,
    policy: Policy,
) -> Result<AuthorizeRequest, Refusal> {
    let page = |why: &str| Refusal::Page(why.to_owned());
    let client_id = params
        .single("client_id")
        .map_err(|_| page("client_id is repeated"))?
        .ok_or_else(|| page("the request names no client"))?;
    let client = client
        .filter(|c| c.is_active() && c.client_id == client_id)
        .ok_or_else(|| page("this application is unknown or disabled"))?;
    let redirect_uri = params
        .single("redirect_uri")
        .map_err(|_| page("redirect_uri is repeated"))?
        .ok_or_else(|| page("the request has no redirect_uri"))?;
    if !match_redirect_uri(&client.metadata.redirect_uris, redirect_uri) {
        return Err(page(
            "the redirect_uri is not registered for this application",
        ));
    }
    let state = params.single("state").ok().flatten().map(str::to_owned);
    let refuse = |error: &'static str, description: &str| Refusal::Redirect {
        redirect_uri: redirect_uri.to_owned(),
        state: state.clone().filter(|s| s.len() <= MAX_ECHOED),
        error,
        description: description.to_owned(),
    };

    let single = |name: &str| {
        params
            .single(name)
            .map_err(|_| refuse("invalid_request", &format!("parameter {name} is repeated")))
    };
    single("state")?;
    if state.as_ref().is_some_and(|s| s.len() > MAX_ECHOED) {
        return Err(refuse("invalid_request", "state is too long"));
    }
    if params.contains("request") {
        return Err(refuse(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if params.contains("request_uri") {
        return Err(refuse(
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match single("response_type")? {
        Some("code") => {}
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        None => return Err(refuse("invalid_request", "response_type is required")),
    }
    if !client
        .metadata
        .allows_grant(super::client_metadata::GRANT_AUTHORIZATION_CODE)
    {
        return Err(refuse(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    if single("response_mode")?.is_some_and(|m| m != "query") {
        return Err(refuse(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    let scope = scope::grant(single("scope")?, client.metadata.scope.as_deref())
        .map_err(|token| refuse("invalid_scope", &format!("scope {token} is not allowed")))?;

    let code_challenge = single("code_challenge")?.map(str::to_owned);
    match single("code_challenge_method")? {
        None | Some("S256") => {}
        Some(_) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
    }
    if code_challenge.is_some() && single("code_challenge_method")?.is_none() {
        // RFC 7636 defaults a missing method to plain, which is refused.
        return Err(refuse(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    match &code_challenge {
        Some(challenge) if !valid_challenge(challenge) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge must be 43 to 128 unreserved characters",
            ));
        }
        None if client.metadata.is_public() || policy.pkce_required_for_confidential => {
            return Err(refuse(
                "invalid_request",
                "PKCE with code_challenge_method=S256 is required",
            ));
        }
        _ => {}
    }

    let resources =
        resource::check(&params.all("resource")).map_err(|why| refuse("invalid_target", &why))?;
    let prompt: Vec<String> = single("prompt")?
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if prompt
        .iter()
        .any(|p| !matches!(p.as_str(), "none" | "login" | "consent" | "select_account"))
    {
        return Err(refuse(
            "invalid_request",
            "prompt must be none, login, consent or select_account",
        ));
    }
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(refuse("invalid_request", "prompt=none cannot be combined"));
    }
    let max_age =
        match single("max_age")? {
            Some(raw) => Some(raw.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                refuse("invalid_request", "max_age must be a non-negative integer")
            })?),
            None => None,
        };
    let nonce = single("nonce")?.map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_ECHOED) {
        return Err(refuse("invalid_request", "nonce is too long"));
    }
    let login_hint = single("login_hint")?
        .map(str::to_owned)
        .filter(|h| h.len() <= 254);
    let id_token_hint = single("id_token_hint")?.map(str::to_owned);

    Ok(AuthorizeRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scope,
        state,
        nonce,
        code_challenge,
        resources,
        prompt,
        max_age,
        login_hint,
        id_token_hint,
    })
}

/// The redirect URI with the response parameters added to its query (RFC 6749 §4.1.2), always
/// including `iss` (RFC 9207).
pub fn response_url(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

/// RFC 7636 §4.6: whether `verifier` hashes to `challenge` under S256.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use sha2::{Digest, Sha256};
    let valid_verifier = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    valid_verifier
        && crate::crypto::ct_eq(
            URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()))
                .as_bytes(),
            challenge.as_bytes(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{oauth::client_metadata::ClientMetadataRequest, store::clients::ClientStatus};
    use serde_json::json;

    fn client(public: bool) -> Client {
        let metadata: ClientMetadataRequest = serde_json::from_value(json!({
            "redirect_uris": ["https://app.example/cb", "http://127.0.0.1/cb"],
            "token_endpoint_auth_method": if public { "none" } else { "client_secret_basic" },
            "scope": "openid email",
        }))
        .unwrap();
        Client {
            client_id: "app".into(),
            secret_digest: None,
            metadata: metadata.validate().unwrap(),
            status: ClientStatus::Active,
            first_party: true,
            created_at: 0,
            updated_at: 0,
        }
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const POLICY: Policy = Policy {
        pkce_required_for_confidential: true,
    };

    fn params(extra: &str) -> Params {
        Params::parse(
            format!(
                "client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&\
                 state=xyz&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}"
            )
            .as_bytes(),
        )
    }

    fn error_of(result: Result<AuthorizeRequest, Refusal>) -> &'static str {
        match result {
            Err(Refusal::Redirect { error, .. }) => error,
            other => panic!("expected a redirect refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_good_request_passes() {
        let extra = "&scope=openid&nonce=n&resource=https%3A%2F%2Fapi.example%2F";
        let request = check(&params(extra), Some(&client(true)), POLICY).unwrap();
        assert_eq!(request.scope, ["openid"]);
        assert_eq!(request.state.as_deref(), Some("xyz"));
        assert_eq!(request.resources, ["https://api.example/"]);
    }

    #[test]
    fn unverified_clients_and_redirects_get_a_page() {
        let bad_uri = Params::parse(
            b"client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=code",
        );
        assert!(matches!(
            check(&bad_uri, Some(&client(true)), POLICY),
            Err(Refusal::Page(_))
        ));
        assert!(matches!(
            check(&params(""), None, POLICY),
            Err(Refusal::Page(_))
        ));
        let twice = params("&redirect_uri=https%3A%2F%2Fapp.example%2Fcb");
        assert!(matches!(
            check(&twice, Some(&client(true)), POLICY),
            Err(Refusal::Page(_))
        ));
    }

    #[test]
    fn refusals_after_verification_redirect_with_their_error() {
        let c = client(true);
        assert_eq!(
            error_of(check(&params("&response_type=token"), Some(&c), POLICY)),
            "invalid_request"
        );
        let token = Params::parse(
            format!("client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=token&code_challenge={CHALLENGE}&code_challenge_method=S256").as_bytes(),
        );
        assert_eq!(
            error_of(check(&token, Some(&c), POLICY)),
            "unsupported_response_type"
        );
        assert_eq!(
            error_of(check(&params("&scope=admin"), Some(&c), POLICY)),
            "invalid_scope"
        );
        let plain = Params::parse(
            b"client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&code_challenge=abcdefghijabcdefghijabcdefghijabcdefghij123&code_challenge_method=plain",
        );
        assert_eq!(error_of(check(&plain, Some(&c), POLICY)), "invalid_request");
        let no_pkce = Params::parse(
            b"client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code",
        );
        assert_eq!(
            error_of(check(&no_pkce, Some(&c), POLICY)),
            "invalid_request"
        );
        let relaxed = Policy {
            pkce_required_for_confidential: false,
        };
        assert!(
            check(&no_pkce, Some(&client(false)), relaxed).is_ok(),
            "a tenant may relax PKCE for confidential clients"
        );
        assert_eq!(
            error_of(check(&no_pkce, Some(&c), relaxed)),
            "invalid_request",
            "never for public ones"
        );
        assert_eq!(
            error_of(check(&params("&resource=%2Frelative"), Some(&c), POLICY)),
            "invalid_target"
        );
        assert_eq!(
            error_of(check(&params("&prompt=none+login"), Some(&c), POLICY)),
            "invalid_request"
        );
        assert_eq!(
            error_of(check(&params("&max_age=-1"), Some(&c), POLICY)),
            "invalid_request"
        );
        assert_eq!(
            error_of(check(&params("&request=x"), Some(&c), POLICY)),
            "request_not_supported"
        );
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let twice = params("&scope=openid&scope=email");
        assert_eq!(
            error_of(check(&twice, Some(&client(true)), POLICY)),
            "invalid_request"
        );
    }

    #[test]
    fn loopback_redirects_may_change_port_only() {
        let registered = vec![
            "http://127.0.0.1/cb".to_owned(),
            "https://app.example/cb".to_owned(),
        ];
        assert!(match_redirect_uri(&registered, "http://127.0.0.1:51234/cb"));
        assert!(match_redirect_uri(&registered, "https://app.example/cb"));
        assert!(!match_redirect_uri(
            &registered,
            "http://127.0.0.1:51234/other"
        ));
        assert!(!match_redirect_uri(
            &registered,
            "https://app.example:444/cb"
        ));
        assert!(!match_redirect_uri(&registered, "https://app.example/cb/"));
        assert!(
            !match_redirect_uri(&registered, "http://localhost:5000/cb"),
            "host must match too"
        );
    }

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        assert!(pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            CHALLENGE
        ));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            CHALLENGE
        ));
        assert!(!pkce_matches("short", CHALLENGE));
    }

    #[test]
    fn response_urls_keep_the_registered_query() {
        let url = response_url(
            "https://app.example/cb?tenant=1",
            &[("code", "c"), ("state", "a b"), ("iss", "https://id/a/t")],
        );
        assert_eq!(
            url,
            "https://app.example/cb?tenant=1&code=c&state=a+b&iss=https%3A%2F%2Fid%2Fa%2Ft"
        );
    }
}
