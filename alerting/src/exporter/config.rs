//! The exporter's configuration: [`MetricsConfig`], the `[metrics]` section (the series TTL).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// ```toml
/// [metrics]
/// series_ttl = "1h"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// How long the series of a `(model, version, variant)` stay exported after its last closed
    /// window; then they are removed from every family. A duration (`"1h"`, `"30m"`); default
    /// `1h`.
    #[serde(default = "default_series_ttl", with = "humantime_serde")]
    pub series_ttl: Duration,
}

fn default_series_ttl() -> Duration {
    Duration::from_secs(3600)
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            series_ttl: default_series_ttl(),
        }
    }
}
