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

#[cfg(test)]
mod tests {
    use super::*;

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
