//! The body of a Paysafe SCA attempt, per the published attempt schema
//! (`walletOperationId` and `verification.method` required, `channel` optional), and
//! how it describes our push approval (`providers.paysafe.attempt_*`).

use pushauth_store::Challenge;

use super::common;
use super::config::PaysafeConfig;

/// How an attempt describes our push approval (`providers.paysafe.attempt_*`).
#[derive(Debug, Clone)]
pub struct AttemptShape {
    method: Option<String>,
    channel: Option<String>,
    send_value: bool,
}

/// `verification.method` values of Paysafe's schema.
const METHODS: [&str; 5] = ["PASSWORD", "PIN", "PASSKEYS", "OTP", "BIOMETRIC"];
/// `verification.channel` values of Paysafe's schema.
const CHANNELS: [&str; 4] = ["SMS", "EMAIL", "AUTHENTICATOR", "PUSH_NOTIFICATION"];

impl AttemptShape {
    /// Checks the configured method and channel against the schema's values;
    /// `announced` copies what the event announced.
    pub fn new(cfg: &PaysafeConfig) -> Result<Self, String> {
        let pick = |v: &str, allowed: &[&str], key: &str| -> Result<Option<String>, String> {
            if v == "announced" {
                Ok(None)
            } else if allowed.contains(&v) {
                Ok(Some(v.to_owned()))
            } else {
                Err(format!(
                    "providers.paysafe.{key} must be \"announced\" or one of {}",
                    allowed.join(", ")
                ))
            }
        };
        Ok(AttemptShape {
            method: pick(&cfg.attempt_method, &METHODS, "attempt_method")?,
            channel: pick(&cfg.attempt_channel, &CHANNELS, "attempt_channel")?,
            send_value: cfg.attempt_send_value,
        })
    }

    /// The attempt body for an approval, per Paysafe's attempt schema:
    /// `walletOperationId` and `verification.method` (both required), `channel` when
    /// known, and the one-time `value` only with `attempt_send_value`. Never an empty
    /// `verification`. `None` when the challenge lacks the wallet operation or no
    /// method can be named.
    pub fn body(&self, challenge: &Challenge) -> Option<serde_json::Value> {
        let ctx = &challenge.context;
        let wallet_operation = ctx.get("wallet_operation_id")?.as_str()?;
        let announced = |k: &str| {
            ctx.get("verification")
                .and_then(|v| v.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let method = self.method.clone().or_else(|| announced("method"))?;
        let channel = self.channel.clone().or_else(|| announced("channel"));
        let mut verification = serde_json::json!({ "method": method });
        if let (Some(c), serde_json::Value::Object(map)) = (channel, &mut verification) {
            map.insert("channel".into(), serde_json::Value::String(c));
        }
        let mut body = serde_json::json!({
            "walletOperationId": wallet_operation,
            "verification": verification,
        });
        if self.send_value
            && let (Some(otp), serde_json::Value::Object(map)) =
                (common::push_otp(challenge), &mut body)
        {
            map.insert("value".into(), serde_json::Value::String(otp));
        }
        Some(body)
    }
}
