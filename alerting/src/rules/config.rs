//! The rule engine's configuration: [`RulesConfig`] (the `[rules]` section), the user rules'
//! [`RuleConfig`] and their comparison [`Operator`]. Plain serde types; validation happens when
//! the engine compiles them (`rule.rs`, `builtin.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::metric::WindowMetric;

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
    ///
    /// [`AlertingError::InvalidRule`]: crate::error::AlertingError::InvalidRule
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use types::drift::Method;

    use super::*;
    use crate::rules::{
        HIGH_MODEL_LATENCY, LOW_PREDICTION_CONFIDENCE, MODEL_DATA_DRIFT, MODEL_DATA_QUALITY,
        RuleEngine,
    };

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
}
