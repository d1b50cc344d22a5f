//! Test fixtures shared by the exporter's unit tests: a series key, window reports and drift
//! results, a registry with the metrics registered, and reading samples from its text.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use prometheus_client::registry::Registry;
use types::FeatureKind;
use types::drift::Method;
use types::drift::{FeatureDrift, FeatureStatus, MethodResult, Threshold, ThresholdSource};
use types::report::{Quantiles, SeriesKey, WindowReport};

use super::{MetricsConfig, ModelMetrics, encode_registry};
use telemetry::Metrics as _;

pub(super) fn key() -> SeriesKey {
    SeriesKey::new("m", "v1", "stable")
}

pub(super) fn report(key: SeriesKey, requests: u64) -> WindowReport {
    WindowReport {
        key,
        start: Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default(),
        end: Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 5, 0)
            .single()
            .unwrap_or_default(),
        requests,
        latency_seconds: Quantiles::default(),
        confidence: Quantiles::default(),
        missing_ratio: BTreeMap::new(),
        drift: Vec::new(),
        custom: BTreeMap::new(),
        sampled: false,
    }
}

fn method(
    m: Method,
    value: f64,
    p: Option<f64>,
    verdict: bool,
    drift: Option<bool>,
) -> MethodResult {
    MethodResult {
        method: m,
        value: Some(value),
        p_value: p,
        dof: None,
        threshold: m.default_threshold().map(|value| Threshold {
            value,
            direction: m.direction(),
            source: ThresholdSource::Fixed,
        }),
        verdict_method: verdict,
        drift,
    }
}

pub(super) fn feature(status: FeatureStatus, judged: bool) -> FeatureDrift {
    let verdict = judged.then_some(true);
    FeatureDrift {
        feature: "car_value".to_string(),
        kind: FeatureKind::Numeric,
        status,
        count: 1000,
        missing: 0,
        drift: verdict,
        methods: vec![
            method(Method::JensenShannon, 0.25, None, true, verdict),
            method(Method::Psi, 0.5, None, false, None),
            method(Method::Ks, 0.2, Some(0.001), false, None),
        ],
        new_categories: Vec::new(),
        quality: None,
    }
}

pub(super) fn setup() -> (Registry, ModelMetrics) {
    let mut registry = Registry::default();
    let metrics = ModelMetrics::register(&mut registry, &MetricsConfig::default());
    (registry, metrics)
}

pub(super) fn text(registry: &Registry) -> String {
    encode_registry(registry).unwrap()
}

/// The value of one sample line `name{labels} value`, exactly as encoded.
pub(super) fn sample(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(str::to_string)
}

pub(super) const M: &str = r#"model="m",version="v1",variant="stable""#;
