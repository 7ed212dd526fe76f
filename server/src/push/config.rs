//! `[push]` configuration: APNs and FCM credentials.

use serde::Deserialize;

/// `[push]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {}
