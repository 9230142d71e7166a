//! Fetching documents that clients point at (client ID metadata documents), guarded against
//! server-side request forgery: only public addresses are connected to (the check runs in the
//! DNS resolver, so the address checked is the address used), no redirects, a short timeout and
//! a small size limit. Hosts on the test-only allowlist (`CLIENT_METADATA_ALLOW_HOSTS`) may be
//! private and plain http.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(5);
/// Largest document accepted.
pub const MAX_BYTES: usize = 5 * 1024;

#[derive(Clone, Debug)]
pub struct Fetcher {
    http: reqwest::Client,
    allowed_hosts: Arc<Vec<String>>,
}

/// A fetched JSON document and how long it may be cached, per its `Cache-Control`.
#[derive(Debug)]
pub struct Fetched {
    pub json: Value,
    pub max_age: Option<Duration>,
}

#[derive(Debug)]
struct PublicOnly {
    allowed_hosts: Arc<Vec<String>>,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed_hosts.iter().any(|h| h == name.as_str());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| allowed || is_public(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

impl Fetcher {
    /// A fetcher that trusts the built-in web roots and `extra_roots`.
    pub fn new(
        allowed_hosts: Vec<String>,
        extra_roots: Vec<reqwest::Certificate>,
    ) -> Result<Self, reqwest::Error> {
        let allowed_hosts = Arc::new(allowed_hosts);
        let mut builder = reqwest::Client::builder();
        for root in extra_roots {
            builder = builder.add_root_certificate(root);
        }
        let http = builder
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .dns_resolver(Arc::new(PublicOnly {
                allowed_hosts: allowed_hosts.clone(),
            }))
            .build()?;
        Ok(Self {
            http,
            allowed_hosts,
        })
    }

    /// Whether `url` may be fetched at all: https (or http on an allowlisted host), and when
    /// its host is an address, a public one (the resolver sees only names).
    pub fn permits(&self, url: &url::Url) -> bool {
        let host = url.host_str().unwrap_or_default();
        let allowed = self.allowed_hosts.iter().any(|h| h == host);
        let scheme_ok = url.scheme() == "https" || (allowed && url.scheme() == "http");
        let address_ok = match url.host() {
            Some(url::Host::Ipv4(ip)) => allowed || is_public(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => allowed || is_public(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => true,
            None => false,
        };
        scheme_ok && address_ok && url.username().is_empty() && url.password().is_none()
    }

    /// GETs a JSON document of at most `MAX_BYTES`; `Err` says why not.
    pub async fn json(&self, url: &url::Url) -> Result<Fetched, String> {
        if !self.permits(url) {
            return Err("the URL is not allowed".into());
        }
        let mut response = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("fetch failed: {e}"))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("answered {}", response.status()));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BYTES {
                return Err(format!("larger than {MAX_BYTES} bytes"));
            }
        }
        let json = serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
        Ok(Fetched { json, max_age })
    }
}

fn max_age(cache_control: &str) -> Option<Duration> {
    let directives: Vec<&str> = cache_control.split(',').map(str::trim).collect();
    if directives
        .iter()
        .any(|d| *d == "no-store" || *d == "no-cache")
    {
        return Some(Duration::ZERO);
    }
    directives
        .iter()
        .find_map(|d| d.strip_prefix("max-age="))
        .and_then(|n| n.parse().ok())
        .map(Duration::from_secs)
}

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// documentation, multicast or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "198.18.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_must_be_https_to_public_hosts_unless_allowlisted() {
        let fetcher = Fetcher::new(vec!["127.0.0.1".into()], Vec::new()).unwrap();
        let ok = |u: &str| fetcher.permits(&url::Url::parse(u).unwrap());
        assert!(ok("https://client.example/metadata.json"));
        assert!(!ok("http://client.example/metadata.json"));
        assert!(!ok("https://169.254.169.254/latest/meta-data"));
        assert!(!ok("https://[::1]/x"));
        assert!(!ok("https://user:pw@client.example/x"));
        assert!(
            ok("http://127.0.0.1:8080/client.json"),
            "allowlisted for tests"
        );
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
    }
}
