//! Processor connectors: each turns a processor's webhook into a challenge and the
//! cardholder's decision into the processor's result call.
//!
//! | processor | webhook | result leg |
//! |---|---|---|
//! | Enfuce | [`enfuce`] | `POST {callbackUrl}` ([`enfuce::EnfuceUpstream`]) |
//! | Adyen | [`adyen`] | finalize call ([`adyen::AdyenUpstream`]) |
//! | Paysafe | [`paysafe`] | SCA attempt ([`paysafe::PaysafeUpstream`]) |
//! | Treezor | [`treezor`] | auth-request result ([`treezor_api::TreezorUpstream`]) |
//!
//! `auth` holds the exact webhook-authentication checks, `common` what the connectors
//! share, `config` their configuration; `api` is the generic challenge API's result leg
//! (signed callbacks). Handlers are thin: authenticate the raw bytes, map the body to a
//! [`ChallengeRequest`](crate::services::challenges::ChallengeRequest), let
//! `services::challenges::create` persist challenge, pushes and audit in one
//! transaction, and only then answer, in the processor's own shape.

pub mod adyen;
pub mod adyen_created;
pub mod adyen_sdk;
pub mod api;
pub mod auth;
pub mod budget;
pub mod common;
pub mod config;
pub mod enfuce;
pub mod iso3166;
pub mod paysafe;
pub mod paysafe_attempt;
pub mod paysafe_upstream;
pub mod transport;
pub mod treezor;
pub mod treezor_api;
pub mod treezor_fields;

use std::sync::Arc;

use axum::Router;

pub use common::{push_otp, redact_context};

use crate::config::Config;
use crate::state::AppState;

/// Routes of the configured processors' webhooks. The configuration was checked by
/// [`build_connectors`] at start-up; a section that fails here anyway is left unmounted
/// (and logged).
pub fn router(config: &Config) -> Router<AppState> {
    let p = &config.providers;
    let mut router = Router::new();
    let skip = |name: &str, e: String| tracing::error!(provider = name, error = %e, "connector not mounted");
    if let Some(cfg) = &p.enfuce {
        match enfuce::Inbound::new(cfg) {
            Ok(i) => router = router.merge(enfuce::router(cfg, Arc::new(i))),
            Err(e) => skip("enfuce", e),
        }
    }
    if let Some(cfg) = &p.adyen {
        match adyen::Inbound::new(cfg) {
            Ok(i) => router = router.merge(adyen::router(cfg, Arc::new(i))),
            Err(e) => skip("adyen", e),
        }
    }
    if let Some(cfg) = &p.paysafe {
        match paysafe::Inbound::new(cfg) {
            Ok(i) => router = router.merge(paysafe::router(cfg, Arc::new(i))),
            Err(e) => skip("paysafe", e),
        }
    }
    if let Some(cfg) = &p.treezor {
        match treezor::Inbound::new(cfg) {
            Ok(i) => router = router.merge(treezor::router(cfg, Arc::new(i))),
            Err(e) => skip("treezor", e),
        }
    }
    router
}

/// Checks every configured connector (webhook side included, so that a bad key fails
/// the start) and registers its result leg.
pub fn build_connectors(
    config: &Config,
    http: &reqwest::Client,
    connectors: &mut crate::upstream::Connectors,
) -> Result<(), String> {
    let p = &config.providers;
    if let Some(cfg) = &p.enfuce {
        enfuce::Inbound::new(cfg)?;
        connectors.add(Arc::new(enfuce::EnfuceUpstream::new(cfg, http.clone())?));
    }
    if let Some(cfg) = &p.adyen {
        adyen::Inbound::new(cfg)?;
        connectors.add(Arc::new(adyen::AdyenUpstream::new(cfg, http.clone())?));
    }
    if let Some(cfg) = &p.paysafe {
        paysafe::Inbound::new(cfg)?;
        connectors.add(Arc::new(paysafe::PaysafeUpstream::new(cfg, http.clone())?));
    }
    if let Some(cfg) = &p.treezor {
        treezor::Inbound::new(cfg)?;
        connectors.add(Arc::new(treezor_api::TreezorUpstream::new(
            cfg,
            http.clone(),
        )?));
    }
    let mut paths: Vec<String> = Vec::new();
    if let Some(c) = &p.enfuce {
        paths.push(format!("{}/v1/authenticate", c.path_prefix));
    }
    if let Some(c) = &p.adyen {
        paths.push(c.relayed_path.clone());
        if c.created_path != c.relayed_path {
            paths.push(c.created_path.clone());
        }
    }
    if let Some(c) = &p.paysafe {
        paths.push(format!("{}/sca/events", c.path_prefix));
    }
    if let Some(c) = &p.treezor {
        paths.push(c.path.clone());
    }
    // Axum refuses overlapping routes by panicking; refuse them here with a message.
    const RESERVED: [&str; 6] = [
        "/v1/admin",
        "/v1/device",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ];
    for (i, a) in paths.iter().enumerate() {
        let clash = paths[i + 1..].contains(a)
            || RESERVED
                .iter()
                .any(|r| a == r || a.starts_with(&format!("{r}/")));
        if clash {
            return Err(format!(
                "providers: webhook path {a} is used twice or clashes with the server's own routes"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, toml_text).unwrap();
        Config::load(Some(&f), Vec::<(String, String)>::new()).unwrap()
    }

    const ENFUCE: &str = "[providers.enfuce]\nwebhook_user = \"u\"\nwebhook_password = \"p\"\ncallback_hosts = [\"id.enfuce.com\"]\ncallback_user = \"c\"\ncallback_password = \"cp\"\n";

    fn build(c: &Config) -> Result<usize, String> {
        let mut connectors = crate::upstream::Connectors::default();
        build_connectors(c, &reqwest::Client::new(), &mut connectors)?;
        Ok(Provider::ALL
            .iter()
            .filter(|p| connectors.get(**p).is_some())
            .count())
    }

    use pushauth_core::ids::Provider;

    #[test]
    fn start_up_checks_name_the_key() {
        assert_eq!(build(&config("")), Ok(0));
        assert_eq!(build(&config(ENFUCE)), Ok(1));
        let e = build(&config(&ENFUCE.replace("webhook_password = \"p\"\n", ""))).unwrap_err();
        assert!(e.contains("providers.enfuce.webhook_password"), "{e}");
        let e = build(&config(&format!("{ENFUCE}window_secs = 151\n"))).unwrap_err();
        assert!(e.contains("window_secs"), "{e}");
        let e = build(&config(&format!("{ENFUCE}path_prefix = \"/metrics\"\n"))).unwrap_err();
        assert!(e.contains("clashes"), "{e}");
        let paysafe = "[providers.paysafe]\nwebhook_key = \"not base64!\"\napi_token = \"t\"\nbase_url = \"https://p.example\"\n";
        assert!(build(&config(paysafe)).unwrap_err().contains("webhook_key"));
        let treezor = "[providers.treezor]\nwebhook_secret = \"w\"\nbase_url = \"https://t.example\"\nclient_id = \"1\"\nclient_secret = \"s\"\npath = \"/healthz\"\n";
        assert!(build(&config(treezor)).unwrap_err().contains("clashes"));
        let adyen = "[providers.adyen]\nwebhook_user = \"u\"\nwebhook_password = \"p\"\nbase_url = \"https://a.example\"\napi_key = \"k\"\nhmac_key = \"zz\"\n";
        assert!(build(&config(adyen)).unwrap_err().contains("hmac_key"));
        assert_eq!(build(&config(&adyen.replace("zz", "00ff"))), Ok(1));
    }
}
