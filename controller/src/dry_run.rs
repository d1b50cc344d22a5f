//! `driftwatch controller --dry-run`: the Jobs and traffic patches the controller would apply,
//! rendered as YAML, without a client. The same decisions as the reconciler
//! ([`crate::retrain::decide`], [`crate::canary::machine::step`]), fed from files instead of the
//! API, and with the status carried from one trigger to the next, so a repeated trigger shows
//! one Job.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use kube::ResourceExt;
use serde::Deserialize;
use serde_json::Value;
use types::AlertTrigger;

use crate::FIELD_MANAGER;
use crate::canary::adapters;
use crate::canary::machine::{self, Observation};
use crate::canary::source::InProcessSource;
use crate::crd::{ModelMonitor, TargetKind};
use crate::error::{Error, Result};
use crate::retrain::{self, Decision, Episode};

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
}

impl PlanInput {
    /// Reads a multi-document YAML stream: `ModelMonitor` documents become monitors,
    /// `SeldonDeployment` and `InferenceService` documents become targets, other kinds are
    /// ignored.
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
                _ => {}
            }
        }
        Ok(input)
    }
}

fn render(out: &mut String, comment: &str, object: &impl serde::Serialize) -> Result<()> {
    let yaml = serde_yaml_ng::to_string(object).map_err(|source| Error::Yaml {
        operation: format!("render {comment}"),
        source,
    })?;
    let _ = write!(out, "---\n# {comment}\n{yaml}");
    Ok(())
}

/// Renders, as a multi-document YAML string, every Job the controller would create and every
/// server-side apply patch it would send for `input` at `now`. Decisions that write nothing
/// appear as `#` comment lines.
///
/// # Errors
/// [`Error::InvalidSpec`] for a monitor that fails validation, [`Error::Target`] for an
/// unusable canary target, [`Error::Yaml`] if rendering fails.
pub fn plan(input: &PlanInput, now: DateTime<Utc>) -> Result<String> {
    let mut out = format!(
        "# driftwatch controller --dry-run at {}\n",
        now.to_rfc3339()
    );
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
        let mut status = mm.status.clone().unwrap_or_default();

        if let Some(policy) = &mm.spec.retraining {
            let mut episodes: Vec<Episode> = status
                .retrain
                .pending
                .iter()
                .map(|p| Episode::from_pending(&mm.spec.model, p))
                .collect();
            episodes.extend(
                input
                    .triggers
                    .iter()
                    .filter(|t| retrain::is_episode_trigger(&mm.spec, t))
                    .filter_map(Episode::from_trigger),
            );
            for episode in episodes {
                match retrain::decide(&status, policy, &episode, now) {
                    Decision::Launch { job_name } => {
                        let job = retrain::build_job(&mm, &episode)?;
                        render(
                            &mut out,
                            &format!(
                                "create Job {ns}/{job_name} (monitor {key}, drift episode {})",
                                episode.hash()
                            ),
                            &job,
                        )?;
                        retrain::record_launch(&mut status, &episode, &job_name, None, now);
                    }
                    Decision::AlreadyHandled => {
                        let _ = writeln!(
                            out,
                            "# {key}: drift episode {} already handled",
                            episode.hash()
                        );
                    }
                    Decision::Defer { reason, not_before } => {
                        let until = not_before
                            .map_or_else(|| "the running Job ends".into(), |t| t.to_rfc3339());
                        let _ = writeln!(
                            out,
                            "# {key}: drift episode {} waits ({}) until {until}",
                            episode.hash(),
                            reason.as_str()
                        );
                        retrain::record_defer(&mut status.retrain, &episode, reason, not_before);
                    }
                }
            }
        }

        if let Some(policy) = &mm.spec.canary {
            let ar = adapters::api_resource(policy.target.kind);
            let found = input.targets.iter().find(|t| {
                t.get("kind").and_then(Value::as_str) == Some(ar.kind.as_str())
                    && t.pointer("/metadata/name").and_then(Value::as_str)
                        == Some(policy.target.name.as_str())
                    && t.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .is_none_or(|n| n == ns)
            });
            let Some(target) = found else {
                let _ = writeln!(
                    out,
                    "# {key}: canary target {} {ns}/{} not given; no canary step",
                    ar.kind, policy.target.name
                );
                continue;
            };
            let observation = adapters::observe(&policy.target, target)?;
            let inputs = match &policy.metrics_source.prometheus {
                Some(p) => Err(format!("dry run does not query Prometheus at {}", p.url)),
                None => input.metrics.snapshot(&mm.spec.model),
            };
            let transition = machine::step(
                status.canary.as_ref(),
                policy,
                Observation {
                    now,
                    target: &observation,
                    metrics: inputs.as_ref().map_err(String::as_str),
                },
            );
            if transition.actions.is_empty() {
                let _ = writeln!(
                    out,
                    "# {key}: canary {:?}: {}",
                    transition.state.phase, transition.state.message
                );
            }
            for action in &transition.actions {
                if let Some(body) = adapters::traffic_patch(&policy.target, &ns, target, *action)? {
                    let kind = match policy.target.kind {
                        TargetKind::SeldonDeployment => "SeldonDeployment",
                        TargetKind::InferenceService => "InferenceService",
                    };
                    let comment = format!(
                        "server-side apply {kind} {ns}/{} (fieldManager={FIELD_MANAGER}, force): {action:?}",
                        policy.target.name
                    );
                    render(&mut out, &comment, &body)?;
                }
            }
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
