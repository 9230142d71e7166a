//! Which redirect URIs a client may register (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §2.1).

use url::{Host, Url};

/// Longest redirect URI accepted; longer ones are always a mistake or an attack.
pub const MAX_LEN: usize = 2000;

/// Schemes that run code or read local data in a user agent; never a redirect target.
const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "vbscript", "file", "about", "blob"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplicationType {
    Web,
    Native,
}

/// Whether `raw` may be registered by a client of `application_type`; the reason when not.
pub fn check(raw: &str, application_type: ApplicationType) -> Result<(), String> {
    if raw.len() > MAX_LEN {
        return Err(format!("redirect URI longer than {MAX_LEN} characters"));
    }
    let url = Url::parse(raw).map_err(|_| format!("{raw} is not an absolute URI"))?;
    if url.fragment().is_some() || raw.contains('#') {
        return Err(format!("{raw} has a fragment"));
    }
    let scheme = url.scheme();
    if FORBIDDEN_SCHEMES.contains(&scheme) {
        return Err(format!("the {scheme} scheme cannot be a redirect URI"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{raw} carries credentials"));
    }
    match scheme {
        "https" if url.host().is_some() => Ok(()),
        "https" => Err(format!("{raw} has no host")),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(format!("{raw} uses http on a host other than loopback")),
        _ if application_type == ApplicationType::Native => Ok(()),
        _ => Err(format!(
            "{raw}: only native clients may use a private-use scheme"
        )),
    }
}

/// RFC 8252 §7.3 loopback redirect: `http` on 127.0.0.1, `[::1]` or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ApplicationType::{Native, Web};

    #[test]
    fn https_and_loopback_http_are_accepted() {
        for uri in [
            "https://app.example.com/cb",
            "https://app.example.com/cb?x=1",
            "http://127.0.0.1:3000/callback",
            "http://[::1]/cb",
            "http://localhost:8080/cb",
        ] {
            assert_eq!(check(uri, Web), Ok(()), "{uri}");
            assert_eq!(check(uri, Native), Ok(()), "{uri}");
        }
    }

    #[test]
    fn private_use_schemes_are_for_native_clients_only() {
        assert_eq!(check("com.example.app:/oauth2redirect", Native), Ok(()));
        assert!(check("com.example.app:/oauth2redirect", Web).is_err());
    }

    #[test]
    fn dangerous_or_malformed_uris_are_refused() {
        for uri in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "https://app.example.com/cb#frag",
            "https://app.example.com/cb#",
            "http://app.example.com/cb",
            "/relative/cb",
            "https://user:pw@app.example.com/cb",
        ] {
            assert!(check(uri, Native).is_err(), "{uri}");
        }
        let long = format!("https://app.example.com/{}", "a".repeat(MAX_LEN));
        assert!(check(&long, Web).is_err());
    }
}
