//! The built-in rules of `docs/metrics.md` (`HighModelLatency`, `ModelDataDrift`,
//! `LowPredictionConfidence`, `ModelDataQuality`, mirroring `rules/driftwatch.rules.yaml`) and
//! the `builtin` / `builtin_for` settings that switch them off or override their `for`.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use types::names::alert::{
    HIGH_MODEL_LATENCY, LOW_PREDICTION_CONFIDENCE, MODEL_DATA_DRIFT, MODEL_DATA_QUALITY,
};

use super::config::{Operator, RulesConfig};
use super::metric::WindowMetric;
use super::rule::{Condition, Rule, warning};
use crate::error::AlertingError;

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

/// The built-in rules `config` asks for: none unless `config.builtin`, with the `for` durations
/// of `config.builtin_for` (and the descriptions stating them) overridden.
///
/// # Errors
/// [`AlertingError::InvalidRule`] when `builtin_for` names no built-in rule, is set while
/// `builtin` is false, or holds a duration too long for event-time arithmetic.
pub(super) fn configured(config: &RulesConfig) -> Result<Vec<Rule>, AlertingError> {
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
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use types::FeatureKind;
    use types::drift::{
        FeatureDrift, FeatureStatus, Method, MethodResult, Threshold, ThresholdSource,
    };
    use types::report::WindowReport;

    use super::super::fixtures::{engine, names, report, t};
    use super::*;
    use crate::rules::RuleEngine;
    use crate::trigger::AlertStatus;

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
}
