//! One reconcile of one monitor, written once: the reconciler runs it against the cluster
//! ([`crate::reconcile`]'s Kubernetes client), the dry run against files ([`crate::dry_run`]'s
//! planner, which records structured actions). Both implement [`ClusterIo`], so they cannot
//! drift apart: the same status, alerts, target and measurements give the same Jobs, traffic
//! patches, Events and status.
//!
//! The steps:
//! 1. validate the spec (an invalid one gets a `Ready=False` condition and a Warning Event);
//! 2. retraining: read the running Job (if the status says one runs) and record its outcome; a
//!    resolved alert ends the pending episode it opened; then decide each active drift episode
//!    from the status ([`crate::retrain::decide`]) and create at most one Job;
//! 3. canary: read the target, read the measurements, take one state-machine step
//!    ([`crate::canary::machine::step`]) and apply its traffic actions in order (a rollback's
//!    first write sets canary traffic to 0);
//! 4. write the status, if it changed.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use serde_json::Value;
use types::{AlertStatus, AlertTrigger};

use crate::canary::adapters;
use crate::canary::machine::{self, IDLE_REQUEUE, Inputs, Observation, TrafficAction};
use crate::crd::{
    CanaryPolicy, ModelMonitor, ModelMonitorStatus, MonitorCondition, RetrainOutcome,
    RetrainingSpec,
};
use crate::error::{Error, Result};
use crate::metrics::{JobOutcome, RetrainJobCounted};
use crate::retrain::{self, Decision, Episode};

/// Requeue while a retraining Job runs (the Job watch usually reconciles sooner).
pub const RUNNING_REQUEUE: Duration = Duration::from_secs(60);

/// What one reconcile reads from and writes to the cluster.
pub trait ClusterIo: Sync {
    /// Reads a Job; `None` when it does not exist.
    ///
    /// # Errors
    /// The read failed.
    fn get_job(&self, ns: &str, name: &str) -> impl Future<Output = Result<Option<Job>>> + Send;

    /// Creates the retraining Job `job_name` of `episode`; returns its uid when known.
    ///
    /// # Errors
    /// The create failed (a Job of another episode with the same name included).
    fn create_job(
        &self,
        ns: &str,
        job: &Job,
        job_name: &str,
        episode: &Episode,
    ) -> impl Future<Output = Result<Option<String>>> + Send;

    /// Reads the canary target (a `SeldonDeployment` or `InferenceService`) as JSON.
    ///
    /// # Errors
    /// [`Error::Target`] when it does not exist; the read failed.
    fn get_target(
        &self,
        ns: &str,
        policy: &CanaryPolicy,
    ) -> impl Future<Output = Result<Value>> + Send;

    /// One step's canary measurements of `model`; `Err(reason)` when the source as a whole is
    /// down.
    fn measure(
        &self,
        model: &str,
        policy: &CanaryPolicy,
    ) -> impl Future<Output = std::result::Result<Inputs, String>> + Send;

    /// Applies one traffic patch (`body`, server-side apply) to the canary target.
    ///
    /// # Errors
    /// The write failed.
    fn apply_traffic(
        &self,
        ns: &str,
        policy: &CanaryPolicy,
        body: &Value,
        action: TrafficAction,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Records a Kubernetes Event on the monitor (best effort).
    fn event(
        &self,
        monitor: &ModelMonitor,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) -> impl Future<Output = ()> + Send;

    /// Writes the monitor's whole status.
    ///
    /// # Errors
    /// The write failed.
    fn patch_status(
        &self,
        ns: &str,
        name: &str,
        status: &ModelMonitorStatus,
    ) -> impl Future<Output = Result<()>> + Send;

    /// A decision that writes nothing (an episode already handled or deferred, a canary step
    /// that changes no traffic), for logs and the dry run.
    fn note(&self, monitor: &str, text: String);

    /// A retraining Job ended: logged and counted (the dry run ignores it). A creation is counted
    /// by [`ClusterIo::create_job`] itself, and only when the API created the Job: adopting the
    /// episode's existing Job after a 409 (a reconcile that read a stale status) is no creation.
    fn retrain_job(&self, event: RetrainJobCounted<'_>);
}

/// When to look at the monitor again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// After this long (or sooner, on a change).
    Requeue(Duration),
    /// Only on a change to the monitor (an invalid spec).
    AwaitChange,
}

/// Reconciles `mm` at `now` given the alerts known for its model (latest transition per alert,
/// oldest first). See the module doc for the steps.
///
/// # Errors
/// Failed reads and writes, [`Error::Target`] for an unusable canary target,
/// [`Error::MissingField`] for a monitor without a namespace. The status computed before a
/// canary error is still written.
pub async fn reconcile_monitor<IO: ClusterIo>(
    mm: &ModelMonitor,
    io: &IO,
    alerts: &[AlertTrigger],
    now: DateTime<Utc>,
) -> Result<Next> {
    let ns = mm
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = mm.name_any();
    let old = mm.status.clone().unwrap_or_default();
    let mut status = old.clone();
    status.observed_generation = mm.metadata.generation;

    if let Err(errors) = mm.spec.validate() {
        let message = errors.join("; ");
        set_condition(
            &mut status,
            "Ready",
            false,
            "InvalidSpec",
            message.clone(),
            now,
        );
        if status != old {
            io.event(mm, true, "InvalidSpec", "Validate", message).await;
            io.patch_status(&ns, &name, &status).await?;
        }
        return Ok(Next::AwaitChange);
    }

    let mut requeue = IDLE_REQUEUE;
    if let Some(policy) = &mm.spec.retraining {
        requeue = requeue.min(retrain_step(mm, &ns, io, policy, alerts, &mut status, now).await?);
    }
    let mut canary_error = None;
    if let Some(policy) = &mm.spec.canary {
        match canary_step(mm, &ns, io, policy, &mut status, now).await {
            Ok(r) => requeue = requeue.min(r),
            Err(e) => canary_error = Some(e),
        }
    }
    match &canary_error {
        None => set_condition(
            &mut status,
            "Ready",
            true,
            "Reconciled",
            "spec is valid and reconciled".into(),
            now,
        ),
        Some(e) => set_condition(
            &mut status,
            "Ready",
            false,
            "CanaryError",
            e.to_string(),
            now,
        ),
    }
    if status != old {
        io.patch_status(&ns, &name, &status).await?;
    }
    match canary_error {
        Some(e) => Err(e),
        None => Ok(Next::Requeue(requeue)),
    }
}

/// Sets condition `type_`, moving its transition time only when its value changes.
pub fn set_condition(
    status: &mut ModelMonitorStatus,
    type_: &str,
    value: bool,
    reason: &str,
    message: String,
    now: DateTime<Utc>,
) {
    let value = if value { "True" } else { "False" };
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != value {
                c.last_transition_time = now;
            }
            c.status = value.to_string();
            c.reason = reason.to_string();
            c.message = message;
        }
        None => status.conditions.push(MonitorCondition {
            type_: type_.to_string(),
            status: value.to_string(),
            reason: reason.to_string(),
            message,
            last_transition_time: now,
        }),
    }
}

fn key(mm: &ModelMonitor) -> String {
    format!("{}/{}", mm.namespace().unwrap_or_default(), mm.name_any())
}

async fn retrain_step<IO: ClusterIo>(
    mm: &ModelMonitor,
    ns: &str,
    io: &IO,
    policy: &RetrainingSpec,
    alerts: &[AlertTrigger],
    status: &mut ModelMonitorStatus,
    now: DateTime<Utc>,
) -> Result<Duration> {
    // 1. The outcome of the running Job, if the status says one runs.
    if let Some(last) = status.last_retrain.clone()
        && last.outcome == RetrainOutcome::Running
    {
        let job = io.get_job(ns, &last.job_name).await?;
        let outcome = job
            .as_ref()
            .map_or(RetrainOutcome::Lost, retrain::job_outcome);
        if let (Some(job), Some(l)) = (&job, status.last_retrain.as_mut())
            && l.uid.is_none()
        {
            l.uid = job.uid();
        }
        if retrain::record_outcome(status, outcome, now) {
            io.retrain_job(RetrainJobCounted {
                monitor: &key(mm),
                job: &last.job_name,
                outcome: match outcome {
                    RetrainOutcome::Succeeded => JobOutcome::Succeeded,
                    RetrainOutcome::Failed => JobOutcome::Failed,
                    _ => JobOutcome::Lost,
                },
            });
            let (warning, reason) = match outcome {
                RetrainOutcome::Succeeded => (false, "RetrainSucceeded"),
                RetrainOutcome::Failed => (true, "RetrainFailed"),
                _ => (true, "RetrainJobLost"),
            };
            let note = format!(
                "retraining Job {} ended: {}",
                last.job_name,
                outcome.label()
            );
            io.event(mm, warning, reason, "ObserveJob", note).await;
        }
    }

    // 2. A resolved alert ends the pending episode it opened.
    for t in alerts.iter().filter(|t| t.status == AlertStatus::Resolved) {
        if status
            .retrain
            .pending
            .as_ref()
            .is_some_and(|p| p.starts_at == t.starts_at && p.alertname == t.alertname)
        {
            status.retrain.pending = None;
            io.note(
                &key(mm),
                format!(
                    "drift episode of {} since {} ended: its alert resolved",
                    t.alertname,
                    t.starts_at.to_rfc3339()
                ),
            );
        }
    }

    // 3. The candidate episodes: the pending one first, then every firing trigger alert.
    let mut candidates: Vec<Episode> = Vec::new();
    if let Some(p) = &status.retrain.pending {
        candidates.push(Episode::from_pending(&mm.spec.model, p));
    }
    for t in alerts
        .iter()
        .filter(|t| retrain::is_episode_trigger(&mm.spec, t))
    {
        if let Some(e) = Episode::from_trigger(t)
            && !candidates.iter().any(|c| c.hash() == e.hash())
        {
            candidates.push(e);
        }
    }

    let mut requeue = IDLE_REQUEUE;
    for episode in candidates {
        match retrain::decide(status, policy, &episode, now) {
            Decision::AlreadyHandled => {
                io.note(
                    &key(mm),
                    format!("drift episode {} already handled", episode.hash()),
                );
                if status
                    .retrain
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.trigger_hash == episode.hash())
                {
                    status.retrain.pending = None;
                }
            }
            Decision::Defer { reason, not_before } => {
                let before = status.retrain.pending.clone();
                retrain::record_defer(&mut status.retrain, &episode, reason, not_before);
                let until = not_before
                    .map_or_else(|| "the running Job ends".to_string(), |t| t.to_rfc3339());
                io.note(
                    &key(mm),
                    format!(
                        "drift episode {} waits ({}) until {until}",
                        episode.hash(),
                        reason.as_str()
                    ),
                );
                if status.retrain.pending != before {
                    let note = format!(
                        "drift episode {} of {} waits ({}) until {until}",
                        episode.hash(),
                        episode.model,
                        reason.as_str()
                    );
                    io.event(mm, false, "RetrainDeferred", "DecideRetrain", note)
                        .await;
                }
                let wait = not_before
                    .and_then(|t| (t - now).to_std().ok())
                    .unwrap_or(RUNNING_REQUEUE);
                requeue = requeue.min(wait.max(Duration::from_secs(1)));
            }
            Decision::Launch { job_name } => {
                let job = retrain::build_job(mm, &episode)?;
                let uid = io.create_job(ns, &job, &job_name, &episode).await?;
                retrain::record_launch(status, &episode, &job_name, uid, now);
                let note = format!(
                    "created retraining Job {job_name} for drift episode {} ({} since {})",
                    episode.hash(),
                    episode.alertname,
                    episode.starts_at.to_rfc3339()
                );
                io.event(mm, false, "RetrainJobCreated", "CreateJob", note)
                    .await;
                requeue = requeue.min(RUNNING_REQUEUE);
            }
        }
    }
    let running = status
        .last_retrain
        .as_ref()
        .filter(|l| l.outcome == RetrainOutcome::Running);
    if running.is_some() {
        requeue = requeue.min(RUNNING_REQUEUE);
    }
    let (value, reason, message) = match running {
        Some(l) => (true, "JobRunning", format!("Job {} runs", l.job_name)),
        None => (false, "Idle", "no retraining Job runs".to_string()),
    };
    set_condition(status, "Retraining", value, reason, message, now);
    Ok(requeue)
}

async fn canary_step<IO: ClusterIo>(
    mm: &ModelMonitor,
    ns: &str,
    io: &IO,
    policy: &CanaryPolicy,
    status: &mut ModelMonitorStatus,
    now: DateTime<Utc>,
) -> Result<Duration> {
    let target = &policy.target;
    let value = io.get_target(ns, policy).await?;
    let observation = adapters::observe(target, &value)?;
    let inputs = io.measure(&mm.spec.model, policy).await;
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
        io.note(
            &key(mm),
            format!(
                "canary {:?}: {}",
                transition.state.phase, transition.state.message
            ),
        );
    }
    let what = format!(
        "{} {ns}/{}",
        adapters::api_resource(target.kind).kind,
        target.name
    );
    for action in &transition.actions {
        let Some(body) = adapters::traffic_patch(target, ns, &value, *action)? else {
            continue;
        };
        io.apply_traffic(ns, policy, &body, *action).await?;
        let note = match action {
            TrafficAction::SetCanaryWeight(w) => format!("{what}: canary traffic set to {w}%"),
            TrafficAction::Promote => format!("{what}: all traffic sent to the new version"),
            TrafficAction::Finalize => format!("{what}: canary traffic setting removed"),
        };
        io.event(mm, false, "TrafficShifted", "PatchTraffic", note)
            .await;
    }
    for e in &transition.events {
        io.event(mm, e.warning, e.reason, "CanaryAnalysis", e.note.clone())
            .await;
    }
    status.canary = Some(transition.state);
    Ok(transition.requeue_after)
}
