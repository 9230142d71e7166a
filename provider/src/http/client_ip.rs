//! The client's address: the TCP peer, unless the peer is a trusted proxy (`TRUSTED_PROXIES`),
//! in which case the rightmost `X-Forwarded-For` entry that is not itself a trusted proxy. A
//! client can write any `X-Forwarded-For` it likes, so from an untrusted peer it is ignored.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, Request},
    http::HeaderMap,
};
use ipnet::IpNet;

/// The address a request is attributed to (audit rows, rate limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Stores the request's `ClientIp` in its extensions (none without a TCP peer).
pub(super) fn attribute(request: &mut Request, trusted: &[IpNet]) {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(peer) = peer {
        let ip = client_ip(peer, forwarded_right_to_left(request.headers()), trusted);
        request.extensions_mut().insert(ClientIp(ip));
    }
}

/// `X-Forwarded-For` entries, nearest hop first, across all its header lines. Lazy: nothing is
/// read (or allocated) unless the peer is a trusted proxy.
fn forwarded_right_to_left(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.rsplit(','))
}

/// Walks back from the peer through trusted proxies; the first address not trusted is the
/// client. A malformed entry stops the walk at the last trusted hop's view.
fn client_ip<'a>(
    peer: IpAddr,
    forwarded_right_to_left: impl Iterator<Item = &'a str>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if !is_trusted(&client) {
        return client;
    }
    for entry in forwarded_right_to_left
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let Ok(ip) = entry.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The client behind `peer` for one `X-Forwarded-For` line.
    fn walk(peer: IpAddr, header: &str, trusted: &[IpNet]) -> IpAddr {
        client_ip(peer, header.rsplit(','), trusted)
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // An untrusted peer's header is ignored, whatever it says.
        assert_eq!(
            walk(ip("203.0.113.9"), "1.2.3.4", &trusted),
            ip("203.0.113.9")
        );
        // Through one proxy: the address it saw.
        assert_eq!(
            walk(ip("10.0.0.2"), "198.51.100.7", &trusted),
            ip("198.51.100.7")
        );
        // A client that prepends a fake address gets the one the proxy appended.
        assert_eq!(
            walk(ip("10.0.0.2"), "1.2.3.4, 198.51.100.7", &trusted),
            ip("198.51.100.7")
        );
        // Through two trusted proxies.
        assert_eq!(
            walk(ip("10.0.0.2"), "198.51.100.7, 10.0.0.3", &trusted),
            ip("198.51.100.7")
        );
        // Garbage stops the walk at the last good hop.
        assert_eq!(walk(ip("10.0.0.2"), "junk", &trusted), ip("10.0.0.2"));
        // No proxies configured: always the peer.
        assert_eq!(walk(ip("10.0.0.2"), "198.51.100.7", &[]), ip("10.0.0.2"));
    }

    #[test]
    fn entries_of_several_header_lines_are_read_nearest_first() {
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", "1.2.3.4, 198.51.100.7".parse().unwrap());
        headers.append("x-forwarded-for", "10.0.0.3".parse().unwrap());
        let entries: Vec<_> = forwarded_right_to_left(&headers).map(str::trim).collect();
        assert_eq!(entries, ["10.0.0.3", "198.51.100.7", "1.2.3.4"]);
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_ip(ip("10.0.0.2"), forwarded_right_to_left(&headers), &trusted),
            ip("198.51.100.7")
        );
    }
}
