//! The client's address: the TCP peer, unless the peer is a trusted proxy (`TRUSTED_PROXIES`),
//! in which case the rightmost `X-Forwarded-For` entry that is not itself a trusted proxy. A
//! client can write any `X-Forwarded-For` it likes, so from an untrusted peer it is ignored.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::Response,
};
use ipnet::IpNet;

use crate::state::AppState;

/// The address a request is attributed to (audit rows, rate limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

pub(super) async fn middleware(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(peer) = peer {
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let ip = client_ip(peer, &forwarded, &state.config.trusted_proxies);
        request.extensions_mut().insert(ClientIp(ip));
    }
    next.run(request).await
}

/// Walks back from the peer through trusted proxies; the first address not trusted is the
/// client. A malformed entry stops the walk at the last trusted hop's view.
fn client_ip(peer: IpAddr, forwarded: &str, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if !is_trusted(&client) {
        return client;
    }
    for entry in forwarded
        .rsplit(',')
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

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // An untrusted peer's header is ignored, whatever it says.
        assert_eq!(
            client_ip(ip("203.0.113.9"), "1.2.3.4", &trusted),
            ip("203.0.113.9")
        );
        // Through one proxy: the address it saw.
        assert_eq!(
            client_ip(ip("10.0.0.2"), "198.51.100.7", &trusted),
            ip("198.51.100.7")
        );
        // A client that prepends a fake address gets the one the proxy appended.
        assert_eq!(
            client_ip(ip("10.0.0.2"), "1.2.3.4, 198.51.100.7", &trusted),
            ip("198.51.100.7")
        );
        // Through two trusted proxies.
        assert_eq!(
            client_ip(ip("10.0.0.2"), "198.51.100.7, 10.0.0.3", &trusted),
            ip("198.51.100.7")
        );
        // Garbage stops the walk at the last good hop.
        assert_eq!(client_ip(ip("10.0.0.2"), "junk", &trusted), ip("10.0.0.2"));
        // No proxies configured: always the peer.
        assert_eq!(
            client_ip(ip("10.0.0.2"), "198.51.100.7", &[]),
            ip("10.0.0.2")
        );
    }
}
