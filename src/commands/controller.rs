//! `driftwatch controller` (the Kubernetes controller, or a dry run) and `driftwatch crdgen`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use alerting::{AlertStatus, AlertTrigger};
use anyhow::Context;
use controller::canary::checks::Sample;
use controller::canary::machine::Inputs;
use controller::dry_run::{self, PlanInput, Planned};

use crate::cli::{ControllerArgs, CrdgenArgs, GlobalArgs};
use crate::status::Decision;

/// Runs `driftwatch crdgen`: prints the ModelMonitor CRD.
pub fn crdgen(_args: &CrdgenArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    print!("{}", controller::crdgen()?);
    Ok(ExitCode::SUCCESS)
}

/// Runs `driftwatch controller`.
pub fn run(args: &ControllerArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    if args.dry_run {
        let input = args
            .input
            .as_deref()
            .context("--dry-run needs --input FILE")?;
        let text = std::fs::read_to_string(input)
            .with_context(|| format!("cannot read {} (--input)", input.display()))?;
        let mut input = PlanInput::from_yaml(&text)?;
        if let Some(path) = &args.triggers {
            let raw = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {} (--triggers)", path.display()))?;
            input.triggers =
                parse_triggers(&raw).with_context(|| format!("{} (--triggers)", path.display()))?;
        }
        print!("{}", dry_run::plan(&input, chrono::Utc::now())?);
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let identity = args.identity.clone().or_else(|| std::env::var("POD_NAME").ok()).unwrap_or_else(|| "driftwatch".into());
        let mut config = controller::ControllerConfig::new(&args.namespace, &identity);
        match &args.analyzer_url {
            Some(url) => config.analyzer = Some(controller::AnalyzerSource::new(url)),
            // Nothing publishes into the in-process table in a controller of its own: holding
            // is right, NoData at every step would roll every canary back.
            None => config.in_process.set_down(Some(
                "no analyzer measures canaries for this controller: start it with --analyzer-url (the driftwatch service) or set spec.canary.metricsSource.prometheus".to_string(),
            )),
        }
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let auth = types::auth::AuthConfig {
            bearer_token_file: args.webhook_token_file.clone(),
            ..types::auth::AuthConfig::default()
        };
        let (app, readiness, metrics) = controller_app(tx, &auth)?;
        config.metrics = metrics;
        let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!("driftwatch controller: namespace {}, Alertmanager webhook on http://{}/v1/alertmanager, metrics on /metrics", args.namespace, args.listen);
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        readiness.set_ready();
        let result = controller::run(config, rx).await;
        server.abort();
        result.map_err(anyhow::Error::from)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The controller's HTTP endpoints: the Alertmanager webhook (`POST /v1/alertmanager`, behind the
/// credentials of `auth` when any are set) and the exporter's `/metrics` (the controller's
/// counters), `/healthz` and `/readyz` (not ready until the caller says so).
///
/// # Errors
/// An unusable credential (empty or unreadable token file).
fn controller_app(
    triggers: tokio::sync::mpsc::Sender<AlertTrigger>,
    auth: &types::auth::AuthConfig,
) -> anyhow::Result<(
    axum::Router,
    alerting::Readiness,
    controller::metrics::Metrics,
)> {
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics =
        <controller::metrics::Metrics as telemetry::Metrics>::register(&mut registry, &());
    // The webhook's refusals count in `driftwatch_http_rejected_total{reason="unauthorized"}`.
    let http_metrics = <collector::telemetry::CollectorMetrics as telemetry::Metrics>::register(
        &mut registry,
        &(),
    );
    let readiness = alerting::Readiness::new();
    readiness.set_not_ready("starting");
    let mut webhook =
        alerting::webhook::router(triggers, &alerting::webhook::WebhookConfig::default());
    if let Some(credentials) = collector::auth::Credentials::resolve(auth, "--webhook-token-file")?
    {
        webhook = webhook.route_layer(axum::middleware::from_fn_with_state(
            collector::auth::Authenticator::new(credentials, http_metrics),
            collector::auth::authenticate,
        ));
    }
    let app = axum::Router::new()
        .merge(webhook)
        .merge(alerting::exporter::router(
            std::sync::Arc::new(registry),
            readiness.clone(),
        ));
    Ok((app, readiness, metrics))
}

/// Triggers from a file: a JSON array of triggers, or one per line.
fn parse_triggers(raw: &str) -> anyhow::Result<Vec<AlertTrigger>> {
    let trimmed = raw.trim_start();
    if trimmed.starts_with('[') {
        return Ok(serde_json::from_str(trimmed)?);
    }
    raw.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("line {}", i + 1)))
        .collect()
}

/// The demo's ModelMonitor and canary target (a KServe InferenceService with a v2 canary at 10%).
const DEMO_OBJECTS: &str = r#"
apiVersion: driftwatch.io/v1alpha1
kind: ModelMonitor
metadata: {name: car-loan, namespace: ml}
spec:
  model: car-loan
  retraining:
    image: ghcr.io/example/car-loan-trainer:1.4
    command: ["python", "train.py", "--data", "s3://car-loan/latest"]
    gpuCount: 1
  canary:
    target: {kind: InferenceService, name: car-loan}
    stepWeight: 10
    maxWeight: 50
    checks:
      - {name: latency, kind: LatencyRatio, max: 1.2}
      - {name: drift, kind: Drift, max: 0.1}
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: car-loan, namespace: ml}
spec:
  predictor:
    canaryTrafficPercent: 10
    model: {modelFormat: {name: sklearn}, storageUri: "gs://models/car-loan/v2"}
status:
  components:
    predictor: {latestReadyRevision: car-loan-predictor-00002, latestRolledoutRevision: car-loan-predictor-00001}
"#;

/// Feeds triggers to the controller's dry-run planner and reports what it newly decides, for the
/// demo: the retraining Job of a drift episode (once) and canary steps.
#[derive(Debug)]
pub struct DryRunPlanner {
    input: PlanInput,
    model: String,
    printed: Vec<String>,
}

impl DryRunPlanner {
    /// The demo's monitor for `model`.
    pub fn demo(model: &str) -> Self {
        let input = PlanInput::from_yaml(DEMO_OBJECTS).unwrap_or_default();
        Self {
            input,
            model: model.to_string(),
            printed: Vec::new(),
        }
    }

    /// Publishes canary measurements (requests in the step, p95 latency ratio, largest drift).
    pub fn measure(&self, canary_requests: u64, latency_ratio: f64, drift: f64) {
        self.input.metrics.publish(
            &self.model,
            Inputs {
                canary_requests: Some(canary_requests),
                samples: BTreeMap::from([
                    ("latency".to_string(), Sample::Value(latency_ratio)),
                    ("drift".to_string(), Sample::Value(drift)),
                ]),
            },
        );
    }

    /// Plans with `trigger` added; returns the decisions not reported before.
    pub fn on_trigger(&mut self, trigger: &AlertTrigger) -> Vec<Decision> {
        if trigger.status != AlertStatus::Firing || trigger.model() != Some(self.model.as_str()) {
            return Vec::new();
        }
        self.input.triggers.push(trigger.clone());
        self.plan()
    }

    /// Plans now; returns the decisions not reported before: each retraining Job once, each
    /// traffic patch whenever it differs from those reported.
    pub fn plan(&mut self) -> Vec<Decision> {
        let error = |e: controller::error::Error| {
            vec![Decision {
                at: chrono::Utc::now(),
                kind: "error".into(),
                summary: e.to_string(),
                detail: None,
            }]
        };
        let actions = match dry_run::plan_actions(&self.input, chrono::Utc::now()) {
            Ok(a) => a,
            Err(e) => return error(e),
        };
        let mut out = Vec::new();
        for planned in &actions {
            let Some(summary) = dry_run::describe(planned) else {
                continue;
            };
            let detail = match dry_run::object_yaml(planned) {
                Ok(yaml) => yaml.map(|y| y.trim_end().to_string()),
                Err(e) => return error(e),
            };
            let (kind, key) = match planned {
                Planned::CreateJob { .. } => ("retrain", summary.clone()),
                _ => (
                    "canary",
                    format!("{summary}\n{}", detail.as_deref().unwrap_or_default()),
                ),
            };
            if self.printed.contains(&key) {
                continue;
            }
            self.printed.push(key);
            out.push(Decision {
                at: chrono::Utc::now(),
                kind: kind.into(),
                summary,
                detail,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;

    use super::*;

    async fn call(app: &axum::Router, request: Request<Body>) -> (StatusCode, String) {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Issue "One spine", item 3: `driftwatch controller` serves its counters, `/healthz` and
    /// `/readyz`; issue 19, item 5: its webhook takes the token from a file.
    #[tokio::test]
    async fn the_controller_serves_its_counters_and_guards_its_webhook() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").unwrap();
        let auth = types::auth::AuthConfig {
            bearer_token_file: Some(token),
            ..types::auth::AuthConfig::default()
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        let (app, readiness, metrics) = controller_app(tx, &auth).unwrap();
        let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();

        assert_eq!(call(&app, get("/healthz")).await.0, StatusCode::OK);
        assert_eq!(
            call(&app, get("/readyz")).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        readiness.set_ready();
        assert_eq!(call(&app, get("/readyz")).await.0, StatusCode::OK);

        telemetry::Emit::emit(
            &metrics,
            controller::metrics::RetrainJobCounted {
                monitor: "ml/m",
                job: "m-retrain-1",
                outcome: controller::metrics::JobOutcome::Created,
            },
        );
        let (status, text) = call(&app, get("/metrics")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            text.contains("driftwatch_retrain_jobs_total{outcome=\"created\"} 1"),
            "{text}"
        );

        let alert = serde_json::json!({
            "version": "4", "status": "firing", "receiver": "driftwatch",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
            "groupKey": "g", "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "labels": {"alertname": "ModelDataDrift", "model": "car-loan"},
                        "annotations": {}, "startsAt": "2026-12-07T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "", "fingerprint": "f"}]
        })
        .to_string();
        let post = |authorization: Option<&str>| {
            let mut r =
                Request::post("/v1/alertmanager").header(header::CONTENT_TYPE, "application/json");
            if let Some(a) = authorization {
                r = r.header(header::AUTHORIZATION, a);
            }
            r.body(Body::from(alert.clone())).unwrap()
        };
        // Issue 19, finding 5: a forged alert without credentials became a decision.
        assert_eq!(call(&app, post(None)).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            call(&app, post(Some("Bearer wrong"))).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert!(rx.try_recv().is_err(), "no trigger from a refused request");
        let (status, body) = call(&app, post(Some("Bearer s3cret"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(rx.try_recv().unwrap().alertname, "ModelDataDrift");
        let (_, text) = call(&app, get("/metrics")).await;
        assert!(
            text.contains("driftwatch_http_rejected_total{reason=\"unauthorized\"} 2"),
            "{text}"
        );

        // An empty token file is a start-up error naming the flag.
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let err = controller_app(
            tx,
            &types::auth::AuthConfig {
                bearer_token_file: Some(empty),
                ..types::auth::AuthConfig::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--webhook-token-file"), "{err}");
    }
}
