//! `driftwatch controller --dry-run`: the Jobs and traffic patches the controller would apply,
//! without a client. The planner here is a [`ClusterIo`] over files that records structured
//! actions ([`Planned`]); the decisions are the reconciler's own orchestration
//! ([`orchestrate::reconcile_monitor`]), with the status carried from one trigger to the next, so
//! a repeated trigger shows one Job. [`plan`] renders the actions as YAML.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use serde::Deserialize;
use serde_json::Value;
use types::AlertTrigger;

use crate::FIELD_MANAGER;
use crate::canary::adapters;
use crate::canary::machine::{Inputs, TrafficAction};
use crate::canary::source::InProcessSource;
use crate::crd::{CanaryPolicy, ModelMonitor, ModelMonitorStatus, TargetKind};
use crate::error::{Error, Result};
use crate::orchestrate::{self, ClusterIo};
use crate::reconcile::TriggerInbox;
use crate::retrain::Episode;

/// Placeholder uid for a monitor read from a file (the API server assigns the real one).
pub const PLACEHOLDER_UID: &str = "00000000-0000-0000-0000-000000000000";

/// What a dry run looks at.
#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    /// The monitors, with their status if known (a status makes handled episodes show as such).
    pub monitors: Vec<ModelMonitor>,
    /// The triggers, in arrival order.
    pub triggers: Vec<AlertTrigger>,
    /// Canary targets (`SeldonDeployment` or `InferenceService` objects as JSON).
    pub targets: Vec<Value>,
    /// Canary measurements; a monitor with a Prometheus source is not queried (held).
    pub metrics: InProcessSource,
    /// Jobs by `namespace/name` (`Job` documents), so that a running Job's outcome is read from
    /// them; a Job the status names but the input does not have is assumed to be running.
    pub jobs: BTreeMap<String, Job>,
}

impl PlanInput {
    /// Reads a multi-document YAML stream: `ModelMonitor` documents become monitors,
    /// `SeldonDeployment` and `InferenceService` documents become targets, `Job` documents jobs;
    /// other kinds are ignored.
    ///
    /// # Errors
    /// [`Error::Yaml`] naming the document number (from 1) that is not valid YAML or not a valid
    /// `ModelMonitor`.
    pub fn from_yaml(documents: &str) -> Result<Self> {
        let mut input = Self::default();
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(documents).enumerate() {
            let yaml_err = |source| Error::Yaml {
                operation: format!("parse document {}", i + 1),
                source,
            };
            let value = serde_yaml_ng::Value::deserialize(doc).map_err(yaml_err)?;
            let kind = value
                .get("kind")
                .and_then(serde_yaml_ng::Value::as_str)
                .unwrap_or_default();
            match kind {
                "ModelMonitor" => input
                    .monitors
                    .push(serde_yaml_ng::from_value(value).map_err(yaml_err)?),
                "SeldonDeployment" | "InferenceService" => input
                    .targets
                    .push(serde_yaml_ng::from_value(value).map_err(yaml_err)?),
                "Job" => {
                    let job: Job = serde_yaml_ng::from_value(value).map_err(yaml_err)?;
                    let ns = job.namespace().unwrap_or_else(|| "default".to_string());
                    input.jobs.insert(format!("{ns}/{}", job.name_any()), job);
                }
                _ => {}
            }
        }
        Ok(input)
    }
}

/// One thing the controller would do, in the order it would do it.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// Create a retraining Job.
    CreateJob {
        /// The monitor, `namespace/name`.
        monitor: String,
        /// The Job's namespace.
        namespace: String,
        /// The Job's name.
        job_name: String,
        /// The drift episode's hash.
        episode: String,
        /// The Job as it would be created.
        job: Box<Job>,
    },
    /// Server-side apply a traffic patch to the canary target.
    ApplyTraffic {
        /// The monitor, `namespace/name`.
        monitor: String,
        /// `SeldonDeployment` or `InferenceService`.
        kind: &'static str,
        /// The target's namespace.
        namespace: String,
        /// The target's name.
        name: String,
        /// What the patch does.
        action: TrafficAction,
        /// The patch body.
        body: Value,
    },
    /// Record a Kubernetes Event on the monitor.
    Event {
        /// The monitor, `namespace/name`.
        monitor: String,
        /// A Warning (else Normal) Event.
        warning: bool,
        /// The Event's reason, e.g. `RetrainJobCreated`.
        reason: String,
        /// The Event's note.
        note: String,
    },
    /// Write the monitor's status.
    Status {
        /// The monitor, `namespace/name`.
        monitor: String,
        /// The whole new status.
        status: Box<ModelMonitorStatus>,
    },
    /// A decision that writes nothing, or an error that stopped a step, in words.
    Note {
        /// The monitor, `namespace/name`.
        monitor: String,
        /// What was decided.
        text: String,
    },
}

/// The planner: [`ClusterIo`] over the input files, recording what would be written. One per
/// monitor pass.
struct Planner<'a> {
    input: &'a PlanInput,
    monitor: String,
    /// Jobs of the input and those created by this plan, by `namespace/name`.
    jobs: &'a Mutex<BTreeMap<String, Job>>,
    out: &'a Mutex<Vec<Planned>>,
}

impl Planner<'_> {
    fn push(&self, planned: Planned) {
        self.out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(planned);
    }
}

impl ClusterIo for Planner<'_> {
    async fn get_job(&self, ns: &str, name: &str) -> Result<Option<Job>> {
        let jobs = self
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A Job the input does not show is assumed to be still running: the dry run cannot
        // know that it ended.
        Ok(Some(
            jobs.get(&format!("{ns}/{name}"))
                .cloned()
                .unwrap_or_else(|| {
                    let mut job = Job::default();
                    job.metadata.name = Some(name.to_string());
                    job.metadata.namespace = Some(ns.to_string());
                    job
                }),
        ))
    }

    async fn create_job(
        &self,
        ns: &str,
        job: &Job,
        job_name: &str,
        episode: &Episode,
    ) -> Result<Option<String>> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(format!("{ns}/{job_name}"), job.clone());
        self.push(Planned::CreateJob {
            monitor: self.monitor.clone(),
            namespace: ns.to_string(),
            job_name: job_name.to_string(),
            episode: episode.hash(),
            job: Box::new(job.clone()),
        });
        Ok(None)
    }

    async fn get_target(&self, ns: &str, policy: &CanaryPolicy) -> Result<Value> {
        let ar = adapters::api_resource(policy.target.kind);
        self.input
            .targets
            .iter()
            .find(|t| {
                t.get("kind").and_then(Value::as_str) == Some(ar.kind.as_str())
                    && t.pointer("/metadata/name").and_then(Value::as_str)
                        == Some(policy.target.name.as_str())
                    && t.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .is_none_or(|n| n == ns)
            })
            .cloned()
            .ok_or_else(|| Error::Target {
                target: format!("{} {ns}/{}", ar.kind, policy.target.name),
                message: "not given in the input; no canary step".to_string(),
            })
    }

    async fn measure(
        &self,
        model: &str,
        policy: &CanaryPolicy,
    ) -> std::result::Result<Inputs, String> {
        match &policy.metrics_source.prometheus {
            Some(p) => Err(format!("dry run does not query Prometheus at {}", p.url)),
            None => self.input.metrics.snapshot(model),
        }
    }

    async fn apply_traffic(
        &self,
        ns: &str,
        policy: &CanaryPolicy,
        body: &Value,
        action: TrafficAction,
    ) -> Result<()> {
        let kind = match policy.target.kind {
            TargetKind::SeldonDeployment => "SeldonDeployment",
            TargetKind::InferenceService => "InferenceService",
        };
        self.push(Planned::ApplyTraffic {
            monitor: self.monitor.clone(),
            kind,
            namespace: ns.to_string(),
            name: policy.target.name.clone(),
            action,
            body: body.clone(),
        });
        Ok(())
    }

    async fn event(
        &self,
        _monitor: &ModelMonitor,
        warning: bool,
        reason: &str,
        _action: &str,
        note: String,
    ) {
        self.push(Planned::Event {
            monitor: self.monitor.clone(),
            warning,
            reason: reason.to_string(),
            note,
        });
    }

    async fn patch_status(
        &self,
        _ns: &str,
        _name: &str,
        status: &ModelMonitorStatus,
    ) -> Result<()> {
        self.push(Planned::Status {
            monitor: self.monitor.clone(),
            status: Box::new(status.clone()),
        });
        Ok(())
    }

    fn note(&self, monitor: &str, text: String) {
        self.push(Planned::Note {
            monitor: monitor.to_string(),
            text,
        });
    }

    fn retrain_job(&self, _event: crate::metrics::RetrainJobCounted<'_>) {}
}

/// Everything the controller would do for `input` at `now`, in order: the reconciler's own
/// orchestration ([`orchestrate::reconcile_monitor`]) run against the files. Each monitor is
/// reconciled once per trigger of its model, in arrival order (the alerts known growing by one
/// each time, as the reconciler's inbox does), or once without triggers; the status each pass
/// writes is the next pass's. A Job the input does not include is assumed to be still running.
/// An error that stops a monitor's step (an unusable or missing canary target) is recorded as a
/// [`Planned::Note`] and planning goes on.
///
/// # Errors
/// [`Error::InvalidSpec`] for a monitor that fails validation.
pub fn plan_actions(input: &PlanInput, now: DateTime<Utc>) -> Result<Vec<Planned>> {
    let out = Mutex::new(Vec::new());
    let jobs = Mutex::new(input.jobs.clone());
    let mut monitors = input.monitors.clone();
    monitors.sort_by_key(|m| (m.namespace(), m.name_any()));
    for mut mm in monitors {
        let ns = mm.namespace().unwrap_or_else(|| "default".to_string());
        let key = format!("{ns}/{}", mm.name_any());
        mm.metadata.namespace = Some(ns.clone());
        if mm.metadata.uid.is_none() {
            mm.metadata.uid = Some(PLACEHOLDER_UID.to_string());
        }
        mm.spec.validate().map_err(|errors| Error::InvalidSpec {
            name: key.clone(),
            message: errors.join("; "),
        })?;
        let triggers: Vec<&AlertTrigger> = input
            .triggers
            .iter()
            .filter(|t| t.model() == Some(mm.spec.model.as_str()))
            .collect();
        let inbox = TriggerInbox::default();
        for pass in 0..triggers.len().max(1) {
            if let Some(t) = triggers.get(pass) {
                inbox.push((*t).clone());
            }
            let planner = Planner {
                input,
                monitor: key.clone(),
                jobs: &jobs,
                out: &out,
            };
            let alerts = inbox.alerts(&mm.spec.model);
            let result = futures::executor::block_on(orchestrate::reconcile_monitor(
                &mm, &planner, &alerts, now,
            ));
            if let Err(e) = result {
                planner.note(&key, e.to_string());
            }
            let written = out
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .rev()
                .find_map(|p| match p {
                    Planned::Status { monitor, status } if *monitor == key => {
                        Some((**status).clone())
                    }
                    _ => None,
                });
            if written.is_some() {
                mm.status = written;
            }
        }
    }
    Ok(out
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// The header line of a planned write: what it is and where it goes.
pub fn describe(planned: &Planned) -> Option<String> {
    match planned {
        Planned::CreateJob {
            monitor,
            namespace,
            job_name,
            episode,
            ..
        } => Some(format!(
            "create Job {namespace}/{job_name} (monitor {monitor}, drift episode {episode})"
        )),
        Planned::ApplyTraffic {
            kind,
            namespace,
            name,
            action,
            ..
        } => Some(format!(
            "server-side apply {kind} {namespace}/{name} (fieldManager={FIELD_MANAGER}, force): {action:?}"
        )),
        _ => None,
    }
}

/// The object a planned write sends, as YAML.
///
/// # Errors
/// [`Error::Yaml`] if rendering fails.
pub fn object_yaml(planned: &Planned) -> Result<Option<String>> {
    let yaml = match planned {
        Planned::CreateJob { job, .. } => serde_yaml_ng::to_string(job),
        Planned::ApplyTraffic { body, .. } => serde_yaml_ng::to_string(body),
        _ => return Ok(None),
    };
    yaml.map(Some).map_err(|source| Error::Yaml {
        operation: describe(planned).unwrap_or_default(),
        source,
    })
}

/// Renders, as a multi-document YAML string, every Job the controller would create and every
/// server-side apply patch it would send for `input` at `now` ([`plan_actions`]). Decisions that
/// write nothing appear as `#` comment lines; Events and status writes are not shown.
///
/// # Errors
/// [`Error::InvalidSpec`] for a monitor that fails validation, [`Error::Yaml`] if rendering
/// fails.
pub fn plan(input: &PlanInput, now: DateTime<Utc>) -> Result<String> {
    let mut out = format!(
        "# driftwatch controller --dry-run at {}\n",
        now.to_rfc3339()
    );
    for planned in plan_actions(input, now)? {
        if let (Some(header), Some(yaml)) = (describe(&planned), object_yaml(&planned)?) {
            let _ = write!(out, "---\n# {header}\n{yaml}");
        } else if let Planned::Note { monitor, text } = &planned {
            let _ = writeln!(out, "# {monitor}: {text}");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;
    use k8s_openapi::api::batch::v1::Job;

    use super::*;
    use crate::canary::checks::Sample;
    use crate::canary::machine::Inputs;

    const DOCS: &str = r#"
apiVersion: driftwatch.io/v1alpha1
kind: ModelMonitor
metadata: {name: car-loan, namespace: ml}
spec:
  model: car-loan
  retraining: {image: "train:1", gpuCount: 2}
  canary:
    target: {kind: SeldonDeployment, name: car-loan}
    checks: [{name: latency, kind: LatencyRatio, max: 1.2}]
---
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata: {name: car-loan, namespace: ml}
spec:
  predictors:
    - {name: main, traffic: 100, graph: {name: clf, modelUri: "gs://m/v1"}}
    - {name: canary, traffic: 0, graph: {name: clf, modelUri: "gs://m/v2"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
"#;

    fn trigger(fingerprint: &str) -> AlertTrigger {
        AlertTrigger {
            alertname: types::names::alert::MODEL_DATA_DRIFT.into(),
            status: types::AlertStatus::Firing,
            labels: BTreeMap::from([
                ("model".into(), "car-loan".into()),
                ("version".into(), "v1.3.0".into()),
            ]),
            fingerprint: fingerprint.into(),
            starts_at: Utc
                .with_ymd_and_hms(2026, 11, 29, 17, 0, 0)
                .single()
                .expect("t"),
            ends_at: None,
            source: types::TriggerSource::Webhook,
        }
    }

    #[test]
    fn plan_renders_one_job_for_a_repeated_trigger_and_the_first_canary_patch() {
        let mut input = PlanInput::from_yaml(DOCS).expect("parse");
        assert_eq!((input.monitors.len(), input.targets.len()), (1, 1));
        input.triggers = vec![trigger("a"), trigger("a"), trigger("b")];
        input.metrics.publish(
            "car-loan",
            Inputs {
                canary_requests: Some(0),
                samples: BTreeMap::from([("latency".into(), Sample::Value(1.0))]),
            },
        );
        let now = Utc
            .with_ymd_and_hms(2026, 11, 29, 17, 10, 0)
            .single()
            .expect("t");
        let text = plan(&input, now).expect("plan");
        let docs: Vec<&str> = text.split("\n---\n").collect();
        assert_eq!(docs.len(), 3, "{text}");
        let hash = Episode::from_trigger(&trigger("a")).expect("e").hash();
        assert!(
            docs[1].starts_with(&format!(
                "# create Job ml/retrain-car-loan-{} (monitor ml/car-loan",
                &hash[..8]
            )),
            "{}",
            docs[1]
        );
        assert_eq!(text.matches("already handled").count(), 2, "{text}");
        let job_yaml: String = docs[1]
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with("# "))
            .collect::<Vec<_>>()
            .join("\n");
        let job: Job = serde_yaml_ng::from_str(&job_yaml).expect("a valid batch/v1 Job");
        let limits = job
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers[0].resources.as_ref())
            .and_then(|r| r.limits.as_ref())
            .expect("limits");
        assert_eq!(limits["nvidia.com/gpu"].0, "2");
        assert!(docs[2].starts_with("# server-side apply SeldonDeployment ml/car-loan (fieldManager=driftwatch, force): SetCanaryWeight(10)"), "{}", docs[2]);
        let patch: Value = serde_yaml_ng::from_str(docs[2]).expect("patch yaml");
        assert_eq!(patch["spec"]["predictors"][0]["traffic"], 90);
        assert_eq!(patch["spec"]["predictors"][1]["traffic"], 10);
    }

    #[test]
    fn plan_rejects_an_invalid_monitor_with_the_field_named() {
        let docs = DOCS.replace("max: 1.2", "query: q");
        let input = PlanInput::from_yaml(&docs).expect("parse");
        let err = plan(&input, Utc::now()).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "invalid ModelMonitor ml/car-loan: spec.canary.checks[0] (latency) needs min or max"
        );
    }
}
