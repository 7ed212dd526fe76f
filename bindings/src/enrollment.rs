//! What a device knows after enrollment (protocol §6.2), as checked core types, and
//! the parsing of enrollment links and activation codes.

use pushauth_core::ids::DeviceId;
use pushauth_core::keys::PublicKey;
use url::Url;

use crate::error::{Error, Result};
use crate::ffi::key_store::KeyPurpose;
use crate::keys::KeyRef;

/// The default enrollment link scheme; issuers set their own per app
/// (`mybank-pushauth`) so that no other app can claim their links.
pub(crate) const DEFAULT_LINK_SCHEME: &str = "pushauth";

/// A key created for a rotation whose outcome is not known yet (protocol v2 §6.3).
/// It is in the stored state before the request goes out, so that a crash or a lost
/// answer never loses the key the server may already have switched to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingKey {
    /// `DeviceSigning` or `ApprovalSigning`.
    pub purpose: KeyPurpose,
    /// The new key.
    pub key: KeyRef,
}

/// The device's enrollment: where the server is, who it is, the pinned server key,
/// the three device keys and a rotation in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Enrollment {
    /// The server's base URL.
    pub server: Url,
    /// The server's issuer name (`iss` of challenges, `aud` of device proofs).
    pub issuer: String,
    /// This device.
    pub device: DeviceId,
    /// The server's challenge-signing key, pinned at enrollment.
    pub server_key: PublicKey,
    /// The device key (request proofs, declines; no user presence).
    pub device_key: KeyRef,
    /// The approval key (approvals, migration grants; biometric per use).
    pub approval_key: KeyRef,
    /// The agreement key (push payloads).
    pub agreement: KeyRef,
    /// A rotation in progress.
    pub pending: Option<PendingKey>,
}

impl Enrollment {
    /// The current key of a signing purpose.
    pub(crate) fn key(&self, purpose: KeyPurpose) -> Result<&KeyRef> {
        match purpose {
            KeyPurpose::DeviceSigning => Ok(&self.device_key),
            KeyPurpose::ApprovalSigning => Ok(&self.approval_key),
            KeyPurpose::Agreement => {
                Err(Error::Input("the agreement key does not rotate".to_owned()))
            }
        }
    }

    /// The state after the server switched `pending` in, and the alias to delete.
    pub(crate) fn with_switched(&self, pending: &PendingKey) -> Result<(Enrollment, String)> {
        let mut next = self.clone();
        next.pending = None;
        let slot = match pending.purpose {
            KeyPurpose::DeviceSigning => &mut next.device_key,
            KeyPurpose::ApprovalSigning => &mut next.approval_key,
            KeyPurpose::Agreement => {
                return Err(Error::Internal("agreement key pending".to_owned()));
            }
        };
        let old = std::mem::replace(slot, pending.key.clone());
        Ok((next, old.alias))
    }
}

/// A parsed `<scheme>://enroll?v=1&server=<base URL>&code=<code>` link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    /// The server's base URL.
    pub server: Url,
    /// The activation code, normalised.
    pub code: String,
}

/// Crockford base32 alphabet (no I, L, O, U).
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Normalises an activation code as typed or scanned: Crockford decoding rules
/// (case-insensitive, `I`/`L` read as `1`, `O` as `0`, hyphens and spaces ignored),
/// exactly 20 symbols, re-grouped by four with hyphens (`ABCD-EFGH-…`).
pub(crate) fn normalize_activation_code(input: &str) -> Result<String> {
    let mut symbols = Vec::with_capacity(20);
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'I' | 'L' => '1',
            'O' => '0',
            c => c,
        };
        if !c.is_ascii() || !CROCKFORD.contains(&(c as u8)) {
            return Err(Error::Input(
                "activation code: not Crockford base32".to_owned(),
            ));
        }
        symbols.push(c);
    }
    if symbols.len() != 20 {
        return Err(Error::Input(
            "activation code: expected 20 characters".to_owned(),
        ));
    }
    let groups: Vec<String> = symbols.chunks(4).map(|g| g.iter().collect()).collect();
    Ok(groups.join("-"))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parses a server base URL: `https`, or `http` to a loopback address (tests, local
/// demo); no credentials, query or fragment.
pub(crate) fn parse_server_url(text: &str) -> Result<Url> {
    let url =
        Url::parse(text.trim()).map_err(|_| Error::Input("server URL: not a URL".to_owned()))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        _ => {
            return Err(Error::Input(
                "server URL: must be https (http only to localhost)".to_owned(),
            ));
        }
    }
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Input(
            "server URL: needs a host and no credentials".to_owned(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Input(
            "server URL: no query or fragment allowed".to_owned(),
        ));
    }
    Ok(url)
}

/// The server URL as text without a trailing slash (`https://host/prefix`).
pub(crate) fn server_url_text(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

/// Parses an enrollment deeplink or QR payload (protocol §6.2) whose scheme must be
/// `scheme` (the issuer app's own, `pushauth` by default).
pub(crate) fn parse_link(link: &str, scheme: &str) -> Result<Link> {
    let url = Url::parse(link.trim())
        .map_err(|_| Error::Input("enrollment link: not a URL".to_owned()))?;
    if !url.scheme().eq_ignore_ascii_case(scheme) || url.host_str() != Some("enroll") {
        return Err(Error::Input(format!(
            "enrollment link: expected {scheme}://enroll"
        )));
    }
    let (mut version, mut server, mut code) = (None, None, None);
    for (key, value) in url.query_pairs() {
        let slot = match key.as_ref() {
            "v" => &mut version,
            "server" => &mut server,
            "code" => &mut code,
            // Unknown parameters are ignored, so that v1 links can grow hints.
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(Error::Input(format!(
                "enrollment link: `{key}` given twice"
            )));
        }
    }
    if version.as_deref() != Some("1") {
        return Err(Error::Input(
            "enrollment link: unsupported version (v=1 expected)".to_owned(),
        ));
    }
    let server = parse_server_url(
        &server.ok_or_else(|| Error::Input("enrollment link: no server".to_owned()))?,
    )?;
    let code = normalize_activation_code(
        &code.ok_or_else(|| Error::Input("enrollment link: no code".to_owned()))?,
    )?;
    Ok(Link { server, code })
}

/// Resolves what the user scanned or typed: a deeplink with `scheme`, or a bare code
/// with the server URL the app was configured with.
pub(crate) fn resolve_activation(
    activation: &str,
    server_url: Option<&str>,
    scheme: &str,
) -> Result<Link> {
    let activation = activation.trim();
    if activation.contains("://") {
        let link = parse_link(activation, scheme)?;
        if let Some(configured) = server_url {
            // An app that knows its server refuses links pointing elsewhere (a
            // phishing QR code would otherwise pin an attacker's server key).
            if server_url_text(&parse_server_url(configured)?) != server_url_text(&link.server) {
                return Err(Error::Input(
                    "enrollment link: points to another server".to_owned(),
                ));
            }
        }
        return Ok(link);
    }
    let server = server_url
        .ok_or_else(|| Error::Input("a bare activation code needs the server URL".to_owned()))?;
    Ok(Link {
        server: parse_server_url(server)?,
        code: normalize_activation_code(activation)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_normalise() {
        assert_eq!(
            normalize_activation_code("abcd efgh jkmn pqrs tvwx").unwrap(),
            "ABCD-EFGH-JKMN-PQRS-TVWX"
        );
        assert_eq!(
            normalize_activation_code("0OIL-1111-2222-3333-4444").unwrap(),
            "0011-1111-2222-3333-4444"
        );
        assert!(normalize_activation_code("ABCD-EFGH-JKMN-PQRS-TVW").is_err());
        assert!(normalize_activation_code("ABCD-EFGH-JKMN-PQRS-TVWU").is_err());
        assert!(normalize_activation_code("ABCD-EFGH-JKMN-PQRS-TVWÉ").is_err());
    }

    #[test]
    fn links_parse() {
        let l =
            parse_link("pushauth://enroll?v=1&server=https%3A%2F%2Fbank.example%2Fpa&code=abcd-efgh-jkmn-pqrs-tvwx", "pushauth")
                .unwrap();
        assert_eq!(server_url_text(&l.server), "https://bank.example/pa");
        assert_eq!(l.code, "ABCD-EFGH-JKMN-PQRS-TVWX");
        let ok =
            "pushauth://enroll?v=1&server=http://127.0.0.1:8080&code=ABCDEFGHJKMNPQRSTVWX&hint=x";
        assert!(parse_link(ok, "pushauth").is_ok());
        // An issuer's own scheme: its links parse, others' do not.
        let own = ok.replace("pushauth://", "mybank-pushauth://");
        assert!(parse_link(&own, "mybank-pushauth").is_ok());
        assert!(parse_link(ok, "mybank-pushauth").is_err());
        assert!(parse_link(&own, "pushauth").is_err());
        for bad in [
            "https://enroll?v=1&server=https://a.example&code=ABCDEFGHJKMNPQRSTVWX",
            "pushauth://other?v=1&server=https://a.example&code=ABCDEFGHJKMNPQRSTVWX",
            "pushauth://enroll?v=2&server=https://a.example&code=ABCDEFGHJKMNPQRSTVWX",
            "pushauth://enroll?server=https://a.example&code=ABCDEFGHJKMNPQRSTVWX",
            "pushauth://enroll?v=1&server=http://a.example&code=ABCDEFGHJKMNPQRSTVWX",
            "pushauth://enroll?v=1&server=https://a.example",
            "pushauth://enroll?v=1&v=1&server=https://a.example&code=ABCDEFGHJKMNPQRSTVWX",
        ] {
            assert!(parse_link(bad, "pushauth").is_err(), "{bad}");
        }
    }

    #[test]
    fn activation_resolves() {
        let link = "pushauth://enroll?v=1&server=https://a.example&code=ABCDEFGHJKMNPQRSTVWX";
        let p = DEFAULT_LINK_SCHEME;
        assert!(resolve_activation(link, None, p).is_ok());
        assert!(resolve_activation(link, Some("https://a.example/"), p).is_ok());
        assert!(resolve_activation(link, Some("https://b.example"), p).is_err());
        assert!(resolve_activation(link, None, "mybank").is_err());
        assert!(resolve_activation("ABCDEFGHJKMNPQRSTVWX", None, p).is_err());
        assert_eq!(
            resolve_activation("ABCDEFGHJKMNPQRSTVWX", Some("https://a.example"), p)
                .unwrap()
                .code,
            "ABCD-EFGH-JKMN-PQRS-TVWX"
        );
    }
}
