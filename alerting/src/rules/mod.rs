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
//!
//! # Layout
//!
//! This module owns [`RuleEngine`] (evaluation, stale resolution, the public API) and re-exports
//! the public types of its parts, whose dependencies point one way
//! (`metric` <- `config` <- `rule` <- `builtin`; `rule` <- `state` <- `status` and `fanout`;
//! `template` depends on none of them):
//!
//! - `metric`: [`WindowMetric`], its configuration syntax, parser and value in a report;
//! - `config`: [`RulesConfig`], [`RuleConfig`] and [`Operator`];
//! - `rule`: a compiled rule, the validation of user rules, the instances a rule produces;
//! - `builtin`: the built-in rules and `builtin_for`;
//! - `template`: annotation templates and value formatting;
//! - `state`: the alert state machine, [`AlertState`] and [`ActiveAlert`];
//! - `status`: [`AlertsView`] for status pages;
//! - `fanout`: [`Transition`] and its delivery to the controller and Alertmanager.
//!
//! [`AlertNotification`]: crate::alertmanager::AlertNotification
//! [`TriggerSource::Engine`]: crate::trigger::TriggerSource::Engine

mod builtin;
mod config;
mod fanout;
#[cfg(test)]
mod fixtures;
mod metric;
mod rule;
mod state;
mod status;
mod template;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::mpsc;
use types::report::{SeriesKey, WindowReport};

use crate::alertmanager::AlertmanagerHandle;
use crate::error::AlertingError;
use crate::trigger::{AlertStatus, AlertTrigger, fingerprint};

pub use config::{Operator, RuleConfig, RulesConfig};
pub use fanout::Transition;
pub use metric::WindowMetric;
pub use state::{ActiveAlert, AlertState};
pub use status::AlertsView;
pub use types::names::alert::{
    HIGH_MODEL_LATENCY, LOW_PREDICTION_CONFIDENCE, MODEL_DATA_DRIFT, MODEL_DATA_QUALITY,
};

use rule::{Candidate, Rule};
use state::{Instance, Step};

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
        let mut rules = builtin::configured(config)?;
        for c in &config.rules {
            rules.push(rule::user_rule(c)?);
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
            resolve_stale_after: rule::delta(config.resolve_stale_after),
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
    ///
    /// [`AlertNotification`]: crate::alertmanager::AlertNotification
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
        fanout::send(
            &transitions,
            self.triggers.as_ref(),
            self.alertmanager.as_ref(),
        )
        .await;
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
            .flat_map(|(idx, rule)| {
                rule::candidates(rule, report)
                    .into_iter()
                    .map(move |c| (idx, c))
            })
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
                    .map(|(k, v)| (k.clone(), template::render(v, &inst.labels, inst.value)))
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
        Some(Transition::of_instance(
            fp,
            inst,
            status,
            ends_at,
            self.generator_url.clone(),
        ))
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
        self.view.publish(self.active_alerts());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use types::report::{SeriesKey, WindowReport};

    use super::fixtures::{names, report, t};
    use super::*;

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
}
