//! The retraining part of the status: the latest run ([`LastRetrain`], `status.lastRetrain`) and
//! the bookkeeping the retraining decision reads ([`RetrainBook`], `status.retrain`).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The latest retraining run (DESIGN.md: trigger hash, job name, uid, outcome, time).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastRetrain {
    /// The drift episode's hash, 16 hex digits (see [`crate::retrain::Episode::hash`]).
    pub trigger_hash: String,
    /// When the episode's alert started firing.
    pub episode_start: DateTime<Utc>,
    /// The model version named by the trigger, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// The Job's name.
    pub job_name: String,
    /// The Job's uid, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// How the run went.
    pub outcome: RetrainOutcome,
    /// When the Job was created.
    pub started_at: DateTime<Utc>,
    /// When the outcome was recorded (absent while running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// The outcome of a retraining Job.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RetrainOutcome {
    /// Created and not yet finished.
    Running,
    /// The Job completed (`Complete` condition).
    Succeeded,
    /// The Job failed (`Failed` condition: backoffLimit, deadline or a FailJob rule).
    Failed,
    /// The Job disappeared before its outcome was seen (deleted by hand or by TTL while the
    /// controller was down). Counts as finished, not as a failure.
    Lost,
}

impl RetrainOutcome {
    /// The bounded metric label: `running`, `succeeded`, `failed` or `lost`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Lost => "lost",
        }
    }
}

/// What the retraining decision needs beyond the last run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetrainBook {
    /// Hashes of the episodes that got a Job, newest last, at most
    /// [`crate::retrain::HANDLED_EPISODES_KEPT`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handled_episodes: Vec<String>,
    /// An episode held back by cooldown, backoff, the daily cap or a running Job; launched
    /// when it may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingEpisode>,
    /// Failed runs since the last success.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Start times of runs in the last 24 hours (the daily cap is over a rolling 24 hours).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_runs: Vec<DateTime<Utc>>,
}

/// A drift episode waiting for its turn.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingEpisode {
    /// The episode's hash, 16 hex digits.
    pub trigger_hash: String,
    /// When the alert started firing.
    pub starts_at: DateTime<Utc>,
    /// The alert's name.
    pub alertname: String,
    /// The model version named by the trigger, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// Why it waits: `ActiveRun`, `Cooldown`, `Backoff` or `DailyCap`.
    pub reason: String,
    /// Earliest time it may launch (absent while a run is active).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
}
