//! The canary settings of the spec (`spec.canary`): the [`CanaryPolicy`] with its target object,
//! its checks and where their measurements come from, with their defaults and CEL rules.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
