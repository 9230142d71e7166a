//! RFC 8707 resource indicators: absolute URIs without a fragment, which become the access
//! token's audience.

/// Longest resource indicator accepted.
const MAX_LEN: usize = 2000;
/// Most resources one request may name.
const MAX_RESOURCES: usize = 10;

/// Checks each `resource` value (§2: absolute URI, no fragment); `Err` describes the first bad one.
pub fn check(resources: &[&str]) -> Result<Vec<String>, String> {
    if resources.len() > MAX_RESOURCES {
        return Err(format!("at most {MAX_RESOURCES} resource parameters"));
    }
    let mut checked: Vec<String> = Vec::new();
    for raw in resources {
        let ok = raw.len() <= MAX_LEN
            && !raw.contains('#')
            && url::Url::parse(raw).is_ok_and(|u| !u.cannot_be_a_base() || u.scheme() == "urn");
        if !ok {
            return Err(format!(
                "resource {raw} is not an absolute URI without a fragment"
            ));
        }
        if !checked.iter().any(|c| c == raw) {
            checked.push((*raw).to_owned());
        }
    }
    Ok(checked)
}

/// Whether two indicators name the same resource: equal, or equal once a pathless http(s) URI
/// gets the trailing slash URL parsing gives it (`https://mcp.example` is
/// `https://mcp.example/`). Nothing else is normalised: a path's own trailing slash counts.
pub fn same(a: &str, b: &str) -> bool {
    a == b || pathless(a).is_some_and(|a| pathless(b).is_some_and(|b| a == b))
}

/// The serialisation of a pathless, query-less http(s) URI (which ends in `/`).
fn pathless(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    let pathless =
        matches!(url.scheme(), "http" | "https") && url.path() == "/" && url.query().is_none();
    pathless.then(|| url.as_str().to_owned())
}

/// RFC 8707 §2.2: resources asked for at the token endpoint must be among those granted; `Err`
/// names the first that is not. None asked for: all that were granted.
pub fn narrow(requested: Vec<String>, granted: &[String]) -> Result<Vec<String>, String> {
    if requested.is_empty() {
        return Ok(granted.to_vec());
    }
    match requested
        .iter()
        .find(|r| !granted.iter().any(|g| same(r, g)))
    {
        Some(outside) => Err(format!("resource {outside} was not granted")),
        None => Ok(requested),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pathless_resource_matches_with_or_without_its_slash() {
        assert!(same("https://mcp.example.com", "https://mcp.example.com/"));
        assert!(same(
            "https://mcp.example.com:8443/",
            "https://mcp.example.com:8443"
        ));
        assert!(same(
            "https://mcp.example.com/mcp",
            "https://mcp.example.com/mcp"
        ));
        assert!(!same(
            "https://mcp.example.com/mcp",
            "https://mcp.example.com/mcp/"
        ));
        assert!(!same(
            "https://mcp.example.com",
            "https://other.example.com/"
        ));
        assert!(!same(
            "https://mcp.example.com/?a=1",
            "https://mcp.example.com"
        ));
        assert!(!same("http://mcp.example.com", "https://mcp.example.com/"));
        let granted = vec!["https://mcp.example.com".to_owned()];
        assert_eq!(
            narrow(vec!["https://mcp.example.com/".to_owned()], &granted),
            Ok(vec!["https://mcp.example.com/".to_owned()])
        );
        assert_eq!(narrow(vec![], &granted), Ok(granted.clone()));
        assert!(narrow(vec!["https://evil.example/".to_owned()], &granted).is_err());
    }

    #[test]
    fn absolute_uris_without_fragments_pass() {
        assert_eq!(
            check(&["https://api.example.com/", "https://api.example.com/"]),
            Ok(vec!["https://api.example.com/".to_owned()])
        );
        assert!(check(&["urn:example:api"]).is_ok());
        for bad in ["/relative", "https://api.example.com/#x", "not a uri"] {
            assert!(check(&[bad]).is_err(), "{bad}");
        }
        assert!(check(&["https://a.example/"; 11]).is_err());
    }
}
