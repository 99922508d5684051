//! Who the client is. Behind a TLS-terminating proxy every connection comes from the
//! proxy, so limits and the audit log must use the address the proxy saw instead. Only a
//! peer in a `--trusted-proxy` network may say so, and only in the one header the operator
//! chose (`--client-header`: `X-Forwarded-For` by default, or `Forwarded`, RFC 7239); the
//! other header is ignored entirely, since a proxy that writes one usually passes the
//! client's own copy of the other through. The client is the rightmost address of the chosen
//! header that is not itself a trusted proxy. Headers from any other peer are ignored: a
//! client cannot spoof its way to a fresh budget.

use std::net::IpAddr;

use hyper::header::{HeaderMap, HeaderName};
use ipnet::IpNet;

const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The header a trusted proxy names the client in (`--client-header`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientHeader {
    /// `X-Forwarded-For`, as nginx's `$proxy_add_x_forwarded_for` writes it.
    #[default]
    #[value(name = "x-forwarded-for")]
    XForwardedFor,
    /// `Forwarded` (RFC 7239), `for=` of each element.
    #[value(name = "forwarded")]
    Forwarded,
}

/// The networks of the proxies in front of the daemon, and the header they name the client in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    header: ClientHeader,
}

impl TrustedProxies {
    /// Proxies that name the client in `X-Forwarded-For`.
    pub fn new(networks: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies::with_header(networks, ClientHeader::XForwardedFor)
    }

    pub fn with_header(networks: Vec<IpNet>, header: ClientHeader) -> TrustedProxies {
        TrustedProxies { networks, header }
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        self.trusts(ip)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let chain = match self.header {
            ClientHeader::Forwarded => forwarded_for(headers),
            ClientHeader::XForwardedFor => x_forwarded_for(headers),
        };
        // Right to left: the nearest hop first; the first one no trusted proxy is the client.
        for hop in chain.iter().rev() {
            match hop {
                Some(ip) if self.trusts(*ip) => continue,
                Some(ip) => return ip.to_canonical(),
                // An entry that is no address (`unknown`, an obfuscated name): the client
                // cannot be told, so the request counts against the proxy itself.
                None => return peer,
            }
        }
        // Every hop was a trusted proxy (or there were none): the leftmost one, else the peer.
        chain
            .first()
            .copied()
            .flatten()
            .map_or(peer, |ip| ip.to_canonical())
    }
}

/// The addresses of every `X-Forwarded-For` header, in order.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| parse_address(hop.trim()))
        .collect()
}

/// The `for=` addresses of every `Forwarded` header, in order.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all(FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_address(value.trim().trim_matches('"')))
            })
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_address(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().expect("header value"));
        }
        h
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(vec![
            "127.0.0.0/8".parse().expect("net"),
            "10.0.0.0/8".parse().expect("net"),
        ])
    }

    #[test]
    fn headers_from_untrusted_peers_are_ignored() {
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(proxies().client(ip("203.0.113.5"), &h), ip("203.0.113.5"));
        assert_eq!(
            TrustedProxies::default().client(ip("127.0.0.1"), &h),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        // A client that put its own header in front gains nothing: the proxy appends.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.1.2.3")]);
        assert_eq!(proxies().client(ip("127.0.0.1"), &h), ip("198.51.100.7"));
        let split = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            proxies().client(ip("127.0.0.1"), &split),
            ip("198.51.100.7")
        );
        let v6 = headers(&[("x-forwarded-for", "2001:db8::7")]);
        assert_eq!(
            proxies().client(ip("::ffff:127.0.0.1"), &v6),
            ip("2001:db8::7")
        );
        // No header, or every hop a proxy: the leftmost hop, else the peer.
        assert_eq!(
            proxies().client(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        let inner = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.8")]);
        assert_eq!(proxies().client(ip("127.0.0.1"), &inner), ip("10.0.0.9"));
        // Garbage where the client should be: the proxy's own address.
        let garbage = headers(&[("x-forwarded-for", "1.2.3.4, not-an-address")]);
        assert_eq!(proxies().client(ip("127.0.0.1"), &garbage), ip("127.0.0.1"));
        // Every hop a trusted proxy, written as an IPv4-mapped IPv6 address (found by the
        // fuzzer): the client is the IPv4 address, not a /64 that every mapped address
        // would share.
        let mapped = headers(&[("x-forwarded-for", "::ffff:10.9.22.1")]);
        assert_eq!(proxies().client(ip("127.0.0.1"), &mapped), ip("10.9.22.1"));
    }

    fn forwarded_proxies() -> TrustedProxies {
        TrustedProxies::with_header(proxies().networks, ClientHeader::Forwarded)
    }

    #[test]
    fn only_the_chosen_header_is_read() {
        // nginx appends to X-Forwarded-For and passes the client's own Forwarded through:
        // a spoofed Forwarded must not name the client.
        let both = headers(&[
            ("forwarded", "for=10.9.0.1"),
            ("forwarded", "for=198.51.100.99"),
            ("x-forwarded-for", "203.0.113.5"),
        ]);
        assert_eq!(proxies().client(ip("127.0.0.1"), &both), ip("203.0.113.5"));
        let only_forwarded = headers(&[("forwarded", "for=198.51.100.99")]);
        assert_eq!(
            proxies().client(ip("127.0.0.1"), &only_forwarded),
            ip("127.0.0.1")
        );
        // And the other way round for a proxy that writes Forwarded.
        assert_eq!(
            forwarded_proxies().client(ip("127.0.0.1"), &both),
            ip("198.51.100.99")
        );
        let only_xff = headers(&[("x-forwarded-for", "203.0.113.5")]);
        assert_eq!(
            forwarded_proxies().client(ip("127.0.0.1"), &only_xff),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn forwarded_is_read_as_rfc_7239_writes_it() {
        let proxies = forwarded_proxies;
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=https, For=\"[2001:db8:cafe::17]:4711\";by=10.0.0.1",
        )]);
        assert_eq!(
            proxies().client(ip("10.0.0.1"), &h),
            ip("2001:db8:cafe::17")
        );
        let with_port = headers(&[("forwarded", "for=\"192.0.2.60:8080\"")]);
        assert_eq!(
            proxies().client(ip("10.0.0.1"), &with_port),
            ip("192.0.2.60")
        );
        let unknown = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(proxies().client(ip("10.0.0.1"), &unknown), ip("10.0.0.1"));
    }
}
