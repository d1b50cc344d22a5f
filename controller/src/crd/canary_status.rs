//! The canary analysis state kept in `status.canary` (the state machine in
//! `canary::machine` reads and writes it; its checks in `canary::checks` fill the measurements).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Phase of the canary analysis.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum CanaryPhase {
    /// A canary version was seen (or none yet); no traffic given by the analysis.
    #[default]
    Initializing,
    /// Steps are running.
    Progressing,
    /// The metrics source is down; traffic is held where it is.
    Holding,
    /// All traffic is being moved to the new version.
    Promoting,
    /// The new version serves all traffic.
    Succeeded,
    /// The canary was rolled back.
    Failed,
}

impl CanaryPhase {
    /// Whether the analysis is over for the current canary version.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// Per-check counters of non-passing results.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckCounters {
    /// The check's name.
    pub name: String,
    /// Failing steps over the whole analysis.
    pub failures: u32,
    /// Consecutive no-data steps.
    pub no_data: u32,
    /// Consecutive provider-error steps.
    pub provider_errors: u32,
}

/// The analysis state, stored as `status.canary`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryState {
    /// The phase.
    pub phase: CanaryPhase,
    /// Identity of the canary version under analysis (model URI, version label or revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_version: Option<String>,
    /// Canary traffic percent last set by the analysis (0 to 100).
    #[serde(default)]
    pub weight: u32,
    /// Steps taken (each raise of the weight is one).
    #[serde(default)]
    pub step: u32,
    /// When the last step was evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_step_at: Option<DateTime<Utc>>,
    /// Counters per check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<CheckCounters>,
    /// Results of the last evaluated step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_measurements: Vec<CheckMeasurement>,
    /// Canary requests seen in the last evaluated step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_requests: Option<u64>,
    /// What happened last, in words.
    #[serde(default)]
    pub message: String,
}

/// How one check ended at one step.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum CheckOutcome {
    /// The value is within `[min, max]`.
    Pass,
    /// The value is outside `[min, max]`.
    Fail,
    /// No usable value: absent, empty, NaN, 0/0, or too few canary requests.
    NoData,
    /// The provider failed this query.
    ProviderError,
}

/// The result of one check at one step, as stored in `status.canary.lastMeasurements`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckMeasurement {
    /// The check's name.
    pub name: String,
    /// How it ended.
    pub outcome: CheckOutcome,
    /// The measured value, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Why, in words, e.g. `1.8 is above max 1.2`.
    pub message: String,
}
