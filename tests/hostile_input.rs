//! Issue 19, must-show: the flood of 10,000 unknown models and events from a bad clock (year 3000,
//! epoch ms i64::MAX), sent in the middle of the car_loan replay, leave the car_loan windows
//! exactly as a clean run's, and `/metrics` stays bounded. Two services run side by side on the
//! same event times: one fed only car_loan, one fed car_loan with the hostile traffic between its
//! halves.

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use support::*;

/// POSTs `body` as NDJSON to `url` and returns the HTTP status, retrying a 503 (backpressure,
/// `Retry-After: 1`) as a client should.
fn post_ndjson(url: &str, body: &str) -> u16 {
    for _ in 0..50 {
        match post_once(url, body) {
            503 => std::thread::sleep(Duration::from_millis(200)),
            status => return status,
        }
    }
    503
}

fn post_once(url: &str, body: &str) -> u16 {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "30",
        ])
        .args([
            "-H",
            "Content-Type: application/x-ndjson",
            "--data-binary",
            "@-",
            url,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(body.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

/// The car-loan windows of a service, in order.
fn car_loan_windows(url: &str) -> Vec<serde_json::Value> {
    let mut w: Vec<serde_json::Value> = get_json(&format!("{url}/api/windows"))
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["key"]["model"] == "car-loan")
        .cloned()
        .collect();
    w.sort_by_key(|w| w["start"].as_str().unwrap_or("").to_string());
    w
}

/// The value of an unlabelled-but-one-label counter sample in OpenMetrics text.
fn sample(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[test]
fn a_model_flood_and_a_bad_clock_mid_replay_leave_the_windows_as_a_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let profile = car_loan_profile(dir.path());
    let config = |port: u16| {
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\
             [[models]]\nname = \"car-loan\"\nprofile = \"{}\"\n\
             [windows]\nsize = \"10m\"\nmax_future_skew = \"1d\"\nallowed_lateness = \"0s\"\nidle_close_after = \"3s\"\n",
            profile.display()
        )
    };
    let (clean_port, hostile_port) = (free_port(), free_port());
    let clean_dir = dir.path().join("clean");
    let hostile_dir = dir.path().join("hostile");
    std::fs::create_dir_all(&clean_dir).unwrap();
    std::fs::create_dir_all(&hostile_dir).unwrap();
    let clean = serve(&clean_dir, &config(clean_port), clean_port);
    let hostile = serve(&hostile_dir, &config(hostile_port), hostile_port);
    let t0 = next_window_start();

    replay_car_loan("analysis.csv", &clean.url(), t0, 0, None);

    // The hostile run: the first half, then the attack, then the second half.
    replay_car_loan("analysis.csv", &hostile.url(), t0, 0, Some(25_000));
    let events = format!("{}/v1/events", hostile.url());
    // 10,000 distinct unknown models in 100 requests of 100 events: the first request fits
    // the default discovery cap (100 models), the other 99 are refused whole.
    let mut statuses = Vec::new();
    for request in 0..100 {
        let body: String = (0..100)
            .map(|i| {
                format!(
                    "{{\"timestamp\": {}, \"model\": \"flood-{}\", \"features\": {{\"x\": 1}}}}\n",
                    t0 + 5 * WINDOW_MS,
                    request * 100 + i
                )
            })
            .collect();
        statuses.push(post_ndjson(&events, &body));
    }
    assert_eq!(statuses[0], 202);
    assert!(statuses[1..].iter().all(|&s| s == 400), "{statuses:?}");
    // A bad clock: year 3000 and epoch ms i64::MAX, for the real model.
    let bad_clock = format!(
        "{{\"timestamp\": 32503680000000, \"model\": \"car-loan\", \"features\": {{\"car_value\": 1}}}}\n\
         {{\"timestamp\": {}, \"model\": \"car-loan\", \"features\": {{\"car_value\": 1}}}}\n",
        i64::MAX
    );
    assert_eq!(post_ndjson(&events, &bad_clock), 202);
    replay_car_loan(
        "analysis.csv",
        &hostile.url(),
        t0 + 5 * WINDOW_MS,
        25_000,
        Some(25_000),
    );

    let expected = eventually("10 clean windows", Duration::from_secs(120), || {
        let w = car_loan_windows(&clean.url());
        (w.len() >= 10).then_some(w)
    });
    let got = eventually(
        "10 windows after the attack",
        Duration::from_secs(120),
        || {
            let w = car_loan_windows(&hostile.url());
            (w.len() >= 10).then_some(w)
        },
    );
    assert_eq!(expected.len(), 10);
    assert_eq!(
        expected
            .iter()
            .map(|w| w["requests"].as_u64().unwrap())
            .sum::<u64>(),
        50_000
    );
    assert_eq!(
        got, expected,
        "the car_loan windows differ from the clean run's"
    );

    let metrics = get_text(&format!("{}/metrics", hostile.url())).unwrap();
    let models: BTreeSet<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split("model=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(models.contains("car-loan"));
    assert!(
        models.len() <= 101,
        "series for {} models: the configured one and at most 100 discovered",
        models.len()
    );
    assert_eq!(
        sample(
            &metrics,
            "driftwatch_http_rejected_total{reason=\"unknown_model\"}"
        ),
        99
    );
    assert_eq!(
        sample(
            &metrics,
            "driftwatch_event_time_rejected_total{reason=\"event_time_future\"}"
        ),
        2
    );
    let series = metrics.lines().filter(|l| !l.starts_with('#')).count();
    let clean_series = get_text(&format!("{}/metrics", clean.url()))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    eprintln!(
        "/metrics after the attack: {series} series over {} models; clean run: {clean_series} series",
        models.len()
    );
    // Each discovered model adds its own bounded set of series (requests, latency and confidence
    // histograms, window events), never one per refused model.
    assert!(
        series <= clean_series + 100 * 60,
        "{series} series against {clean_series} for the clean run"
    );
}
