//! The status the controller keeps (`status`): [`ModelMonitorStatus`] and its conditions; the
//! retraining and canary parts it holds are in `retraining_status.rs` and `canary_status.rs`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::canary_status::CanaryState;
use super::retraining_status::{LastRetrain, RetrainBook};

/// What the controller knows about a monitor.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelMonitorStatus {
    /// Standard conditions: `Ready` (spec valid and reconciled), `Retraining` (a Job runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<MonitorCondition>,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The latest retraining run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_retrain: Option<LastRetrain>,
    /// Bookkeeping that the retraining decision reads.
    #[serde(default)]
    pub retrain: RetrainBook,
    /// The canary analysis state machine, with its last measurements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryState>,
}

/// A status condition, shaped like `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitorCondition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason, e.g. `InvalidSpec`.
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: DateTime<Utc>,
}
