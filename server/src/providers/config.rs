//! `[providers.*]` configuration: one section per processor connector. A section that
//! is absent leaves its connector disabled (no routes, no result leg).
//!
//! Every secret can be given inline (`webhook_password = "…"`) or as a file
//! (`webhook_password_file = "/run/secrets/enfuce"`, trailing newline ignored); giving
//! both is refused. Environment overrides only reach two-level keys, so a section can
//! come from the environment only whole, as a TOML inline table
//! (`PUSHAUTH_PROVIDERS__ENFUCE='{ webhook_user = "…", … }'`); secrets are best given
//! as `*_file` paths. `Debug` never prints a secret.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroize;

/// `[providers]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    /// `[providers.enfuce]`: Enfuce ID third-party authentication.
    pub enfuce: Option<EnfuceConfig>,
    /// `[providers.adyen]`: Adyen Balance Platform ACS (relayed authentication).
    pub adyen: Option<AdyenConfig>,
    /// `[providers.paysafe]`: Paysafe embedded-wallet SCA events (OUTSOURCED).
    pub paysafe: Option<PaysafeConfig>,
    /// `[providers.treezor]`: Treezor `card3DSv2Authentication`.
    pub treezor: Option<TreezorConfig>,
}

/// A secret value from the configuration. `Debug` prints `<redacted>`; the memory is
/// wiped on drop.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret text (never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Reads an optional secret given inline or as a file; `key` names it in errors.
pub fn resolve_secret(
    inline: &Option<Secret>,
    file: &Option<PathBuf>,
    key: &str,
) -> Result<Option<Secret>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!("{key} and {key}_file are both set; give one")),
        (Some(s), None) if s.expose().is_empty() => Err(format!("{key} is empty")),
        (Some(s), None) => Ok(Some(s.clone())),
        (None, Some(path)) => read_secret_file(path, key).map(Some),
        (None, None) => Ok(None),
    }
}

/// Like [`resolve_secret`], for a secret the connector cannot work without.
pub fn require_secret(
    inline: &Option<Secret>,
    file: &Option<PathBuf>,
    key: &str,
) -> Result<Secret, String> {
    resolve_secret(inline, file, key)?.ok_or_else(|| format!("{key} (or {key}_file) is required"))
}

fn read_secret_file(path: &Path, key: &str) -> Result<Secret, String> {
    let mut text =
        std::fs::read_to_string(path).map_err(|e| format!("{key}_file {}: {e}", path.display()))?;
    let kept = text.trim_end_matches(['\r', '\n']).len();
    text.truncate(kept);
    let secret = Secret(text);
    if secret.expose().is_empty() {
        return Err(format!("{key}_file {} is empty", path.display()));
    }
    Ok(secret)
}

/// How Adyen's finalize call authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdyenFinalizeAuth {
    /// API key in `api_key_header`.
    #[default]
    ApiKey,
    /// HTTP Basic with the web-service user.
    Basic,
}

/// How we authenticate a call we make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallAuth {
    /// HTTP Basic (RFC 7617).
    #[default]
    Basic,
    /// `Authorization: Bearer <token>`.
    Bearer,
}

/// `[providers.enfuce]`. Enfuce ID calls `POST {path_prefix}/v1/authenticate/{customerNumber}/{sessionId}`;
/// the result goes to the webhook's `callbackUrl`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnfuceConfig {
    /// Where the webhook is mounted, e.g. `/enfuce` (default: none, i.e. `/v1/authenticate/…`).
    #[serde(default)]
    pub path_prefix: String,
    /// Basic user-id Enfuce presents on the webhook.
    pub webhook_user: String,
    /// Basic password Enfuce presents on the webhook.
    #[serde(default)]
    pub webhook_password: Option<Secret>,
    /// File holding it.
    #[serde(default)]
    pub webhook_password_file: Option<PathBuf>,
    /// Hosts (`host` or `host:port`) a `callbackUrl` may point to (SSRF guard). Required.
    pub callback_hosts: Vec<String>,
    /// Accept `http://` callback URLs (tests only). Default false.
    #[serde(default)]
    pub allow_http_callbacks: bool,
    /// How the callback is authenticated: `basic` (Enfuce's spec text, default) or
    /// `bearer` (what Enfuce's rendered page shows).
    #[serde(default)]
    pub callback_auth: CallAuth,
    /// Basic user-id for the callback.
    #[serde(default)]
    pub callback_user: Option<String>,
    /// Basic password for the callback.
    #[serde(default)]
    pub callback_password: Option<Secret>,
    /// File holding it.
    #[serde(default)]
    pub callback_password_file: Option<PathBuf>,
    /// Bearer token for the callback.
    #[serde(default)]
    pub callback_token: Option<Secret>,
    /// File holding it.
    #[serde(default)]
    pub callback_token_file: Option<PathBuf>,
    /// Refuse (400) a `callbackUrl` of Enfuce's documented shape
    /// `…/v1/callback/{institutionCode}/{customerNumber}/{sessionId}` whose customer or
    /// session differs from the webhook path's. Default true.
    #[serde(default = "yes")]
    pub check_callback_session: bool,
    /// Webhook acknowledgement budget, milliseconds (default 1500). Past it the
    /// webhook is answered in the processor's 500 `errorResponse` (Enfuce stops waiting after 2 s) and no challenge is left.
    #[serde(default = "ack_budget")]
    pub ack_budget_ms: u64,
    /// Enfuce's window from webhook to callback, seconds: at most 150 (Enfuce's). Default 150.
    #[serde(default = "enfuce_window")]
    pub window_secs: u64,
    /// Seconds of the window kept for delivering the result: with no decision by
    /// `window_secs - result_margin_secs`, `TIMEOUT` is sent. Default 10.
    #[serde(default = "ten")]
    pub result_margin_secs: u64,
}

/// `[providers.adyen]`. Adyen posts `balancePlatform.authentication.relayed` to
/// `relayed_path` and `balancePlatform.authentication.created` to `created_path`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdyenConfig {
    /// Path of the relayed-authentication webhook. Default `/webhooks/adyen/relayed`.
    #[serde(default = "adyen_relayed_path")]
    pub relayed_path: String,
    /// Path of the final-status webhook. Default `/webhooks/adyen/created`. When it equals
    /// `relayed_path`, one endpoint takes both and tells them apart by shape.
    #[serde(default = "adyen_created_path")]
    pub created_path: String,
    /// Basic user-id Adyen presents.
    pub webhook_user: String,
    /// Basic password Adyen presents.
    #[serde(default)]
    pub webhook_password: Option<Secret>,
    /// File holding it.
    #[serde(default)]
    pub webhook_password_file: Option<PathBuf>,
    /// HMAC key (hex) for the `HmacSignature` header; when set, the header is required.
    #[serde(default)]
    pub hmac_key: Option<Secret>,
    /// File holding it.
    #[serde(default)]
    pub hmac_key_file: Option<PathBuf>,
    /// Headers that may carry the `sdkInput`, tried in order: the value is
    /// `SCA realm="Challenge" authparm1="{sdkInput}"` (or, in a header other than
    /// `WWW-Authenticate`, the bare token). Adyen's page names a header parameter
    /// `sdkInput`; Adyen's SCA-over-API pattern uses `WWW-Authenticate`. Default both.
    #[serde(default = "adyen_sdk_input_headers")]
    pub sdk_input_headers: Vec<String>,
    /// Answer `refused` when the relayed webhook carries no `sdkInput`. Default true.
    #[serde(default = "yes")]
    pub require_sdk_input: bool,
    /// Adyen's authentication window, seconds (at most 600). Default 600.
    #[serde(default = "adyen_window")]
    pub window_secs: u64,
    /// Seconds of the window kept for the finalize call. Default 30.
    #[serde(default = "thirty")]
    pub result_margin_secs: u64,
    /// Base URL of the finalize call, e.g. `https://balanceplatform-api-test.adyen.com`.
    pub base_url: String,
    /// Accept an `http://` `base_url` (tests against a local mock only). Default false:
    /// processor calls carry credentials and results, so they go over TLS.
    #[serde(default)]
    pub allow_http: bool,
    /// Finalize path; `{id}` is the challenge id. Default `/acs/v1/challenges/{id}`.
    #[serde(default = "adyen_finalize_path")]
    pub finalize_path: String,
    /// Finalize method. Default `PATCH`.
    #[serde(default = "patch")]
    pub finalize_method: String,
    /// Header the device's `sdkOutput` goes in, as `SCA realm="Challenge" authparm1="…"`.
    /// Default `WWW-Authenticate`.
    #[serde(default = "www_authenticate")]
    pub sdk_output_header: String,
    /// How the finalize call authenticates: `api_key` (default, header
    /// `api_key_header`) or `basic` (Adyen's web-service user: `finalize_user` and
    /// `finalize_password`).
    #[serde(default)]
    pub finalize_auth: AdyenFinalizeAuth,
    /// Web-service user for `finalize_auth = "basic"` (e.g. `ws_123456@BalancePlatform.Company`).
    #[serde(default)]
    pub finalize_user: Option<String>,
    /// Its password.
    #[serde(default)]
    pub finalize_password: Option<Secret>,
    /// File holding it.
    #[serde(default)]
    pub finalize_password_file: Option<PathBuf>,
    /// Webhook acknowledgement budget, milliseconds (Adyen stops waiting after 2 s).
    /// Past it the relayed webhook is answered `refused` and no challenge is left.
    #[serde(default = "ack_budget")]
    pub ack_budget_ms: u64,
    /// API key for the finalize call (`finalize_auth = "api_key"`).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// File holding it.
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// Header carrying the API key. Default `X-API-Key`.
    #[serde(default = "x_api_key")]
    pub api_key_header: String,
    /// Also finalize a deny (`{"completed": false}`). Default false: a deny is not
    /// finalized and the ACS times the authentication out.
    #[serde(default)]
    pub finalize_on_deny: bool,
}

/// `[providers.paysafe]`. Paysafe posts SCA events to `{path_prefix}/sca/events`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaysafeConfig {
    /// Where the webhooks are mounted. Default `/webhooks/paysafe`.
    #[serde(default = "paysafe_prefix")]
    pub path_prefix: String,
    /// The webhook signing secret as Paysafe issues it (base64 text).
    #[serde(default)]
    pub webhook_key: Option<Secret>,
    /// File holding it.
    #[serde(default)]
    pub webhook_key_file: Option<PathBuf>,
    /// The secret that signs our API calls (base64 text). Default: `webhook_key`.
    #[serde(default)]
    pub api_signing_key: Option<Secret>,
    /// File holding it.
    #[serde(default)]
    pub api_signing_key_file: Option<PathBuf>,
    /// Bearer token for the business API.
    #[serde(default)]
    pub api_token: Option<Secret>,
    /// File holding it.
    #[serde(default)]
    pub api_token_file: Option<PathBuf>,
    /// Business API base URL, e.g. `https://api.paysafe.com/digitalwallets/v1`.
    pub base_url: String,
    /// Accept an `http://` `base_url` (tests against a local mock only). Default false:
    /// processor calls carry credentials and results, so they go over TLS.
    #[serde(default)]
    pub allow_http: bool,
    /// Paysafe's `allowableAttempts` for an SCA process: how many attempts one
    /// approval may consume in all, repeats after 5xx, timeouts and crashes included.
    /// Default 3 (assumption: Paysafe's example events do not state the number).
    #[serde(default = "three")]
    pub allowable_attempts: u32,
    /// Attempt path; `{eventId}` is replaced. Default `/sca/events/{eventId}/attempts`
    /// (`/v2/sca/events/{eventId}/attempts` for API v2).
    #[serde(default = "paysafe_attempts_path")]
    pub attempts_path: String,
    /// `verification.method` of a submitted attempt: one of Paysafe's values
    /// (`PASSWORD`, `PIN`, `PASSKEYS`, `OTP`, `BIOMETRIC`) or `announced` (the event's
    /// own). Default `BIOMETRIC`: the cardholder approved with the app's biometric-gated
    /// approval key.
    #[serde(default = "biometric")]
    pub attempt_method: String,
    /// `verification.channel`: `SMS`, `EMAIL`, `AUTHENTICATOR`, `PUSH_NOTIFICATION` or
    /// `announced`. Default `PUSH_NOTIFICATION` (our push to the cardholder's app).
    #[serde(default = "push_notification")]
    pub attempt_channel: String,
    /// Also send the event's one-time `value` in the attempt. Default false: the
    /// published attempt schema shows no `value` member (docs/providers/paysafe.md).
    #[serde(default)]
    pub attempt_send_value: bool,
    /// Webhook acknowledgement budget, milliseconds (default 1500). Past it the
    /// webhook is answered in the processor's retryable 503 (Paysafe delivers at least once) and no challenge is left.
    #[serde(default = "ack_budget")]
    pub ack_budget_ms: u64,
    /// Window used when an event has no `expirationTime`, seconds. Default 900.
    #[serde(default = "paysafe_default_window")]
    pub default_window_secs: u64,
    /// Longest window accepted, whatever `expirationTime` says, seconds. Default 1800.
    #[serde(default = "paysafe_max_window")]
    pub max_window_secs: u64,
    /// Seconds before `expirationTime` kept for submitting the attempt. Default 15.
    #[serde(default = "fifteen")]
    pub result_margin_secs: u64,
}

/// What to tell Treezor when nobody decided in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TreezorOnExpiry {
    /// Nothing: Treezor times the authentication out itself (default).
    #[default]
    None,
    /// `FALLBACK`: switch to the SMS OTP.
    Fallback,
    /// `KO_TECHNICAL`.
    KoTechnical,
}

/// `[providers.treezor]`. Treezor posts webhooks to `path`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreezorConfig {
    /// Path of the webhook. Default `/webhooks/treezor`.
    #[serde(default = "treezor_path")]
    pub path: String,
    /// The webhook secret (`object_payload_signature` key).
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
    /// File holding it.
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
    /// API base URL, e.g. `https://<tenant>.sandbox.treezor.co`.
    pub base_url: String,
    /// Accept an `http://` `base_url` (tests against a local mock only). Default false:
    /// processor calls carry credentials and results, so they go over TLS.
    #[serde(default)]
    pub allow_http: bool,
    /// OAuth2 token path. Default `/oauth/token`.
    #[serde(default = "treezor_token_path")]
    pub token_path: String,
    /// OAuth2 client id.
    pub client_id: String,
    /// OAuth2 client secret.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// File holding it.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// OAuth2 scope, if Treezor gave one.
    #[serde(default)]
    pub scope: Option<String>,
    /// mTLS client certificate chain (PEM). With `client_key_file`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// mTLS client private key (PEM). With `client_cert_file`.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// Extra root certificate(s) to trust for Treezor's API (PEM).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Webhook acknowledgement budget, milliseconds (default 1500). Past it the
    /// webhook is answered in the processor's retryable 503 and no challenge is left.
    #[serde(default = "ack_budget")]
    pub ack_budget_ms: u64,
    /// Window from webhook emission, seconds. Default 300 (Treezor's 5 minutes).
    #[serde(default = "treezor_window")]
    pub window_secs: u64,
    /// Seconds of the window kept for the result call. Default 15.
    #[serde(default = "fifteen")]
    pub result_margin_secs: u64,
    /// What to send when nobody decided in time: `none` (default), `fallback`, `ko_technical`.
    #[serde(default)]
    pub on_expiry: TreezorOnExpiry,
    /// What goes in `authenticationSignature` with `OK`: `approval_proof` (default, our
    /// device-signed approval proof) or `processor_output` (the Treezor/Entrust SDK's
    /// SCA proof passed through the decision's `processor_output`; an approval without
    /// it is then refused).
    #[serde(default)]
    pub signature_source: TreezorSignatureSource,
    /// Names of the `card3DSv2Authentication` fields, which Treezor does not publish
    /// (`[providers.treezor.fields]`, see docs/providers/treezor.md for each source).
    #[serde(default)]
    pub fields: super::treezor_fields::TreezorFields,
    /// How a card link without a kind prefix is matched: `card_id` (default),
    /// `public_token` or `either`. Links `cardId:<id>` / `publicToken:<token>` match
    /// only their own field.
    #[serde(default)]
    pub untyped_links: super::treezor_fields::UntypedLinks,
}

/// Source of Treezor's `authenticationSignature`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TreezorSignatureSource {
    /// Our approval proof (a compact JWS signed by the device's approval key).
    #[default]
    ApprovalProof,
    /// The processor SDK's proof, from the decision's `processor_output`.
    ProcessorOutput,
}

fn enfuce_window() -> u64 {
    150
}
fn adyen_window() -> u64 {
    600
}
fn treezor_window() -> u64 {
    300
}
fn paysafe_default_window() -> u64 {
    900
}
fn paysafe_max_window() -> u64 {
    1800
}
fn three() -> u32 {
    3
}
fn ten() -> u64 {
    10
}
fn fifteen() -> u64 {
    15
}
fn thirty() -> u64 {
    30
}
fn yes() -> bool {
    true
}
fn adyen_relayed_path() -> String {
    "/webhooks/adyen/relayed".into()
}
fn adyen_created_path() -> String {
    "/webhooks/adyen/created".into()
}
fn adyen_finalize_path() -> String {
    "/acs/v1/challenges/{id}".into()
}
/// Default webhook acknowledgement budget: 1.5 s, inside Enfuce's and Adyen's 2 s
/// (and Mastercard's 1.5 s processing guidance).
pub fn ack_budget() -> u64 {
    1_500
}
fn biometric() -> String {
    "BIOMETRIC".into()
}
fn push_notification() -> String {
    "PUSH_NOTIFICATION".into()
}
fn adyen_sdk_input_headers() -> Vec<String> {
    vec!["WWW-Authenticate".into(), "sdkInput".into()]
}
fn www_authenticate() -> String {
    "WWW-Authenticate".into()
}
fn x_api_key() -> String {
    "X-API-Key".into()
}
fn patch() -> String {
    "PATCH".into()
}
fn paysafe_prefix() -> String {
    "/webhooks/paysafe".into()
}
fn paysafe_attempts_path() -> String {
    "/sca/events/{eventId}/attempts".into()
}
fn treezor_path() -> String {
    "/webhooks/treezor".into()
}
fn treezor_token_path() -> String {
    "/oauth/token".into()
}

/// Checks a window and its result margin: `1 ≤ margin < window ≤ max`.
pub fn check_window(
    section: &str,
    window: u64,
    margin: u64,
    max: Option<u64>,
) -> Result<(), String> {
    if window == 0 || max.is_some_and(|m| window > m) {
        let limit = max.map(|m| format!(" (at most {m})")).unwrap_or_default();
        return Err(format!("{section}.window_secs must be positive{limit}"));
    }
    if margin >= window {
        return Err(format!(
            "{section}.result_margin_secs must be smaller than window_secs"
        ));
    }
    Ok(())
}

/// Checks a mount path: absolute, no trailing slash (except `/` alone is refused), no
/// `{}` placeholders or wildcards.
pub fn check_path(key: &str, path: &str, allow_empty: bool) -> Result<(), String> {
    if path.is_empty() && allow_empty {
        return Ok(());
    }
    if !path.starts_with('/')
        || path.len() < 2
        || path.ends_with('/')
        || path.contains(['{', '}', '*', '?', '#', ' '])
    {
        return Err(format!(
            "{key} must be an absolute path like /webhooks/x (no trailing slash, no placeholders)"
        ));
    }
    Ok(())
}

/// Checks a base URL: absolute http(s), no credentials, no query.
pub fn check_base_url(key: &str, raw: &str, allow_http: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{key}: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(format!("{key} must be an https URL"));
    }
    if url.scheme() == "http" && !allow_http {
        return Err(format!(
            "{key} must be an https URL (http:// only with allow_http = true, for tests)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(format!("{key} must not carry credentials or a query"));
    }
    Ok(url)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
