//! private_key_jwt client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9): a JWT
//! the client signs with a key it registered. Only asymmetric algorithms; one use per jti.

use josekit::{
    jwk::{Jwk, JwkSet},
    jws::{ES256, ES384, EdDSA, JwsVerifier, PS256, RS256},
};
use serde::Deserialize;
use serde_json::{Map, Value};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Algorithms a client may sign its assertions with.
pub const ALGORITHMS: &[&str] = &["ES256", "ES384", "RS256", "PS256", "EdDSA"];
/// Longest an assertion may live: it proves possession now, not for the day.
pub const MAX_LIFETIME: i64 = 300;
const LEEWAY: i64 = 60;

#[derive(Debug, Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub sub: String,
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub exp: i64,
    pub jti: String,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub nbf: Option<i64>,
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

/// The verifier for `alg` with the client's key `kid` (or its only key when no kid is given).
pub fn verifier(
    jwks: &Value,
    alg: &str,
    kid: Option<&str>,
) -> Result<Box<dyn JwsVerifier>, String> {
    if !ALGORITHMS.contains(&alg) {
        return Err(format!("assertion algorithm {alg} is not accepted"));
    }
    let set = JwkSet::from_bytes(jwks.to_string().as_bytes()).map_err(|e| e.to_string())?;
    let candidates: Vec<&Jwk> = match kid {
        Some(kid) => set.get(kid),
        None => set.keys(),
    };
    let [jwk] = candidates.as_slice() else {
        return Err("no single registered key matches the assertion's kid".into());
    };
    if jwk.algorithm().is_some_and(|a| a != alg) {
        return Err("the assertion's alg is not the key's".into());
    }
    let verifier: Box<dyn JwsVerifier> = match alg {
        "ES256" => Box::new(ES256.verifier_from_jwk(jwk).map_err(|e| e.to_string())?),
        "ES384" => Box::new(ES384.verifier_from_jwk(jwk).map_err(|e| e.to_string())?),
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk).map_err(|e| e.to_string())?),
        "PS256" => Box::new(PS256.verifier_from_jwk(jwk).map_err(|e| e.to_string())?),
        _ => Box::new(EdDSA.verifier_from_jwk(jwk).map_err(|e| e.to_string())?),
    };
    Ok(verifier)
}

/// Checks the claims of a verified assertion from `client_id`, addressed to one of `audiences`.
pub fn check(
    claims: Map<String, Value>,
    client_id: &str,
    audiences: &[&str],
    now: i64,
) -> Result<AssertionClaims, String> {
    let claims: AssertionClaims = serde_json::from_value(Value::Object(claims))
        .map_err(|e| format!("assertion claims: {e}"))?;
    if claims.iss != client_id || claims.sub != client_id {
        return Err("iss and sub must be the client_id".into());
    }
    if !claims.aud.iter().any(|a| audiences.contains(&a.as_str())) {
        return Err("the assertion is not addressed to this server".into());
    }
    if now >= claims.exp {
        return Err("the assertion expired".into());
    }
    if claims.exp > now + MAX_LIFETIME + LEEWAY {
        return Err(format!("assertions may live at most {MAX_LIFETIME}s"));
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY)
        || claims.iat.is_some_and(|iat| iat > now + LEEWAY)
    {
        return Err("the assertion is not valid yet".into());
    }
    if claims.jti.is_empty() {
        return Err("the assertion needs a jti".into());
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base =
            json!({ "iss": "c", "sub": "c", "aud": "https://as/a/t", "exp": 1100, "jti": "j" });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        base.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_fresh_assertion_for_this_server_passes() {
        let ok = check(claims(json!({})), "c", &["https://as/a/t"], 1000).unwrap();
        assert_eq!(ok.jti, "j");
    }

    #[test]
    fn bad_assertions_are_refused() {
        let aud = &["https://as/a/t"];
        assert!(check(claims(json!({ "sub": "other" })), "c", aud, 1000).is_err());
        assert!(
            check(
                claims(json!({ "aud": "https://elsewhere" })),
                "c",
                aud,
                1000
            )
            .is_err()
        );
        assert!(check(claims(json!({})), "c", aud, 1100).is_err(), "expired");
        assert!(
            check(claims(json!({ "exp": 1000 + 3600 })), "c", aud, 1000).is_err(),
            "too long"
        );
        assert!(
            check(claims(json!({ "iat": 2000 })), "c", aud, 1000).is_err(),
            "future"
        );
        let mut no_jti = claims(json!({}));
        no_jti.remove("jti");
        assert!(check(no_jti, "c", aud, 1000).is_err());
    }

    #[test]
    fn symmetric_algorithms_are_refused() {
        assert!(verifier(&json!({ "keys": [] }), "HS256", None).is_err());
        assert!(verifier(&json!({ "keys": [] }), "none", None).is_err());
    }
}
