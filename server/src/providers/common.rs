//! Helpers shared by the processor connectors: webhook metering, body parsing with
//! messages that never echo input, deadlines, RFC 3339 times, callback allow-lists,
//! lenient enums and the redaction of connector secrets kept in a challenge's context.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use pushauth_core::ids::{CardholderId, Provider};
use pushauth_store::{Challenge, Millis};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::metrics::{AuthFailure, ProviderLabel, ProviderOutcome};
use crate::state::AppState;

/// Key of the object in a challenge's `context` that holds values which must never
/// leave the server except inside an encrypted push (the Paysafe OTP). The admin API
/// removes it before answering ([`redact_context`]).
pub const SECRET_CONTEXT_KEY: &str = "secret";

/// The one-time code to show in the encrypted push, if the connector stored one.
pub fn push_otp(challenge: &Challenge) -> Option<String> {
    challenge
        .context
        .get(SECRET_CONTEXT_KEY)?
        .get("otp")?
        .as_str()
        .map(str::to_owned)
}

/// Removes the connector secrets from a challenge before it is shown to anyone.
pub fn redact_context(challenge: &mut Challenge) {
    if let serde_json::Value::Object(map) = &mut challenge.context
        && map.remove(SECRET_CONTEXT_KEY).is_some()
    {
        map.insert(
            SECRET_CONTEXT_KEY.to_owned(),
            serde_json::Value::String("<redacted>".into()),
        );
    }
}

/// Meters one webhook: every exit counts in `webhooks{provider,outcome}` and
/// `webhook_ack_seconds{provider}`; authentication failures also in
/// `auth_failures{surface="webhook",reason}`.
#[derive(Debug)]
pub struct Meter {
    provider: Provider,
    started: Instant,
}

impl Meter {
    /// Starts the clock.
    pub fn start(provider: Provider) -> Meter {
        Meter {
            provider,
            started: Instant::now(),
        }
    }

    /// Records the outcome (`created`, `duplicate`, `unauthorized`, `bad_request`,
    /// `unknown_card`, `refused`, `ignored`, `final_status`, `error`).
    pub fn done(&self, state: &AppState, outcome: &'static str) {
        let provider = self.provider.as_str();
        state
            .metrics
            .webhooks
            .get_or_create(&ProviderOutcome { provider, outcome })
            .inc();
        state
            .metrics
            .webhook_latency
            .get_or_create(&ProviderLabel { provider })
            .observe(self.started.elapsed().as_secs_f64());
    }

    /// Records a refused proof of origin.
    pub fn unauthorized(&self, state: &AppState, reason: &'static str) {
        state
            .metrics
            .auth_failures
            .get_or_create(&AuthFailure {
                surface: "webhook",
                reason,
            })
            .inc();
        tracing::warn!(
            provider = self.provider.as_str(),
            reason,
            "webhook authentication failed"
        );
        self.done(state, "unauthorized");
    }
}

/// A short reason code for an authentication failure (a metrics label).
pub fn auth_reason(e: &super::auth::AuthError) -> &'static str {
    use super::auth::AuthError as E;
    match e {
        E::MissingHeader | E::MissingSignature => "missing_credentials",
        E::NotBasicScheme
        | E::MalformedBase64
        | E::NotUtf8
        | E::NoColon
        | E::MalformedSignature => "malformed_credentials",
        E::BadCredentials => "bad_credentials",
        E::BadSignature => "bad_signature",
        E::BadKey(_) => "misconfigured",
        E::MalformedBody(_) | E::TooDeep => "malformed_body",
    }
}

/// Why a body was refused: an HTTP status and a message that names the field but never
/// quotes the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    /// 400, or 413 for a body over the limit.
    pub status: StatusCode,
    /// Safe to return and log.
    pub message: String,
}

impl BodyError {
    /// A 400 with this message.
    pub fn invalid(message: impl Into<String>) -> Self {
        BodyError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

/// The raw body, or why it could not be read.
pub fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, BodyError> {
    body.map_err(|e| BodyError {
        status: if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            e.status()
        } else {
            StatusCode::BAD_REQUEST
        },
        message: "the body could not be read".into(),
    })
}

/// Parses JSON into `T`, naming the failing field. serde_json's own messages can quote
/// the input, so only its category is kept, plus the field name for a missing field.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    crate::json::strict(bytes).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let what = match inner.classify() {
            serde_json::error::Category::Syntax => "malformed JSON".to_owned(),
            serde_json::error::Category::Eof => "the JSON ends early".to_owned(),
            serde_json::error::Category::Io => "the body could not be read".to_owned(),
            serde_json::error::Category::Data => {
                let text = inner.to_string();
                match text
                    .strip_prefix("missing field `")
                    .and_then(|r| r.split('`').next())
                {
                    Some(field) if field.len() <= 64 => format!("missing field {field}"),
                    _ => "a field is missing, mistyped or invalid".to_owned(),
                }
            }
        };
        if path.is_empty() || path == "." {
            BodyError::invalid(what)
        } else {
            BodyError::invalid(format!("{path}: {what}"))
        }
    })
}

/// Decision and upstream deadlines of a new challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// The cardholder must decide before this.
    pub decision: Millis,
    /// The result must reach the processor before this.
    pub upstream: Millis,
}

/// The upstream deadline is `now + window`, or earlier if the processor says so
/// (`processor_end`); the decision deadline keeps `margin_secs` of it for delivering
/// the result. `None` when no time is left for a decision.
pub fn deadlines(
    now: Millis,
    window_secs: u64,
    margin_secs: u64,
    processor_end: Option<Millis>,
) -> Option<Deadlines> {
    let window = now.plus(secs_ms(window_secs));
    let upstream = processor_end.map_or(window, |end| end.min(window));
    let decision = upstream.plus(-secs_ms(margin_secs));
    (decision > now).then_some(Deadlines { decision, upstream })
}

/// Seconds to milliseconds, saturating.
pub fn secs_ms(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

/// Parses an RFC 3339 date-time (`2026-11-18T11:06:40Z`, `…40.123+01:00`) to Unix ms.
/// Lower-case `t`/`z` and a space separator are accepted; leap seconds are not.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        // Milliseconds: the first three digits, right-padded.
        for k in 0..3 {
            millis = millis * 10
                + b.get(start + k)
                    .filter(|_| start + k < i)
                    .map_or(0, |d| i64::from(d - b'0'));
        }
    }
    let offset_secs = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(Millis(secs * 1000 + millis))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Checks a URL a processor asks us to call: absolute `https` (or `http` when allowed),
/// no credentials, host (or `host:port`) in the allow-list. Returns a fixed reason.
pub fn check_callback_url(
    raw: &str,
    hosts: &[String],
    allow_http: bool,
) -> Result<url::Url, &'static str> {
    let url = url::Url::parse(raw).map_err(|_| "not an absolute URL")?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        _ => return Err("must be https"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials");
    }
    let host = url.host_str().ok_or("has no host")?.to_ascii_lowercase();
    let with_port = url.port().map(|p| format!("{host}:{p}"));
    let allowed = hosts.iter().any(|h| {
        h.eq_ignore_ascii_case(&host)
            || with_port
                .as_deref()
                .is_some_and(|hp| h.eq_ignore_ascii_case(hp))
    });
    if allowed {
        Ok(url)
    } else {
        Err("host is not in the allow-list")
    }
}

/// The cardholder linked to the first of `keys` that resolves.
pub async fn resolve_cardholder(
    state: &AppState,
    provider: Provider,
    keys: &[&str],
) -> Result<Option<CardholderId>, ApiError> {
    for key in keys.iter().filter(|k| !k.is_empty()) {
        if let Some(link) = state.store.card_link_resolve(provider, key).await? {
            return Ok(Some(link.cardholder));
        }
    }
    Ok(None)
}

/// `Authorization: Basic …` value for outbound calls.
pub fn basic_authorization(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Characters escaped in a URL path segment built from a processor's id.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');

/// `base` (no trailing slash) + `template` with `{placeholder}` replaced by `id` as
/// one escaped path segment. An empty id, `.` or `..` is refused: URL parsing would
/// drop or climb a path level (the WHATWG rules treat them as dot-segments).
pub fn join_url(
    base: &url::Url,
    template: &str,
    placeholder: &str,
    id: &str,
) -> Result<url::Url, String> {
    if matches!(id, "" | "." | "..") {
        return Err("the processor's id cannot be a URL path segment".to_owned());
    }
    let segment = percent_encoding::utf8_percent_encode(id, SEGMENT).to_string();
    let path = template.replace(placeholder, &segment);
    let text = format!("{}{path}", base.as_str().trim_end_matches('/'));
    url::Url::parse(&text).map_err(|_| "cannot build the processor URL".to_owned())
}

/// Marks a header value as sensitive (kept out of debug output by `http`).
pub fn sensitive(value: &str) -> Result<reqwest::header::HeaderValue, String> {
    let mut v = reqwest::header::HeaderValue::from_str(value)
        .map_err(|_| "a credential is not a valid header value".to_owned())?;
    v.set_sensitive(true);
    Ok(v)
}

/// Builds an enum whose unknown wire values land in `Other(String)` instead of failing
/// (processors have changed enums before). Matching is ASCII case-insensitive; the first
/// spelling of a variant is its canonical one.
macro_rules! lenient_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = [$($wire:literal),+ $(,)?]),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version does not know (cut at 64 characters).
            Other(String),
        }

        impl $name {
            /// Parses a wire value; unknown values become `Other`.
            #[allow(dead_code)]
            $vis fn parse(s: &str) -> Self {
                $(if [$($wire),+].iter().any(|w: &&str| w.eq_ignore_ascii_case(s)) {
                    return Self::$variant;
                })+
                Self::Other(s.chars().take(64).collect())
            }
            /// The canonical wire value.
            #[allow(dead_code)]
            $vis fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => [$($wire),+][0],)+
                    Self::Other(s) => s,
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Ok(Self::parse(&s))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use lenient_enum;

/// The error text of a processor's answer for the attempt record: status plus a short,
/// printable excerpt of a known error field (never the whole body).
pub fn answer_summary(status: u16, detail: Option<&str>) -> String {
    match detail {
        Some(d) if !d.is_empty() => {
            let d: String = d.chars().filter(|c| !c.is_control()).take(120).collect();
            format!("HTTP {status}: {d}")
        }
        _ => format!("HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_url_keeps_the_id_one_segment() {
        let base = url::Url::parse("https://api.example/v1/").unwrap();
        let join = |id: &str| join_url(&base, "/sca/{id}/attempts", "{id}", id);
        assert_eq!(
            join("a/b?c%").unwrap().as_str(),
            "https://api.example/v1/sca/a%2Fb%3Fc%25/attempts"
        );
        assert_eq!(
            join("%2e%2E").unwrap().path(),
            "/v1/sca/%252e%252E/attempts"
        );
        for id in ["", ".", ".."] {
            assert!(join(id).is_err(), "{id:?}");
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(Millis(0)));
        assert_eq!(
            parse_rfc3339("2026-11-18T11:06:40Z"),
            Some(Millis(1_795_000_000_000))
        );
        assert_eq!(
            parse_rfc3339("2026-11-18T11:06:40.5Z"),
            Some(Millis(1_795_000_000_500))
        );
        assert_eq!(
            parse_rfc3339("2026-11-18T11:06:40.123456Z"),
            Some(Millis(1_795_000_000_123))
        );
        assert_eq!(
            parse_rfc3339("2026-11-18T12:06:40+01:00"),
            Some(Millis(1_795_000_000_000))
        );
        assert_eq!(
            parse_rfc3339("2026-11-18t10:36:40-00:30"),
            Some(Millis(1_795_000_000_000))
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some(Millis(1_709_164_800_000))
        );
        for bad in [
            "",
            "2026-11-18",
            "2026-11-18T11:06:40",
            "2026-13-18T11:06:40Z",
            "2025-02-29T00:00:00Z",
            "2026-11-18T24:00:00Z",
            "2026-11-18T11:06:40.Z",
            "2026-11-18T11:06:40+0100",
            "2026-11-18T11:06:40Zjunk",
            "２０２６-11-18T11:06:40Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn deadline_clamping() {
        let now = Millis(1_000_000);
        let d = deadlines(now, 150, 10, None).unwrap();
        assert_eq!(
            (d.decision, d.upstream),
            (Millis(1_140_000), Millis(1_150_000))
        );
        let d = deadlines(now, 600, 30, Some(Millis(1_100_000))).unwrap();
        assert_eq!(
            (d.decision, d.upstream),
            (Millis(1_070_000), Millis(1_100_000))
        );
        assert!(deadlines(now, 600, 30, Some(Millis(1_020_000))).is_none());
        assert!(deadlines(now, 600, 30, Some(Millis(0))).is_none());
    }

    #[test]
    fn callback_urls() {
        let hosts = vec!["id.enfuce.com".to_owned(), "127.0.0.1:9000".to_owned()];
        assert!(
            check_callback_url("https://id.enfuce.com/v1/callback/a/b/c", &hosts, false).is_ok()
        );
        assert!(check_callback_url("https://ID.ENFUCE.COM/x", &hosts, false).is_ok());
        assert!(check_callback_url("http://id.enfuce.com/x", &hosts, false).is_err());
        assert!(check_callback_url("https://id.enfuce.com.evil.example/x", &hosts, false).is_err());
        assert!(check_callback_url("https://u:p@id.enfuce.com/x", &hosts, false).is_err());
        assert!(check_callback_url("http://127.0.0.1:9000/x", &hosts, true).is_ok());
        assert!(check_callback_url("http://127.0.0.1:9001/x", &hosts, true).is_err());
        assert!(check_callback_url("http://169.254.169.254/latest", &hosts, true).is_err());
        assert!(check_callback_url("/relative", &hosts, true).is_err());
    }

    lenient_enum! {
        enum Flow { Oob = ["OOB", "OOB_TRIGGER_FL"], Sms = ["OTP_SMS", "PWD_OTP_PHONE_FL"] }
    }

    #[test]
    fn lenient_enums() {
        let f: Vec<Flow> =
            serde_json::from_str(r#"["OOB","oob_trigger_fl","PWD_OTP_PHONE_FL","NEW_FLOW"]"#)
                .unwrap();
        assert_eq!(
            f,
            vec![
                Flow::Oob,
                Flow::Oob,
                Flow::Sms,
                Flow::Other("NEW_FLOW".into())
            ]
        );
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"["OOB","OOB","OTP_SMS","NEW_FLOW"]"#
        );
    }

    #[test]
    fn body_errors_name_fields_without_values() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct B {
            a: Inner,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            n: u32,
            s: String,
        }
        let e = parse_body::<B>(br#"{"a":{"n":"SECRET-VALUE","s":"x"}}"#).unwrap_err();
        assert!(
            e.message.starts_with("a.n:") && !e.message.contains("SECRET"),
            "{e:?}"
        );
        let e = parse_body::<B>(br#"{"a":{"n":1}}"#).unwrap_err();
        assert_eq!(e.message, "a: missing field s");
        let e = parse_body::<B>(b"{not json").unwrap_err();
        assert!(e.message.contains("malformed JSON"), "{e:?}");
    }

    #[test]
    fn context_secrets() {
        let v = serde_json::json!({"event_id": "e", "secret": {"otp": "123456"}});
        assert_eq!(
            v.get(SECRET_CONTEXT_KEY)
                .and_then(|s| s.get("otp"))
                .and_then(|o| o.as_str()),
            Some("123456")
        );
    }
}
