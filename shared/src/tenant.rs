//! Tenant ids (`^[a-z0-9][a-z0-9-]{0,62}$`, SPEC) and the issuer URL each one owns.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A tenant id that matches the public pattern; holding one means it was checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TenantId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tenant id must match ^[a-z0-9][a-z0-9-]{{0,62}}$")]
pub struct InvalidTenantId;

impl TenantId {
    pub const MAX_LEN: usize = 63;

    pub fn parse(raw: &str) -> Result<Self, InvalidTenantId> {
        let bytes = raw.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if first_ok && rest_ok && bytes.len() <= Self::MAX_LEN {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidTenantId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tenant's issuer: `{public_url}/a/{tenant}`, with no trailing slash.
    pub fn issuer(&self, public_url: &str) -> String {
        format!("{}/a/{}", public_url.trim_end_matches('/'), self.0)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_spec_pattern() {
        for ok in ["a", "0", "acme", "acme-eu-1", &"a".repeat(63)] {
            assert!(TenantId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "-acme",
            "Acme",
            "acme_1",
            "acme.eu",
            "ac me",
            "é",
            &"a".repeat(64),
        ] {
            assert_eq!(TenantId::parse(bad), Err(InvalidTenantId), "{bad}");
        }
    }

    #[test]
    fn issuer_has_no_trailing_slash() {
        let t = TenantId::parse("acme").unwrap();
        assert_eq!(
            t.issuer("https://id.example.com/"),
            "https://id.example.com/a/acme"
        );
    }
}
