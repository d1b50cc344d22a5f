//! The reconciler: `reconcile(ModelMonitor, Context) -> Action` and its `error_policy`, in the
//! controller-rs shape.
//!
//! One reconcile of a monitor, only while this replica holds the leader Lease:
//! 1. validate the spec (an invalid one gets a `Ready=False` condition and a Warning Event);
//! 2. retraining: read the running Job (if the status says one runs) and record its outcome;
//!    then decide each active drift episode from the status ([`crate::retrain::decide`]) and
//!    create at most one Job;
//! 3. canary: read the target, read the metrics, take one state-machine step and apply its
//!    traffic actions in order (a rollback's first write sets canary traffic to 0);
//! 4. write the status, if it changed, by server-side apply with field manager `driftwatch`.
//!
//! Every write is followed by a Kubernetes Event on the monitor (best effort: a failing Events
//! API is logged, not fatal). Errors requeue with a per-object exponential backoff (5 s doubling
//! to 5 min) that resets after the next successful reconcile.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use types::{AlertStatus, AlertTrigger};

use crate::FIELD_MANAGER;
use crate::canary::adapters;
use crate::canary::machine::{self, Observation, TrafficAction};
use crate::canary::source::{InProcessSource, MeasureRequest, MetricsSource, PrometheusSource};
use crate::crd::{
    CanaryPolicy, GROUP, ModelMonitor, ModelMonitorStatus, MonitorCondition, RetrainOutcome,
    RetrainingSpec, VERSION,
};
use crate::error::{Error, Result};
use crate::leader::LeaderState;
use crate::metrics::Metrics;
use crate::retrain::{self, Decision, Episode};

/// Requeue when nothing is pending (5 min): the canary machine's idle interval, defined once.
pub use crate::canary::machine::IDLE_REQUEUE;
/// Requeue while a retraining Job runs (the Job watch usually reconciles sooner).
pub const RUNNING_REQUEUE: Duration = Duration::from_secs(60);
/// Requeue of a replica that does not hold the Lease.
pub const STANDBY_REQUEUE: Duration = Duration::from_secs(15);
/// Most alerts the inbox keeps per model (the oldest by `starts_at` are dropped).
pub const INBOX_PER_MODEL: usize = 256;

/// The source of the current time (injectable for tests).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The alerts currently known per model, keyed by alert fingerprint: the latest transition of
/// each alert (a resolved trigger replaces the firing one). Triggers are never consumed: the
/// retraining decision is idempotent, so reading the same alert again is harmless, and every
/// monitor of a model sees it. Clones share the table.
#[derive(Debug, Clone, Default)]
pub struct TriggerInbox(Arc<Mutex<HashMap<String, BTreeMap<String, AlertTrigger>>>>);

impl TriggerInbox {
    /// Stores a trigger; returns its model, or `None` (and stores nothing) when it has no
    /// `model` label.
    pub fn push(&self, trigger: AlertTrigger) -> Option<String> {
        let model = trigger.model()?.to_string();
        let Ok(mut table) = self.0.lock() else {
            return None;
        };
        let alerts = table.entry(model.clone()).or_default();
        alerts.insert(trigger.fingerprint.clone(), trigger);
        while alerts.len() > INBOX_PER_MODEL {
            let oldest = alerts
                .iter()
                .min_by_key(|(_, t)| t.starts_at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => alerts.remove(&k),
                None => break,
            };
        }
        Some(model)
    }

    /// The known alerts of `model`, oldest `starts_at` first.
    pub fn alerts(&self, model: &str) -> Vec<AlertTrigger> {
        let Ok(table) = self.0.lock() else {
            return Vec::new();
        };
        let mut out: Vec<AlertTrigger> = table
            .get(model)
            .map(|a| a.values().cloned().collect())
            .unwrap_or_default();
        out.sort_by(|a, b| {
            a.starts_at
                .cmp(&b.starts_at)
                .then(a.fingerprint.cmp(&b.fingerprint))
        });
        out
    }
}

/// Per-object exponential backoff for `error_policy`: `base * 2^(n-1)` after the n-th
/// consecutive error, capped at `max`; [`ErrorBackoff::reset`] after a success.
#[derive(Debug)]
pub struct ErrorBackoff {
    base: Duration,
    max: Duration,
    attempts: Mutex<HashMap<String, u32>>,
}

impl Default for ErrorBackoff {
    fn default() -> Self {
        Self::new(Duration::from_secs(5), Duration::from_secs(300))
    }
}

impl ErrorBackoff {
    /// A backoff from `base` doubling up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            attempts: Mutex::default(),
        }
    }

    /// Counts an error for `key` (`namespace/name`) and returns the delay before the retry.
    pub fn next_delay(&self, key: &str) -> Duration {
        let n = match self.attempts.lock() {
            Ok(mut a) => {
                let n = a.entry(key.to_string()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        };
        let factor = 1_u32 << (n - 1).min(16);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Forgets the errors of `key` after a successful reconcile.
    pub fn reset(&self, key: &str) {
        if let Ok(mut a) = self.attempts.lock() {
            a.remove(key);
        }
    }
}

/// Options of a [`Context`].
pub struct ContextOptions {
    /// This replica's name in Events (`reportingInstance`), e.g. the pod name.
    pub identity: String,
    /// Whether this replica may act (from [`crate::leader::LeaderElector::state`]).
    pub leader: LeaderState,
    /// The alerts the controller has received.
    pub inbox: TriggerInbox,
    /// Counters.
    pub metrics: Metrics,
    /// The in-process canary metrics (monitors without a Prometheus source read these).
    pub in_process: InProcessSource,
    /// The current time.
    pub clock: Clock,
}

impl fmt::Debug for ContextOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextOptions")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Default for ContextOptions {
    fn default() -> Self {
        Self {
            identity: "driftwatch".to_string(),
            leader: LeaderState::default(),
            inbox: TriggerInbox::default(),
            metrics: Metrics::default(),
            in_process: InProcessSource::default(),
            clock: Arc::new(Utc::now),
        }
    }
}

/// Shared state of the reconciler.
pub struct Context {
    client: Client,
    recorder: Recorder,
    leader: LeaderState,
    inbox: TriggerInbox,
    metrics: Metrics,
    in_process: InProcessSource,
    backoff: ErrorBackoff,
    clock: Clock,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("leader", &self.leader.is_leader())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context over `client`.
    pub fn new(client: Client, options: ContextOptions) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_string(),
            instance: Some(options.identity),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            leader: options.leader,
            inbox: options.inbox,
            metrics: options.metrics,
            in_process: options.in_process,
            backoff: ErrorBackoff::default(),
            clock: options.clock,
        }
    }

    /// The alert inbox (push triggers here).
    pub fn inbox(&self) -> &TriggerInbox {
        &self.inbox
    }

    /// The error backoff (exposed for tests and diagnostics).
    pub fn backoff(&self) -> &ErrorBackoff {
        &self.backoff
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    async fn event(
        &self,
        reference: &ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_string(),
            note: Some(note),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, reference).await {
            tracing::warn!(error = %e, reason, "cannot record Event");
        }
    }
}

/// `namespace/name` of a monitor.
pub fn object_key(monitor: &ModelMonitor) -> String {
    format!(
        "{}/{}",
        monitor.namespace().unwrap_or_default(),
        monitor.name_any()
    )
}

/// Reconciles one monitor (see the module doc for the steps). Returns when to look again.
///
/// # Errors
/// [`Error::Kube`] for failed API calls, [`Error::Target`] for an unusable canary target,
/// [`Error::MissingField`] for a monitor without namespace or uid. The status computed before
/// a canary error is still written.
pub async fn reconcile(monitor: Arc<ModelMonitor>, ctx: Arc<Context>) -> Result<Action> {
    let result = reconcile_inner(&monitor, &ctx).await;
    if result.is_ok() {
        ctx.backoff.reset(&object_key(&monitor));
    }
    result
}

/// Maps a reconcile error to a requeue: retryable errors back off exponentially per object,
/// the rest wait for a change to the object. Counts the error under its bounded label.
pub fn error_policy(monitor: Arc<ModelMonitor>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error(error);
    let key = object_key(&monitor);
    if !error.is_retryable() {
        tracing::warn!(monitor = %key, error = %error, "reconcile failed; waiting for a change");
        return Action::await_change();
    }
    let delay = ctx.backoff.next_delay(&key);
    tracing::warn!(monitor = %key, error = %error, ?delay, "reconcile failed; retrying");
    Action::requeue(delay)
}

fn set_condition(
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

async fn reconcile_inner(mm: &ModelMonitor, ctx: &Context) -> Result<Action> {
    if !ctx.leader.is_leader() {
        return Ok(Action::requeue(STANDBY_REQUEUE));
    }
    let ns = mm
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let name = mm.name_any();
    let reference = mm.object_ref(&());
    let now = ctx.now();
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
            ctx.event(&reference, true, "InvalidSpec", "Validate", message)
                .await;
            patch_status(ctx, &ns, &name, &status).await?;
        }
        return Ok(Action::await_change());
    }

    let mut requeue = IDLE_REQUEUE;
    if let Some(policy) = &mm.spec.retraining {
        requeue =
            requeue.min(reconcile_retrain(mm, ctx, policy, &reference, &mut status, now).await?);
    }
    let mut canary_error = None;
    if let Some(policy) = &mm.spec.canary {
        match reconcile_canary(mm, ctx, policy, &reference, &mut status, now).await {
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
        patch_status(ctx, &ns, &name, &status).await?;
    }
    match canary_error {
        Some(e) => Err(e),
        None => Ok(Action::requeue(requeue)),
    }
}

/// Writes the whole status by server-side apply: `PATCH .../modelmonitors/<name>/status?
/// fieldManager=driftwatch&force=true` with content type `application/apply-patch+yaml`.
async fn patch_status(
    ctx: &Context,
    ns: &str,
    name: &str,
    status: &ModelMonitorStatus,
) -> Result<()> {
    let api: Api<ModelMonitor> = Api::namespaced(ctx.client.clone(), ns);
    let body = json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "ModelMonitor",
        "metadata": {"name": name, "namespace": ns},
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| Error::kube(format!("apply ModelMonitor {ns}/{name} status"), e))?;
    Ok(())
}

async fn reconcile_retrain(
    mm: &ModelMonitor,
    ctx: &Context,
    policy: &RetrainingSpec,
    reference: &ObjectReference,
    status: &mut ModelMonitorStatus,
    now: DateTime<Utc>,
) -> Result<Duration> {
    let ns = mm
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);

    // 1. The outcome of the running Job, if the status says one runs.
    if let Some(last) = status.last_retrain.clone()
        && last.outcome == RetrainOutcome::Running
    {
        let job = jobs
            .get_opt(&last.job_name)
            .await
            .map_err(|e| Error::kube(format!("get Job {ns}/{}", last.job_name), e))?;
        let outcome = job
            .as_ref()
            .map_or(RetrainOutcome::Lost, retrain::job_outcome);
        if let (Some(job), Some(l)) = (&job, status.last_retrain.as_mut())
            && l.uid.is_none()
        {
            l.uid = job.uid();
        }
        if retrain::record_outcome(status, outcome, now) {
            ctx.metrics.retrain_job(outcome.label());
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
            ctx.event(reference, warning, reason, "ObserveJob", note)
                .await;
        }
    }

    // 2. A resolved alert ends the pending episode it opened.
    let alerts = ctx.inbox.alerts(&mm.spec.model);
    for t in alerts.iter().filter(|t| t.status == AlertStatus::Resolved) {
        if status
            .retrain
            .pending
            .as_ref()
            .is_some_and(|p| p.starts_at == t.starts_at && p.alertname == t.alertname)
        {
            status.retrain.pending = None;
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
                if status.retrain.pending != before {
                    let until = not_before
                        .map_or_else(|| "the running Job ends".to_string(), |t| t.to_rfc3339());
                    let note = format!(
                        "drift episode {} of {} waits ({}) until {until}",
                        episode.hash(),
                        episode.model,
                        reason.as_str()
                    );
                    ctx.event(reference, false, "RetrainDeferred", "DecideRetrain", note)
                        .await;
                }
                let wait = not_before
                    .and_then(|t| (t - now).to_std().ok())
                    .unwrap_or(RUNNING_REQUEUE);
                requeue = requeue.min(wait.max(Duration::from_secs(1)));
            }
            Decision::Launch { job_name } => {
                let job = retrain::build_job(mm, &episode)?;
                let uid = create_job(&jobs, &job, &job_name, &episode).await?;
                retrain::record_launch(status, &episode, &job_name, uid, now);
                ctx.metrics.retrain_job("created");
                let note = format!(
                    "created retraining Job {job_name} for drift episode {} ({} since {})",
                    episode.hash(),
                    episode.alertname,
                    episode.starts_at.to_rfc3339()
                );
                ctx.event(reference, false, "RetrainJobCreated", "CreateJob", note)
                    .await;
                requeue = requeue.min(RUNNING_REQUEUE);
            }
        }
    }
    if status
        .last_retrain
        .as_ref()
        .is_some_and(|l| l.outcome == RetrainOutcome::Running)
    {
        requeue = requeue.min(RUNNING_REQUEUE);
    }
    let running = status
        .last_retrain
        .as_ref()
        .filter(|l| l.outcome == RetrainOutcome::Running);
    let (value, reason, message) = match running {
        Some(l) => (true, "JobRunning", format!("Job {} runs", l.job_name)),
        None => (false, "Idle", "no retraining Job runs".to_string()),
    };
    set_condition(status, "Retraining", value, reason, message, now);
    Ok(requeue)
}

/// Creates the Job; on 409 AlreadyExists (a previous reconcile created it but could not record
/// it) adopts the existing Job when it carries the same episode label.
async fn create_job(
    jobs: &Api<Job>,
    job: &Job,
    job_name: &str,
    episode: &Episode,
) -> Result<Option<String>> {
    match jobs.create(&PostParams::default(), job).await {
        Ok(created) => Ok(created.uid()),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = jobs
                .get(job_name)
                .await
                .map_err(|e| Error::kube(format!("get existing Job {job_name}"), e))?;
            let label = existing.labels().get(retrain::LABEL_TRIGGER).cloned();
            if label.as_deref() == Some(episode.hash().as_str()) {
                Ok(existing.uid())
            } else {
                Err(Error::Target {
                    target: format!("Job/{job_name}"),
                    message: format!(
                        "exists but belongs to episode {label:?}, not {}",
                        episode.hash()
                    ),
                })
            }
        }
        Err(e) => Err(Error::kube(format!("create Job {job_name}"), e)),
    }
}

async fn reconcile_canary(
    mm: &ModelMonitor,
    ctx: &Context,
    policy: &CanaryPolicy,
    reference: &ObjectReference,
    status: &mut ModelMonitorStatus,
    now: DateTime<Utc>,
) -> Result<Duration> {
    let ns = mm
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let target = &policy.target;
    let ar = adapters::api_resource(target.kind);
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ar);
    let what = format!("{} {ns}/{}", ar.kind, target.name);
    let obj = api
        .get_opt(&target.name)
        .await
        .map_err(|e| Error::kube(format!("get {what}"), e))?
        .ok_or_else(|| Error::Target {
            target: what.clone(),
            message: "not found".to_string(),
        })?;
    let value = serde_json::to_value(&obj).map_err(|source| Error::Json {
        what: "canary target",
        source,
    })?;
    let observation = adapters::observe(target, &value)?;

    let request = MeasureRequest {
        model: &mm.spec.model,
        policy,
    };
    let inputs = match &policy.metrics_source.prometheus {
        Some(p) => PrometheusSource::new(&p.url).measure(request).await,
        None => ctx.in_process.measure(request).await,
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
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for action in &transition.actions {
        let Some(body) = adapters::traffic_patch(target, &ns, &value, *action)? else {
            continue;
        };
        api.patch(&target.name, &params, &Patch::Apply(&body))
            .await
            .map_err(|e| Error::kube(format!("apply traffic to {what}"), e))?;
        let note = match action {
            TrafficAction::SetCanaryWeight(w) => format!("{what}: canary traffic set to {w}%"),
            TrafficAction::Promote => format!("{what}: all traffic sent to the new version"),
            TrafficAction::Finalize => format!("{what}: canary traffic setting removed"),
        };
        ctx.event(reference, false, "TrafficShifted", "PatchTraffic", note)
            .await;
    }
    for e in &transition.events {
        ctx.event(
            reference,
            e.warning,
            e.reason,
            "CanaryAnalysis",
            e.note.clone(),
        )
        .await;
    }
    status.canary = Some(transition.state);
    Ok(transition.requeue_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_object_caps_and_resets_on_success() {
        let b = ErrorBackoff::default();
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay("ns/a").as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(b.next_delay("ns/b").as_secs(), 5, "per object");
        b.reset("ns/a");
        assert_eq!(b.next_delay("ns/a").as_secs(), 5);
    }

    #[test]
    fn inbox_keeps_the_latest_transition_per_alert() {
        let inbox = TriggerInbox::default();
        let mut t = AlertTrigger {
            alertname: types::names::alert::MODEL_DATA_DRIFT.into(),
            status: AlertStatus::Firing,
            labels: BTreeMap::from([("model".into(), "m".into())]),
            fingerprint: "f1".into(),
            starts_at: Utc::now(),
            ends_at: None,
            source: types::TriggerSource::Engine,
        };
        assert_eq!(inbox.push(t.clone()).as_deref(), Some("m"));
        assert_eq!(inbox.push(t.clone()).as_deref(), Some("m"));
        assert_eq!(inbox.alerts("m").len(), 1);
        t.status = AlertStatus::Resolved;
        inbox.push(t.clone());
        assert_eq!(inbox.alerts("m")[0].status, AlertStatus::Resolved);
        t.labels.clear();
        assert_eq!(inbox.push(t), None);
    }
}
