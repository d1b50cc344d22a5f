//! The reconciler: `reconcile(ModelMonitor, Context) -> Action` and its `error_policy`, in the
//! controller-rs shape.
//!
//! One reconcile of a monitor, only while this replica holds the leader Lease, is
//! [`crate::orchestrate::reconcile_monitor`] (the same steps the dry run plans) against the
//! cluster: Jobs and traffic through the API server, the status by server-side apply with field
//! manager `driftwatch`.
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
use serde_json::{Value, json};
use telemetry::Emit;
use types::AlertTrigger;

use crate::FIELD_MANAGER;
use crate::canary::adapters;
use crate::canary::machine::{Inputs, TrafficAction};
use crate::canary::source::{
    AnalyzerSource, InProcessSource, MeasureRequest, MetricsSource, PrometheusSource,
};
use crate::crd::{CanaryPolicy, GROUP, ModelMonitor, ModelMonitorStatus, VERSION};
use crate::error::{Error, Result};
use crate::leader::LeaderState;
use crate::metrics::{JobOutcome, Metrics, ReconcileFailed, RetrainJobCounted};
use crate::orchestrate::{self, ClusterIo, Next};
use crate::retrain::{self, Episode};

/// Requeue when nothing is pending (5 min): the canary machine's idle interval, defined once.
pub use crate::canary::machine::IDLE_REQUEUE;
/// Requeue while a retraining Job runs, defined once in the orchestration.
pub use crate::orchestrate::RUNNING_REQUEUE;
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
    /// The in-process canary metrics (monitors without a Prometheus source read these when
    /// there is no analyzer source).
    pub in_process: InProcessSource,
    /// The analyzer service's canary summaries (monitors without a Prometheus source read
    /// these when set).
    pub analyzer: Option<AnalyzerSource>,
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
            analyzer: None,
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
    analyzer: Option<AnalyzerSource>,
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
            analyzer: options.analyzer,
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
    let key = object_key(&monitor);
    let retry_in = error.is_retryable().then(|| ctx.backoff.next_delay(&key));
    ctx.metrics.emit(ReconcileFailed {
        monitor: &key,
        error,
        retry_in,
    });
    retry_in.map_or_else(Action::await_change, Action::requeue)
}

/// The cluster as [`ClusterIo`] for one reconcile: the Kubernetes API through `ctx`'s client,
/// the in-process or Prometheus canary source, Events through `ctx`'s recorder.
struct KubeIo<'a> {
    ctx: &'a Context,
}

impl ClusterIo for KubeIo<'_> {
    async fn get_job(&self, ns: &str, name: &str) -> Result<Option<Job>> {
        let jobs: Api<Job> = Api::namespaced(self.ctx.client.clone(), ns);
        jobs.get_opt(name)
            .await
            .map_err(|e| Error::kube(format!("get Job {ns}/{name}"), e))
    }

    async fn create_job(
        &self,
        ns: &str,
        job: &Job,
        job_name: &str,
        episode: &Episode,
    ) -> Result<Option<String>> {
        let jobs: Api<Job> = Api::namespaced(self.ctx.client.clone(), ns);
        let (uid, created) = create_job(&jobs, job, job_name, episode).await?;
        if created {
            self.ctx.metrics.emit(RetrainJobCounted {
                // The Job's owner is its ModelMonitor.
                monitor: &format!(
                    "{ns}/{}",
                    job.owner_references()
                        .first()
                        .map_or(episode.model.as_str(), |o| o.name.as_str())
                ),
                job: job_name,
                outcome: JobOutcome::Created,
            });
        }
        Ok(uid)
    }

    async fn get_target(&self, ns: &str, policy: &CanaryPolicy) -> Result<Value> {
        let target = &policy.target;
        let ar = adapters::api_resource(target.kind);
        let api: Api<DynamicObject> = Api::namespaced_with(self.ctx.client.clone(), ns, &ar);
        let what = format!("{} {ns}/{}", ar.kind, target.name);
        let obj = api
            .get_opt(&target.name)
            .await
            .map_err(|e| Error::kube(format!("get {what}"), e))?
            .ok_or_else(|| Error::Target {
                target: what.clone(),
                message: "not found".to_string(),
            })?;
        serde_json::to_value(&obj).map_err(|source| Error::Json {
            what: "canary target",
            source,
        })
    }

    async fn measure(
        &self,
        model: &str,
        policy: &CanaryPolicy,
    ) -> std::result::Result<Inputs, String> {
        let request = MeasureRequest { model, policy };
        match (&policy.metrics_source.prometheus, &self.ctx.analyzer) {
            (Some(p), _) => PrometheusSource::new(&p.url).measure(request).await,
            (None, Some(analyzer)) => analyzer.measure(request).await,
            (None, None) => self.ctx.in_process.measure(request).await,
        }
    }

    async fn apply_traffic(
        &self,
        ns: &str,
        policy: &CanaryPolicy,
        body: &Value,
        _action: TrafficAction,
    ) -> Result<()> {
        let target = &policy.target;
        let ar = adapters::api_resource(target.kind);
        let api: Api<DynamicObject> = Api::namespaced_with(self.ctx.client.clone(), ns, &ar);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(&target.name, &params, &Patch::Apply(body))
            .await
            .map_err(|e| {
                Error::kube(
                    format!("apply traffic to {} {ns}/{}", ar.kind, target.name),
                    e,
                )
            })?;
        Ok(())
    }

    async fn event(
        &self,
        monitor: &ModelMonitor,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let reference = monitor.object_ref(&());
        self.ctx
            .event(&reference, warning, reason, action, note)
            .await;
    }

    async fn patch_status(&self, ns: &str, name: &str, status: &ModelMonitorStatus) -> Result<()> {
        patch_status(self.ctx, ns, name, status).await
    }

    fn note(&self, monitor: &str, text: String) {
        tracing::debug!(monitor, "{text}");
    }

    fn retrain_job(&self, event: RetrainJobCounted<'_>) {
        self.ctx.metrics.emit(event);
    }
}

async fn reconcile_inner(mm: &ModelMonitor, ctx: &Context) -> Result<Action> {
    if !ctx.leader.is_leader() {
        return Ok(Action::requeue(STANDBY_REQUEUE));
    }
    let alerts = ctx.inbox.alerts(&mm.spec.model);
    match orchestrate::reconcile_monitor(mm, &KubeIo { ctx }, &alerts, ctx.now()).await? {
        Next::Requeue(after) => Ok(Action::requeue(after)),
        Next::AwaitChange => Ok(Action::await_change()),
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

/// Creates the Job; on 409 AlreadyExists (a previous reconcile created it but could not record
/// it) adopts the existing Job when it carries the same episode label.
/// Creates the Job, or adopts the episode's Job of that name when it exists (409); returns its uid
/// and whether this call created it.
async fn create_job(
    jobs: &Api<Job>,
    job: &Job,
    job_name: &str,
    episode: &Episode,
) -> Result<(Option<String>, bool)> {
    match jobs.create(&PostParams::default(), job).await {
        Ok(created) => Ok((created.uid(), true)),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = jobs
                .get(job_name)
                .await
                .map_err(|e| Error::kube(format!("get existing Job {job_name}"), e))?;
            let label = existing.labels().get(retrain::LABEL_TRIGGER).cloned();
            if label.as_deref() == Some(episode.hash().as_str()) {
                Ok((existing.uid(), false))
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

#[cfg(test)]
mod tests {
    use types::AlertStatus;

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
