//! A compiled alert rule ([`Rule`]: a [`Condition`], its `for` and `keep_firing_for`, labels
//! and annotation templates), the validation of user rules into rules, and the [`Candidate`]
//! alert instances a rule produces from one window report.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::TimeDelta;
use types::report::{SeriesKey, WindowReport};

use super::config::{Operator, RuleConfig};
use super::metric::WindowMetric;
use crate::error::AlertingError;

#[derive(Debug, Clone)]
pub(super) enum Condition {
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
pub(super) struct Rule {
    pub(super) name: String,
    pub(super) condition: Condition,
    pub(super) for_duration: TimeDelta,
    pub(super) keep_firing_for: TimeDelta,
    pub(super) model: Option<String>,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) annotations: BTreeMap<String, String>,
}

const RESERVED_LABELS: [&str; 6] = [
    "alertname",
    "model",
    "version",
    "variant",
    "feature",
    "method",
];

pub(super) fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

pub(super) fn warning() -> BTreeMap<String, String> {
    BTreeMap::from([("severity".to_string(), "warning".to_string())])
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn user_rule(c: &RuleConfig) -> Result<Rule, AlertingError> {
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

/// One instance a rule produces from a report.
pub(super) struct Candidate {
    pub(super) labels: BTreeMap<String, String>,
    pub(super) value: Option<f64>,
    pub(super) holds: bool,
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

pub(super) fn candidates(rule: &Rule, report: &WindowReport) -> Vec<Candidate> {
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
    use std::time::Duration;

    use super::super::fixtures::{names, report};
    use crate::rules::{RuleEngine, RulesConfig};
    use crate::trigger::AlertStatus;
    use types::report::SeriesKey;

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
}
