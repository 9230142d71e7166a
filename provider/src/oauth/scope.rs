//! Scope (RFC 6749 §3.3): space-separated tokens; a client gets only what it registered.

/// The scope to grant: the requested scope when every token of it is registered, or the whole
/// registered scope when none was requested. `Err` names the first token not allowed.
pub fn grant(requested: Option<&str>, registered: Option<&str>) -> Result<Vec<String>, String> {
    let registered: Vec<&str> = registered.unwrap_or_default().split_whitespace().collect();
    let Some(requested) = requested else {
        return Ok(registered.iter().map(|s| (*s).to_owned()).collect());
    };
    let mut granted: Vec<String> = Vec::new();
    for token in requested.split_whitespace() {
        if !registered.contains(&token) {
            return Err(token.to_owned());
        }
        if !granted.iter().any(|g| g == token) {
            granted.push(token.to_owned());
        }
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_scope_must_be_registered() {
        assert_eq!(
            grant(Some("read"), Some("read write")),
            Ok(vec!["read".into()])
        );
        assert_eq!(
            grant(Some("read read"), Some("read")),
            Ok(vec!["read".into()])
        );
        assert_eq!(
            grant(Some("admin"), Some("read write")),
            Err("admin".into())
        );
        assert_eq!(grant(Some("read"), None), Err("read".into()));
    }

    #[test]
    fn no_request_means_the_registered_scope() {
        assert_eq!(
            grant(None, Some("read write")),
            Ok(vec!["read".into(), "write".into()])
        );
        assert_eq!(grant(None, None), Ok(vec![]));
    }
}
