//! Issuer events out: signed webhooks (Standard Webhooks) to the issuer's endpoints.
//!
//! Events are written by the store with the change that causes them (see
//! `pushauth_store::events`); the events worker (`crate::workers::events`) fans them
//! out to the endpoints configured here and delivers them with retries. This module
//! holds the configuration (`[events]`), its validation and the signing.

pub mod sign;

use std::path::PathBuf;
use std::time::Duration;

use pushauth_store::{EventRoute, IssuerEventType};
use serde::Deserialize;

use self::sign::SigningKey;

/// `[events]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Endpoints (`[[events.endpoints]]`). None: events are recorded (admin API) but
    /// not sent.
    pub endpoints: Vec<EndpointConfig>,
    /// Time limit of one delivery, milliseconds. Default 10,000.
    pub timeout_ms: u64,
    /// Delays before the 2nd, 3rd, … attempt, seconds; after the last one the delivery
    /// is given up (`failed`). Default: the Standard Webhooks schedule 5 s, 5 min,
    /// 30 min, 2 h, 5 h, 10 h, 10 h (about 27 h in all).
    pub retry_schedule_secs: Vec<u64>,
    /// Deliveries to an endpoint that is not configured here are left to the
    /// instances that have it; once one has been due this long with nobody claiming
    /// it, no running instance has its endpoint (removed or renamed) and it is given up
    /// (`failed`). Seconds; default 86,400 (a day: longer than any rolling deploy).
    pub orphan_after_secs: u64,
    /// Events (with their deliveries) are deleted this many days after they were
    /// written, once every delivery has ended. 0 keeps them for ever. Default 90 (the
    /// payload retention of Svix, a hosted Standard Webhooks sender): the audit log,
    /// not this table, is the record.
    pub keep_days: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            endpoints: Vec::new(),
            timeout_ms: 10_000,
            retry_schedule_secs: vec![5, 300, 1_800, 7_200, 18_000, 36_000, 36_000],
            orphan_after_secs: 86_400,
            keep_days: 90,
        }
    }
}

/// `[[events.endpoints]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Name (letters, digits, `-`, `_`), shown in the admin API and metrics. Deliveries
    /// are recorded per name: renaming an endpoint starts a new history.
    pub name: String,
    /// Where to POST. `https://` unless `allow_http`.
    pub url: String,
    /// Files each holding one secret `whsec_<base64>`. Every secret signs every
    /// message (one `v1,` entry each), so a receiver can switch secrets without a gap.
    pub secret_files: Vec<PathBuf>,
    /// Only these event types (default: all).
    #[serde(default)]
    pub types: Option<Vec<String>>,
    /// Accept an `http://` URL (tests, a receiver on the same host). Default false.
    #[serde(default)]
    pub allow_http: bool,
}

/// A validated endpoint with its keys loaded.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Name.
    pub name: String,
    /// URL.
    pub url: reqwest::Url,
    /// Signing keys.
    pub keys: Vec<SigningKey>,
    /// Type filter.
    pub types: Option<Vec<IssuerEventType>>,
}

/// The resolved `[events]` section.
#[derive(Debug, Clone, Default)]
pub struct Events {
    /// Endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Delivery time limit.
    pub timeout: Duration,
    /// Retry delays.
    pub schedule: Vec<Duration>,
    /// How long a delivery to an endpoint unknown here waits, due, for an instance that
    /// knows it.
    pub orphan_after: Duration,
    /// How long ended events are kept; `None`: for ever.
    pub keep: Option<Duration>,
}

impl Events {
    /// Validates the section and reads the secret files. Errors name the endpoint and
    /// the setting; they never contain a secret.
    pub fn load(c: &EventsConfig) -> Result<Events, String> {
        let mut endpoints: Vec<Endpoint> = Vec::new();
        for e in &c.endpoints {
            let at = |what: String| format!("[[events.endpoints]] {:?}: {what}", e.name);
            if e.name.is_empty()
                || e.name.len() > 64
                || !e
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(at("name must be 1-64 letters, digits, '-' or '_'".into()));
            }
            if endpoints.iter().any(|x| x.name == e.name) {
                return Err(at("name used twice".into()));
            }
            let url = reqwest::Url::parse(&e.url).map_err(|err| at(format!("url: {err}")))?;
            match url.scheme() {
                "https" => {}
                "http" if e.allow_http => {}
                "http" => {
                    return Err(at(
                        "url must be https:// (allow_http = true to accept http)".into(),
                    ));
                }
                other => return Err(at(format!("url scheme {other:?} is not http(s)"))),
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(at("url must not carry credentials".into()));
            }
            if e.secret_files.is_empty() {
                return Err(at("secret_files needs at least one file".into()));
            }
            let keys = e
                .secret_files
                .iter()
                .map(|path| {
                    let text = std::fs::read_to_string(path)
                        .map_err(|err| at(format!("secret file {}: {err}", path.display())))?;
                    SigningKey::parse(&text)
                        .map_err(|err| at(format!("secret file {}: {err}", path.display())))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let types = e
                .types
                .as_ref()
                .map(|types| {
                    types
                        .iter()
                        .map(|t| {
                            IssuerEventType::parse(t).ok_or_else(|| {
                                at(format!(
                                    "unknown event type {t:?} (known: {})",
                                    IssuerEventType::ALL
                                        .iter()
                                        .map(|t| t.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            endpoints.push(Endpoint {
                name: e.name.clone(),
                url,
                keys,
                types,
            });
        }
        if c.timeout_ms == 0 {
            return Err("[events] timeout_ms must be positive".into());
        }
        if c.orphan_after_secs == 0 {
            return Err("[events] orphan_after_secs must be positive".into());
        }
        Ok(Events {
            endpoints,
            timeout: Duration::from_millis(c.timeout_ms),
            schedule: c
                .retry_schedule_secs
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            orphan_after: Duration::from_secs(c.orphan_after_secs),
            keep: match c.keep_days {
                0 => None,
                days => Some(
                    days.checked_mul(86_400)
                        .filter(|s| *s <= 100 * 365 * 86_400)
                        .map(Duration::from_secs)
                        .ok_or("[events] keep_days: at most 36,500 (100 years); 0 keeps events for ever")?,
                ),
            },
        })
    }

    /// Routes for the fan-out.
    pub fn routes(&self) -> Vec<EventRoute> {
        self.endpoints
            .iter()
            .map(|e| EventRoute {
                endpoint: e.name.clone(),
                types: e.types.clone(),
            })
            .collect()
    }

    /// The endpoint of this name.
    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str, secret_file: PathBuf) -> EndpointConfig {
        EndpointConfig {
            name: "fraud".into(),
            url: url.into(),
            secret_files: vec![secret_file],
            types: Some(vec!["challenge.decided".into()]),
            allow_http: false,
        }
    }

    #[test]
    fn loads_and_refuses_precisely() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
        let ok = EventsConfig {
            endpoints: vec![endpoint("https://issuer.example/hooks", secret.clone())],
            ..EventsConfig::default()
        };
        let ev = Events::load(&ok).unwrap();
        assert_eq!(
            ev.routes()[0].types,
            Some(vec![IssuerEventType::ChallengeDecided])
        );
        assert_eq!(ev.schedule.len(), 7);
        assert_eq!(ev.orphan_after, Duration::from_secs(86_400));
        assert_eq!(ev.keep, Some(Duration::from_secs(90 * 86_400)));
        let forever = EventsConfig {
            keep_days: 0,
            ..ok.clone()
        };
        assert_eq!(Events::load(&forever).unwrap().keep, None);
        let too_long = EventsConfig {
            keep_days: 36_501,
            ..ok.clone()
        };
        assert!(
            Events::load(&too_long)
                .unwrap_err()
                .contains("keep_days: at most 36,500")
        );

        let never = EventsConfig {
            orphan_after_secs: 0,
            ..ok.clone()
        };
        assert!(
            Events::load(&never)
                .unwrap_err()
                .contains("orphan_after_secs must be positive")
        );

        let mut http = ok.clone();
        http.endpoints[0].url = "http://127.0.0.1:9/x".into();
        assert!(Events::load(&http).unwrap_err().contains("must be https"));
        http.endpoints[0].allow_http = true;
        assert!(Events::load(&http).is_ok());

        let mut bad_type = ok.clone();
        bad_type.endpoints[0].types = Some(vec!["challenge.approved".into()]);
        assert!(
            Events::load(&bad_type)
                .unwrap_err()
                .contains("unknown event type")
        );

        let mut twice = ok.clone();
        twice.endpoints.push(twice.endpoints[0].clone());
        assert!(Events::load(&twice).unwrap_err().contains("used twice"));

        std::fs::write(&secret, "not-a-secret-value").unwrap();
        let err = Events::load(&ok).unwrap_err();
        assert!(
            err.contains("whsec_") && !err.contains("not-a-secret-value"),
            "{err}"
        );
    }
}
