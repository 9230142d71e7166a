//! Email addresses: the checks and normalization applied before one is stored, the tenant's
//! domain allowlist, and the redaction that keeps addresses out of logs.

use std::sync::LazyLock;

use regex::Regex;

const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

/// A checked address, lower-cased so one person has one account per tenant.
pub fn normalize(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.rsplit_once('@')?;
    let local_ok = !local.is_empty()
        && local.len() <= MAX_LOCAL_LEN
        && local
            .chars()
            .all(|c| c.is_ascii_graphic() && !"\"(),:;<>@[\\]".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    (email.len() <= MAX_LEN && local_ok && normalize_domain(domain).is_some()).then_some(email)
}

/// A DNS name with at least two labels, lower-cased.
pub fn normalize_domain(raw: &str) -> Option<String> {
    let domain = raw.trim().to_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let labels: Vec<&str> = domain.split('.').collect();
    (domain.len() <= 253 && labels.len() >= 2 && labels.iter().all(|l| label_ok(l)))
        .then_some(domain)
}

/// Whether a tenant whose allowlist is `allowed` accepts `email` (an empty list accepts all).
pub fn domain_allowed(email: &str, allowed: &[String]) -> bool {
    let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
    allowed.is_empty() || allowed.iter().any(|a| a == domain)
}

static EMAIL_PATTERN: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"[A-Za-z0-9._%+\-]+@([A-Za-z0-9\-]+\.)+[A-Za-z]{2,}").ok());

/// Replaces the local part of every address in `text` with `***`, keeping the domain, which is
/// enough to investigate a delivery problem without naming the person.
pub fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    match EMAIL_PATTERN.as_ref() {
        Some(pattern) => pattern.replace_all(text, |caps: &regex::Captures<'_>| {
            let matched = &caps[0];
            let domain = matched.rsplit_once('@').map_or("", |(_, d)| d);
            format!("***@{domain}")
        }),
        None => std::borrow::Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lower_cased_and_checked() {
        assert_eq!(
            normalize(" Ada@Example.COM ").as_deref(),
            Some("ada@example.com")
        );
        assert_eq!(
            normalize("a.b+tag@mail.example.org").as_deref(),
            Some("a.b+tag@mail.example.org")
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@localhost",
            "a..b@example.com",
            "ada@exa_mple.com",
            "a b@example.com",
            &format!("{}@example.com", "a".repeat(65)),
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn allowlist_matches_whole_domains() {
        let allowed = vec!["example.com".to_owned()];
        assert!(domain_allowed("ada@example.com", &allowed));
        assert!(!domain_allowed("ada@evil-example.com", &allowed));
        assert!(!domain_allowed("ada@sub.example.com", &allowed));
        assert!(domain_allowed("ada@anything.org", &[]));
    }

    #[test]
    fn redaction_hides_local_parts() {
        let line = r#"{"msg":"sent link to ada.lovelace@example.com and bob@mail.example.org"}"#;
        let redacted = redact(line);
        assert!(
            !redacted.contains("ada.lovelace") && !redacted.contains("bob@"),
            "{redacted}"
        );
        assert!(redacted.contains("***@example.com") && redacted.contains("***@mail.example.org"));
        assert_eq!(redact("no address here"), "no address here");
    }
}
