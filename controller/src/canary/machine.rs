//! The canary analysis as a pure state machine: `step(previous state, policy, observation) ->
//! transition`. No I/O: the reconciler reads the target and the metrics, calls [`step`], then
//! applies the returned traffic actions in order and stores the new state in the status.
//!
//! Phases: `Initializing` (a canary version is seen, no traffic given yet) -> `Progressing`
//! (weight raised by `stepWeight` after each step where every check passes with at least
//! `minRequestsPerStep` canary requests) -> `Promoting` (the target is told to send all traffic
//! to the new version) -> `Succeeded` once the target reports the new version ready. A check that
//! reaches one of its limits ends in `Failed` after a rollback whose first action sets canary
//! traffic to 0. When the metrics source as a whole is down the analysis is `Holding`: traffic
//! stays where it is and nothing is counted, since an outage says nothing about the canary.
//! A new canary version seen in any phase resets the analysis.
//!
//! Counting: failures count over the whole analysis (a flapping check does not get to pass);
//! no-data and provider-error results count consecutively and reset on any other outcome.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::checks::{CheckMeasurement, CheckOutcome, Sample, evaluate};
use crate::crd::CanaryPolicy;
pub use crate::crd::{CanaryPhase, CanaryState, CheckCounters};

/// Requeue interval when nothing is pending: a terminal canary phase, no canary, no running Job
/// (5 min; the reconciler uses it too).
pub const IDLE_REQUEUE: Duration = Duration::from_secs(300);

/// What the traffic adapter must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficAction {
    /// Send this percent (0 to 100) of traffic to the canary, the rest to the stable version.
    SetCanaryWeight(u32),
    /// Send all traffic to the new version (Seldon: canary 100, stable 0; KServe:
    /// `canaryTrafficPercent: 100`).
    Promote,
    /// After promotion, once the new version is ready: KServe drops `canaryTrafficPercent`;
    /// nothing for Seldon.
    Finalize,
}

/// The state of the target object, as the adapter read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetObservation {
    /// Identity of the deployed canary version; `None` when no canary is deployed.
    pub canary_version: Option<String>,
    /// Canary traffic percent currently set on the target, if any.
    pub canary_weight: Option<u32>,
    /// Whether the newest version is rolled out and ready (used while `Promoting`).
    pub rollout_ready: bool,
}

/// The measurements of one step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// Canary requests in the step's interval; `None` when unknown (treated as 0).
    pub canary_requests: Option<u64>,
    /// One sample per check name; a missing entry is no data.
    pub samples: std::collections::BTreeMap<String, Sample>,
}

/// Everything a step looks at.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The current time.
    pub now: DateTime<Utc>,
    /// The target object's state.
    pub target: &'a TargetObservation,
    /// The measurements, or why the metrics source as a whole could not be read.
    pub metrics: Result<&'a Inputs, &'a str>,
}

/// A Kubernetes Event the reconciler should record for a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineEvent {
    /// `Warning` when true, else `Normal`.
    pub warning: bool,
    /// CamelCase reason, e.g. `RolledBack`.
    pub reason: &'static str,
    /// Human-readable note.
    pub note: String,
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The new state.
    pub state: CanaryState,
    /// Traffic actions to apply, in order, before the state is stored.
    pub actions: Vec<TrafficAction>,
    /// Events to record.
    pub events: Vec<MachineEvent>,
    /// When to look again.
    pub requeue_after: Duration,
}

/// Advances the analysis by one observation. Pure: the same inputs give the same transition.
pub fn step(prev: Option<&CanaryState>, policy: &CanaryPolicy, obs: Observation<'_>) -> Transition {
    let interval = Duration::from_secs(policy.interval_seconds.max(1));
    let mut state = prev.cloned().unwrap_or_default();
    let mut events = Vec::new();

    let Some(version) = obs.target.canary_version.clone() else {
        if !state.phase.is_terminal() && state.canary_version.is_some() {
            events.push(MachineEvent {
                warning: true,
                reason: "CanaryRemoved",
                note: "the canary was removed from the target; analysis stopped".to_string(),
            });
            state = CanaryState {
                message: "the canary was removed from the target".to_string(),
                ..CanaryState::default()
            };
        } else if state.canary_version.is_none() {
            state.message = "no canary deployed".to_string();
        }
        return idle(state, events);
    };

    if state.canary_version.as_deref() != Some(version.as_str()) {
        if let Some(old) = state.canary_version.as_deref()
            && !state.phase.is_terminal()
        {
            events.push(MachineEvent {
                warning: false,
                reason: "AnalysisReset",
                note: format!("new canary version {version} replaced {old} mid-analysis"),
            });
        }
        state = CanaryState {
            canary_version: Some(version.clone()),
            ..CanaryState::default()
        };
    }

    match state.phase {
        CanaryPhase::Succeeded | CanaryPhase::Failed => idle(state, events),
        CanaryPhase::Initializing => {
            let weight = policy.step_weight.min(policy.max_weight);
            state.phase = CanaryPhase::Progressing;
            state.weight = weight;
            state.step = 1;
            state.last_step_at = Some(obs.now);
            state.message = format!("canary {version} started at {weight}%");
            events.push(MachineEvent {
                warning: false,
                reason: "CanaryStarted",
                note: state.message.clone(),
            });
            Transition {
                state,
                actions: vec![TrafficAction::SetCanaryWeight(weight)],
                events,
                requeue_after: interval,
            }
        }
        CanaryPhase::Promoting => {
            // Failures recorded at or over a check's limit (a status written by an older
            // controller, or a policy whose limit was lowered) roll back rather than promote.
            let over = policy.checks.iter().find_map(|check| {
                let c = state.counters.iter().find(|c| c.name == check.name)?;
                (c.failures >= check.failure_limit).then(|| {
                    format!(
                        "check {} failed {} time(s) (limit {}) before the promotion completed",
                        check.name, c.failures, check.failure_limit
                    )
                })
            });
            if let Some(reason) = over {
                roll_back(state, events, &reason)
            } else if obs.target.rollout_ready {
                state.phase = CanaryPhase::Succeeded;
                state.weight = 100;
                state.message = format!("canary {version} promoted");
                events.push(MachineEvent {
                    warning: false,
                    reason: "Promoted",
                    note: state.message.clone(),
                });
                Transition {
                    state,
                    actions: vec![TrafficAction::Finalize],
                    events,
                    requeue_after: IDLE_REQUEUE,
                }
            } else {
                state.message = format!("waiting for {version} to be ready after promotion");
                Transition {
                    state,
                    actions: vec![],
                    events,
                    requeue_after: interval,
                }
            }
        }
        CanaryPhase::Progressing | CanaryPhase::Holding => {
            analyse(state, policy, obs, interval, events)
        }
    }
}

/// Ends the analysis in `Failed`: canary traffic to 0 first, a `RolledBack` Warning saying why.
fn roll_back(mut state: CanaryState, mut events: Vec<MachineEvent>, reason: &str) -> Transition {
    state.phase = CanaryPhase::Failed;
    state.weight = 0;
    state.message = format!("rolled back: {reason}");
    events.push(MachineEvent {
        warning: true,
        reason: "RolledBack",
        note: state.message.clone(),
    });
    Transition {
        state,
        actions: vec![TrafficAction::SetCanaryWeight(0)],
        events,
        requeue_after: IDLE_REQUEUE,
    }
}

fn idle(state: CanaryState, events: Vec<MachineEvent>) -> Transition {
    Transition {
        state,
        actions: vec![],
        events,
        requeue_after: IDLE_REQUEUE,
    }
}

fn analyse(
    mut state: CanaryState,
    policy: &CanaryPolicy,
    obs: Observation<'_>,
    interval: Duration,
    mut events: Vec<MachineEvent>,
) -> Transition {
    if let Some(last) = state.last_step_at {
        let due = last + chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
        if obs.now < due && state.phase == CanaryPhase::Progressing {
            let wait = (due - obs.now).to_std().unwrap_or(interval);
            return Transition {
                state,
                actions: vec![],
                events,
                requeue_after: wait,
            };
        }
    }
    let inputs = match obs.metrics {
        Err(reason) => {
            if state.phase != CanaryPhase::Holding {
                events.push(MachineEvent {
                    warning: true,
                    reason: "AnalysisHeld",
                    note: format!(
                        "metrics source down ({reason}); holding at {}%",
                        state.weight
                    ),
                });
            }
            state.phase = CanaryPhase::Holding;
            state.message = format!(
                "metrics source down: {reason}; traffic held at {}%",
                state.weight
            );
            return Transition {
                state,
                actions: vec![],
                events,
                requeue_after: interval,
            };
        }
        Ok(inputs) => inputs,
    };
    if state.phase == CanaryPhase::Holding {
        events.push(MachineEvent {
            warning: false,
            reason: "AnalysisResumed",
            note: "metrics source is back; analysis resumed".to_string(),
        });
        state.phase = CanaryPhase::Progressing;
    }

    let requests = inputs.canary_requests.unwrap_or(0);
    let enough = requests >= policy.min_requests_per_step;
    let measurements: Vec<CheckMeasurement> = policy
        .checks
        .iter()
        .map(|check| {
            if enough {
                evaluate(check, inputs.samples.get(&check.name))
            } else {
                CheckMeasurement {
                    name: check.name.clone(),
                    outcome: CheckOutcome::NoData,
                    value: None,
                    message: format!(
                        "{requests} canary requests, fewer than the {} a step needs",
                        policy.min_requests_per_step
                    ),
                }
            }
        })
        .collect();

    let mut breach = None;
    let mut counters = Vec::with_capacity(policy.checks.len());
    for (check, m) in policy.checks.iter().zip(&measurements) {
        let mut c = state
            .counters
            .iter()
            .find(|c| c.name == check.name)
            .cloned()
            .unwrap_or_else(|| CheckCounters {
                name: check.name.clone(),
                ..CheckCounters::default()
            });
        match m.outcome {
            CheckOutcome::Pass => (c.no_data, c.provider_errors) = (0, 0),
            CheckOutcome::Fail => {
                (c.failures, c.no_data, c.provider_errors) = (c.failures + 1, 0, 0)
            }
            CheckOutcome::NoData => (c.no_data, c.provider_errors) = (c.no_data + 1, 0),
            CheckOutcome::ProviderError => {
                (c.no_data, c.provider_errors) = (0, c.provider_errors + 1)
            }
        }
        let reached = [
            ("failed", c.failures, check.failure_limit),
            ("had no data", c.no_data, check.no_data_limit),
            (
                "had provider errors",
                c.provider_errors,
                check.provider_error_limit,
            ),
        ]
        .into_iter()
        .find(|(_, count, limit)| count >= limit);
        if breach.is_none()
            && let Some((what, count, limit)) = reached
        {
            breach = Some(format!(
                "check {} {what} {count} time(s) (limit {limit}): {}",
                check.name, m.message
            ));
        }
        counters.push(c);
    }
    state.counters = counters;
    state.canary_requests = Some(requests);
    state.last_step_at = Some(obs.now);
    let all_pass = enough && measurements.iter().all(|m| m.outcome == CheckOutcome::Pass);
    state.last_measurements = measurements;

    if let Some(reason) = breach {
        return roll_back(state, events, &reason);
    }
    if !all_pass {
        state.message = format!(
            "holding at {}%: not every check passed with {requests} canary requests",
            state.weight
        );
        return Transition {
            state,
            actions: vec![],
            events,
            requeue_after: interval,
        };
    }
    if state.weight >= policy.max_weight {
        state.phase = CanaryPhase::Promoting;
        state.message = format!("all checks passed at {}%; promoting", state.weight);
        events.push(MachineEvent {
            warning: false,
            reason: "Promoting",
            note: state.message.clone(),
        });
        return Transition {
            state,
            actions: vec![TrafficAction::Promote],
            events,
            requeue_after: interval,
        };
    }
    let weight = (state.weight + policy.step_weight).min(policy.max_weight);
    state.weight = weight;
    state.step += 1;
    state.message = format!("all checks passed; canary weight raised to {weight}%");
    events.push(MachineEvent {
        warning: false,
        reason: "StepAdvanced",
        note: state.message.clone(),
    });
    Transition {
        state,
        actions: vec![TrafficAction::SetCanaryWeight(weight)],
        events,
        requeue_after: interval,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;

    use super::*;

    fn policy(checks: serde_json::Value) -> CanaryPolicy {
        serde_json::from_value(serde_json::json!({
            "target": {"kind": "SeldonDeployment", "name": "car-loan"},
            "stepWeight": 20, "maxWeight": 40, "intervalSeconds": 60, "minRequestsPerStep": 100,
            "checks": checks
        }))
        .expect("policy")
    }

    fn latency_and_success() -> CanaryPolicy {
        policy(serde_json::json!([
            {"name": "latency", "kind": "LatencyRatio", "max": 1.2},
            {"name": "success", "kind": "SuccessRate", "min": 0.99, "noDataLimit": 3}
        ]))
    }

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 17, 0, 0)
            .single()
            .expect("time")
            + chrono::Duration::minutes(minute)
    }

    fn target(version: &str) -> TargetObservation {
        TargetObservation {
            canary_version: Some(version.into()),
            canary_weight: None,
            rollout_ready: false,
        }
    }

    fn inputs(requests: u64, latency: Sample, success: Sample) -> Inputs {
        Inputs {
            canary_requests: Some(requests),
            samples: BTreeMap::from([("latency".into(), latency), ("success".into(), success)]),
        }
    }

    fn healthy() -> Inputs {
        inputs(
            500,
            Sample::Ratio {
                numerator: 0.11,
                denominator: 0.1,
            },
            Sample::Ratio {
                numerator: 499.0,
                denominator: 500.0,
            },
        )
    }

    fn run(
        prev: Option<&CanaryState>,
        p: &CanaryPolicy,
        t: &TargetObservation,
        m: Result<&Inputs, &str>,
        minute: i64,
    ) -> Transition {
        step(
            prev,
            p,
            Observation {
                now: at(minute),
                target: t,
                metrics: m,
            },
        )
    }

    /// Starts an analysis of `v2` and returns the state after the first (Initializing) step.
    fn started(p: &CanaryPolicy) -> CanaryState {
        let t = run(None, p, &target("v2"), Ok(&healthy()), 0);
        assert_eq!(t.actions, vec![TrafficAction::SetCanaryWeight(20)]);
        assert_eq!(t.state.phase, CanaryPhase::Progressing);
        t.state
    }

    #[test]
    fn healthy_canary_steps_then_promotes_then_succeeds() {
        let p = latency_and_success();
        let s = started(&p);
        let t = run(Some(&s), &p, &target("v2"), Ok(&healthy()), 1);
        assert_eq!(t.actions, vec![TrafficAction::SetCanaryWeight(40)]);
        let t = run(Some(&t.state), &p, &target("v2"), Ok(&healthy()), 2);
        assert_eq!(
            (t.actions.as_slice(), t.state.phase),
            ([TrafficAction::Promote].as_slice(), CanaryPhase::Promoting)
        );
        let not_ready = run(Some(&t.state), &p, &target("v2"), Ok(&healthy()), 3);
        assert_eq!(
            (not_ready.actions.len(), not_ready.state.phase),
            (0, CanaryPhase::Promoting)
        );
        let ready = TargetObservation {
            rollout_ready: true,
            ..target("v2")
        };
        let done = run(Some(&not_ready.state), &p, &ready, Ok(&healthy()), 4);
        assert_eq!(done.actions, vec![TrafficAction::Finalize]);
        assert_eq!(
            (done.state.phase, done.state.weight),
            (CanaryPhase::Succeeded, 100)
        );
        assert_eq!(done.events[0].reason, "Promoted");
    }

    #[test]
    fn a_step_waits_for_its_interval() {
        let p = latency_and_success();
        let s = started(&p);
        let early = step(
            Some(&s),
            &p,
            Observation {
                now: at(0) + chrono::Duration::seconds(45),
                target: &target("v2"),
                metrics: Ok(&healthy()),
            },
        );
        assert!(early.actions.is_empty());
        assert_eq!(early.requeue_after, Duration::from_secs(15));
        assert_eq!(early.state, s);
    }

    #[test]
    fn e15_zero_over_zero_success_rate_is_no_data_and_never_promoted() {
        // No request gate, so the 0/0 success rate itself is what the machine sees.
        let mut p = latency_and_success();
        p.min_requests_per_step = 0;
        let zero = inputs(
            0,
            Sample::Value(1.0),
            Sample::Ratio {
                numerator: 0.0,
                denominator: 0.0,
            },
        );
        let mut s = started(&p);
        for minute in 1..=2 {
            let t = run(Some(&s), &p, &target("v2"), Ok(&zero), minute);
            assert!(t.actions.is_empty(), "no traffic change on no data");
            let success = &t.state.last_measurements[1];
            assert_eq!(
                (success.name.as_str(), success.outcome),
                ("success", CheckOutcome::NoData)
            );
            assert_eq!(t.state.weight, 20);
            s = t.state;
        }
        // The third no-data step reaches the check's own limit (3): rollback, never promotion.
        let t = run(Some(&s), &p, &target("v2"), Ok(&zero), 3);
        assert_eq!(t.actions, vec![TrafficAction::SetCanaryWeight(0)]);
        assert_eq!(t.state.phase, CanaryPhase::Failed);
        assert_eq!(t.state.counters[1].no_data, 3);
        assert_eq!(
            t.state.counters[0].no_data, 0,
            "latency passed: its counter is its own"
        );
        assert!(
            t.state
                .message
                .contains("check success had no data 3 time(s) (limit 3)"),
            "{}",
            t.state.message
        );
    }

    #[test]
    fn e16_empty_query_result_is_no_data_counted_against_its_own_limit() {
        let p = latency_and_success();
        let empty = inputs(
            500,
            Sample::Empty("query `histogram_quantile(0.95, ...)`".into()),
            Sample::Ratio {
                numerator: 500.0,
                denominator: 500.0,
            },
        );
        let mut s = started(&p);
        for minute in 1..=4 {
            let t = run(Some(&s), &p, &target("v2"), Ok(&empty), minute);
            assert!(t.actions.is_empty());
            let latency = &t.state.last_measurements[0];
            assert_eq!(latency.outcome, CheckOutcome::NoData);
            assert_eq!(
                latency.message,
                "query `histogram_quantile(0.95, ...)` returned an empty result"
            );
            assert_eq!(
                t.state.counters[0].no_data,
                u32::try_from(minute).expect("small")
            );
            s = t.state;
        }
        // latency's noDataLimit is the default 5.
        let t = run(Some(&s), &p, &target("v2"), Ok(&empty), 5);
        assert_eq!(
            (t.state.phase, t.actions.as_slice()),
            (
                CanaryPhase::Failed,
                [TrafficAction::SetCanaryWeight(0)].as_slice()
            )
        );
    }

    #[test]
    fn canary_without_traffic_is_never_promoted() {
        let mut p = latency_and_success();
        p.checks[1].no_data_limit = 100;
        p.checks[0].no_data_limit = 100;
        let mut s = started(&p);
        for minute in 1..=50 {
            let idle = Inputs {
                canary_requests: Some(0),
                samples: healthy().samples,
            };
            let t = run(Some(&s), &p, &target("v2"), Ok(&idle), minute);
            assert!(t.actions.is_empty(), "minute {minute}: {:?}", t.actions);
            assert_eq!(t.state.phase, CanaryPhase::Progressing);
            assert!(
                t.state
                    .last_measurements
                    .iter()
                    .all(|m| m.outcome == CheckOutcome::NoData)
            );
            assert_eq!(
                t.state.last_measurements[0].message,
                "0 canary requests, fewer than the 100 a step needs"
            );
            s = t.state;
        }
        // Unknown request count counts as zero too, even with no checks configured at all.
        let no_checks = policy(serde_json::json!([]));
        let s = started(&no_checks);
        let t = run(
            Some(&s),
            &no_checks,
            &target("v2"),
            Ok(&Inputs::default()),
            1,
        );
        assert!(t.actions.is_empty());
    }

    #[test]
    fn metrics_source_down_holds_instead_of_rolling_back() {
        let p = latency_and_success();
        let s = started(&p);
        let mut state = s;
        for minute in 1..=20 {
            let t = run(
                Some(&state),
                &p,
                &target("v2"),
                Err("connection refused"),
                minute,
            );
            assert!(
                t.actions.is_empty(),
                "traffic untouched while the source is down"
            );
            assert_eq!((t.state.phase, t.state.weight), (CanaryPhase::Holding, 20));
            assert_eq!(
                t.events.len(),
                usize::from(minute == 1),
                "one AnalysisHeld event on entry"
            );
            state = t.state;
        }
        assert!(
            state.counters.is_empty(),
            "an outage is not counted against any check"
        );
        let back = run(Some(&state), &p, &target("v2"), Ok(&healthy()), 21);
        assert_eq!(back.state.phase, CanaryPhase::Progressing);
        assert_eq!(back.actions, vec![TrafficAction::SetCanaryWeight(40)]);
        assert_eq!(back.events[0].reason, "AnalysisResumed");
    }

    #[test]
    fn failing_latency_check_rolls_back_with_traffic_zero_first() {
        let p = latency_and_success();
        let s = started(&p);
        let slow = inputs(
            500,
            Sample::Ratio {
                numerator: 0.25,
                denominator: 0.1,
            },
            Sample::Ratio {
                numerator: 500.0,
                denominator: 500.0,
            },
        );
        let t = run(Some(&s), &p, &target("v2"), Ok(&slow), 1);
        assert_eq!(t.actions.first(), Some(&TrafficAction::SetCanaryWeight(0)));
        assert_eq!(t.actions.len(), 1);
        assert_eq!((t.state.phase, t.state.weight), (CanaryPhase::Failed, 0));
        assert_eq!(
            t.state.message,
            "rolled back: check latency failed 1 time(s) (limit 1): 2.5 is above max 1.2"
        );
        assert_eq!(t.events[0].reason, "RolledBack");
        assert!(t.events[0].warning);
        // Terminal: later observations of the same version change nothing.
        let after = run(Some(&t.state), &p, &target("v2"), Ok(&healthy()), 2);
        assert!(after.actions.is_empty());
        assert_eq!(after.state.phase, CanaryPhase::Failed);
    }

    #[test]
    fn a_new_version_mid_analysis_resets_the_analysis() {
        let mut p = latency_and_success();
        p.checks[0].failure_limit = 2;
        let s = started(&p);
        let slow = inputs(
            500,
            Sample::Value(2.0),
            Sample::Ratio {
                numerator: 500.0,
                denominator: 500.0,
            },
        );
        let t = run(Some(&s), &p, &target("v2"), Ok(&slow), 1);
        assert_eq!(t.state.counters[0].failures, 1);
        let reset = run(Some(&t.state), &p, &target("v3"), Ok(&slow), 2);
        assert_eq!(reset.state.canary_version.as_deref(), Some("v3"));
        assert_eq!((reset.state.step, reset.state.weight), (1, 20));
        assert!(
            reset.state.counters.is_empty(),
            "v2's failure is not held against v3"
        );
        assert!(reset.state.last_measurements.is_empty());
        assert_eq!(reset.actions, vec![TrafficAction::SetCanaryWeight(20)]);
        assert_eq!(reset.events[0].reason, "AnalysisReset");
        // A new version after a rollback starts a fresh analysis too.
        let failed = CanaryState {
            phase: CanaryPhase::Failed,
            ..reset.state.clone()
        };
        let again = run(Some(&failed), &p, &target("v4"), Ok(&healthy()), 3);
        assert_eq!(
            (again.state.phase, again.state.step),
            (CanaryPhase::Progressing, 1)
        );
    }

    #[test]
    fn provider_errors_count_consecutively_and_reset_on_pass() {
        let mut p = latency_and_success();
        p.checks[0].provider_error_limit = 2;
        let s = started(&p);
        let bad = inputs(
            500,
            Sample::Error("bad_data".into()),
            Sample::Ratio {
                numerator: 1.0,
                denominator: 1.0,
            },
        );
        let t1 = run(Some(&s), &p, &target("v2"), Ok(&bad), 1);
        assert_eq!(t1.state.counters[0].provider_errors, 1);
        let t2 = run(Some(&t1.state), &p, &target("v2"), Ok(&healthy()), 2);
        assert_eq!(t2.state.counters[0].provider_errors, 0);
        let t3 = run(Some(&t2.state), &p, &target("v2"), Ok(&bad), 3);
        let t4 = run(Some(&t3.state), &p, &target("v2"), Ok(&bad), 4);
        assert_eq!(t4.state.phase, CanaryPhase::Failed);
        assert_eq!(t4.actions, vec![TrafficAction::SetCanaryWeight(0)]);
    }
}
