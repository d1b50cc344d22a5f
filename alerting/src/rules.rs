//! The alert rule engine: the built-in rules of `docs/metrics.md` (mirroring
//! `rules/driftwatch.rules.yaml`) and user rules from the configuration, evaluated on every
//! [`WindowReport`].
//!
//! # Time base
//!
//! Rules are evaluated when a window closes, and "now" is the window's END in event time
//! ([`WindowReport::end`]), never the wall clock. `for` and `keep_firing_for` are therefore
//! measured in event time: a replay of a day of prediction logs at 100x speed fires and resolves
//! the same alerts at the same (event) times as the live stream did. `startsAt` and `endsAt` of
//! triggers are event times too. A report whose end is not after the previous report of the same
//! `(model, version, variant)` is ignored (a replay after a restart re-closes windows).
//!
//! # State machine
//!
//! One instance per alert label set (keyed by [`fingerprint`] of its labels):
//! inactive -> pending (condition true) -> firing (true for at least `for`; at once when `for` is
//! 0) -> condition false: firing for `keep_firing_for` more (the clock restarts if the condition
//! holds again) -> resolved. A pending instance whose condition turns false goes back to inactive
//! silently. A missing value (a `None` quantile of a window without observations, edge case E17,
//! a custom metric without value, a NaN) never satisfies a condition: it counts as false. The
//! transitions to firing and to resolved each emit one [`AlertTrigger`] (source
//! [`TriggerSource::Engine`]) and one [`AlertNotification`] for Alertmanager.
//!
//! An instance whose series stops closing windows is evaluated no more; once the latest window
//! end seen from any series is `resolve_stale_after` past its last evaluation it resolves (like a
//! Prometheus alert whose series disappeared).
//!
//! # Labels
//!
//! `alertname`, `model`, `version`, `variant`, `severity` (`warning` unless a user rule sets it),
//! plus `feature` and `method` for `ModelDataDrift` and for user rules on `drift:` metrics
//! (`feature` for `missing_ratio:`), plus a user rule's own labels. A label whose value is empty
//! (typically `version` of events without `model_version`) is left out, as Prometheus does, so
//! the label sets equal those of `rules/driftwatch.rules.yaml`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use types::drift::Method;
use types::report::{SeriesKey, WindowReport};

use crate::alertmanager::{AlertNotification, AlertmanagerHandle};
use crate::error::AlertingError;
use crate::trigger::{AlertStatus, AlertTrigger, TriggerSource, fingerprint};

pub use types::names::alert::{
    HIGH_MODEL_LATENCY, LOW_PREDICTION_CONFIDENCE, MODEL_DATA_DRIFT, MODEL_DATA_QUALITY,
};

/// The rule engine's settings (the `[rules]` section of the configuration).
///
/// ```toml
/// [rules]
/// builtin = true
/// builtin_for = { ModelDataDrift = "10m" }
/// generator_url = "http://driftwatch.monitoring:9090/alerts"
/// resolve_stale_after = "1h"
///
/// [[rules.rules]]
/// alert = "LowTraffic"
/// metric = "requests"
/// op = "<"
/// threshold = 100.0
/// for = "15m"
/// keep_firing_for = "5m"
/// model = "car-loan"
/// labels = { severity = "critical", team = "risk" }
/// annotations = { summary = "Only {{ $value }} predictions for {{ $labels.model }}" }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Whether the built-in rules `HighModelLatency`, `ModelDataDrift` and
    /// `LowPredictionConfidence` run. Default `true`.
    #[serde(default = "default_true")]
    pub builtin: bool,
    /// Overrides of the built-in rules' `for` durations, by alert name (e.g.
    /// `{ ModelDataDrift = "0s" }` fires on the first drifted window). Default: none, which keeps
    /// `HighModelLatency` 5m, `ModelDataDrift` 10m and `LowPredictionConfidence` 15m. An unknown
    /// name is an [`AlertingError::InvalidRule`].
    #[serde(default, with = "builtin_for_serde")]
    pub builtin_for: BTreeMap<String, Duration>,
    /// The `generatorURL` of alerts sent to Alertmanager (e.g. driftwatch's status page). Default:
    /// none (the field is left out).
    #[serde(default)]
    pub generator_url: Option<String>,
    /// A firing or pending alert whose series has closed no window for this long in event time
    /// (measured against the latest window end of any series) resolves. A duration; default `1h`.
    #[serde(default = "default_stale", with = "humantime_serde")]
    pub resolve_stale_after: Duration,
    /// User rules, evaluated on every window next to the built-in ones. Default: none.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// `builtin_for` as a table of alert name to humantime duration.
mod builtin_for_serde {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Humantime(#[serde(with = "humantime_serde")] Duration);

    pub(super) fn serialize<S: Serializer>(
        map: &BTreeMap<String, Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        map.iter()
            .map(|(k, v)| (k.clone(), Humantime(*v)))
            .collect::<BTreeMap<_, _>>()
            .serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, Duration>, D::Error> {
        let map = BTreeMap::<String, Humantime>::deserialize(deserializer)?;
        Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
    }
}

fn default_true() -> bool {
    true
}

fn default_stale() -> Duration {
    Duration::from_secs(3600)
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            builtin: true,
            builtin_for: BTreeMap::new(),
            generator_url: None,
            resolve_stale_after: default_stale(),
            rules: Vec::new(),
        }
    }
}

/// A user rule: `metric op threshold` on every closed window of every (or one) model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The alert name (the `alertname` label). Required; unique among all rules, built-in ones
    /// included.
    pub alert: String,
    /// The window metric compared: `requests`, `latency_p50`, `latency_p95`, `latency_p99`
    /// (seconds), `confidence_median`, `missing_ratio:<feature>` (0 to 1),
    /// `drift:<feature>:<method>` (the statistic, as in `model_data_drift`) or `custom:<name>`
    /// (a custom window metric). Required.
    pub metric: WindowMetric,
    /// The comparison: `>`, `>=`, `<`, `<=`, `==` or `!=`. Required.
    pub op: Operator,
    /// The value compared with, in the metric's unit. Required; finite.
    pub threshold: f64,
    /// How long (event time) the condition must hold before the alert fires. A duration; default
    /// `0s` (fires on the first window where it holds).
    #[serde(rename = "for", default, with = "humantime_serde")]
    pub for_duration: Duration,
    /// How long (event time) the alert keeps firing after the condition stops holding. A
    /// duration; default `0s` (resolves on the first window where it does not hold).
    #[serde(default, with = "humantime_serde")]
    pub keep_firing_for: Duration,
    /// Restricts the rule to this model. Default: every model.
    #[serde(default)]
    pub model: Option<String>,
    /// Extra labels of the alert; `severity` defaults to `warning`. The engine's own labels
    /// (`alertname`, `model`, `version`, `variant`, `feature`, `method`) cannot be set. Default:
    /// none.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations (`summary`, `description`, ...). `{{ $value }}` and `{{ $labels.NAME }}` are
    /// replaced with the value at firing time and the label's value. Default: a summary naming the
    /// metric, its value and the threshold.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A comparison operator of a user rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `==`
    #[serde(rename = "==")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
}

impl Operator {
    /// Whether `value op threshold` holds.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Operator::Gt => value > threshold,
            Operator::Ge => value >= threshold,
            Operator::Lt => value < threshold,
            Operator::Le => value <= threshold,
            Operator::Eq => value == threshold,
            Operator::Ne => value != threshold,
        }
    }

    /// The operator as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Eq => "==",
            Operator::Ne => "!=",
        }
    }
}

/// A per-window metric a rule can compare. Written as a string in the configuration (see
/// [`RuleConfig::metric`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum WindowMetric {
    /// `requests`: predictions in the window.
    Requests,
    /// `latency_p50`: median latency, seconds.
    LatencyP50,
    /// `latency_p95`: 95th percentile latency, seconds.
    LatencyP95,
    /// `latency_p99`: 99th percentile latency, seconds.
    LatencyP99,
    /// `confidence_median`: median prediction confidence.
    ConfidenceMedian,
    /// `missing_ratio:<feature>`: share of missing values of a feature.
    MissingRatio(String),
    /// `drift:<feature>:<method>`: a drift statistic of a feature.
    Drift {
        /// The feature.
        feature: String,
        /// The statistic.
        method: Method,
    },
    /// `custom:<name>`: a user-defined window metric.
    Custom(String),
}

impl WindowMetric {
    /// The metric's value in `report`; `None` when the window has none (no observations: E17,
    /// feature or method not reported, custom query without value) or it is not finite.
    pub fn value(&self, report: &WindowReport) -> Option<f64> {
        let ms = |q: Option<f64>| q.map(|v| v / 1000.0);
        let v = match self {
            WindowMetric::Requests => Some(report.requests as f64),
            WindowMetric::LatencyP50 => ms(report.latency_ms.p50),
            WindowMetric::LatencyP95 => ms(report.latency_ms.p95),
            WindowMetric::LatencyP99 => ms(report.latency_ms.p99),
            WindowMetric::ConfidenceMedian => report.confidence.p50,
            WindowMetric::MissingRatio(f) => report.missing_ratio.get(f).copied(),
            WindowMetric::Drift { feature, method } => report
                .drift
                .iter()
                .find(|d| &d.feature == feature)
                .and_then(|d| d.method(*method))
                .and_then(|m| m.value),
            WindowMetric::Custom(name) => report.custom.get(name).copied().flatten(),
        };
        v.filter(|v| v.is_finite())
    }

    /// The labels the metric adds to its alerts (`feature`, `method`).
    fn labels(&self) -> Vec<(&'static str, String)> {
        match self {
            WindowMetric::MissingRatio(f) => vec![("feature", f.clone())],
            WindowMetric::Drift { feature, method } => {
                vec![
                    ("feature", feature.clone()),
                    ("method", method.name().to_string()),
                ]
            }
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for WindowMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowMetric::Requests => f.write_str("requests"),
            WindowMetric::LatencyP50 => f.write_str("latency_p50"),
            WindowMetric::LatencyP95 => f.write_str("latency_p95"),
            WindowMetric::LatencyP99 => f.write_str("latency_p99"),
            WindowMetric::ConfidenceMedian => f.write_str("confidence_median"),
            WindowMetric::MissingRatio(x) => write!(f, "missing_ratio:{x}"),
            WindowMetric::Drift { feature, method } => write!(f, "drift:{feature}:{method}"),
            WindowMetric::Custom(x) => write!(f, "custom:{x}"),
        }
    }
}

impl FromStr for WindowMetric {
    type Err = AlertingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| AlertingError::InvalidMetric {
            metric: s.to_string(),
            reason: reason.to_string(),
        };
        let nonempty = |x: &str, what: &str| {
            if x.is_empty() {
                Err(err(&format!("the {what} name is empty")))
            } else {
                Ok(x.to_string())
            }
        };
        Ok(match s {
            "requests" => WindowMetric::Requests,
            "latency_p50" => WindowMetric::LatencyP50,
            "latency_p95" => WindowMetric::LatencyP95,
            "latency_p99" => WindowMetric::LatencyP99,
            "confidence_median" => WindowMetric::ConfidenceMedian,
            _ => {
                if let Some(f) = s.strip_prefix("missing_ratio:") {
                    WindowMetric::MissingRatio(nonempty(f, "feature")?)
                } else if let Some(name) = s.strip_prefix("custom:") {
                    WindowMetric::Custom(nonempty(name, "custom metric")?)
                } else if let Some(rest) = s.strip_prefix("drift:") {
                    let (feature, method) = rest
                        .rsplit_once(':')
                        .ok_or_else(|| err("expected `drift:<feature>:<method>`"))?;
                    let method = method.parse::<Method>().map_err(|e| err(&e.to_string()))?;
                    WindowMetric::Drift {
                        feature: nonempty(feature, "feature")?,
                        method,
                    }
                } else {
                    return Err(err(
                        "expected one of requests, latency_p50, latency_p95, latency_p99, \
                         confidence_median, missing_ratio:<feature>, drift:<feature>:<method>, \
                         custom:<name>",
                    ));
                }
            }
        })
    }
}

impl TryFrom<String> for WindowMetric {
    type Error = AlertingError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<WindowMetric> for String {
    fn from(m: WindowMetric) -> Self {
        m.to_string()
    }
}

/// Whether an alert instance waits for its `for` duration or fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds, for less than `for`.
    Pending,
    /// The alert fires (possibly kept firing by `keep_firing_for`).
    Firing,
}

/// One pending or firing alert instance, for a status page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveAlert {
    /// [`fingerprint`] of the labels.
    pub fingerprint: String,
    /// The alert's labels.
    pub labels: BTreeMap<String, String>,
    /// The annotations (rendered when the alert fired; templates while pending).
    pub annotations: BTreeMap<String, String>,
    /// Pending or firing.
    pub state: AlertState,
    /// Window end (event time) at which the condition started holding.
    pub active_since: DateTime<Utc>,
    /// Window end at which the alert fired (firing alerts only); `startsAt` of its notifications.
    pub fired_at: Option<DateTime<Utc>>,
    /// Window end at which the condition stopped holding while `keep_firing_for` keeps the alert
    /// firing.
    pub keep_firing_since: Option<DateTime<Utc>>,
    /// The compared value at the last evaluation (`None` without a value).
    pub value: Option<f64>,
    /// Window end of the last evaluation.
    pub last_evaluated: DateTime<Utc>,
}

/// A shared, read-only view of the engine's pending and firing alerts, refreshed after every
/// evaluation. Cloning shares it; hand it to a status page.
#[derive(Debug, Clone, Default)]
pub struct AlertsView {
    inner: Arc<RwLock<Vec<ActiveAlert>>>,
}

impl AlertsView {
    /// The pending and firing alerts, sorted by fingerprint.
    pub fn active_alerts(&self) -> Vec<ActiveAlert> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// One transition of an alert instance to firing or to resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// What the controller gets.
    pub trigger: AlertTrigger,
    /// What Alertmanager gets.
    pub notification: AlertNotification,
}

#[derive(Debug, Clone)]
enum Condition {
    Threshold {
        metric: WindowMetric,
        op: Operator,
        threshold: f64,
    },
    /// Every verdict method of every feature whose value crosses its threshold
    /// (`MethodResult::drift == Some(true)`), one instance per feature and method.
    DataDrift,
    /// Every feature whose missing share surged (`DataQuality::missing_surge == Some(true)`), one
    /// instance per feature; the value is the window's missing share.
    MissingSurge,
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    condition: Condition,
    for_duration: TimeDelta,
    keep_firing_for: TimeDelta,
    model: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

const RESERVED_LABELS: [&str; 6] = [
    "alertname",
    "model",
    "version",
    "variant",
    "feature",
    "method",
];

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn warning() -> BTreeMap<String, String> {
    BTreeMap::from([("severity".to_string(), "warning".to_string())])
}

fn annotations(summary: &str, description: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("summary".to_string(), summary.to_string()),
        ("description".to_string(), description.to_string()),
    ])
}

fn builtin_rules() -> Vec<Rule> {
    vec![
        Rule {
            name: HIGH_MODEL_LATENCY.to_string(),
            condition: Condition::Threshold {
                metric: WindowMetric::LatencyP95,
                op: Operator::Gt,
                threshold: 1.0,
            },
            for_duration: TimeDelta::minutes(5),
            keep_firing_for: TimeDelta::zero(),
            model: None,
            labels: warning(),
            annotations: annotations(
                "p95 latency of model {{ $labels.model }} ({{ $labels.variant }}) is \
                 {{ $value }}s, above 1s",
                "The 95th percentile of the prediction latency in the window for \
                 model={{ $labels.model }} version=\"{{ $labels.version }}\" \
                 variant={{ $labels.variant }} is {{ $value }}s; it has been above 1s for at least \
                 5m.",
            ),
        },
        Rule {
            name: MODEL_DATA_DRIFT.to_string(),
            condition: Condition::DataDrift,
            for_duration: TimeDelta::minutes(10),
            keep_firing_for: TimeDelta::zero(),
            model: None,
            labels: warning(),
            annotations: annotations(
                "Data drift on model {{ $labels.model }} ({{ $labels.variant }}): feature \
                 {{ $labels.feature }}, {{ $labels.method }} = {{ $value }}",
                "The {{ $labels.method }} drift of feature {{ $labels.feature }} for \
                 model={{ $labels.model }} version=\"{{ $labels.version }}\" \
                 variant={{ $labels.variant }} is {{ $value }}; it has been above its threshold \
                 (model_data_drift_threshold) for at least 10m.",
            ),
        },
        Rule {
            name: LOW_PREDICTION_CONFIDENCE.to_string(),
            condition: Condition::Threshold {
                metric: WindowMetric::ConfidenceMedian,
                op: Operator::Lt,
                threshold: 0.7,
            },
            for_duration: TimeDelta::minutes(15),
            keep_firing_for: TimeDelta::zero(),
            model: None,
            labels: warning(),
            annotations: annotations(
                "Median prediction confidence of model {{ $labels.model }} \
                 ({{ $labels.variant }}) is {{ $value }}, below 0.7",
                "The median prediction confidence in the window for model={{ $labels.model }} \
                 version=\"{{ $labels.version }}\" variant={{ $labels.variant }} is {{ $value }}; \
                 it has been below 0.7 for at least 15m.",
            ),
        },
        Rule {
            name: MODEL_DATA_QUALITY.to_string(),
            condition: Condition::MissingSurge,
            for_duration: TimeDelta::minutes(10),
            keep_firing_for: TimeDelta::zero(),
            model: None,
            labels: warning(),
            annotations: annotations(
                "Missing values surged on model {{ $labels.model }} ({{ $labels.variant }}): \
                 feature {{ $labels.feature }} is {{ $value }} missing",
                "The share of missing values of feature {{ $labels.feature }} for \
                 model={{ $labels.model }} version=\"{{ $labels.version }}\" \
                 variant={{ $labels.variant }} is {{ $value }}, above the reference's by more than \
                 its sampling noise and at least 2 points (model_feature_missing_surge); it has \
                 been so for at least 10m.",
            ),
        },
    ]
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn user_rule(c: &RuleConfig) -> Result<Rule, AlertingError> {
    let invalid = |reason: String| AlertingError::InvalidRule {
        rule: c.alert.clone(),
        reason,
    };
    if c.alert.trim().is_empty() {
        return Err(invalid("`alert` is empty".to_string()));
    }
    if !c.threshold.is_finite() {
        return Err(invalid(format!(
            "`threshold` must be finite, got {}",
            c.threshold
        )));
    }
    if c.model.as_deref().is_some_and(str::is_empty) {
        return Err(invalid("`model` is empty".to_string()));
    }
    for name in c.labels.keys() {
        if !valid_label_name(name) {
            return Err(invalid(format!(
                "`labels.{name}` is not a valid label name"
            )));
        }
        if RESERVED_LABELS.contains(&name.as_str()) {
            return Err(invalid(format!(
                "`labels.{name}` is set by the engine and cannot be configured"
            )));
        }
    }
    for name in c.annotations.keys() {
        if !valid_label_name(name) {
            return Err(invalid(format!(
                "`annotations.{name}` is not a valid annotation name"
            )));
        }
    }
    let mut labels = warning();
    labels.extend(c.labels.clone());
    let annotations = if c.annotations.is_empty() {
        BTreeMap::from([(
            "summary".to_string(),
            format!(
                "{} of model {{{{ $labels.model }}}} ({{{{ $labels.variant }}}}) is \
                 {{{{ $value }}}} ({} {})",
                c.metric,
                c.op.as_str(),
                c.threshold
            ),
        )])
    } else {
        c.annotations.clone()
    };
    Ok(Rule {
        name: c.alert.clone(),
        condition: Condition::Threshold {
            metric: c.metric.clone(),
            op: c.op,
            threshold: c.threshold,
        },
        for_duration: delta(c.for_duration),
        keep_firing_for: delta(c.keep_firing_for),
        model: c.model.clone(),
        labels,
        annotations,
    })
}

/// Formats a value with 4 significant digits, like `printf "%.4g"`.
fn format_value(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let exp = v.abs().log10().floor() as i32;
    if !(-4..4).contains(&exp) {
        return format!("{v:.3e}");
    }
    let decimals = usize::try_from(3 - exp).unwrap_or(0);
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Replaces `{{ $value }}` and `{{ $labels.NAME }}` (spaces inside the braces optional); any other
/// `{{ ... }}` is kept as written.
fn render(template: &str, labels: &BTreeMap<String, String>, value: Option<f64>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let inner = after[..close].trim();
        if inner == "$value" {
            out.push_str(&value.map_or_else(|| "no data".to_string(), format_value));
        } else if let Some(name) = inner.strip_prefix("$labels.") {
            out.push_str(labels.get(name).map_or("", String::as_str));
        } else {
            out.push_str(&rest[open..open + 2 + close + 2]);
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone)]
struct Instance {
    rule: usize,
    series: SeriesKey,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    state: AlertState,
    active_since: DateTime<Utc>,
    fired_at: Option<DateTime<Utc>>,
    keep_firing_since: Option<DateTime<Utc>>,
    value: Option<f64>,
    last_evaluated: DateTime<Utc>,
}

/// What one evaluation does to an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Stay,
    Fire,
    Resolve,
    Drop,
}

impl Instance {
    fn step(&mut self, holds: bool, now: DateTime<Utc>, rule: &Rule) -> Step {
        self.last_evaluated = now;
        match (self.state, holds) {
            (AlertState::Pending, true) => {
                if now - self.active_since >= rule.for_duration {
                    self.state = AlertState::Firing;
                    self.fired_at = Some(now);
                    Step::Fire
                } else {
                    Step::Stay
                }
            }
            (AlertState::Pending, false) => Step::Drop,
            (AlertState::Firing, true) => {
                self.keep_firing_since = None;
                Step::Stay
            }
            (AlertState::Firing, false) => {
                let since = *self.keep_firing_since.get_or_insert(now);
                if now - since >= rule.keep_firing_for {
                    Step::Resolve
                } else {
                    Step::Stay
                }
            }
        }
    }

    fn active(&self, fingerprint: &str) -> ActiveAlert {
        ActiveAlert {
            fingerprint: fingerprint.to_string(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            state: self.state,
            active_since: self.active_since,
            fired_at: self.fired_at,
            keep_firing_since: self.keep_firing_since,
            value: self.value,
            last_evaluated: self.last_evaluated,
        }
    }
}

/// One instance a rule produces from a report.
struct Candidate {
    labels: BTreeMap<String, String>,
    value: Option<f64>,
    holds: bool,
}

/// The rule engine. Feed it every closed window with [`RuleEngine::observe`] (or
/// [`RuleEngine::evaluate`] to get the transitions without sending them).
#[derive(Debug)]
pub struct RuleEngine {
    rules: Vec<Rule>,
    generator_url: Option<String>,
    resolve_stale_after: TimeDelta,
    instances: BTreeMap<String, Instance>,
    last_end: HashMap<SeriesKey, DateTime<Utc>>,
    latest_end: Option<DateTime<Utc>>,
    triggers: Option<mpsc::Sender<AlertTrigger>>,
    alertmanager: Option<AlertmanagerHandle>,
    view: AlertsView,
}

impl RuleEngine {
    /// An engine with the built-in rules (unless `config.builtin` is false) and the user rules.
    ///
    /// # Errors
    /// [`AlertingError::InvalidRule`] naming the rule and the key: an empty name, a name used
    /// twice (built-in names included), a non-finite threshold, an invalid or reserved label name.
    pub fn new(config: &RulesConfig) -> Result<Self, AlertingError> {
        let mut rules = if config.builtin {
            builtin_rules()
        } else {
            Vec::new()
        };
        for (name, duration) in &config.builtin_for {
            let rule = rules.iter_mut().find(|r| &r.name == name).ok_or_else(|| {
                AlertingError::InvalidRule {
                    rule: name.clone(),
                    reason: if config.builtin {
                        "`builtin_for` names no built-in rule (HighModelLatency, \
                         ModelDataDrift, LowPredictionConfidence)"
                            .to_string()
                    } else {
                        "`builtin_for` is set but `builtin` is false".to_string()
                    },
                }
            })?;
            let old = format!("for at least {}m.", rule.for_duration.num_minutes());
            rule.for_duration =
                TimeDelta::from_std(*duration).map_err(|_| AlertingError::InvalidRule {
                    rule: name.clone(),
                    reason: "`builtin_for` is too long".to_string(),
                })?;
            // The description states the `for`; keep it true.
            if let Some(d) = rule.annotations.get_mut("description") {
                let new = if duration.is_zero() {
                    "in this window.".to_string()
                } else {
                    format!(
                        "for at least {}.",
                        humantime_serde::re::humantime::format_duration(*duration)
                    )
                };
                *d = d.replace(&old, &new);
            }
        }
        for c in &config.rules {
            rules.push(user_rule(c)?);
        }
        let mut names = BTreeSet::new();
        for r in &rules {
            if !names.insert(r.name.as_str()) {
                return Err(AlertingError::InvalidRule {
                    rule: r.name.clone(),
                    reason: "`alert` is used by another rule".to_string(),
                });
            }
        }
        Ok(Self {
            rules,
            generator_url: config.generator_url.clone(),
            resolve_stale_after: delta(config.resolve_stale_after),
            instances: BTreeMap::new(),
            last_end: HashMap::new(),
            latest_end: None,
            triggers: None,
            alertmanager: None,
            view: AlertsView::default(),
        })
    }

    /// Sends every transition's [`AlertTrigger`] to `triggers` (the controller's channel) in
    /// [`RuleEngine::observe`].
    pub fn with_triggers(mut self, triggers: mpsc::Sender<AlertTrigger>) -> Self {
        self.triggers = Some(triggers);
        self
    }

    /// Sends every transition's [`AlertNotification`] to the Alertmanager client in
    /// [`RuleEngine::observe`].
    pub fn with_alertmanager(mut self, alertmanager: AlertmanagerHandle) -> Self {
        self.alertmanager = Some(alertmanager);
        self
    }

    /// The rule names, in evaluation order.
    pub fn rule_names(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.name.as_str()).collect()
    }

    /// Evaluates `report` (see [`RuleEngine::evaluate`]), then sends each transition's trigger
    /// and notification to the configured channels, waiting for room (backpressure). A closed
    /// channel is logged and skipped; the transitions are returned either way.
    pub async fn observe(&mut self, report: &WindowReport) -> Vec<Transition> {
        let transitions = self.evaluate(report);
        for t in &transitions {
            if let Some(tx) = &self.triggers
                && tx.send(t.trigger.clone()).await.is_err()
            {
                tracing::warn!(
                    alertname = %t.trigger.alertname,
                    "controller trigger channel is closed; trigger dropped"
                );
            }
            if let Some(am) = &self.alertmanager
                && let Err(e) = am.notify(t.notification.clone()).await
            {
                tracing::warn!(
                    alertname = %t.trigger.alertname,
                    error = %e,
                    "cannot queue alert for Alertmanager"
                );
            }
        }
        transitions
    }

    /// Evaluates every rule on `report` at event time `report.end` and returns the transitions to
    /// firing and to resolved, in a deterministic order. Reports not after the previous one of
    /// the same series are ignored (empty result).
    pub fn evaluate(&mut self, report: &WindowReport) -> Vec<Transition> {
        let now = report.end;
        if self
            .last_end
            .get(&report.key)
            .is_some_and(|&last| now <= last)
        {
            tracing::debug!(
                model = %report.key.model,
                end = %now,
                "window report not after the previous one; ignored"
            );
            return Vec::new();
        }
        self.last_end.insert(report.key.clone(), now);
        self.latest_end = Some(self.latest_end.map_or(now, |l| l.max(now)));

        let mut transitions = Vec::new();
        let mut seen = BTreeSet::new();
        let evaluations: Vec<(usize, Candidate)> = self
            .rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.model.as_ref().is_none_or(|m| m == &report.key.model))
            .flat_map(|(idx, rule)| candidates(rule, report).into_iter().map(move |c| (idx, c)))
            .collect();
        for (idx, c) in evaluations {
            let rule = &self.rules[idx];
            let fp = fingerprint(&c.labels);
            seen.insert(fp.clone());
            let step = match self.instances.get_mut(&fp) {
                Some(inst) => {
                    inst.value = c.value;
                    inst.step(c.holds, now, rule)
                }
                None if c.holds => {
                    let mut inst = Instance {
                        rule: idx,
                        series: report.key.clone(),
                        labels: c.labels,
                        annotations: rule.annotations.clone(),
                        state: AlertState::Pending,
                        active_since: now,
                        fired_at: None,
                        keep_firing_since: None,
                        value: c.value,
                        last_evaluated: now,
                    };
                    let step = inst.step(true, now, rule);
                    self.instances.insert(fp.clone(), inst);
                    step
                }
                None => Step::Stay,
            };
            if let Some(t) = self.apply(&fp, step, now) {
                transitions.push(t);
            }
        }
        // Instances of this series that the report no longer produces (a feature or method not
        // reported, a verdict no longer given) evaluate as false.
        let absent: Vec<String> = self
            .instances
            .iter()
            .filter(|(fp, i)| i.series == report.key && !seen.contains(*fp))
            .map(|(fp, _)| fp.clone())
            .collect();
        for fp in absent {
            let step = match self.instances.get_mut(&fp) {
                Some(inst) => {
                    inst.value = None;
                    let rule = &self.rules[inst.rule];
                    inst.step(false, now, rule)
                }
                None => continue,
            };
            if let Some(t) = self.apply(&fp, step, now) {
                transitions.push(t);
            }
        }
        transitions.extend(self.resolve_stale());
        self.publish();
        transitions
    }

    /// Resolves (or drops, when pending) instances of series that closed no window for
    /// `resolve_stale_after` before the latest window end of any series.
    fn resolve_stale(&mut self) -> Vec<Transition> {
        let Some(latest) = self.latest_end else {
            return Vec::new();
        };
        let stale: Vec<String> = self
            .instances
            .iter()
            .filter(|(_, i)| latest - i.last_evaluated >= self.resolve_stale_after)
            .map(|(fp, _)| fp.clone())
            .collect();
        let mut out = Vec::new();
        for fp in stale {
            let step = match self.instances.get(&fp).map(|i| i.state) {
                Some(AlertState::Firing) => Step::Resolve,
                Some(AlertState::Pending) => Step::Drop,
                None => continue,
            };
            if let Some(t) = self.apply(&fp, step, latest) {
                out.push(t);
            }
        }
        out
    }

    /// Applies a step's effect on the instance map and builds the transition, if any.
    fn apply(&mut self, fp: &str, step: Step, now: DateTime<Utc>) -> Option<Transition> {
        match step {
            Step::Stay => None,
            Step::Drop => {
                self.instances.remove(fp);
                None
            }
            Step::Fire => {
                let inst = self.instances.get_mut(fp)?;
                inst.annotations = inst
                    .annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), render(v, &inst.labels, inst.value)))
                    .collect();
                self.transition(fp, AlertStatus::Firing, None)
            }
            Step::Resolve => {
                let t = self.transition(fp, AlertStatus::Resolved, Some(now));
                self.instances.remove(fp);
                t
            }
        }
    }

    fn transition(
        &self,
        fp: &str,
        status: AlertStatus,
        ends_at: Option<DateTime<Utc>>,
    ) -> Option<Transition> {
        let inst = self.instances.get(fp)?;
        let starts_at = inst.fired_at.unwrap_or(inst.active_since);
        let alertname = inst.labels.get("alertname").cloned().unwrap_or_default();
        Some(Transition {
            trigger: AlertTrigger {
                alertname,
                status,
                labels: inst.labels.clone(),
                fingerprint: fp.to_string(),
                starts_at,
                ends_at,
                source: TriggerSource::Engine,
            },
            notification: AlertNotification {
                labels: inst.labels.clone(),
                annotations: inst.annotations.clone(),
                status,
                starts_at,
                ends_at,
                generator_url: self.generator_url.clone(),
            },
        })
    }

    /// The pending and firing alerts, sorted by fingerprint.
    pub fn active_alerts(&self) -> Vec<ActiveAlert> {
        self.instances.iter().map(|(fp, i)| i.active(fp)).collect()
    }

    /// A shared view of [`RuleEngine::active_alerts`], refreshed after every evaluation, for a
    /// status page served from another task.
    pub fn view(&self) -> AlertsView {
        self.view.clone()
    }

    fn publish(&self) {
        *self
            .view
            .inner
            .write()
            .unwrap_or_else(PoisonError::into_inner) = self.active_alerts();
    }
}

/// The labels every alert of `rule` on `key` carries; empty values are left out.
fn base_labels(
    rule: &Rule,
    key: &SeriesKey,
    extra: &[(&'static str, String)],
) -> BTreeMap<String, String> {
    let mut labels = rule.labels.clone();
    labels.insert("alertname".to_string(), rule.name.clone());
    labels.insert("model".to_string(), key.model.clone());
    labels.insert("version".to_string(), key.version.clone());
    labels.insert("variant".to_string(), key.variant.clone());
    for (k, v) in extra {
        labels.insert((*k).to_string(), v.clone());
    }
    labels.retain(|_, v| !v.is_empty());
    labels
}

fn candidates(rule: &Rule, report: &WindowReport) -> Vec<Candidate> {
    match &rule.condition {
        Condition::Threshold {
            metric,
            op,
            threshold,
        } => {
            let value = metric.value(report);
            vec![Candidate {
                labels: base_labels(rule, &report.key, &metric.labels()),
                value,
                holds: value.is_some_and(|v| op.holds(v, *threshold)),
            }]
        }
        Condition::DataDrift => report
            .drift
            .iter()
            .flat_map(|fd| {
                fd.methods
                    .iter()
                    .filter(|m| m.verdict_method)
                    .map(move |m| Candidate {
                        labels: base_labels(
                            rule,
                            &report.key,
                            &[
                                ("feature", fd.feature.clone()),
                                ("method", m.method.name().to_string()),
                            ],
                        ),
                        value: m.value.filter(|v| v.is_finite()),
                        holds: m.drift == Some(true),
                    })
            })
            .collect(),
        Condition::MissingSurge => report
            .drift
            .iter()
            .filter_map(|fd| {
                let q = fd.quality?;
                let surge = q.missing_surge?;
                Some(Candidate {
                    labels: base_labels(rule, &report.key, &[("feature", fd.feature.clone())]),
                    value: Some(q.missing_rate).filter(|v| v.is_finite()),
                    holds: surge,
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use types::FeatureKind;
    use types::drift::{FeatureDrift, FeatureStatus, MethodResult, Threshold, ThresholdSource};
    use types::report::Quantiles;

    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap() + TimeDelta::minutes(minutes)
    }

    fn quantiles(count: u64, p50: Option<f64>, p95: Option<f64>) -> Quantiles {
        Quantiles {
            count,
            p50,
            p95,
            p99: p95,
        }
    }

    /// A 5-minute window ending at minute `end`, with p95 latency `p95_ms` and median confidence.
    fn report(end: i64, p95_ms: Option<f64>, conf_p50: Option<f64>) -> WindowReport {
        WindowReport {
            key: SeriesKey::new("m", "v1", "stable"),
            start: t(end - 5),
            end: t(end),
            requests: 100,
            latency_ms: quantiles(100, p95_ms.map(|v| v / 2.0), p95_ms),
            confidence: quantiles(100, conf_p50, conf_p50),
            missing_ratio: BTreeMap::new(),
            drift: Vec::new(),
            custom: BTreeMap::new(),
            sampled: false,
        }
    }

    fn engine() -> RuleEngine {
        RuleEngine::new(&RulesConfig::default()).unwrap()
    }

    fn names(ts: &[Transition]) -> Vec<(String, AlertStatus)> {
        ts.iter()
            .map(|t| (t.trigger.alertname.clone(), t.trigger.status))
            .collect()
    }

    #[test]
    fn latency_alert_waits_for_its_for_duration_then_fires_and_resolves() {
        let mut e = engine();
        // The condition holds from minute 5; `for` is 5m, so it fires at minute 10.
        assert!(e.evaluate(&report(5, Some(1500.0), Some(0.9))).is_empty());
        let active = e.active_alerts();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].state, AlertState::Pending);
        assert_eq!(active[0].active_since, t(5));
        // Still pending one minute before `for` elapses.
        assert!(e.evaluate(&report(9, Some(1500.0), Some(0.9))).is_empty());
        let fired = e.evaluate(&report(10, Some(2000.0), Some(0.9)));
        assert_eq!(
            names(&fired),
            vec![(HIGH_MODEL_LATENCY.to_string(), AlertStatus::Firing)]
        );
        let trig = &fired[0].trigger;
        assert_eq!(trig.source, TriggerSource::Engine);
        assert_eq!(trig.starts_at, t(10));
        assert_eq!(trig.ends_at, None);
        let expected: BTreeMap<String, String> = [
            ("alertname", "HighModelLatency"),
            ("model", "m"),
            ("version", "v1"),
            ("variant", "stable"),
            ("severity", "warning"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(trig.labels, expected);
        assert_eq!(trig.fingerprint, fingerprint(&expected));
        assert_eq!(
            fired[0].notification.annotations["summary"],
            "p95 latency of model m (stable) is 2s, above 1s"
        );
        // Firing: staying true emits nothing more.
        assert!(e.evaluate(&report(15, Some(1200.0), Some(0.9))).is_empty());
        assert_eq!(e.view().active_alerts()[0].state, AlertState::Firing);
        // p95 exactly 1 s is not above 1 s: resolves at once (no keep_firing_for).
        let resolved = e.evaluate(&report(20, Some(1000.0), Some(0.9)));
        assert_eq!(
            names(&resolved),
            vec![(HIGH_MODEL_LATENCY.to_string(), AlertStatus::Resolved)]
        );
        assert_eq!(resolved[0].trigger.starts_at, t(10));
        assert_eq!(resolved[0].trigger.ends_at, Some(t(20)));
        assert_eq!(resolved[0].notification.ends_at, Some(t(20)));
        assert_eq!(resolved[0].trigger.fingerprint, trig.fingerprint);
        assert!(e.active_alerts().is_empty());
        assert!(e.view().active_alerts().is_empty());
    }

    #[test]
    fn builtin_for_overrides_the_built_in_for_duration() {
        let mut e = RuleEngine::new(&RulesConfig {
            builtin_for: BTreeMap::from([(HIGH_MODEL_LATENCY.to_string(), Duration::ZERO)]),
            ..RulesConfig::default()
        })
        .unwrap();
        // `for` 0s: the first window over the threshold fires.
        let fired = e.evaluate(&report(5, Some(1500.0), Some(0.9)));
        assert_eq!(
            names(&fired),
            vec![(HIGH_MODEL_LATENCY.to_string(), AlertStatus::Firing)]
        );
        assert_eq!(fired[0].trigger.starts_at, t(5));
        let description = &fired[0].notification.annotations["description"];
        assert!(
            description.ends_with("above 1s in this window."),
            "{description}"
        );
    }

    #[test]
    fn builtin_for_naming_no_built_in_rule_is_an_error() {
        let err = RuleEngine::new(&RulesConfig {
            builtin_for: BTreeMap::from([("ModelDatDrift".to_string(), Duration::ZERO)]),
            ..RulesConfig::default()
        })
        .expect_err("an unknown built-in name is rejected");
        let text = err.to_string();
        assert!(text.contains("ModelDatDrift"), "{text}");
        assert!(text.contains("builtin_for"), "{text}");
    }

    #[test]
    fn pending_alert_that_clears_before_for_never_fires() {
        let mut e = engine();
        assert!(e.evaluate(&report(5, Some(1500.0), None)).is_empty());
        assert!(e.evaluate(&report(8, Some(1500.0), None)).is_empty());
        assert!(e.evaluate(&report(9, Some(10.0), None)).is_empty());
        assert!(e.active_alerts().is_empty());
        // A new episode starts its `for` from scratch.
        assert!(e.evaluate(&report(10, Some(1500.0), None)).is_empty());
        assert!(e.evaluate(&report(14, Some(1500.0), None)).is_empty());
        assert_eq!(names(&e.evaluate(&report(15, Some(1500.0), None))).len(), 1);
    }

    #[test]
    fn windows_without_observations_never_alert_e17() {
        let mut e = engine();
        for end in (5..=60).step_by(5) {
            let mut r = report(end, None, None);
            r.requests = 0;
            r.latency_ms = Quantiles::default();
            r.confidence = Quantiles::default();
            assert!(e.evaluate(&r).is_empty(), "window ending at {end}");
        }
        assert!(e.active_alerts().is_empty());
        // And a missing quantile clears a firing alert (the condition no longer holds).
        let mut e = engine();
        e.evaluate(&report(5, None, Some(0.5)));
        e.evaluate(&report(10, None, Some(0.5)));
        assert_eq!(names(&e.evaluate(&report(20, None, Some(0.5)))).len(), 1);
        let cleared = e.evaluate(&report(25, None, None));
        assert_eq!(
            names(&cleared),
            vec![(LOW_PREDICTION_CONFIDENCE.to_string(), AlertStatus::Resolved)]
        );
    }

    #[test]
    fn exactly_one_resolved_transition_e20() {
        let mut e = engine();
        let mut all = Vec::new();
        for end in (5..=30).step_by(5) {
            all.extend(e.evaluate(&report(end, None, Some(0.5))));
        }
        for end in (35..=90).step_by(5) {
            all.extend(e.evaluate(&report(end, None, Some(0.95))));
        }
        assert_eq!(
            names(&all),
            vec![
                (LOW_PREDICTION_CONFIDENCE.to_string(), AlertStatus::Firing),
                (LOW_PREDICTION_CONFIDENCE.to_string(), AlertStatus::Resolved),
            ]
        );
        assert_eq!(all[0].trigger.starts_at, t(20));
        assert_eq!(all[1].trigger.ends_at, Some(t(35)));
    }

    #[test]
    fn keep_firing_for_delays_resolution_and_restarts_when_the_condition_returns() {
        let config = RulesConfig {
            builtin: false,
            rules: vec![RuleConfig {
                alert: "LowTraffic".to_string(),
                metric: WindowMetric::Requests,
                op: Operator::Lt,
                threshold: 50.0,
                for_duration: Duration::ZERO,
                keep_firing_for: Duration::from_secs(600),
                model: None,
                labels: BTreeMap::from([("severity".to_string(), "critical".to_string())]),
                annotations: BTreeMap::new(),
            }],
            ..RulesConfig::default()
        };
        let mut e = RuleEngine::new(&config).unwrap();
        let with = |end: i64, requests: u64| WindowReport {
            requests,
            ..report(end, None, None)
        };
        let fired = e.evaluate(&with(5, 10));
        assert_eq!(
            names(&fired),
            vec![("LowTraffic".to_string(), AlertStatus::Firing)]
        );
        assert_eq!(fired[0].trigger.labels["severity"], "critical");
        assert_eq!(
            fired[0].notification.annotations["summary"],
            "requests of model m (stable) is 10 (< 50)"
        );
        // Cleared at 10: keeps firing until 10 + 10m.
        assert!(e.evaluate(&with(10, 100)).is_empty());
        assert_eq!(e.active_alerts()[0].keep_firing_since, Some(t(10)));
        // True again at 15: the keep-firing clock restarts.
        assert!(e.evaluate(&with(15, 10)).is_empty());
        assert_eq!(e.active_alerts()[0].keep_firing_since, None);
        assert!(e.evaluate(&with(20, 100)).is_empty());
        assert!(e.evaluate(&with(25, 100)).is_empty());
        let resolved = e.evaluate(&with(30, 100));
        assert_eq!(
            names(&resolved),
            vec![("LowTraffic".to_string(), AlertStatus::Resolved)]
        );
        assert_eq!(resolved[0].trigger.ends_at, Some(t(30)));
        assert_eq!(resolved[0].trigger.starts_at, t(5));
        assert!(e.evaluate(&with(35, 100)).is_empty());
    }

    #[test]
    fn user_rule_on_a_custom_metric_and_missing_custom_value() {
        let config: RulesConfig = serde_json::from_value(serde_json::json!({
            "builtin": false,
            "rules": [{
                "alert": "HighRejectRate",
                "metric": "custom:reject_rate",
                "op": ">=",
                "threshold": 0.2,
                "for": "10m",
                "model": "m",
                "annotations": {
                    "summary": "reject rate {{ $value }} on {{$labels.model}} {{ $other }}"
                }
            }]
        }))
        .unwrap();
        assert_eq!(config.rules[0].for_duration, Duration::from_secs(600));
        let mut e = RuleEngine::new(&config).unwrap();
        let with = |end: i64, v: Option<f64>| {
            let mut r = report(end, None, None);
            r.custom.insert("reject_rate".to_string(), v);
            r
        };
        assert!(e.evaluate(&with(5, Some(0.25))).is_empty());
        // No value (E17 for custom metrics): the pending instance is dropped.
        assert!(e.evaluate(&with(10, None)).is_empty());
        assert!(e.active_alerts().is_empty());
        assert!(e.evaluate(&with(15, Some(0.2))).is_empty());
        let fired = e.evaluate(&with(25, Some(0.31234)));
        assert_eq!(
            names(&fired),
            vec![("HighRejectRate".to_string(), AlertStatus::Firing)]
        );
        assert_eq!(
            fired[0].notification.annotations["summary"],
            "reject rate 0.3123 on m {{ $other }}"
        );
        // Another model is not concerned.
        let mut other = with(30, Some(0.9));
        other.key = SeriesKey::new("other", "", "stable");
        assert!(e.evaluate(&other).is_empty());
        assert_eq!(e.active_alerts().len(), 1);
    }

    fn drift_feature(feature: &str, value: f64, drift: Option<bool>) -> FeatureDrift {
        let method = |m: Method, v: f64, verdict: bool, d: Option<bool>| MethodResult {
            method: m,
            value: Some(v),
            p_value: None,
            dof: None,
            threshold: Some(Threshold {
                value: 0.1,
                direction: m.direction(),
                source: ThresholdSource::Fixed,
            }),
            verdict_method: verdict,
            drift: d,
        };
        FeatureDrift {
            feature: feature.to_string(),
            kind: FeatureKind::Numeric,
            status: if drift.is_some() {
                FeatureStatus::Ok
            } else {
                FeatureStatus::InsufficientData { min_samples: 500 }
            },
            count: 1000,
            missing: 0,
            drift,
            methods: vec![
                method(Method::JensenShannon, value, true, drift),
                method(Method::WassersteinNormed, 0.05, true, drift.map(|_| false)),
                // Not a verdict method: never alerts, even above its threshold.
                method(Method::Psi, 0.9, false, None),
            ],
            new_categories: Vec::new(),
            quality: None,
        }
    }

    /// Issue 21, item 3: the built-in `ModelDataQuality` fires for the feature whose missing
    /// share surged, after its `for` of 10 minutes, with the missing share as its value, and
    /// resolves when the surge ends; a window without a judgement does not count.
    #[test]
    fn data_quality_alert_fires_on_a_missing_surge_and_resolves() {
        let mut e = engine();
        let quality = |feature: &str, rate: f64, surge: Option<bool>| {
            let mut f = drift_feature(feature, 0.01, Some(false));
            f.quality = Some(types::drift::DataQuality {
                missing_rate: rate,
                reference_missing_rate: 0.1,
                out_of_reference_rate: 0.0,
                missing_surge: surge,
            });
            f
        };
        let with = |end: i64, drift: Vec<FeatureDrift>| WindowReport {
            drift,
            ..report(end, None, None)
        };
        let mut fired = Vec::new();
        for end in [5, 10, 15] {
            fired.extend(e.evaluate(&with(
                end,
                vec![
                    quality("x", 0.22, Some(true)),
                    quality("y", 0.3, Some(false)),
                ],
            )));
        }
        let fired: Vec<_> = fired
            .into_iter()
            .filter(|t| t.trigger.alertname == MODEL_DATA_QUALITY)
            .collect();
        assert_eq!(fired.len(), 1, "fires once, at 15m (pending since 5m)");
        let labels = &fired[0].trigger.labels;
        assert_eq!((labels["feature"].as_str(), labels.len()), ("x", 6));
        assert_eq!(
            fired[0].notification.annotations["summary"],
            "Missing values surged on model m (stable): feature x is 0.22 missing"
        );
        let resolved = e.evaluate(&with(20, vec![quality("x", 0.1, Some(false))]));
        assert_eq!(
            names(&resolved),
            vec![(MODEL_DATA_QUALITY.to_string(), AlertStatus::Resolved)]
        );
    }

    #[test]
    fn drift_alert_per_feature_and_verdict_method() {
        let mut e = engine();
        let with = |end: i64, drift: Vec<FeatureDrift>| WindowReport {
            drift,
            ..report(end, None, None)
        };
        let mut all = Vec::new();
        for end in [5, 10] {
            all.extend(e.evaluate(&with(end, vec![drift_feature("x", 0.3, Some(true))])));
        }
        assert!(all.is_empty());
        let pending = e.active_alerts();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].labels["method"], "jensen_shannon");
        let fired = e.evaluate(&with(15, vec![drift_feature("x", 0.31, Some(true))]));
        assert_eq!(
            names(&fired),
            vec![(MODEL_DATA_DRIFT.to_string(), AlertStatus::Firing)]
        );
        let labels = &fired[0].trigger.labels;
        assert_eq!(labels["feature"], "x");
        assert_eq!(labels["method"], "jensen_shannon");
        assert_eq!(labels["severity"], "warning");
        assert_eq!(labels.len(), 7);
        assert!(fired[0].trigger.is_drift());
        assert_eq!(
            fired[0].notification.annotations["summary"],
            "Data drift on model m (stable): feature x, jensen_shannon = 0.31"
        );
        // Insufficient data: no verdict, the condition no longer holds.
        let resolved = e.evaluate(&with(20, vec![drift_feature("x", 0.4, None)]));
        assert_eq!(
            names(&resolved),
            vec![(MODEL_DATA_DRIFT.to_string(), AlertStatus::Resolved)]
        );
    }

    #[test]
    fn empty_version_is_left_out_and_stale_series_resolve() {
        let mut e = RuleEngine::new(&RulesConfig {
            resolve_stale_after: Duration::from_secs(1800),
            ..RulesConfig::default()
        })
        .unwrap();
        let with = |key: SeriesKey, end: i64, p95: Option<f64>| WindowReport {
            key,
            ..report(end, p95, None)
        };
        let silent = SeriesKey::new("silent", "", "canary");
        let busy = SeriesKey::new("busy", "v1", "stable");
        e.evaluate(&with(silent.clone(), 5, Some(5000.0)));
        let fired = e.evaluate(&with(silent.clone(), 10, Some(5000.0)));
        assert_eq!(fired.len(), 1);
        assert!(!fired[0].trigger.labels.contains_key("version"));
        assert_eq!(fired[0].trigger.version(), None);
        // The silent series closes no more windows; another series moves event time on.
        assert!(e.evaluate(&with(busy.clone(), 35, None)).is_empty());
        let resolved = e.evaluate(&with(busy, 40, None));
        assert_eq!(
            names(&resolved),
            vec![(HIGH_MODEL_LATENCY.to_string(), AlertStatus::Resolved)]
        );
        assert_eq!(resolved[0].trigger.ends_at, Some(t(40)));
        // A replayed (not newer) report of a series is ignored.
        assert!(e.evaluate(&with(silent, 10, Some(5000.0))).is_empty());
        assert!(e.active_alerts().is_empty());
    }

    #[test]
    fn config_is_strict_and_validated() {
        let unknown = serde_json::from_value::<RulesConfig>(serde_json::json!({"bultin": true}));
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `bultin`")
        );
        let bad_metric = serde_json::from_value::<RuleConfig>(serde_json::json!({
            "alert": "A", "metric": "drift:x:nope", "op": ">", "threshold": 1.0
        }));
        assert!(
            bad_metric
                .unwrap_err()
                .to_string()
                .contains("unknown drift method `nope`")
        );
        let m: WindowMetric = "drift:a:b:ks".parse().unwrap();
        assert_eq!(
            m,
            WindowMetric::Drift {
                feature: "a:b".to_string(),
                method: Method::Ks
            }
        );
        assert_eq!(m.to_string(), "drift:a:b:ks");
        let rule = |alert: &str, labels: &[(&str, &str)]| RulesConfig {
            rules: vec![RuleConfig {
                alert: alert.to_string(),
                metric: WindowMetric::LatencyP99,
                op: Operator::Gt,
                threshold: 2.0,
                for_duration: Duration::ZERO,
                keep_firing_for: Duration::ZERO,
                model: None,
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                annotations: BTreeMap::new(),
            }],
            ..RulesConfig::default()
        };
        let err = RuleEngine::new(&rule("HighModelLatency", &[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid alert rule `HighModelLatency`: `alert` is used by another rule"
        );
        let err = RuleEngine::new(&rule("A", &[("model", "x")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("`labels.model` is set by the engine"),
            "{err}"
        );
        let err = RuleEngine::new(&rule("A", &[("bad-name", "x")])).unwrap_err();
        assert!(
            err.to_string()
                .contains("`labels.bad-name` is not a valid label name"),
            "{err}"
        );
        assert_eq!(
            RuleEngine::new(&rule("A", &[])).unwrap().rule_names(),
            vec![
                HIGH_MODEL_LATENCY,
                MODEL_DATA_DRIFT,
                LOW_PREDICTION_CONFIDENCE,
                MODEL_DATA_QUALITY,
                "A"
            ]
        );
    }

    #[test]
    fn values_are_formatted_with_four_significant_digits() {
        assert_eq!(format_value(2.0), "2");
        assert_eq!(format_value(0.31234), "0.3123");
        assert_eq!(format_value(1234.6), "1235");
        assert_eq!(format_value(0.000_012_5), "1.250e-5");
        assert_eq!(format_value(0.0), "0");
    }

    #[tokio::test]
    async fn observe_sends_triggers_on_the_channel() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut e = RuleEngine::new(&RulesConfig::default())
            .unwrap()
            .with_triggers(tx);
        for end in (5..=15).step_by(5) {
            assert!(e.observe(&report(end, None, Some(0.1))).await.is_empty());
        }
        assert!(rx.try_recv().is_err());
        assert_eq!(e.observe(&report(20, None, Some(0.1))).await.len(), 1);
        let trig = rx.try_recv().unwrap();
        assert_eq!(trig.alertname, LOW_PREDICTION_CONFIDENCE);
        assert_eq!(trig.status, AlertStatus::Firing);
        assert_eq!(trig.starts_at, t(20));
        assert!(rx.try_recv().is_err());
        e.observe(&report(25, None, Some(0.9))).await;
        let trig = rx.try_recv().unwrap();
        assert_eq!(trig.status, AlertStatus::Resolved);
        assert_eq!(trig.ends_at, Some(t(25)));
        assert!(rx.try_recv().is_err());
    }
}
