//! Test fixtures shared by the rule engine's unit tests: event times, window reports and a
//! default engine.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use types::report::{Quantiles, SeriesKey, WindowReport};

use super::{AlertStatus, RuleEngine, RulesConfig, Transition};

pub(super) fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap() + TimeDelta::minutes(minutes)
}

pub(super) fn quantiles(count: u64, p50: Option<f64>, p95: Option<f64>) -> Quantiles {
    Quantiles {
        count,
        p50,
        p95,
        p99: p95,
    }
}

/// A 5-minute window ending at minute `end`, with p95 latency `p95_ms` and median confidence.
pub(super) fn report(end: i64, p95_ms: Option<f64>, conf_p50: Option<f64>) -> WindowReport {
    WindowReport {
        key: SeriesKey::new("m", "v1", "stable"),
        start: t(end - 5),
        end: t(end),
        requests: 100,
        latency_seconds: quantiles(
            100,
            p95_ms.map(|v| v / 2.0 / 1000.0),
            p95_ms.map(|v| v / 1000.0),
        ),
        confidence: quantiles(100, conf_p50, conf_p50),
        missing_ratio: BTreeMap::new(),
        drift: Vec::new(),
        custom: BTreeMap::new(),
        sampled: false,
    }
}

pub(super) fn engine() -> RuleEngine {
    RuleEngine::new(&RulesConfig::default()).unwrap()
}

pub(super) fn names(ts: &[Transition]) -> Vec<(String, AlertStatus)> {
    ts.iter()
        .map(|t| (t.trigger.alertname.clone(), t.trigger.status))
        .collect()
}
