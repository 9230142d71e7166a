//! Form-encoded request parameters (RFC 6749 §3.2, appendix B). A parameter may appear once,
//! except those a specification allows to repeat (RFC 8707 `resource`).

use url::form_urlencoded;

#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

/// A parameter sent more than once where only one is allowed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("parameter {0} is repeated")]
pub struct Repeated(pub String);

impl Params {
    pub fn parse(body: &[u8]) -> Self {
        Self {
            pairs: form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// The value of a parameter that may appear at most once; an empty value counts as absent.
    pub fn single(&self, name: &str) -> Result<Option<&str>, Repeated> {
        let mut values = self
            .pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(Repeated(name.to_owned()));
        }
        Ok(first.filter(|v| !v.is_empty()))
    }

    /// Every value of a repeatable parameter.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// These parameters without the named ones, form-encoded again.
    pub fn encode_without(&self, names: &[&str]) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self
            .pairs
            .iter()
            .filter(|(k, _)| !names.contains(&k.as_str()))
        {
            out.append_pair(k, v);
        }
        out.finish()
    }

    /// Adds a parameter.
    pub fn push(&mut self, name: &str, value: &str) {
        self.pairs.push((name.to_owned(), value.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_values_repeats_and_repeatables() {
        let p =
            Params::parse(b"grant_type=client_credentials&resource=a&resource=b&scope=&x=1&x=2");
        assert_eq!(p.single("grant_type"), Ok(Some("client_credentials")));
        assert_eq!(p.single("scope"), Ok(None));
        assert_eq!(p.single("missing"), Ok(None));
        assert_eq!(p.single("x"), Err(Repeated("x".into())));
        assert_eq!(p.all("resource"), ["a", "b"]);
    }

    #[test]
    fn values_are_form_decoded() {
        let p = Params::parse(b"scope=read+write&client_id=a%3Ab");
        assert_eq!(p.single("scope"), Ok(Some("read write")));
        assert_eq!(p.single("client_id"), Ok(Some("a:b")));
    }
}
