//! Alert triggers: what the controller acts on.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether an alert is firing or has resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The condition holds (after its `for` duration).
    Firing,
    /// The condition no longer holds.
    Resolved,
}

/// Where a trigger came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerSource {
    /// driftwatch's own rule engine.
    Engine,
    /// Alertmanager's webhook (`POST /v1/alertmanager`).
    Webhook,
}

/// One alert's transition, as the controller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertTrigger {
    /// The alert name, e.g. `ModelDataDrift`, `HighModelLatency`, `LowPredictionConfidence`.
    pub alertname: String,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// All labels of the alert (`model`, `version`, `variant`, `feature`, `method`, `severity`, ...).
    pub labels: BTreeMap<String, String>,
    /// Stable identity of the alert: [`fingerprint`] of its labels.
    pub fingerprint: String,
    /// When the alert started firing. Together with the fingerprint it identifies one episode.
    pub starts_at: DateTime<Utc>,
    /// When it resolved (resolved triggers only).
    pub ends_at: Option<DateTime<Utc>>,
    /// Who decided the transition.
    pub source: TriggerSource,
}

impl AlertTrigger {
    /// The `model` label, if any.
    pub fn model(&self) -> Option<&str> {
        self.labels.get("model").map(String::as_str)
    }

    /// The `version` label, if any.
    pub fn version(&self) -> Option<&str> {
        self.labels.get("version").map(String::as_str)
    }

    /// Whether this is a data-drift alert.
    pub fn is_drift(&self) -> bool {
        self.alertname == crate::names::alert::MODEL_DATA_DRIFT
    }
}

/// A stable 64-bit FNV-1a fingerprint of a label set, as 16 hex digits. Labels are taken in sorted
/// order as `name=value` joined by `\u{1f}`, so equal label sets always give equal fingerprints
/// (independent of the Rust version, unlike `std`'s hasher).
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let bytes = labels.iter().flat_map(|(k, v)| {
        k.bytes()
            .chain(std::iter::once(b'='))
            .chain(v.bytes())
            .chain(std::iter::once(0x1f))
    });
    format!("{:016x}", crate::hash::fnv1a_64(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_depends_on_labels_only() {
        let a = BTreeMap::from([
            ("model".to_string(), "m".to_string()),
            ("feature".to_string(), "x".to_string()),
        ]);
        let mut b = BTreeMap::new();
        b.insert("feature".to_string(), "x".to_string());
        b.insert("model".to_string(), "m".to_string());
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.insert("feature".to_string(), "y".to_string());
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&BTreeMap::new()), "cbf29ce484222325");
    }
}
