//! Integration tests against a real Alertmanager (the Debian `prometheus-alertmanager` binary):
//! the rule engine's alerts go through the client to Alertmanager, and come back through
//! Alertmanager's webhook to driftwatch's receiver, each step checked on the real service.
//!
//! The binary is `$DRIFTWATCH_ALERTMANAGER_BIN`, else `prometheus-alertmanager` on `PATH`.
//! Waits poll with a generous deadline: they bound how long to wait for an effect, they do not
//! assert on timing.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alerting::exporter::encode_registry;
use alerting::{
    AlertNotification, AlertStatus, AlertTrigger, AlertmanagerConfig, AlertmanagerHandle,
    AlertmanagerMetrics, RuleEngine, RulesConfig, TriggerSource, WebhookConfig, fingerprint,
};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, header};
use axum::response::Response;
use axum::routing::post;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use prometheus_client::registry::Registry;
use telemetry::Metrics as _;
use tokio::sync::mpsc;
use tower::ServiceExt;
use types::report::{Quantiles, SeriesKey, WindowReport};

const DEADLINE: Duration = Duration::from_secs(90);

fn alertmanager_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("DRIFTWATCH_ALERTMANAGER_BIN") {
        return PathBuf::from(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus-alertmanager"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "prometheus-alertmanager not found (set DRIFTWATCH_ALERTMANAGER_BIN or put it \
                 on PATH); install it with: \
                 apt-get install -y prometheus-alertmanager (scripts/test.sh does)"
            )
        })
}

use test_support::free_port;

/// A running Alertmanager, killed on drop (its log is printed if the test failed).
struct Alertmanager {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start(port: u16, webhook_url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: driftwatch\n  \
                 group_by: ['alertname', 'model', 'variant']\n  \
                 group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
                 receivers:\n  - name: driftwatch\n    webhook_configs:\n      \
                 - url: '{webhook_url}'\n        send_resolved: true\n"
            ),
        )
        .unwrap();
        let storage = dir.path().join("data");
        std::fs::create_dir(&storage).unwrap();
        let log = dir.path().join("alertmanager.log");
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(alertmanager_bin())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", alertmanager_bin().display()));
        Self {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let url = format!("{}/-/ready", self.url());
        let child = &mut self.child;
        eventually("Alertmanager to be ready", || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("Alertmanager exited early with {status}");
            }
            let req = http.get(&url).send();
            async move {
                req.await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        })
        .await;
    }

    /// `GET /api/v2/alerts` (active, silenced, inhibited and unprocessed alerts; resolved ones
    /// are left out by Alertmanager).
    async fn alerts(&self) -> Vec<serde_json::Value> {
        let url = format!("{}/api/v2/alerts", self.url());
        let res = reqwest::get(&url).await.unwrap();
        assert!(res.status().is_success(), "GET {url}: {}", res.status());
        res.json().await.unwrap()
    }

    /// The alert with exactly these labels, if Alertmanager lists it.
    async fn find(&self, labels: &BTreeMap<String, String>) -> Option<serde_json::Value> {
        let want = serde_json::to_value(labels).unwrap();
        self.alerts()
            .await
            .into_iter()
            .find(|a| a["labels"] == want)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- Alertmanager log ({}) ---\n{log}", self.log.display());
        }
    }
}

/// Polls `probe` until it yields a value; panics after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    test_support::eventually_some(what, DEADLINE, probe).await
}

/// driftwatch's webhook receiver on a local port, recording every payload it gets.
struct Receiver {
    url: String,
    payloads: Arc<Mutex<Vec<serde_json::Value>>>,
    triggers: mpsc::Receiver<AlertTrigger>,
    received: Vec<AlertTrigger>,
}

async fn start_receiver() -> Receiver {
    let (tx, triggers) = mpsc::channel(64);
    let inner = alerting::webhook::router(tx, &WebhookConfig::default());
    let payloads = Arc::new(Mutex::new(Vec::new()));
    let recorded = payloads.clone();
    let app = Router::new().route(
        alerting::webhook::WEBHOOK_PATH,
        post(move |body: Bytes| {
            let inner = inner.clone();
            let recorded = recorded.clone();
            async move {
                if let Ok(v) = serde_json::from_slice(&body) {
                    recorded.lock().unwrap().push(v);
                }
                let req = Request::post(alerting::webhook::WEBHOOK_PATH)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body))
                    .unwrap();
                let res: Response = match inner.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                res
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver {
        url: format!("http://127.0.0.1:{port}/v1/alertmanager"),
        payloads,
        triggers,
        received: Vec::new(),
    }
}

impl Receiver {
    /// Waits for a webhook trigger with this status and fingerprint. Triggers of other alerts
    /// are kept for later calls (Alertmanager notifies groups in any order).
    async fn next(&mut self, status: AlertStatus, fp: &str) -> AlertTrigger {
        let matches = |t: &AlertTrigger| t.status == status && t.fingerprint == fp;
        if let Some(i) = self.received.iter().position(matches) {
            return self.received.remove(i);
        }
        let (triggers, received) = (&mut self.triggers, &mut self.received);
        let found = tokio::time::timeout(DEADLINE, async {
            loop {
                let t = triggers
                    .recv()
                    .await
                    .expect("webhook trigger channel closed");
                if matches(&t) {
                    return t;
                }
                received.push(t);
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!("no {status:?} webhook trigger for {fp} within {DEADLINE:?}")
        })
    }

    fn recorded_alerts(&self, status: &str, labels: &BTreeMap<String, String>) -> usize {
        let want = serde_json::to_value(labels).unwrap();
        let payloads = self.payloads.lock().unwrap();
        payloads
            .iter()
            .flat_map(|p| p["alerts"].as_array().cloned().unwrap_or_default())
            .filter(|a| a["status"] == status && a["labels"] == want)
            .count()
    }
}

fn window(key: &SeriesKey, end: DateTime<Utc>, p95_ms: f64) -> WindowReport {
    WindowReport {
        key: key.clone(),
        start: end - TimeDelta::minutes(5),
        end,
        requests: 200,
        latency_seconds: Quantiles {
            count: 200,
            p50: Some(p95_ms / 2.0 / 1000.0),
            p95: Some(p95_ms / 1000.0),
            p99: Some(p95_ms / 1000.0),
        },
        confidence: Quantiles {
            count: 200,
            p50: Some(0.9),
            p95: Some(0.99),
            p99: Some(0.99),
        },
        missing_ratio: BTreeMap::new(),
        drift: Vec::new(),
        custom: BTreeMap::new(),
        sampled: false,
    }
}

fn client(url: String, metrics: &AlertmanagerMetrics) -> AlertmanagerHandle {
    let mut config = AlertmanagerConfig::new(url);
    // Long enough that no periodic re-send happens during the test: every post is a flush or a
    // retry, so the counters below are exact.
    config.resend_interval = Duration::from_secs(600);
    config.initial_backoff = Duration::from_millis(100);
    config.max_backoff = Duration::from_secs(1);
    let (handle, _task) = AlertmanagerHandle::spawn(&config, metrics.clone()).unwrap();
    handle
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_alert_fires_and_resolves_through_alertmanager_and_its_webhook() {
    let mut receiver = start_receiver().await;
    let mut am = Alertmanager::start(free_port(), &receiver.url);
    am.wait_ready().await;

    let mut registry = Registry::default();
    let metrics = AlertmanagerMetrics::register(&mut registry, &());
    let handle = client(am.url(), &metrics);
    let (engine_tx, mut engine_rx) = mpsc::channel(16);
    let mut engine = RuleEngine::new(&RulesConfig::default())
        .unwrap()
        .with_triggers(engine_tx)
        .with_alertmanager(handle.clone());

    // Event time: windows of the last half hour (so resolution times are in the past).
    let base = Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap() - TimeDelta::minutes(30);
    let key = SeriesKey::new("car-loan", "v1", "canary");
    assert!(engine.observe(&window(&key, base, 1500.0)).await.is_empty());
    let fired = engine
        .observe(&window(&key, base + TimeDelta::minutes(5), 2500.0))
        .await;
    assert_eq!(fired.len(), 1);
    let engine_trigger = engine_rx.try_recv().unwrap();
    assert_eq!(engine_trigger.status, AlertStatus::Firing);
    assert_eq!(engine_trigger.source, TriggerSource::Engine);
    let labels: BTreeMap<String, String> = [
        ("alertname", "HighModelLatency"),
        ("model", "car-loan"),
        ("version", "v1"),
        ("variant", "canary"),
        ("severity", "warning"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(engine_trigger.labels, labels);
    let fp = fingerprint(&labels);
    assert_eq!(engine_trigger.fingerprint, fp);

    // The client task may post before the flush is handled (it sends due alerts at once), so
    // the flush result is checked for "nothing left", and the counter for "posted once".
    let flushed = handle.flush().await.unwrap();
    assert_eq!((flushed.undelivered, flushed.rejected), (0, 0));
    assert_eq!(metrics.alerts_sent_total(AlertStatus::Firing, true), 1);

    // Alertmanager has it, active, with exactly our labels and annotations.
    let (am_ref, labels_ref) = (&am, &labels);
    let alert = eventually(
        "the alert to be active in Alertmanager",
        move || async move {
            am_ref
                .find(labels_ref)
                .await
                .filter(|a| a["status"]["state"] == "active")
        },
    )
    .await;
    assert_eq!(
        alert["startsAt"]
            .as_str()
            .map(|s| s.parse::<DateTime<Utc>>().unwrap()),
        Some(base + TimeDelta::minutes(5))
    );
    assert_eq!(
        alert["annotations"]["summary"],
        "p95 latency of model car-loan (canary) is 2.5s, above 1s"
    );

    // Alertmanager notifies the webhook, which turns it into a trigger for the controller.
    let hook = receiver.next(AlertStatus::Firing, &fp).await;
    assert_eq!(hook.source, TriggerSource::Webhook);
    assert_eq!(hook.labels, labels);
    assert_eq!(hook.starts_at, engine_trigger.starts_at);
    assert!(receiver.recorded_alerts("firing", &labels) >= 1);

    // The condition clears: one resolved transition, posted exactly once.
    let resolved_at = base + TimeDelta::minutes(10);
    let resolved = engine.observe(&window(&key, resolved_at, 120.0)).await;
    assert_eq!(resolved.len(), 1);
    let engine_resolved = engine_rx.try_recv().unwrap();
    assert_eq!(engine_resolved.status, AlertStatus::Resolved);
    assert_eq!(engine_resolved.ends_at, Some(resolved_at));
    let flushed = handle.flush().await.unwrap();
    assert_eq!((flushed.undelivered, flushed.rejected), (0, 0));
    assert_eq!(metrics.alerts_sent_total(AlertStatus::Resolved, true), 1);

    eventually(
        "the alert to leave Alertmanager's active alerts",
        move || async move { am_ref.find(labels_ref).await.is_none().then_some(()) },
    )
    .await;
    let hook = receiver.next(AlertStatus::Resolved, &fp).await;
    assert_eq!(hook.source, TriggerSource::Webhook);
    assert_eq!(hook.ends_at, Some(resolved_at));
    assert!(receiver.recorded_alerts("resolved", &labels) >= 1);

    // Nothing is re-sent afterwards, neither resolved nor firing (E20).
    let flushed = handle.flush().await.unwrap();
    assert_eq!(flushed, alerting::FlushReport::default());
    assert_eq!(metrics.alerts_sent_total(AlertStatus::Resolved, true), 1);
    assert_eq!(metrics.alerts_sent_total(AlertStatus::Firing, true), 1);
    assert_eq!(metrics.alerts_sent_total(AlertStatus::Firing, false), 0);
    let text = encode_registry(&registry).unwrap();
    assert!(
        text.contains("driftwatch_alerts_sent_total{status=\"resolved\",outcome=\"ok\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("driftwatch_alerts_sent_total{status=\"firing\",outcome=\"ok\"} 1\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_queued_while_alertmanager_is_down_arrive_once_it_starts() {
    let mut receiver = start_receiver().await;
    let port = free_port();
    let mut registry = Registry::default();
    let metrics = AlertmanagerMetrics::register(&mut registry, &());
    let handle = client(format!("http://127.0.0.1:{port}"), &metrics);

    let now = Utc::now();
    let labels = |model: &str| -> BTreeMap<String, String> {
        [
            ("alertname", "DriftwatchQueueTest"),
            ("model", model),
            ("severity", "warning"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    for model in ["a", "b"] {
        let n = AlertNotification {
            labels: labels(model),
            annotations: BTreeMap::from([("summary".to_string(), format!("queued {model}"))]),
            status: AlertStatus::Firing,
            starts_at: now - TimeDelta::minutes(1),
            ends_at: None,
            generator_url: Some("http://driftwatch.test/alerts".to_string()),
        };
        handle.notify(n).await.unwrap();
    }
    // Alertmanager is not running: the attempt fails, nothing is dropped.
    let flushed = handle.flush().await.unwrap();
    assert_eq!((flushed.delivered, flushed.undelivered), (0, 2));
    // The task keeps retrying on its own (backoff 100 ms doubling to 1 s).
    eventually("at least 3 failed attempts", || {
        let n = metrics.alerts_sent_total(AlertStatus::Firing, false);
        async move { (n >= 6).then_some(()) }
    })
    .await;
    assert_eq!(metrics.alerts_sent_total(AlertStatus::Firing, true), 0);

    let mut am = Alertmanager::start(port, &receiver.url);
    am.wait_ready().await;
    let am_ref = &am;
    for model in ["a", "b"] {
        let want = labels(model);
        let want_ref = &want;
        let alert = eventually(
            "the queued alert to reach Alertmanager",
            move || async move { am_ref.find(want_ref).await },
        )
        .await;
        assert_eq!(alert["annotations"]["summary"], format!("queued {model}"));
        assert_eq!(alert["generatorURL"], "http://driftwatch.test/alerts");
        let hook = receiver
            .next(AlertStatus::Firing, &fingerprint(&want))
            .await;
        assert_eq!(hook.alertname, "DriftwatchQueueTest");
    }
    // Both were delivered by the retry loop, in one batch (no flush since Alertmanager started).
    assert_eq!(metrics.alerts_sent_total(AlertStatus::Firing, true), 2);
    let flushed = handle.flush().await.unwrap();
    assert_eq!(flushed, alerting::FlushReport::default());
}
