//! Which Web Push endpoints the server will post to (SSRF guard).
//!
//! A Web Push subscription names a URL chosen by the device, so a hostile device could
//! otherwise make the server post to an internal service. An endpoint must be
//! `https` (or `http` with `allow_http`, for tests), carry no credentials or fragment,
//! name a host in `allowed_hosts` when that list is set, and not be a loopback,
//! private, link-local or otherwise non-public address (unless
//! `allow_private_addresses`, for tests). The address rule is checked twice: on the
//! URL's literal host when a subscription is registered and before every send, and on
//! every address a host name resolves to, by [`PublicResolver`], which the Web Push
//! HTTP client uses for every connection (a name that resolves to `10.0.0.5` is
//! refused at connection time, whatever it resolved to at registration).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::config::WebPushConfig;

/// One `allowed_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `host` or `host:port` (port `None`: any port).
    Exact(String, Option<u16>),
    /// `*.domain`: any subdomain of `domain` (not `domain` itself).
    Suffix(String),
}

impl HostPattern {
    fn parse(raw: &str) -> Result<HostPattern, String> {
        let raw = raw.trim().to_ascii_lowercase();
        let bad =
            || format!("push.webpush.allowed_hosts: {raw:?} is not a host, host:port or *.domain");
        if let Some(domain) = raw.strip_prefix("*.") {
            return if valid_name(domain) && domain.contains('.') {
                Ok(HostPattern::Suffix(domain.to_owned()))
            } else {
                Err(bad())
            };
        }
        let (host, port) = match raw.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
            _ => (raw.as_str(), None),
        };
        if valid_name(host) {
            Ok(HostPattern::Exact(host.to_owned(), port))
        } else {
            Err(bad())
        }
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        match self {
            HostPattern::Exact(h, p) => h == host && p.is_none_or(|p| p == port),
            HostPattern::Suffix(d) => host
                .strip_suffix(d.as_str())
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
        }
    }
}

fn valid_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The endpoint rules of `[push.webpush]`.
#[derive(Debug, Clone)]
pub struct EndpointPolicy {
    allowed: Vec<HostPattern>,
    allow_http: bool,
    allow_private: bool,
}

impl Default for EndpointPolicy {
    /// https only, any public host.
    fn default() -> Self {
        EndpointPolicy {
            allowed: Vec::new(),
            allow_http: false,
            allow_private: false,
        }
    }
}

impl EndpointPolicy {
    /// The policy of a `[push.webpush]` section; an error names a bad
    /// `allowed_hosts` entry.
    pub fn from_config(c: &WebPushConfig) -> Result<EndpointPolicy, String> {
        Ok(EndpointPolicy {
            allowed: c
                .allowed_hosts
                .iter()
                .map(|h| HostPattern::parse(h))
                .collect::<Result<_, _>>()?,
            allow_http: c.allow_http,
            allow_private: c.allow_private_addresses,
        })
    }

    /// Whether non-public addresses are allowed (tests).
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Checks an endpoint URL; the error says precisely which rule it breaks.
    pub fn check(&self, endpoint: &str) -> Result<url::Url, String> {
        let url = url::Url::parse(endpoint).map_err(|e| format!("endpoint is not a URL: {e}"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err("endpoint must be an https URL (push.webpush allows no http)".into());
            }
            _ => return Err("endpoint must be an https URL".into()),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("endpoint must not carry credentials".into());
        }
        if url.fragment().is_some() {
            return Err("endpoint must not have a fragment".into());
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let host = match url.host() {
            Some(url::Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if !self.allow_private && local_name(&d) {
                    return Err(format!(
                        "endpoint host {d} is a local name (push.webpush allows public addresses only)"
                    ));
                }
                d
            }
            Some(url::Host::Ipv4(ip)) => self.literal(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.literal(IpAddr::V6(ip))?,
            None => return Err("endpoint has no host".into()),
        };
        if !self.allowed.is_empty() && !self.allowed.iter().any(|p| p.matches(&host, port)) {
            return Err(format!(
                "endpoint host {host} is not in push.webpush.allowed_hosts"
            ));
        }
        Ok(url)
    }

    fn literal(&self, ip: IpAddr) -> Result<String, String> {
        if !self.allow_private && !is_public(ip) {
            return Err(format!(
                "endpoint address {ip} is not a public address (push.webpush allows public addresses only)"
            ));
        }
        Ok(ip.to_string())
    }
}

/// Names that never leave the machine or the local network.
fn local_name(host: &str) -> bool {
    host == "localhost"
        || [".localhost", ".local", ".internal", ".home.arpa"]
            .iter()
            .any(|s| host.ends_with(s))
        || !host.contains('.')
}

/// Whether an address is globally routable: not loopback, private (RFC 1918, unique
/// local), shared (CGNAT), link-local, unspecified, broadcast, multicast, reserved
/// or documentation; IPv4-mapped, IPv4-compatible and NAT64 IPv6 addresses are judged
/// by their IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96).
    if (s[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified())
        || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
    {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return public_v4(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only 100::/64
}

/// The Web Push client's DNS resolver: the system resolver, keeping only public
/// addresses (all of them with `allow_private_addresses`).
#[derive(Debug, Clone, Copy)]
pub struct PublicResolver {
    /// Keep non-public addresses too (tests).
    pub allow_private: bool,
}

impl PublicResolver {
    /// Resolves `host` and filters the addresses.
    pub async fn lookup(self, host: &str) -> Result<Vec<SocketAddr>, String> {
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        let kept: Vec<SocketAddr> = found
            .iter()
            .copied()
            .filter(|a| self.allow_private || is_public(a.ip()))
            .collect();
        if kept.is_empty() {
            return Err(format!(
                "{host} resolves to no public address (push.webpush allows public addresses only)"
            ));
        }
        Ok(kept)
    }
}

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = *self;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = this.lookup(&host).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], http: bool, private: bool) -> EndpointPolicy {
        EndpointPolicy::from_config(&WebPushConfig {
            allowed_hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            allow_http: http,
            allow_private_addresses: private,
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn default_is_https_to_public_hosts() {
        let p = EndpointPolicy::default();
        assert!(p.check("https://fcm.googleapis.com/fcm/send/abc").is_ok());
        assert!(p.check("https://ntfy.example.org:8443/upAbc?up=1").is_ok());
        assert!(p.check("https://[2a00:1450:4001::200e]/x").is_ok());
        assert!(p.check("https://8.8.8.8/x").is_ok());
        for (endpoint, why) in [
            ("http://push.example/x", "https"),
            ("ftp://push.example/x", "https"),
            ("https://user:pw@push.example/x", "credentials"),
            ("https://push.example/x#f", "fragment"),
            ("https://127.0.0.1/x", "127.0.0.1 is not a public address"),
            ("https://10.1.2.3/x", "not a public address"),
            ("https://172.20.0.1/x", "not a public address"),
            ("https://192.168.1.1/x", "not a public address"),
            (
                "https://169.254.169.254/latest/meta-data",
                "not a public address",
            ),
            ("https://100.64.0.1/x", "not a public address"),
            ("https://0.0.0.0/x", "not a public address"),
            ("https://[::1]/x", "not a public address"),
            ("https://[fd00::1]/x", "not a public address"),
            ("https://[fe80::1]/x", "not a public address"),
            ("https://[::ffff:10.0.0.1]/x", "not a public address"),
            ("https://[64:ff9b::a00:1]/x", "not a public address"),
            ("https://localhost/x", "local name"),
            ("https://printer.local/x", "local name"),
            ("https://intranet/x", "local name"),
            ("not a url", "not a URL"),
        ] {
            let e = p.check(endpoint).unwrap_err();
            assert!(e.contains(why), "{endpoint}: {e}");
        }
    }

    #[test]
    fn allow_list_and_test_openings() {
        let p = policy(
            &[
                "*.push.services.mozilla.com",
                "fcm.googleapis.com",
                "ntfy.example.org:443",
            ],
            false,
            false,
        );
        assert!(
            p.check("https://updates.push.services.mozilla.com/wpush/v2/x")
                .is_ok()
        );
        assert!(p.check("https://FCM.googleapis.com/fcm/send/x").is_ok());
        assert!(p.check("https://ntfy.example.org/up").is_ok());
        assert!(
            p.check("https://ntfy.example.org:8443/up")
                .unwrap_err()
                .contains("allowed_hosts")
        );
        assert!(
            p.check("https://push.services.mozilla.com/x")
                .unwrap_err()
                .contains("allowed_hosts")
        );
        assert!(
            p.check("https://evilpush.services.mozilla.com.attacker.example/x")
                .unwrap_err()
                .contains("allowed_hosts")
        );
        assert!(
            p.check("https://8.8.8.8/x")
                .unwrap_err()
                .contains("allowed_hosts")
        );
        let test = policy(&[], true, true);
        assert!(test.check("http://127.0.0.1:9/push/1").is_ok());
        assert!(test.check("http://localhost:9/push/1").is_ok());
        // http alone does not open private addresses.
        assert!(
            policy(&[], true, false)
                .check("http://127.0.0.1:9/x")
                .unwrap_err()
                .contains("not a public address")
        );
        for bad in ["*.com", "*.", "a b", "host:99999", "http://x", ""] {
            assert!(
                EndpointPolicy::from_config(&WebPushConfig {
                    allowed_hosts: vec![bad.into()],
                    ..Default::default()
                })
                .unwrap_err()
                .contains("allowed_hosts"),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn resolver_drops_private_addresses() {
        let strict = PublicResolver {
            allow_private: false,
        };
        let e = strict.lookup("localhost").await.unwrap_err();
        assert!(e.contains("no public address"), "{e}");
        let e = strict.lookup("127.0.0.1").await.unwrap_err();
        assert!(e.contains("no public address"), "{e}");
        let open = PublicResolver {
            allow_private: true,
        };
        assert!(
            open.lookup("127.0.0.1")
                .await
                .unwrap()
                .iter()
                .all(|a| a.ip().is_loopback())
        );
    }
}
