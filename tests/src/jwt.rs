//! Reading and forging compact JWTs in tests, without trusting the code under test.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::Value;

/// The decoded header and payload of a compact JWS (signature unchecked).
pub fn parts(token: &str) -> (Value, Value) {
    let mut segments = token.split('.');
    let mut next = || {
        let segment = segments.next().expect("a JWT segment");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64url")).expect("JSON")
    };
    let header = next();
    let payload = next();
    (header, payload)
}

/// The token with its header replaced, signature kept.
pub fn with_header(token: &str, header: &Value) -> String {
    let rest = token.split_once('.').expect("a JWT").1;
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

/// An unsigned token (`alg: none`).
pub fn unsigned(header: &Value, payload: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

/// A token signed with HMAC-SHA-256 under `secret`.
pub fn hs256(header: &Value, payload: &Value, secret: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).expect("any key length");
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}
