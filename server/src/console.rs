//! The ops console: a small static web page over the admin API, for operators
//! (docs/operations.md, "Ops console"). Its files live in `server/console/` and are
//! compiled into the binary; they are served under `/console` only when
//! `[console] enabled = true` (routes: [`crate::routes::console`]).
//!
//! The page holds no secret of the server's: the operator types an admin key, the
//! page keeps it in the tab's `sessionStorage` and sends it as
//! `Authorization: Bearer` to `/v1/admin/…`. No cookie is involved, so a page of
//! another origin cannot make the browser act with the key (no CSRF), and the strict
//! Content-Security-Policy below allows only this server's own scripts and styles:
//! no inline script or style, no framing, no form posting anywhere.

use serde::Deserialize;

/// `[console]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve the ops console under `/console`. Default false (the paths answer 404).
    pub enabled: bool,
}

/// One file of the console.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// File name under `/console/`.
    pub name: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Content.
    pub body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The page (`/console` and `/console/`).
pub const INDEX: Asset = Asset {
    name: "index.html",
    content_type: HTML,
    body: include_str!("../console/index.html"),
};

/// The other files, by name.
pub const ASSETS: &[Asset] = &[
    INDEX,
    Asset {
        name: "console.css",
        content_type: CSS,
        body: include_str!("../console/console.css"),
    },
    Asset {
        name: "app.js",
        content_type: JS,
        body: include_str!("../console/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: JS,
        body: include_str!("../console/api.js"),
    },
    Asset {
        name: "dom.js",
        content_type: JS,
        body: include_str!("../console/dom.js"),
    },
    Asset {
        name: "challenges.js",
        content_type: JS,
        body: include_str!("../console/challenges.js"),
    },
    Asset {
        name: "cardholders.js",
        content_type: JS,
        body: include_str!("../console/cardholders.js"),
    },
    Asset {
        name: "events.js",
        content_type: JS,
        body: include_str!("../console/events.js"),
    },
];

/// The asset called `name`, if any.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// `Content-Security-Policy` of every console response: the server's own scripts,
/// styles and API only; images inline (`data:`, the QR code) or own; nothing else.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'none'";

/// Headers added to every console response, [`CSP`] first.
pub const HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// What the CSP forbids is not in the files either, so the page does not depend
    /// on the header being there: no inline script or style, no event-handler
    /// attribute, no HTML built from strings in the scripts.
    #[test]
    fn assets_have_no_inline_code_and_build_no_html_from_strings() {
        let html = INDEX.body;
        for (i, part) in html.split("<script").enumerate().skip(1) {
            let tag = part.split('>').next().unwrap_or_default();
            assert!(
                tag.contains("src=\"/console/"),
                "script {i} is inline: {tag}"
            );
            assert!(
                part.split('>')
                    .nth(1)
                    .unwrap_or_default()
                    .starts_with("</script"),
                "script {i} has a body"
            );
        }
        assert!(!html.contains("<style"), "inline <style>");
        assert!(!html.contains(" style="), "style attribute");
        assert!(!has_handler_attribute(html), "event-handler attribute");
        for a in ASSETS.iter().filter(|a| a.content_type == JS) {
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "localStorage",
                ".style.",
                "setAttribute('style'",
                "setAttribute('on",
            ] {
                assert!(!a.body.contains(banned), "{} uses {banned}", a.name);
            }
        }
        // every file the page loads or a script imports is served
        let mut loaded: Vec<&str> = html
            .split("=\"/console/")
            .skip(1)
            .map(|s| s.split('"').next().unwrap_or_default())
            .collect();
        for a in ASSETS.iter().filter(|a| a.content_type == JS) {
            loaded.extend(
                a.body
                    .split("from './")
                    .skip(1)
                    .map(|s| s.split('\'').next().unwrap_or_default()),
            );
        }
        assert!(loaded.len() > ASSETS.len(), "{loaded:?}");
        for name in loaded {
            assert!(asset(name).is_some(), "{name} is not served");
        }
    }

    /// ` on<letters>=` anywhere in the markup.
    fn has_handler_attribute(html: &str) -> bool {
        let lower = html.to_ascii_lowercase();
        lower.match_indices(" on").any(|(i, _)| {
            let rest = &lower[i + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name_len > 0 && rest[name_len..].trim_start().starts_with('=')
        })
    }

    #[test]
    fn handler_attributes_are_recognised() {
        assert!(has_handler_attribute("<img src=x onerror=alert(1)>"));
        assert!(has_handler_attribute("<a onclick = \"x\">"));
        assert!(!has_handler_attribute("<p>log on to the console</p>"));
    }
}
