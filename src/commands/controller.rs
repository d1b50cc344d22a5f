//! `driftwatch controller` (the Kubernetes controller, or a dry run) and `driftwatch crdgen`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use alerting::{AlertStatus, AlertTrigger};
use anyhow::Context;
use controller::canary::checks::Sample;
use controller::canary::machine::Inputs;
use controller::dry_run::{self, PlanInput};

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
        let config = controller::ControllerConfig::new(&args.namespace, &identity);
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let app = alerting::webhook::router(tx, &alerting::webhook::WebhookConfig::default());
        let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!("driftwatch controller: namespace {}, Alertmanager webhook on http://{}/v1/alertmanager", args.namespace, args.listen);
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let result = controller::run(config, rx).await;
        server.abort();
        result.map_err(anyhow::Error::from)
    })?;
    Ok(ExitCode::SUCCESS)
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

    /// Plans now; returns the decisions not reported before.
    pub fn plan(&mut self) -> Vec<Decision> {
        let text = match dry_run::plan(&self.input, chrono::Utc::now()) {
            Ok(t) => t,
            Err(e) => {
                return vec![Decision {
                    at: chrono::Utc::now(),
                    kind: "error".into(),
                    summary: e.to_string(),
                    detail: None,
                }];
            }
        };
        let mut out = Vec::new();
        for doc in text.split("\n---\n").skip(1) {
            let Some(first) = doc.lines().next() else {
                continue;
            };
            let summary = first.trim_start_matches("# ").to_string();
            // Jobs are new once per episode; canary patches whenever they change.
            let key = if summary.starts_with("create Job") {
                summary.clone()
            } else {
                doc.to_string()
            };
            if self.printed.contains(&key) {
                continue;
            }
            self.printed.push(key);
            let kind = if summary.starts_with("create Job") {
                "retrain"
            } else {
                "canary"
            };
            let body: String = doc.lines().skip(1).collect::<Vec<_>>().join("\n");
            out.push(Decision {
                at: chrono::Utc::now(),
                kind: kind.into(),
                summary,
                detail: Some(body),
            });
        }
        out
    }
}
