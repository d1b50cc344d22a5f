//! End to end through Kafka (issue 7, edge case E21): the real broker (tansu), `driftwatch
//! serve` as a process, real Prometheus and Alertmanager, and `driftwatch controller` against a
//! mock Kubernetes API that records every request.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::*;
use test_support::kube_mock::{EVENTS, JOBS, KubeMock, LEASES, MONITORS};
use test_support::tansu::Broker;

/// How `driftwatch replay` groups messages into record batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Batching {
    /// replay's own producer settings: many messages per record batch.
    Default,
    /// Every message its own record batch (`batch.num.messages=1`), for a consumer that resumes
    /// inside the topic: tansu 0.6 answers a fetch from an offset inside a record batch with the
    /// next batch, so a restart from a checkpoint inside a batch would skip the rest of it (Kafka
    /// returns the batch holding the offset; see the ignored
    /// `a_fetch_from_inside_a_record_batch_starts_at_that_offset` in collector/tests/kafka.rs).
    /// Slower: tansu takes a request per message.
    OneRecordPerBatch,
}

/// Replays car_loan `analysis.csv` rows `skip..skip+limit` into `topic` (see
/// [`replay_car_loan`]).
fn replay_kafka(broker: u16, topic: &str, t0: i64, skip: usize, limit: usize, batching: Batching) {
    let extra: &[&str] = match batching {
        Batching::Default => &[],
        Batching::OneRecordPerBatch => &["--kafka-option", "batch.num.messages=1"],
    };
    replay_car_loan_with(
        "analysis.csv",
        &format!("kafka://127.0.0.1:{broker}/{topic}"),
        t0,
        skip,
        Some(limit),
        extra,
    );
}

/// Closed windows of `/api/windows`: window start (ms) to requests, asserting no window twice.
fn windows(dw: &Service) -> BTreeMap<i64, u64> {
    let mut out = BTreeMap::new();
    for w in get_json(&format!("{}/api/windows", dw.url()))
        .as_array()
        .unwrap()
    {
        let start = chrono::DateTime::parse_from_rfc3339(w["start"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        let requests = w["requests"].as_u64().unwrap();
        assert!(
            out.insert(start, requests).is_none(),
            "window {start} reported twice"
        );
    }
    out
}

/// The expected windows: ten of 5,000 events from `t0`.
fn expected_windows(t0: i64) -> BTreeMap<i64, u64> {
    (0..10).map(|i| (t0 + i * WINDOW_MS, 5_000)).collect()
}

fn serve_config(dw_port: u16, broker: u16, group: &str, profile: &Path, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{dw_port}\"\n\
         [http]\nenabled = false\n\
         [[models]]\nname = \"car-loan\"\nprofile = \"{}\"\n\
         [kafka]\nbrokers = \"127.0.0.1:{broker}\"\ngroup_id = \"{group}\"\n\
         [[kafka.topics]]\nname = \"predictions\"\n\
         {extra}",
        profile.display()
    )
}

/// E21: the service is killed (SIGKILL) while events stream in and restarted with its
/// checkpoint: every window closes exactly once with all its events, none lost, none counted
/// twice.
#[test]
fn killed_service_restarts_from_its_checkpoint_without_loss_or_double_counting_e21() {
    // Kept after a failure for its logs (serve.log has both runs).
    let dir = tempfile::Builder::new()
        .prefix("e21-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let broker = Broker::start();
    let (broker_port, dw_port) = (broker.port(), free_port());
    // One partition: events arrive in event-time order, so windows close as the stream passes.
    // Static membership (`group.instance.id`) hands the restarted process its partition at
    // once; without it tansu 0.6 sometimes left the partition with the killed member. The
    // session timeout must outlast the restart (as with any static member): tansu 0.6 gives the
    // rejoining process the killed member's id without refreshing its last contact, so with the
    // default 10 s its first heartbeat, about 17 s after the kill, expelled it, and the rebalance
    // that followed never completed (CI run of c859c66).
    broker.create_topic_blocking("predictions", 1);
    let profile = car_loan_profile(dir.path());
    let t0 = next_window_start();
    let checkpoint = dir.path().join("checkpoint");
    // Only the last window closes on idleness; 10 s rides out a stall of the producer's one-message
    // requests to tansu without closing a window that is still filling.
    let config = serve_config(
        dw_port,
        broker_port,
        "e21",
        &profile,
        &format!(
            "[kafka.client]\n\"group.instance.id\" = \"driftwatch-e21\"\n\
             \"session.timeout.ms\" = \"60000\"\n\
             [windows]\nsize = \"10m\"\nmax_future_skew = \"1d\"\nallowed_lateness = \"0s\"\nidle_close_after = \"10s\"\n\
             [checkpoint]\ndir = \"{}\"\ninterval = \"200ms\"\n",
            checkpoint.display()
        ),
    );

    // The first half is in the topic when the service starts; the second streams in while it
    // runs and is killed.
    replay_kafka(
        broker_port,
        "predictions",
        t0,
        0,
        25_000,
        Batching::OneRecordPerBatch,
    );
    let mut first = serve(dir.path(), &config, dw_port);
    eventually("a window closed", Duration::from_secs(120), || {
        (!windows(&first).is_empty()).then_some(())
    });
    let producer = std::thread::spawn(move || {
        // Row 25,000 is five chunks (five windows) after row 0.
        replay_kafka(
            broker_port,
            "predictions",
            t0 + 5 * WINDOW_MS,
            25_000,
            25_000,
            Batching::OneRecordPerBatch,
        );
    });
    std::thread::sleep(Duration::from_millis(1500));
    let before_kill = windows(&first);
    first.kill();
    producer.join().unwrap();
    assert!(
        before_kill.len() < 10,
        "the kill came after the stream ended: {before_kill:?}"
    );
    assert!(checkpoint.exists(), "no checkpoint was written");

    let second = serve(dir.path(), &config, dw_port);
    let expected = expected_windows(t0);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let closed = loop {
        let w = windows(&second);
        if w.len() >= 10 {
            break w;
        }
        if std::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
            let _ = dir.keep();
            panic!(
                "after the restart only {} windows closed: {w:?}; before the kill: \
                 {before_kill:?}\nserve.log:\n{log}",
                w.len()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    if closed != expected {
        let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
        let kept = dir.keep();
        panic!(
            "closed after the restart {closed:?} != expected {expected:?}; before the kill: \
             {before_kill:?}; logs in {}\n{log}",
            kept.display()
        );
    }
    // Windows the first run closed are the same after the restart.
    for (start, requests) in &before_kill {
        assert_eq!(closed.get(start), Some(requests), "window {start}");
    }
    drop(second);
    drop(broker);
}

/// The sum of a metric's samples in Prometheus text (all label sets).
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The whole loop: car_loan into Kafka (three partitions), `driftwatch serve` consumes it,
/// Prometheus scrapes it and evaluates `rules/`, both send `ModelDataDrift` to Alertmanager for
/// exactly the four drifted features, Alertmanager's webhook reaches `driftwatch controller`,
/// which creates exactly one retraining Job through the (mock) Kubernetes API; the counts on
/// `/metrics` equal the events produced.
#[test]
fn car_loan_through_kafka_alerts_and_launches_exactly_one_retraining_job() {
    // Kept after a failure for its logs.
    let dir = tempfile::Builder::new()
        .prefix("e2e-car-loan-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let broker = Broker::start();
    let (broker_port, dw_port, prom_port, am_port, ctl_port) = (
        broker.port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    broker.create_topic_blocking("predictions", 3);
    let profile = car_loan_profile(dir.path());

    // The controller, against the mock API with one ModelMonitor for car-loan.
    let kube = KubeMock::start(vec![json!({
        "apiVersion": "driftwatch.io/v1alpha1",
        "kind": "ModelMonitor",
        "metadata": {"name": "car-loan", "namespace": "ml", "uid": "mm-uid-1", "generation": 1},
        "spec": {"model": "car-loan", "retraining": {"image": "registry.example/car-loan-train:1"}}
    })]);
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kube.kubeconfig()).unwrap();
    let controller_log = std::fs::File::create(dir.path().join("controller.log")).unwrap();
    let mut child = Command::new(driftwatch_bin())
        .args(["controller", "--namespace", "ml", "--identity", "e2e-0"])
        .args(["--listen", &format!("127.0.0.1:{ctl_port}")])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("DRIFTWATCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(controller_log)
        .spawn()
        .unwrap();
    eventually("the controller listens", Duration::from_secs(60), || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "driftwatch controller exited with {status}: {}",
                std::fs::read_to_string(dir.path().join("controller.log")).unwrap_or_default()
            );
        }
        std::net::TcpStream::connect(("127.0.0.1", ctl_port))
            .is_ok()
            .then_some(())
    });
    let controller = Service {
        name: "driftwatch controller",
        child,
        port: ctl_port,
    };

    let am = alertmanager(
        dir.path(),
        &format!(
            "route: {{receiver: controller, group_by: [alertname, feature, method], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}}\n\
             receivers:\n- name: controller\n  webhook_configs: [{{url: 'http://127.0.0.1:{ctl_port}/v1/alertmanager', send_resolved: true}}]\n"
        ),
        am_port,
    );
    // Three partitions are read at different paces: allow two hours (twelve windows) of event
    // time lateness, so no event is late; the windows close when the stream goes idle.
    let dw = serve(
        dir.path(),
        &serve_config(
            dw_port,
            broker_port,
            "e2e",
            &profile,
            &format!(
                "[windows]\nsize = \"10m\"\nmax_future_skew = \"1d\"\nallowed_lateness = \"2h\"\nidle_close_after = \"3s\"\n\
                 [rules]\nbuiltin_for = {{ ModelDataDrift = \"0s\" }}\n\
                 [alertmanager]\nurl = \"http://127.0.0.1:{am_port}\"\nresend_interval = \"5s\"\n"
            ),
        ),
        dw_port,
    );
    // Prometheus scrapes the controller's /metrics too (issue "One spine": its counters served).
    let prom = prometheus_scraping(
        dir.path(),
        &[("driftwatch", dw_port), ("driftwatch-controller", ctl_port)],
        am_port,
        prom_port,
    );

    let t0 = next_window_start();
    // replay's own batching: this service never resumes inside the topic, and 50,000 requests
    // of one message each stalled tansu (librdkafka REQTMOUT) for longer than the 3 s idle close
    // while Prometheus, Alertmanager and the controller shared the two cores.
    replay_kafka(broker_port, "predictions", t0, 0, 50_000, Batching::Default);
    let closed = eventually("ten windows closed", Duration::from_secs(240), || {
        let w = windows(&dw);
        (w.len() >= 10).then_some(w)
    });
    if closed != expected_windows(t0) {
        let kept = dir.keep();
        panic!(
            "closed windows {closed:?} != expected {:?}; logs in {}",
            expected_windows(t0),
            kept.display()
        );
    }
    let metrics = get_text(&format!("{}/metrics", dw.url())).unwrap();
    assert_eq!(metric_sum(&metrics, "model_requests_total"), 50_000.0);
    assert_eq!(
        metric_sum(&metrics, "driftwatch_late_events_total"),
        0.0,
        "no event was late"
    );

    // Alertmanager: ModelDataDrift for exactly the four drifted features (from driftwatch's
    // engine and from Prometheus evaluating rules/).
    let drifted: BTreeSet<String> = DRIFTED.iter().map(ToString::to_string).collect();
    let features = eventually(
        "ModelDataDrift in Alertmanager",
        Duration::from_secs(120),
        || {
            let f = alertmanager_drift_features(&am);
            (f.len() >= 4).then_some(f)
        },
    );
    assert_eq!(features, drifted);
    eventually(
        "Prometheus fires ModelDataDrift for the drifted features",
        Duration::from_secs(60),
        || {
            let firing = prometheus_firing_drift_features(&prom);
            (firing == drifted).then_some(())
        },
    );

    // The controller: one retraining Job for the model, however many alerts and re-deliveries.
    let jobs = eventually("a retraining Job", Duration::from_secs(120), || {
        let j = kube.objects(JOBS);
        (!j.is_empty()).then_some(j)
    });
    // Alertmanager re-delivers each group every second meanwhile (group_interval 1s).
    std::thread::sleep(Duration::from_secs(8));
    let jobs_after = kube.objects(JOBS);
    assert_eq!(jobs_after.len(), 1, "{jobs_after:#?}");
    assert_eq!(jobs_after, jobs);
    let job: k8s_openapi::api::batch::v1::Job =
        serde_json::from_value(jobs[0].clone()).expect("a valid batch/v1 Job");
    let labels = job.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("driftwatch")
    );
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("registry.example/car-loan-train:1")
    );

    // The real Prometheus sees the controller's retraining counter at exactly 1.
    let created = eventually(
        "Prometheus scrapes the controller's retraining counter",
        Duration::from_secs(60),
        || prometheus_value(&prom, r#"driftwatch_retrain_jobs_total{outcome="created"}"#),
    );
    assert_eq!(created, 1.0);

    // Every request the controller made, asserted: method, path, and for writes the body.
    let requests = kube.requests();
    let unexpected: Vec<_> = requests.iter().filter(|r| !r.expected).collect();
    assert!(
        unexpected.is_empty(),
        "unexpected API calls: {unexpected:#?}"
    );
    let created: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == JOBS && r.status == 201)
        .collect();
    assert_eq!(created.len(), 1, "one Job created: {created:#?}");
    for r in &requests {
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", p) if p == MONITORS || p == JOBS => {}
            ("GET", p) if p.starts_with(JOBS) || p.starts_with(LEASES) => {}
            ("POST", p) if p == LEASES => assert_eq!(r.body["spec"]["holderIdentity"], "e2e-0"),
            ("PUT", p) if p.starts_with(LEASES) => {
                assert_eq!(r.body["spec"]["holderIdentity"], "e2e-0")
            }
            ("POST", p) if p == JOBS => {
                assert_eq!(r.body["kind"], "Job");
                assert_eq!(r.body["metadata"]["name"], jobs[0]["metadata"]["name"]);
            }
            ("POST", p) if p == EVENTS => {
                assert_eq!(r.body["regarding"]["kind"], "ModelMonitor", "{r:?}");
            }
            ("PATCH", p) if p.starts_with(EVENTS) => {
                assert_eq!(r.content_type, "application/merge-patch+json");
                assert!(r.body["series"]["count"].as_u64().unwrap() >= 2, "{r:?}");
            }
            ("PATCH", p) if p == format!("{MONITORS}/car-loan/status") => {
                assert_eq!(r.content_type, "application/apply-patch+yaml");
                assert!(r.query.contains("fieldManager=driftwatch"), "{}", r.query);
                assert_eq!(r.body["kind"], "ModelMonitor");
            }
            _ => panic!("unexpected request {r:?}"),
        }
    }
    // The monitor's status records the launch.
    let monitor = &kube.objects(MONITORS)[0];
    assert_eq!(
        monitor["status"]["lastRetrain"]["jobName"], jobs[0]["metadata"]["name"],
        "{monitor:#}"
    );

    drop(prom);
    drop(am);
    drop(dw);
    drop(controller);
    drop(broker);
}
