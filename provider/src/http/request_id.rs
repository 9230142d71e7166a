//! Request ids: the caller's `x-request-id` when it is short and plain, otherwise a fresh UUID;
//! echoed on the response and carried into logs and audit rows.

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    response::Response,
};

pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");
const MAX_LEN: usize = 64;

/// A request's id, kept as the header value it is echoed in (checked to be plain ASCII), so
/// echoing and logging it copy nothing.
#[derive(Clone, Debug)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Gives the request its id (kept in its extensions) and returns it, to echo on the response.
pub fn assign(request: &mut Request) -> HeaderValue {
    let id = request
        .headers()
        .get(&HEADER)
        .filter(|v| v.to_str().is_ok_and(acceptable))
        .cloned()
        .unwrap_or_else(fresh);
    request.extensions_mut().insert(RequestId(id.clone()));
    id
}

pub fn echo(response: &mut Response, id: HeaderValue) {
    response.headers_mut().insert(HEADER.clone(), id);
}

/// A random UUID from the thread's CSPRNG: `Uuid::new_v4` would make a system call per request.
fn fresh() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_bytes(id.hyphenated().encode_lower(&mut text).as_bytes())
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_ids_are_kept() {
        assert!(acceptable("abc-123_x.y:z"));
        assert!(!acceptable(""));
        assert!(!acceptable("has space"));
        assert!(!acceptable("line\nbreak"));
        assert!(!acceptable(&"a".repeat(65)));
    }

    #[test]
    fn fresh_ids_are_random_v4_uuids() {
        let (a, b) = (fresh(), fresh());
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(a.to_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version(), Some(uuid::Version::Random));
        assert!(acceptable(a.to_str().unwrap()));
    }
}
