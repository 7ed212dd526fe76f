//! `[providers.*]` configuration: one section per processor connector.

use serde::Deserialize;

/// `[providers]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {}
