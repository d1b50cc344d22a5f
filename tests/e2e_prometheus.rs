//! End to end with real Prometheus and Alertmanager (issue 4): driftwatch is fed car_loan
//! (reference, then analysis) over HTTP with compressed event time; Prometheus scrapes `/metrics`
//! and evaluates `rules/`; Alertmanager receives `ModelDataDrift` for exactly the four drifted
//! features and its webhook reaches driftwatch's receiver; a clean stream that follows resolves
//! the alerts; every PromQL query of the dashboard returns a series.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::*;

#[test]
fn drift_alerts_flow_through_prometheus_and_alertmanager_and_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let (dw_port, prom_port, am_port) = (free_port(), free_port(), free_port());
    let profile = car_loan_profile(dir.path());

    let am = alertmanager(
        dir.path(),
        &format!(
            "route: {{receiver: driftwatch, group_by: [alertname, feature, method], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}}\n\
             receivers:\n- name: driftwatch\n  webhook_configs: [{{url: 'http://127.0.0.1:{dw_port}/v1/alertmanager', send_resolved: true}}]\n"
        ),
        am_port,
    );
    let dw = serve(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:{dw_port}\"\n\
             [[models]]\nname = \"car-loan\"\nprofile = \"{}\"\n\
             [windows]\nsize = \"10m\"\nmax_future_skew = \"1d\"\nallowed_lateness = \"0s\"\nidle_close_after = \"3s\"\n\
             [alertmanager]\nurl = \"http://127.0.0.1:{am_port}\"\nresend_interval = \"5s\"\n",
            profile.display()
        ),
        dw_port,
    );
    let prom = prometheus_with_rules(dir.path(), dw_port, am_port, prom_port);

    // Reference period (10 windows), then the analysis period (10 windows, drift from chunk 5).
    let url = dw.url();
    let t0 = next_window_start();
    replay_car_loan("reference.csv", &url, t0, 0, None);
    replay_car_loan("analysis.csv", &url, t0 + 10 * WINDOW_MS, 0, None);
    let windows = eventually("20 windows closed", Duration::from_secs(120), || {
        let w = get_json(&format!("{}/api/windows", dw.url()));
        (w.as_array().unwrap().len() >= 20).then_some(w)
    });
    let total: u64 = windows
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 100_000);

    // Alertmanager has ModelDataDrift for exactly the four drifted features.
    let features = eventually(
        "ModelDataDrift for the drifted features in Alertmanager",
        Duration::from_secs(120),
        || {
            let f = alertmanager_drift_features(&am);
            (f.len() >= 4).then_some(f)
        },
    );
    assert_eq!(
        features,
        DRIFTED
            .iter()
            .map(ToString::to_string)
            .collect::<BTreeSet<_>>()
    );
    // Prometheus evaluated rules/ itself: its own ModelDataDrift alerts are firing.
    let prom_alerts = eventually(
        "Prometheus fires ModelDataDrift",
        Duration::from_secs(60),
        || {
            let firing = prometheus_firing_drift_features(&prom);
            (firing.len() >= 4).then_some(firing)
        },
    );
    assert_eq!(prom_alerts, features);
    // Alertmanager's webhook reached driftwatch's receiver, per alert.
    eventually("webhook triggers recorded", Duration::from_secs(60), || {
        let d = get_json(&format!("{}/api/decisions", dw.url()));
        let from_webhook: BTreeSet<String> = d
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["summary"].as_str())
            .filter(|s| s.starts_with("ModelDataDrift Firing from Webhook"))
            .map(str::to_string)
            .collect();
        DRIFTED
            .iter()
            .all(|f| {
                from_webhook
                    .iter()
                    .any(|s| s.contains(&format!("feature {f} ")))
            })
            .then_some(())
    });

    // Every query of the dashboard returns at least one series.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("dashboards/driftwatch.json")).unwrap(),
    )
    .unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    for expr in &exprs {
        let q = expr
            .replace("$model", ".*")
            .replace("$version", ".*")
            .replace("$variant", ".*")
            .replace("$__rate_interval", "1m");
        eventually(
            &format!("a series for {q}"),
            Duration::from_secs(60),
            || {
                let url = format!("{}/api/v1/query?query={}", prom.url(), urlencode(&q));
                let r = get_json(&url);
                assert_eq!(r["status"], "success", "{q}: {r}");
                (!r["data"]["result"].as_array().unwrap().is_empty()).then_some(())
            },
        );
    }

    // A clean stream follows: the alerts resolve.
    replay_car_loan("reference.csv", &url, t0 + 20 * WINDOW_MS, 0, Some(10_000));
    eventually(
        "ModelDataDrift resolved in Alertmanager",
        Duration::from_secs(120),
        || alertmanager_drift_features(&am).is_empty().then_some(()),
    );
    eventually(
        "resolved triggers from the webhook",
        Duration::from_secs(60),
        || {
            let d = get_json(&format!("{}/api/decisions", dw.url()));
            d.as_array()
                .unwrap()
                .iter()
                .filter_map(|d| d["summary"].as_str())
                .any(|s| s.starts_with("ModelDataDrift Resolved from Webhook"))
                .then_some(())
        },
    );
    drop(prom);
    drop(am);
    drop(dw);
}

fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::String(e)) = m.get("expr") {
                out.push(e.clone());
            }
            m.values().for_each(|x| collect_exprs(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_exprs(x, out)),
        _ => {}
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
