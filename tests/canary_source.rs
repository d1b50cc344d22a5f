//! Issue "One spine", item 7: a controller running as its own process, with no Prometheus source
//! in the ModelMonitor, measures a canary from the driftwatch service's windows
//! (`GET /api/canary/{model}`, `controller::AnalyzerSource`). A real `driftwatch serve` takes
//! 100 stable and 100 canary events whose latencies are exactly twice the stable ones, so the
//! p95 latency ratio is exactly 2 whatever the quantile's definition, and the canary's
//! confidence is 0.8 in every event.

mod support;

use std::time::Duration;

use controller::AnalyzerSource;
use controller::canary::checks::Sample;
use controller::canary::source::{MeasureRequest, MetricsSource};
use controller::crd::CanaryPolicy;
use support::*;

fn policy() -> CanaryPolicy {
    serde_json::from_value(serde_json::json!({
        "target": {"kind": "SeldonDeployment", "name": "car-loan"},
        "intervalSeconds": 600,
        "checks": [
            {"name": "latency", "kind": "LatencyRatio", "max": 1.2},
            {"name": "confidence", "kind": "Confidence", "min": 0.5},
            {"name": "errors", "kind": "ErrorRate", "max": 0.01, "query": "q"}
        ]
    }))
    .unwrap()
}

fn events(start_ms: i64) -> String {
    let mut out = String::new();
    for i in 0..100 {
        for (variant, latency, confidence) in [
            ("stable", f64::from(i + 1), 0.9),
            ("canary", 2.0 * f64::from(i + 1), 0.8),
        ] {
            out.push_str(&format!(
                r#"{{"timestamp": {}, "model": "m", "model_version": "v", "variant": "{variant}", "features": {{"x": {i}.5}}, "latency_ms": {latency}, "confidence": {confidence}}}"#,
                start_ms + i64::from(i)
            ));
            out.push('\n');
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_is_measured_from_the_service_windows_without_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[windows]\nsize = \"1m\"\nidle_close_after = \"1s\"\n"
    );
    let mut service = serve(dir.path(), &config, port);
    let start_ms = next_window_start() - 10 * 60_000;
    assert_eq!(post(port, &events(start_ms)), Some(202));
    let url = service.url();
    let source = AnalyzerSource::new(&url);
    let policy = policy();
    // Both variants' windows close a second after the last event (idle_close_after).
    // Regression: waiting for the canary's window alone raced the stable one's close (CI saw
    // the latency ratio without its stable p95).
    let began = std::time::Instant::now();
    let inputs = loop {
        let request = MeasureRequest {
            model: "m",
            policy: &policy,
        };
        // Each variant's window is its own series, closed one after the other: wait for both.
        let both = source.summary("m", 600).await.is_ok_and(|s| {
            ["stable", "canary"]
                .iter()
                .all(|v| s.variants.get(*v).is_some_and(|v| v.requests == 100))
        });
        if both && let Ok(inputs) = source.measure(request).await {
            break inputs;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the canary's window never closed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let Some(Sample::Ratio {
        numerator,
        denominator,
    }) = inputs.samples.get("latency").cloned()
    else {
        panic!("latency: {:?}", inputs.samples);
    };
    assert!(
        (numerator / denominator - 2.0).abs() < 1e-9,
        "{numerator} / {denominator}"
    );
    assert!(
        denominator > 0.05 && denominator < 0.101,
        "stable p95 in seconds: {denominator}"
    );
    assert_eq!(inputs.samples.get("confidence"), Some(&Sample::Value(0.8)));
    assert!(
        matches!(inputs.samples.get("errors"), Some(Sample::Error(m)) if m.contains("Prometheus")),
        "{:?}",
        inputs.samples
    );
    // A model the service has no windows of: no data, not an outage.
    let none = source
        .measure(MeasureRequest {
            model: "unknown",
            policy: &policy,
        })
        .await
        .unwrap();
    assert_eq!(none.canary_requests, Some(0));
    assert!(matches!(
        none.samples.get("latency"),
        Some(Sample::Empty(_))
    ));
    service.kill();
    // The service gone: the source is down (the analysis holds), not "no data".
    assert!(
        source
            .measure(MeasureRequest {
                model: "m",
                policy: &policy,
            })
            .await
            .is_err()
    );
}
