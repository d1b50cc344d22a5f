//! The alert state machine: one [`Instance`] per alert label set goes inactive -> pending ->
//! firing -> (kept firing) -> resolved, one [`Step`] per evaluation; [`AlertState`] and the
//! [`ActiveAlert`] snapshot of an instance for status pages.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use types::report::SeriesKey;

use super::rule::Rule;

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
    ///
    /// [`fingerprint`]: crate::trigger::fingerprint
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

#[derive(Debug, Clone)]
pub(super) struct Instance {
    pub(super) rule: usize,
    pub(super) series: SeriesKey,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) annotations: BTreeMap<String, String>,
    pub(super) state: AlertState,
    pub(super) active_since: DateTime<Utc>,
    pub(super) fired_at: Option<DateTime<Utc>>,
    pub(super) keep_firing_since: Option<DateTime<Utc>>,
    pub(super) value: Option<f64>,
    pub(super) last_evaluated: DateTime<Utc>,
}

/// What one evaluation does to an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Stay,
    Fire,
    Resolve,
    Drop,
}

impl Instance {
    pub(super) fn step(&mut self, holds: bool, now: DateTime<Utc>, rule: &Rule) -> Step {
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

    pub(super) fn active(&self, fingerprint: &str) -> ActiveAlert {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use types::report::{Quantiles, WindowReport};

    use super::super::fixtures::{engine, names, report, t};
    use super::*;
    use crate::rules::{
        HIGH_MODEL_LATENCY, LOW_PREDICTION_CONFIDENCE, Operator, RuleConfig, RuleEngine,
        RulesConfig, WindowMetric,
    };
    use crate::trigger::{AlertStatus, TriggerSource, fingerprint};

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
            r.latency_seconds = Quantiles::default();
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
}
