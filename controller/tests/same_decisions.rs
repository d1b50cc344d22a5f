//! The dry run and the reconciler decide alike: one table of scenarios, each run through the
//! dry-run planner (`dry_run::plan_actions`) and through `reconcile` against an in-memory fake
//! API server (a real `kube::Client` over a tower mock that stores Jobs, serves the canary
//! target and records every write). Both must create the same Jobs, send the same traffic
//! patches, record the same Events and write the same status, and each scenario's expected
//! decision is asserted too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use controller::canary::checks::Sample;
use controller::canary::machine::{CanaryPhase, Inputs};
use controller::crd::{ModelMonitor, ModelMonitorStatus};
use controller::dry_run::{self, PlanInput, Planned};
use controller::leader::LeaderState;
use controller::reconcile::{Context, ContextOptions, reconcile};
use controller::{InProcessSource, Metrics};
use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::batch::v1::Job;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock;
use types::{AlertStatus, AlertTrigger, TriggerSource};

const NS: &str = "ml";

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, h, m, 0)
        .single()
        .expect("time")
}

/// What one write looked like, the same for both paths.
#[derive(Debug, Clone, PartialEq)]
enum Write {
    Job(String),
    Traffic(Value),
    Event { reason: String, warning: bool },
}

/// One scenario of the table.
struct Scenario {
    name: &'static str,
    spec: Value,
    status: Option<Value>,
    /// Triggers in arrival order (one reconcile per trigger, as the inbox sees them arrive).
    triggers: Vec<AlertTrigger>,
    /// The canary target and Jobs in the cluster.
    target: Option<Value>,
    jobs: Vec<Value>,
    measurements: Option<Inputs>,
    now: DateTime<Utc>,
    /// What must be decided (besides both paths agreeing).
    expect: fn(&[Write], &ModelMonitorStatus),
}

fn trigger(status: AlertStatus, starts_at: DateTime<Utc>) -> AlertTrigger {
    AlertTrigger {
        alertname: types::names::alert::MODEL_DATA_DRIFT.into(),
        status,
        labels: BTreeMap::from([
            ("model".into(), "car-loan".into()),
            ("version".into(), "v1.3.0".into()),
            ("feature".into(), "income".into()),
        ]),
        fingerprint: "fp-income".into(),
        starts_at,
        ends_at: None,
        source: TriggerSource::Engine,
    }
}

fn monitor(spec: &Value, status: Option<ModelMonitorStatus>) -> ModelMonitor {
    let mut mm = ModelMonitor::new(
        "car-loan",
        serde_json::from_value(spec.clone()).expect("spec"),
    );
    mm.metadata.namespace = Some(NS.into());
    mm.metadata.uid = Some("mm-uid-1".into());
    mm.metadata.generation = Some(1);
    mm.status = status;
    mm
}

fn seldon(canary_version: &str) -> Value {
    json!({
        "apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
        "metadata": {"name": "car-loan", "namespace": NS},
        "spec": {"predictors": [
            {"name": "main", "traffic": 80, "graph": {"name": "clf", "modelUri": "gs://m/v1"}},
            {"name": "canary", "traffic": 20, "labels": {"version": canary_version}, "graph": {"name": "clf", "modelUri": "gs://m/v2"}}
        ]},
        "status": {"state": "Available"}
    })
}

fn canary_spec() -> Value {
    json!({"model": "car-loan", "canary": {
        "target": {"kind": "SeldonDeployment", "name": "car-loan"},
        "stepWeight": 20, "maxWeight": 60, "minRequestsPerStep": 100,
        "checks": [{"name": "latency", "kind": "LatencyRatio", "max": 1.2, "failureLimit": 3}]}})
}

fn latency(ratio: f64) -> Inputs {
    Inputs {
        canary_requests: Some(500),
        samples: BTreeMap::from([("latency".into(), Sample::Value(ratio))]),
    }
}

fn table() -> Vec<Scenario> {
    let retrain =
        json!({"model": "car-loan", "retraining": {"image": "train:1", "cooldownSeconds": 3600}});
    vec![
        Scenario {
            name: "a repeated trigger creates one Job",
            spec: retrain.clone(),
            status: None,
            triggers: vec![
                trigger(AlertStatus::Firing, at(17, 0)),
                trigger(AlertStatus::Firing, at(17, 0)),
            ],
            target: None,
            jobs: vec![],
            measurements: None,
            now: at(17, 10),
            expect: |writes, status| {
                let jobs = writes.iter().filter(|w| matches!(w, Write::Job(_))).count();
                assert_eq!(jobs, 1);
                assert!(status.last_retrain.is_some());
            },
        },
        Scenario {
            name: "a resolved alert ends the pending episode",
            spec: retrain.clone(),
            status: Some(json!({
                "lastRetrain": {"triggerHash": "old", "episodeStart": at(15, 0), "jobName": "retrain-car-loan-old",
                                "outcome": "Succeeded", "startedAt": at(15, 0), "finishedAt": at(16, 50)},
                "retrain": {"pending": {"triggerHash": "h", "startsAt": at(17, 0), "alertname": "ModelDataDrift",
                                        "reason": "Cooldown", "notBefore": at(17, 50)}}
            })),
            triggers: vec![trigger(AlertStatus::Resolved, at(17, 0))],
            target: None,
            jobs: vec![],
            measurements: None,
            now: at(17, 10),
            expect: |writes, status| {
                assert!(
                    !writes.iter().any(|w| matches!(w, Write::Job(_))),
                    "{writes:?}"
                );
                assert_eq!(status.retrain.pending, None, "the episode ended");
            },
        },
        Scenario {
            name: "cooldown defers the next episode",
            spec: retrain.clone(),
            status: Some(json!({
                "lastRetrain": {"triggerHash": "old", "episodeStart": at(15, 0), "jobName": "retrain-car-loan-old",
                                "outcome": "Succeeded", "startedAt": at(15, 0), "finishedAt": at(16, 50)}
            })),
            triggers: vec![trigger(AlertStatus::Firing, at(17, 0))],
            target: None,
            jobs: vec![],
            measurements: None,
            now: at(17, 10),
            expect: |writes, status| {
                assert!(
                    !writes.iter().any(|w| matches!(w, Write::Job(_))),
                    "{writes:?}"
                );
                assert!(status.retrain.pending.is_some(), "recorded as pending");
            },
        },
        Scenario {
            name: "a running Job that succeeded is recorded",
            spec: retrain.clone(),
            status: Some(json!({
                "lastRetrain": {"triggerHash": "old", "episodeStart": at(15, 0), "jobName": "retrain-car-loan-old",
                                "outcome": "Running", "startedAt": at(15, 0)}
            })),
            triggers: vec![],
            target: None,
            jobs: vec![json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": "retrain-car-loan-old", "namespace": NS},
                "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
            })],
            measurements: None,
            now: at(17, 10),
            expect: |writes, status| {
                assert!(
                    writes.contains(&Write::Event {
                        reason: "RetrainSucceeded".into(),
                        warning: false
                    }),
                    "{writes:?}"
                );
                assert_eq!(
                    status.last_retrain.as_ref().map(|l| l.outcome.label()),
                    Some("succeeded")
                );
            },
        },
        Scenario {
            name: "a failing latency check rolls back",
            spec: canary_spec(),
            status: Some(
                json!({"canary": {"phase": "Progressing", "canaryVersion": "v2", "weight": 20, "step": 1,
                                            "lastStepAt": at(17, 0),
                                            "counters": [{"name": "latency", "failures": 2, "noData": 0, "providerErrors": 0}]}}),
            ),
            triggers: vec![],
            target: Some(seldon("v2")),
            jobs: vec![],
            measurements: Some(latency(2.5)),
            now: at(17, 10),
            expect: |writes, status| {
                let canary = status.canary.as_ref().expect("canary");
                assert_eq!((canary.phase, canary.weight), (CanaryPhase::Failed, 0));
                assert!(writes.iter().any(|w| matches!(w, Write::Traffic(b) if b["spec"]["predictors"][1]["traffic"] == 0)), "{writes:?}");
            },
        },
        Scenario {
            name: "Promoting with 18 recorded failures rolls back",
            spec: canary_spec(),
            status: Some(
                json!({"canary": {"phase": "Promoting", "canaryVersion": "v2", "weight": 60, "step": 3,
                                            "lastStepAt": at(17, 0),
                                            "counters": [{"name": "latency", "failures": 18, "noData": 0, "providerErrors": 0}]}}),
            ),
            triggers: vec![],
            target: Some(seldon("v2")),
            jobs: vec![],
            measurements: Some(latency(1.0)),
            now: at(17, 10),
            expect: |writes, status| {
                let canary = status.canary.as_ref().expect("canary");
                assert_eq!((canary.phase, canary.weight), (CanaryPhase::Failed, 0));
                assert!(
                    writes.contains(&Write::Event {
                        reason: "RolledBack".into(),
                        warning: true
                    }),
                    "{writes:?}"
                );
                assert!(writes.iter().any(|w| matches!(w, Write::Traffic(b) if b["spec"]["predictors"][1]["traffic"] == 0)), "{writes:?}");
            },
        },
        Scenario {
            name: "a passing first step raises the weight",
            spec: canary_spec(),
            status: None,
            triggers: vec![],
            target: Some(seldon("v2")),
            jobs: vec![],
            measurements: Some(latency(1.0)),
            now: at(17, 10),
            expect: |writes, status| {
                let canary = status.canary.as_ref().expect("canary");
                assert_eq!(
                    (canary.phase, canary.weight),
                    (CanaryPhase::Progressing, 20)
                );
                assert!(
                    writes.iter().any(|w| matches!(w, Write::Traffic(_))),
                    "{writes:?}"
                );
            },
        },
    ]
}

/// The dry run's writes and last status.
fn planned(s: &Scenario) -> (Vec<Write>, ModelMonitorStatus) {
    let status = s
        .status
        .clone()
        .map(|v| serde_json::from_value(v).expect("status"));
    let mut input = PlanInput {
        monitors: vec![monitor(&s.spec, status.clone())],
        triggers: s.triggers.clone(),
        targets: s.target.iter().cloned().collect(),
        ..PlanInput::default()
    };
    for j in &s.jobs {
        let job: Job = serde_json::from_value(j.clone()).expect("job");
        input.jobs.insert(
            format!("{NS}/{}", job.metadata.name.clone().unwrap_or_default()),
            job,
        );
    }
    if let Some(m) = &s.measurements {
        input.metrics.publish("car-loan", m.clone());
    }
    let actions = dry_run::plan_actions(&input, s.now).expect("plan");
    let mut writes = Vec::new();
    let mut last = status.unwrap_or_default();
    for a in actions {
        match a {
            Planned::CreateJob { job_name, .. } => writes.push(Write::Job(job_name)),
            Planned::ApplyTraffic { body, .. } => writes.push(Write::Traffic(body)),
            Planned::Event {
                reason, warning, ..
            } => writes.push(Write::Event { reason, warning }),
            Planned::Status { status, .. } => last = *status,
            Planned::Note { .. } => {}
        }
    }
    (writes, last)
}

/// The reconciler's writes and last status, against an in-memory API server.
async fn reconciled(s: &Scenario) -> (Vec<Write>, ModelMonitorStatus) {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, NS);
    let writes = Arc::new(Mutex::new(Vec::new()));
    let status: Arc<Mutex<Option<Value>>> = Arc::new(Mutex::new(s.status.clone()));
    let jobs: Arc<Mutex<BTreeMap<String, Value>>> = Arc::new(Mutex::new(
        s.jobs
            .iter()
            .map(|j| {
                (
                    j["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    j.clone(),
                )
            })
            .collect(),
    ));
    let target = s.target.clone();
    let (w, st, js) = (writes.clone(), status.clone(), jobs.clone());
    let server = tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().clone();
            let path = request.uri().path().to_string();
            let bytes = request.into_body().collect_bytes().await.expect("body");
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let (code, response) = match (method, path.as_str()) {
                (Method::GET, p) if p.starts_with("/apis/batch/v1/namespaces/ml/jobs/") => {
                    let name = p.rsplit('/').next().unwrap_or_default();
                    match js.lock().unwrap().get(name) {
                        Some(j) => (200, j.clone()),
                        None => (
                            404,
                            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
                        ),
                    }
                }
                (Method::POST, "/apis/batch/v1/namespaces/ml/jobs") => {
                    let name = body["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    w.lock().unwrap().push(Write::Job(name.clone()));
                    js.lock().unwrap().insert(name, body.clone());
                    (201, body)
                }
                (
                    Method::GET,
                    "/apis/machinelearning.seldon.io/v1/namespaces/ml/seldondeployments/car-loan",
                ) => match &target {
                    Some(t) => (200, t.clone()),
                    None => (
                        404,
                        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
                    ),
                },
                (
                    Method::PATCH,
                    "/apis/machinelearning.seldon.io/v1/namespaces/ml/seldondeployments/car-loan",
                ) => {
                    w.lock().unwrap().push(Write::Traffic(body.clone()));
                    (200, body)
                }
                (Method::POST, p) if p.ends_with("/events") => {
                    w.lock().unwrap().push(Write::Event {
                        reason: body["reason"].as_str().unwrap_or_default().to_string(),
                        warning: body["type"] == "Warning",
                    });
                    (201, body)
                }
                (
                    Method::PATCH,
                    "/apis/driftwatch.io/v1alpha1/namespaces/ml/modelmonitors/car-loan/status",
                ) => {
                    *st.lock().unwrap() = Some(body["status"].clone());
                    let mut object = body.clone();
                    object["spec"] = json!({"model": "car-loan"});
                    (200, object)
                }
                (m, p) => panic!("unexpected request {m} {p}"),
            };
            let response = Response::builder()
                .status(StatusCode::from_u16(code).expect("code"))
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(&response).expect("json")))
                .expect("response");
            send.send_response(response);
        }
    });
    let in_process = InProcessSource::default();
    if let Some(m) = &s.measurements {
        in_process.publish("car-loan", m.clone());
    }
    let now = s.now;
    let ctx = Arc::new(Context::new(
        client,
        ContextOptions {
            leader: LeaderState::always_leader(),
            metrics: Metrics::default(),
            in_process,
            clock: Arc::new(move || now),
            ..ContextOptions::default()
        },
    ));
    // One reconcile per trigger arrival (at least one), each reading the status the last wrote.
    for pass in 0..s.triggers.len().max(1) {
        if let Some(t) = s.triggers.get(pass) {
            ctx.inbox().push(t.clone());
        }
        let current = status
            .lock()
            .unwrap()
            .clone()
            .map(|v| serde_json::from_value(v).expect("status"));
        let _ = reconcile(Arc::new(monitor(&s.spec, current)), ctx.clone()).await;
    }
    drop(ctx);
    server.await.expect("fake API server");
    let last = status
        .lock()
        .unwrap()
        .clone()
        .map(|v| serde_json::from_value(v).expect("status"))
        .unwrap_or_default();
    let writes = writes.lock().unwrap().clone();
    (writes, last)
}

#[tokio::test]
async fn the_dry_run_and_the_reconciler_decide_alike() {
    for s in table() {
        let (plan_writes, plan_status) = planned(&s);
        let (live_writes, live_status) = reconciled(&s).await;
        assert_eq!(plan_writes, live_writes, "{}: writes", s.name);
        assert_eq!(plan_status, live_status, "{}: status", s.name);
        (s.expect)(&live_writes, &live_status);
    }
}
