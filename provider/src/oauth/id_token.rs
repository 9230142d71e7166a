//! ID token claims (OpenID Connect Core §2, §3.1.3.6): iss, sub, aud, azp, exp, iat, auth_time,
//! nonce, at_hash and sid, each when it applies. The sign-in flow fills them; the key service
//! signs them with `typ: JWT`, which no access-token check accepts.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::keys::material::Alg;

/// The `typ` of ID tokens; never `at+jwt`.
pub const TYP: &str = "JWT";

#[derive(Clone, Debug)]
pub struct NewIdToken<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub client_id: &'a str,
    pub issued_at: i64,
    pub ttl: i64,
    pub auth_time: Option<i64>,
    pub nonce: Option<&'a str>,
    /// The access token issued alongside, for `at_hash`.
    pub access_token: Option<&'a str>,
    /// The browser session, for `sid` (front- and back-channel logout).
    pub session_id: Option<&'a str>,
    /// The algorithm of the key that will sign, which picks the `at_hash` hash.
    pub alg: Alg,
    /// User claims the scopes release (email, name, ...).
    pub user_claims: Map<String, Value>,
}

impl NewIdToken<'_> {
    pub fn claims(&self) -> Map<String, Value> {
        let mut claims = self.user_claims.clone();
        let base = json!({
            "iss": self.issuer,
            "sub": self.subject,
            "aud": self.client_id,
            "azp": self.client_id,
            "iat": self.issued_at,
            "exp": self.issued_at + self.ttl,
        });
        if let Value::Object(base) = base {
            claims.extend(base);
        }
        if let Some(auth_time) = self.auth_time {
            claims.insert("auth_time".into(), auth_time.into());
        }
        if let Some(nonce) = self.nonce {
            claims.insert("nonce".into(), nonce.into());
        }
        if let Some(token) = self.access_token {
            claims.insert("at_hash".into(), at_hash(token, self.alg).into());
        }
        if let Some(sid) = self.session_id {
            claims.insert("sid".into(), sid.into());
        }
        claims
    }
}

/// §3.1.3.6: the left half of the hash of the access token, base64url. The hash is the one of
/// the signing algorithm: SHA-256 for ES256 and RS256, SHA-512 for EdDSA with Ed25519.
pub fn at_hash(access_token: &str, alg: Alg) -> String {
    let digest: Vec<u8> = match alg {
        Alg::Es256 | Alg::Rs256 => Sha256::digest(access_token.as_bytes()).to_vec(),
        Alg::EdDsa => Sha512::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new<'a>(access_token: Option<&'a str>, nonce: Option<&'a str>) -> NewIdToken<'a> {
        let mut user_claims = Map::new();
        user_claims.insert("email".into(), "ada@example.com".into());
        // A user claim can never override a protocol claim.
        user_claims.insert("iss".into(), "https://evil.example".into());
        NewIdToken {
            issuer: "https://id.example/a/acme",
            subject: "u1",
            client_id: "app",
            issued_at: 1000,
            ttl: 600,
            auth_time: Some(990),
            nonce,
            access_token,
            session_id: Some("s1"),
            alg: Alg::Es256,
            user_claims,
        }
    }

    #[test]
    fn claims_follow_core_section_2() {
        let claims = new(Some("token"), Some("n-0S6_WzA2Mj")).claims();
        assert_eq!(claims["iss"], "https://id.example/a/acme");
        assert_eq!(
            (claims["aud"].as_str(), claims["azp"].as_str()),
            (Some("app"), Some("app"))
        );
        assert_eq!(
            (claims["iat"].as_i64(), claims["exp"].as_i64()),
            (Some(1000), Some(1600))
        );
        assert_eq!(claims["auth_time"], 990);
        assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
        assert_eq!(claims["sid"], "s1");
        assert_eq!(claims["email"], "ada@example.com");
        let bare = new(None, None).claims();
        assert!(bare.get("nonce").is_none() && bare.get("at_hash").is_none());
    }

    #[test]
    fn at_hash_matches_the_core_example() {
        // OpenID Connect Core, appendix A.3: access token and at_hash of the RS256 example.
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(at_hash(token, Alg::Rs256), "77QmUPtjPfzWtF2AnpK9RQ");
        assert_eq!(
            at_hash(token, Alg::EdDsa).len(),
            43,
            "half of SHA-512 is 32 bytes"
        );
    }
}
