//! RFC 9068 JWT access tokens: the claims we issue and the checks every presented token must
//! pass besides its signature.

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The `typ` header of an access token (RFC 9068 §2.1); ID tokens never carry it.
pub const TYP: &str = "at+jwt";
/// How far in the future `iat` may be, for clock skew between replicas.
pub const LEEWAY: i64 = 60;

/// What an access token says, once checked.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct AccessToken {
    pub iss: String,
    pub sub: String,
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub client_id: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(default)]
    pub scope: Option<String>,
    /// RFC 9449 §6: the DPoP key the token is bound to, as `{"jkt": …}`.
    #[serde(default)]
    pub cnf: Option<Value>,
}

impl AccessToken {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.as_deref().unwrap_or_default().split_whitespace()
    }

    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scopes().any(|s| s == wanted)
    }

    /// The thumbprint of the DPoP key the token is bound to, if any.
    pub fn jkt(&self) -> Option<&str> {
        self.cnf.as_ref()?.get("jkt")?.as_str()
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Aud::deserialize(d)? {
        Aud::One(one) => vec![one],
        Aud::Many(many) => many,
    })
}

/// The inputs of a new access token.
#[derive(Clone, Debug)]
pub struct NewAccessToken<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub client_id: &'a str,
    pub audience: &'a [String],
    pub scope: &'a [String],
    pub issued_at: i64,
    pub ttl: i64,
    pub jti: &'a str,
    /// The DPoP key thumbprint to bind the token to.
    pub cnf_jkt: Option<&'a str>,
}

impl NewAccessToken<'_> {
    pub fn claims(&self) -> Map<String, Value> {
        let aud = match self.audience {
            [one] => json!(one),
            many => json!(many),
        };
        let mut claims = json!({
            "iss": self.issuer,
            "sub": self.subject,
            "aud": aud,
            "client_id": self.client_id,
            "iat": self.issued_at,
            "exp": self.issued_at + self.ttl,
            "jti": self.jti,
        });
        if !self.scope.is_empty() {
            claims["scope"] = self.scope.join(" ").into();
        }
        if let Some(jkt) = self.cnf_jkt {
            claims["cnf"] = json!({ "jkt": jkt });
        }
        match claims {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("not an access token (typ must be at+jwt)")]
    NotAnAccessToken,
    #[error("claims missing or malformed: {0}")]
    Malformed(String),
    #[error("issued by another issuer")]
    WrongIssuer,
    #[error("expired")]
    Expired,
    #[error("issued in the future")]
    NotYetValid,
    #[error("no audience")]
    NoAudience,
}

/// Checks the header type and the claims of a token whose signature already verified.
pub fn check(
    typ: Option<&str>,
    claims: Map<String, Value>,
    issuer: &str,
    now: i64,
) -> Result<AccessToken, ClaimsError> {
    if !typ.is_some_and(|t| {
        t.eq_ignore_ascii_case(TYP) || t.eq_ignore_ascii_case("application/at+jwt")
    }) {
        return Err(ClaimsError::NotAnAccessToken);
    }
    let token: AccessToken = serde_json::from_value(Value::Object(claims))
        .map_err(|e| ClaimsError::Malformed(e.to_string()))?;
    if token.iss != issuer {
        return Err(ClaimsError::WrongIssuer);
    }
    if token.aud.is_empty() {
        return Err(ClaimsError::NoAudience);
    }
    if now >= token.exp {
        return Err(ClaimsError::Expired);
    }
    if token.iat > now + LEEWAY {
        return Err(ClaimsError::NotYetValid);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Map<String, Value> {
        NewAccessToken {
            issuer: "https://id.example/a/acme",
            subject: "svc",
            client_id: "svc",
            audience: &["https://api.example/".to_owned()],
            scope: &["read".to_owned()],
            issued_at: 1000,
            ttl: 600,
            jti: "j1",
            cnf_jkt: None,
        }
        .claims()
    }

    #[test]
    fn issued_claims_pass_the_checks() {
        let token = check(Some("at+jwt"), claims(), "https://id.example/a/acme", 1000).unwrap();
        assert_eq!(token.aud, ["https://api.example/"]);
        assert_eq!(token.exp, 1600);
        assert!(token.has_scope("read") && !token.has_scope("write"));
    }

    #[test]
    fn each_failed_check_is_refused() {
        let iss = "https://id.example/a/acme";
        assert_eq!(
            check(Some("JWT"), claims(), iss, 1000),
            Err(ClaimsError::NotAnAccessToken)
        );
        assert_eq!(
            check(None, claims(), iss, 1000),
            Err(ClaimsError::NotAnAccessToken)
        );
        assert_eq!(
            check(Some(TYP), claims(), "https://id.example/a/other", 1000),
            Err(ClaimsError::WrongIssuer)
        );
        assert_eq!(
            check(Some(TYP), claims(), iss, 1600),
            Err(ClaimsError::Expired)
        );
        assert_eq!(
            check(Some(TYP), claims(), iss, 1000 - LEEWAY - 1),
            Err(ClaimsError::NotYetValid)
        );
        let mut no_exp = claims();
        no_exp.remove("exp");
        assert!(matches!(
            check(Some(TYP), no_exp, iss, 1000),
            Err(ClaimsError::Malformed(_))
        ));
        let mut no_aud = claims();
        no_aud.remove("aud");
        assert!(matches!(
            check(Some(TYP), no_aud, iss, 1000),
            Err(ClaimsError::Malformed(_))
        ));
        let mut empty_aud = claims();
        empty_aud.insert("aud".into(), json!([]));
        assert_eq!(
            check(Some(TYP), empty_aud, iss, 1000),
            Err(ClaimsError::NoAudience)
        );
    }
}
