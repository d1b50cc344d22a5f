//! The retraining settings of the spec (`spec.retraining`): the Job template of
//! [`RetrainingSpec`] and the limits on how often it runs, with their defaults.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The retraining Job template and the limits on how often it runs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetrainingSpec {
    /// Container image of the training code, e.g. `registry.example/car-loan-train:1.4`.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Container entrypoint. Default: the image's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Container arguments. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// GPUs requested as the `nvidia.com/gpu` limit. 0 to 16; default 1. 0 runs on CPU.
    #[serde(default = "default_gpu_count")]
    #[schemars(range(min = 0, max = 16))]
    pub gpu_count: u32,
    /// Service account of the training pod. Default: the namespace's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Pod failures tolerated before the Job fails (`backoffLimit`). 0 to 10; default 2.
    #[serde(default = "default_backoff_limit")]
    #[schemars(range(min = 0, max = 10))]
    pub backoff_limit: i32,
    /// Wall-clock limit of the Job in seconds (`activeDeadlineSeconds`). At least 60; default
    /// 21600 (6 h).
    #[serde(default = "default_active_deadline")]
    #[schemars(range(min = 60))]
    pub active_deadline_seconds: i64,
    /// Seconds a finished Job is kept before Kubernetes deletes it (`ttlSecondsAfterFinished`).
    /// At least 0; default 86400 (1 day). The status keeps the outcome after the deletion.
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: i32,
    /// Seconds after a run finishes before another may start for this model. At least 0;
    /// default 3600.
    #[serde(default = "default_cooldown")]
    #[schemars(range(min = 0))]
    pub cooldown_seconds: i64,
    /// Base wait in seconds after a failed run, doubled after each further consecutive failure
    /// and capped at 86400. At least 0; default 900.
    #[serde(default = "default_failure_backoff")]
    #[schemars(range(min = 0))]
    pub failure_backoff_seconds: i64,
    /// Most runs started in any 24 hours. 1 to 100; default 3.
    #[serde(default = "default_max_runs")]
    #[schemars(range(min = 1, max = 100))]
    pub max_runs_per_day: u32,
}

fn default_gpu_count() -> u32 {
    1
}
fn default_backoff_limit() -> i32 {
    2
}
fn default_active_deadline() -> i64 {
    21_600
}
fn default_ttl() -> i32 {
    86_400
}
fn default_cooldown() -> i64 {
    3_600
}
fn default_failure_backoff() -> i64 {
    900
}
fn default_max_runs() -> u32 {
    3
}
