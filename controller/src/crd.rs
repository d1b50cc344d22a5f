//! The `ModelMonitor` custom resource (group `driftwatch.io`, version `v1alpha1`, namespaced):
//! the spec a user writes and the status the controller keeps.
//!
//! The status is the controller's memory: every retraining decision is taken from it alone (never
//! from whether a Job still exists), so a repeated trigger, a restarted controller and a Job
//! deleted by its TTL never launch a second Job for the same drift episode.
//!
//! Validation happens twice: CEL rules and OpenAPI bounds in the generated CRD (the API server
//! rejects a bad object with the rule's message), and [`ModelMonitorSpec::validate`] at reconcile
//! time for the rules CEL cannot express (unique check names across an old server, URL shape).
//! Unknown fields are pruned by the API server (structural schema), so the types do not use
//! `deny_unknown_fields`: an older controller must still read a newer object.

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of the CRD.
pub const GROUP: &str = "driftwatch.io";
/// The API version of the CRD.
pub const VERSION: &str = "v1alpha1";

/// What to watch, how to retrain and how to roll out a new version of one model.
// Each `printcolumn(...)` repeats `type_ = ...`, which clippy reads as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "driftwatch.io",
    version = "v1alpha1",
    kind = "ModelMonitor",
    plural = "modelmonitors",
    shortname = "mm",
    namespaced,
    status = "ModelMonitorStatus",
    derive = "PartialEq",
    doc = "Watches one model in production: drift-triggered GPU retraining and canary analysis.",
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.model"),
    printcolumn(name = "Canary", type_ = "string", json_path = ".status.canary.phase"),
    printcolumn(
        name = "Weight",
        type_ = "integer",
        json_path = ".status.canary.weight"
    ),
    printcolumn(
        name = "Retrain",
        type_ = "string",
        json_path = ".status.lastRetrain.outcome"
    ),
    printcolumn(
        name = "Job",
        type_ = "string",
        json_path = ".status.lastRetrain.jobName",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ModelMonitorSpec {
    /// The model's name as it appears in the `model` label of prediction events, metrics and
    /// alerts, e.g. `car-loan`. 1 to 253 characters: letters, digits, `.`, `_` and `-`,
    /// starting and ending with a letter or digit.
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
    )]
    pub model: String,
    /// Location of the model's reference profile (path or URI), passed to the retraining Job as
    /// `DRIFTWATCH_REFERENCE_PROFILE`. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_profile: Option<String>,
    /// Which alerts open a drift episode. Default: `ModelDataDrift` only.
    #[serde(default)]
    pub drift_policy: DriftPolicy,
    /// The retraining Job template and its rate limits. Absent: drift is watched, never acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraining: Option<RetrainingSpec>,
    /// Canary analysis of a new model version. Absent: no canary analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryPolicy>,
}

/// Which firing alerts count as a drift episode for this model.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftPolicy {
    /// Alert names that start a retraining episode when firing with this model's `model` label.
    /// Default: `["ModelDataDrift"]`.
    #[serde(default = "default_trigger_alerts")]
    #[schemars(length(min = 1))]
    pub trigger_alerts: Vec<String>,
}

impl Default for DriftPolicy {
    fn default() -> Self {
        Self {
            trigger_alerts: default_trigger_alerts(),
        }
    }
}

fn default_trigger_alerts() -> Vec<String> {
    vec![types::names::alert::MODEL_DATA_DRIFT.to_string()]
}

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

/// The serving object whose traffic split the canary analysis drives.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TargetKind {
    /// Seldon Core v1 `SeldonDeployment` (`machinelearning.seldon.io/v1`):
    /// `spec.predictors[].traffic`, summing to 100.
    SeldonDeployment,
    /// KServe `InferenceService` (`serving.kserve.io/v1beta1`):
    /// `spec.predictor.canaryTrafficPercent`.
    InferenceService,
}

/// The canary target object, in the monitor's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.kind == 'SeldonDeployment' || (!has(self.stablePredictor) && !has(self.canaryPredictor))").message("stablePredictor and canaryPredictor apply to SeldonDeployment targets only"))]
#[x_kube(validation = Rule::new("!has(self.stablePredictor) || !has(self.canaryPredictor) || self.stablePredictor != self.canaryPredictor").message("stablePredictor and canaryPredictor must differ"))]
pub struct CanaryTarget {
    /// `SeldonDeployment` or `InferenceService`.
    pub kind: TargetKind,
    /// The target's `metadata.name`.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Seldon only: the stable predictor's name. Default `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_predictor: Option<String>,
    /// Seldon only: the canary predictor's name. Default `canary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_predictor: Option<String>,
}

impl CanaryTarget {
    /// The stable predictor's name (`main` by default).
    pub fn stable_predictor(&self) -> &str {
        self.stable_predictor.as_deref().unwrap_or("main")
    }

    /// The canary predictor's name (`canary` by default).
    pub fn canary_predictor(&self) -> &str {
        self.canary_predictor.as_deref().unwrap_or("canary")
    }
}

/// How a canary version is analysed, stepped, promoted and rolled back.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.maxWeight >= self.stepWeight").message("maxWeight must be at least stepWeight"))]
pub struct CanaryPolicy {
    /// The serving object whose traffic is shifted.
    pub target: CanaryTarget,
    /// Percent of traffic added to the canary at each passing step. 1 to 100; default 10.
    #[serde(default = "default_step_weight")]
    #[schemars(range(min = 1, max = 100))]
    pub step_weight: u32,
    /// Canary traffic percent at which, with every check passing, the canary is promoted.
    /// 1 to 100; default 50.
    #[serde(default = "default_max_weight")]
    #[schemars(range(min = 1, max = 100))]
    pub max_weight: u32,
    /// Seconds between analysis steps. 1 to 86400; default 60.
    #[serde(default = "default_interval")]
    #[schemars(range(min = 1, max = 86400))]
    pub interval_seconds: u64,
    /// Canary requests a step needs before its checks count. Fewer is "no data" for every
    /// check (never a pass). Default 100.
    #[serde(default = "default_min_requests")]
    pub min_requests_per_step: u64,
    /// The `variant` label of the canary's predictions. Default `canary`.
    #[serde(default = "default_canary_variant")]
    pub canary_variant: String,
    /// The `variant` label of the stable version's predictions. Default `stable`.
    #[serde(default = "default_stable_variant")]
    pub stable_variant: String,
    /// The checks; promotion needs every one to pass. Names are unique.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub checks: Vec<CheckSpec>,
    /// Where the measurements come from. Default: the in-process analyzer.
    #[serde(default)]
    pub metrics_source: MetricsSourceSpec,
}

fn default_step_weight() -> u32 {
    10
}
fn default_max_weight() -> u32 {
    50
}
fn default_interval() -> u64 {
    60
}
fn default_min_requests() -> u64 {
    100
}
fn default_canary_variant() -> String {
    "canary".to_string()
}
fn default_stable_variant() -> String {
    "stable".to_string()
}

/// What a check measures.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum CheckKind {
    /// p95 latency of the canary divided by that of the stable version (dimensionless).
    LatencyRatio,
    /// Median prediction confidence of the canary, in [0, 1].
    Confidence,
    /// Largest data-drift value over the canary's features (the verdict method's unit).
    Drift,
    /// Failed requests over all requests of the canary, in [0, 1] (0/0 is no data).
    ErrorRate,
    /// Successful requests over all requests of the canary, in [0, 1] (0/0 is no data).
    SuccessRate,
    /// A user-supplied PromQL query (`query`, optionally over `totalQuery`).
    Custom,
}

/// One canary check. It ends each step as Pass, Fail, NoData or ProviderError; each non-pass
/// outcome has its own limit, and reaching a limit rolls the canary back.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.min) || has(self.max)").message("a check needs min or max"))]
#[x_kube(validation = Rule::new("self.kind != 'Custom' || has(self.query)").message("a Custom check needs a query"))]
pub struct CheckSpec {
    /// Unique name of the check, e.g. `latency`.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// What is measured.
    pub kind: CheckKind,
    /// Lowest passing value (inclusive), in the kind's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Highest passing value (inclusive), in the kind's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// PromQL instant query overriding the kind's default (Prometheus source only); required
    /// for `Custom`. With `totalQuery` it is the numerator. Must return one series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// PromQL denominator: the value is `query / totalQuery`, and a zero total is no data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_query: Option<String>,
    /// Failing steps (over the whole analysis) that roll back. At least 1; default 1.
    #[serde(default = "default_failure_limit")]
    #[schemars(range(min = 1))]
    pub failure_limit: u32,
    /// Consecutive no-data steps that roll back. At least 1; default 5.
    #[serde(default = "default_no_data_limit")]
    #[schemars(range(min = 1))]
    pub no_data_limit: u32,
    /// Consecutive steps whose query failed (while the source as a whole answered) that roll
    /// back. At least 1; default 5.
    #[serde(default = "default_provider_error_limit")]
    #[schemars(range(min = 1))]
    pub provider_error_limit: u32,
}

fn default_failure_limit() -> u32 {
    1
}
fn default_no_data_limit() -> u32 {
    5
}
fn default_provider_error_limit() -> u32 {
    5
}

/// Where canary measurements come from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSourceSpec {
    /// A Prometheus HTTP API. Absent: the driftwatch service's own measurements, read from its
    /// `/api/canary/{model}` (`driftwatch controller --analyzer-url`), or from the analyzer in
    /// the same process (the demo). A controller with neither holds the canary (source down)
    /// rather than count missing data against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSourceSpec>,
}

/// A Prometheus server reached over its HTTP API (`GET /api/v1/query`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSourceSpec {
    /// Base URL, plain HTTP, e.g. `http://prometheus.monitoring:9090`.
    #[schemars(pattern(r"^http://[^/\s]+(/.*)?$"))]
    pub url: String,
}

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

impl ModelMonitorSpec {
    /// Checks the rules the controller relies on, returning every broken one with the field it
    /// names (e.g. `spec.canary.checks[1].name "latency" is used twice`). The CRD's CEL rules
    /// enforce most of these at admission already; this catches objects admitted by an API
    /// server without CEL support and the rules CEL cannot express.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if self.model.is_empty() {
            errors.push("spec.model must not be empty".to_string());
        }
        if self.drift_policy.trigger_alerts.is_empty() {
            errors.push("spec.driftPolicy.triggerAlerts must name at least one alert".to_string());
        }
        if let Some(r) = &self.retraining {
            if r.image.trim().is_empty() {
                errors.push("spec.retraining.image must not be empty".to_string());
            }
            if r.gpu_count > 16 {
                errors.push(format!(
                    "spec.retraining.gpuCount ({}) must be at most 16",
                    r.gpu_count
                ));
            }
            if !(0..=10).contains(&r.backoff_limit) {
                errors.push(format!(
                    "spec.retraining.backoffLimit ({}) must be within 0..=10",
                    r.backoff_limit
                ));
            }
            if r.active_deadline_seconds < 60 {
                errors.push(format!(
                    "spec.retraining.activeDeadlineSeconds ({}) must be at least 60",
                    r.active_deadline_seconds
                ));
            }
            if r.ttl_seconds_after_finished < 0 {
                errors.push("spec.retraining.ttlSecondsAfterFinished must not be negative".into());
            }
            if r.cooldown_seconds < 0 || r.failure_backoff_seconds < 0 {
                errors.push(
                    "spec.retraining.cooldownSeconds and failureBackoffSeconds must not be negative"
                        .into(),
                );
            }
            if r.max_runs_per_day == 0 {
                errors.push("spec.retraining.maxRunsPerDay must be at least 1".to_string());
            }
        }
        if let Some(c) = &self.canary {
            validate_canary(c, &mut errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn validate_canary(c: &CanaryPolicy, errors: &mut Vec<String>) {
    if c.target.name.is_empty() {
        errors.push("spec.canary.target.name must not be empty".to_string());
    }
    if c.target.kind == TargetKind::InferenceService
        && (c.target.stable_predictor.is_some() || c.target.canary_predictor.is_some())
    {
        errors.push(
            "spec.canary.target: stablePredictor and canaryPredictor apply to SeldonDeployment \
             targets only"
                .to_string(),
        );
    }
    if c.target.stable_predictor() == c.target.canary_predictor() {
        errors.push("spec.canary.target: stablePredictor and canaryPredictor must differ".into());
    }
    for (field, v) in [("stepWeight", c.step_weight), ("maxWeight", c.max_weight)] {
        if !(1..=100).contains(&v) {
            errors.push(format!("spec.canary.{field} ({v}) must be within 1..=100"));
        }
    }
    if c.max_weight < c.step_weight {
        errors.push(format!(
            "spec.canary.maxWeight ({}) must be at least spec.canary.stepWeight ({})",
            c.max_weight, c.step_weight
        ));
    }
    if c.interval_seconds == 0 {
        errors.push("spec.canary.intervalSeconds must be at least 1".to_string());
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, check) in c.checks.iter().enumerate() {
        if !seen.insert(check.name.as_str()) {
            errors.push(format!(
                "spec.canary.checks[{i}].name {:?} is used twice",
                check.name
            ));
        }
        if check.min.is_none() && check.max.is_none() {
            errors.push(format!(
                "spec.canary.checks[{i}] ({}) needs min or max",
                check.name
            ));
        }
        if check.kind == CheckKind::Custom && check.query.is_none() {
            errors.push(format!(
                "spec.canary.checks[{i}] ({}): a Custom check needs a query",
                check.name
            ));
        }
        if [
            check.failure_limit,
            check.no_data_limit,
            check.provider_error_limit,
        ]
        .contains(&0)
        {
            errors.push(format!(
                "spec.canary.checks[{i}] ({}): limits must be at least 1",
                check.name
            ));
        }
    }
    if let Some(p) = &c.metrics_source.prometheus
        && !p.url.starts_with("http://")
    {
        errors.push(format!(
            "spec.canary.metricsSource.prometheus.url {:?} must start with http://",
            p.url
        ));
    }
}

// The canary analysis state kept in `status.canary` (the state machine in
// `canary::machine` reads and writes it; its checks in `canary::checks` fill the measurements).

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

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    fn spec() -> ModelMonitorSpec {
        serde_json::from_value(serde_json::json!({
            "model": "car-loan",
            "retraining": {"image": "train:1"},
            "canary": {
                "target": {"kind": "SeldonDeployment", "name": "car-loan"},
                "checks": [{"name": "latency", "kind": "LatencyRatio", "max": 1.2}]
            }
        }))
        .expect("valid spec")
    }

    #[test]
    fn defaults_are_filled_from_a_minimal_spec() {
        let s = spec();
        assert_eq!(s.drift_policy.trigger_alerts, vec!["ModelDataDrift"]);
        let r = s.retraining.as_ref().expect("retraining");
        assert_eq!(
            (r.gpu_count, r.backoff_limit, r.active_deadline_seconds),
            (1, 2, 21_600)
        );
        assert_eq!(
            (
                r.ttl_seconds_after_finished,
                r.cooldown_seconds,
                r.max_runs_per_day
            ),
            (86_400, 3_600, 3)
        );
        let c = s.canary.as_ref().expect("canary");
        assert_eq!(
            (
                c.step_weight,
                c.max_weight,
                c.interval_seconds,
                c.min_requests_per_step
            ),
            (10, 50, 60, 100)
        );
        assert_eq!(c.checks[0].failure_limit, 1);
        assert_eq!(c.checks[0].no_data_limit, 5);
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn validation_names_every_broken_field() {
        let mut s = spec();
        let c = s.canary.as_mut().expect("canary");
        c.max_weight = 5;
        c.checks.push(CheckSpec {
            min: None,
            max: None,
            ..c.checks[0].clone()
        });
        c.target.canary_predictor = Some("main".into());
        let errors = s.validate().expect_err("invalid");
        assert_eq!(
            errors,
            vec![
                "spec.canary.target: stablePredictor and canaryPredictor must differ",
                "spec.canary.maxWeight (5) must be at least spec.canary.stepWeight (10)",
                "spec.canary.checks[1].name \"latency\" is used twice",
                "spec.canary.checks[1] (latency) needs min or max",
            ]
        );
    }

    #[test]
    fn crd_has_status_subresource_printer_columns_and_cel_rules() {
        let crd = ModelMonitor::crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("modelmonitors.driftwatch.io")
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some()
        );
        let columns: Vec<&str> = v
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            columns,
            ["Model", "Canary", "Weight", "Retrain", "Job", "Age"]
        );
        let json = serde_json::to_string(&crd).expect("json");
        assert!(json.contains(r#""rule":"self.maxWeight >= self.stepWeight""#));
        assert!(json.contains(r#""message":"a Custom check needs a query""#));
        assert!(json.contains(r#""x-kubernetes-list-map-keys":["name"]"#));
    }
}
