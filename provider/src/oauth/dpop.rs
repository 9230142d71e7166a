//! DPoP proofs (RFC 9449 §4.3): a JWT the client signs with a key whose public half rides in
//! the header, naming the method and URL of this one request. Checked here without I/O; the
//! one-use jti and the server nonce are the caller's.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use josekit::{
    jwk::Jwk,
    jws::{ES256, ES384, EdDSA, JwsVerifier, PS256, RS256},
    jwt,
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Algorithms a proof may be signed with: asymmetric only.
pub const ALGORITHMS: &[&str] = &["ES256", "ES384", "RS256", "PS256", "EdDSA"];
/// How far a proof's `iat` may be from now.
pub const IAT_WINDOW: i64 = 60;
const PRIVATE_PARAMS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "k"];

/// A checked proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 thumbprint of the proof's key, which tokens are bound to (`cnf.jkt`).
    pub jkt: String,
    pub jti: String,
    pub nonce: Option<String>,
}

/// RFC 7638 JWK thumbprint: SHA-256 of the required members in lexicographic order.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    let required = match member("kty")? {
        "EC" => json!({ "crv": member("crv")?, "kty": "EC", "x": member("x")?, "y": member("y")? }),
        "RSA" => json!({ "e": member("e")?, "kty": "RSA", "n": member("n")? }),
        "OKP" => json!({ "crv": member("crv")?, "kty": "OKP", "x": member("x")? }),
        _ => return None,
    };
    // serde_json keeps object keys sorted, as RFC 7638 §3.3 requires.
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(required.to_string().as_bytes())))
}

/// The `ath` of an access token (§4.2): base64url of its SHA-256.
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

fn verifier(alg: &str, jwk: &Jwk) -> Option<Box<dyn JwsVerifier>> {
    Some(match alg {
        "ES256" => Box::new(ES256.verifier_from_jwk(jwk).ok()?),
        "ES384" => Box::new(ES384.verifier_from_jwk(jwk).ok()?),
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk).ok()?),
        "PS256" => Box::new(PS256.verifier_from_jwk(jwk).ok()?),
        "EdDSA" => Box::new(EdDSA.verifier_from_jwk(jwk).ok()?),
        _ => return None,
    })
}

/// The URL a proof's `htu` is compared with: no query, no fragment (§4.3 step 9).
fn without_query(url: &str) -> Option<String> {
    let mut url = url::Url::parse(url).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    Some(url.to_string())
}

/// Checks a proof for a `method` request to `url` at `now`; with `access_token` it must also
/// carry that token's hash. Returns why it was refused otherwise.
pub fn check(
    proof: &str,
    method: &str,
    url: &str,
    now: i64,
    access_token: Option<&str>,
) -> Result<Proof, String> {
    let header = jwt::decode_header(proof).map_err(|_| "not a JWT")?;
    if header.claim("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err("typ must be dpop+jwt".into());
    }
    let alg = header
        .claim("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !ALGORITHMS.contains(&alg) {
        return Err(format!("alg {alg} is not accepted"));
    }
    let jwk_map = header
        .claim("jwk")
        .and_then(Value::as_object)
        .ok_or("no jwk in the header")?
        .clone();
    if PRIVATE_PARAMS.iter().any(|p| jwk_map.contains_key(*p)) {
        return Err("the jwk holds private key material".into());
    }
    let jwk = Jwk::from_map(jwk_map.clone()).map_err(|_| "the jwk is not a key")?;
    let verifier = verifier(alg, &jwk).ok_or("the jwk does not fit the alg")?;
    let (payload, _) =
        jwt::decode_with_verifier(proof, verifier.as_ref()).map_err(|_| "bad signature")?;
    let claims = payload.claims_set();
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or("jti missing")?;
    if text("htm") != Some(method) {
        return Err("htm does not match the request".into());
    }
    let htu = text("htu").and_then(without_query);
    if htu.is_none() || htu != without_query(url) {
        return Err("htu does not match the request".into());
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or("iat missing")?;
    if (now - iat).abs() > IAT_WINDOW {
        return Err("iat is outside the accepted window".into());
    }
    if let Some(token) = access_token
        && text("ath") != Some(ath(token).as_str())
    {
        return Err("ath does not match the access token".into());
    }
    Ok(Proof {
        jkt: thumbprint(&jwk_map).ok_or("the jwk has no thumbprint")?,
        jti: jti.to_owned(),
        nonce: text("nonce").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let thumb = thumbprint(jwk.as_object().unwrap()).unwrap();
        assert_eq!(thumb, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn urls_compare_without_query() {
        assert_eq!(
            without_query("https://as.example/a/t/token?x=1"),
            Some("https://as.example/a/t/token".into())
        );
    }
}
