//! Retraining: the pure decision (status + episode + now -> what to do) and the Job builder.
//!
//! A drift episode is one firing of a trigger alert for one model: the pair (model, the alert's
//! `starts_at`). Its [`Episode::hash`] names the Job deterministically
//! (`retrain-<model>-<8 hex>`) and is what the status remembers, so the decision never depends on
//! whether the Job still exists: a repeated trigger, a restarted controller and a Job deleted by
//! its `ttlSecondsAfterFinished` all find the episode in `status.retrain.handledEpisodes` (or in
//! `status.lastRetrain`) and launch nothing.
//!
//! Order of the rules in [`decide`]: an episode already handled is skipped; a running Job holds
//! the episode back (one active run per model); then the cooldown after the last run, the
//! exponential backoff after consecutive failures and the cap over a rolling 24 hours, each of
//! which defers the episode to a time recorded in `status.retrain.pending`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSpec, PodTemplateSpec, ResourceRequirements, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use types::{AlertStatus, AlertTrigger};

use crate::crd::{
    LastRetrain, ModelMonitor, ModelMonitorSpec, ModelMonitorStatus, PendingEpisode, RetrainBook,
    RetrainOutcome, RetrainingSpec,
};
use crate::error::{Error, Result};

/// How many handled episode hashes the status keeps (oldest dropped first). An alert episode
/// older than the last 64 runs is not expected to fire again.
pub const HANDLED_EPISODES_KEPT: usize = 64;
/// Longest wait after consecutive failures, in seconds (24 h).
pub const MAX_FAILURE_BACKOFF_SECONDS: i64 = 86_400;
/// Name of the training container in the Job's pod.
pub const CONTAINER_NAME: &str = "retrain";
/// Label naming the managing controller on every Job: `app.kubernetes.io/managed-by=driftwatch`.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "driftwatch");
/// Label with the model name (sanitised to a label value).
pub const LABEL_MODEL: &str = "driftwatch.io/model";
/// Label with the model version named by the trigger (`unknown` when absent).
pub const LABEL_VERSION: &str = "driftwatch.io/model-version";
/// Label with the episode hash (16 hex digits).
pub const LABEL_TRIGGER: &str = "driftwatch.io/trigger";
/// Label with the owning ModelMonitor's name.
pub const LABEL_MONITOR: &str = "driftwatch.io/monitor";

/// One drift episode of one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    /// The model's name.
    pub model: String,
    /// When the alert started firing.
    pub starts_at: DateTime<Utc>,
    /// The alert's name, e.g. `ModelDataDrift`.
    pub alertname: String,
    /// The model version named by the alert's `version` label, if any.
    pub model_version: Option<String>,
}

impl Episode {
    /// The episode a trigger belongs to.
    pub fn from_trigger(trigger: &AlertTrigger) -> Option<Self> {
        Some(Self {
            model: trigger.model()?.to_string(),
            starts_at: trigger.starts_at,
            alertname: trigger.alertname.clone(),
            model_version: trigger.version().map(str::to_string),
        })
    }

    /// The episode recorded as pending in a status.
    pub fn from_pending(model: &str, pending: &PendingEpisode) -> Self {
        Self {
            model: model.to_string(),
            starts_at: pending.starts_at,
            alertname: pending.alertname.clone(),
            model_version: pending.model_version.clone(),
        }
    }

    /// Stable identity: FNV-1a 64 of `model \u{1f} starts_at in epoch milliseconds`, as 16 hex
    /// digits. Independent of the alert's other labels, so per-feature drift alerts that start
    /// together share one episode.
    pub fn hash(&self) -> String {
        let key = format!("{}\u{1f}{}", self.model, self.starts_at.timestamp_millis());
        format!("{:016x}", fnv1a64(key.as_bytes()))
    }

    /// The Job name: `retrain-<model sanitised to DNS-1123, at most 46 chars>-<first 8 hex of
    /// the hash>`, at most 63 characters.
    pub fn job_name(&self) -> String {
        job_name(&self.model, &self.hash())
    }
}

/// FNV-1a 64-bit hash (stable across Rust versions, unlike `std`'s hasher).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// `retrain-<model>-<8 hex>`: a DNS-1123 label of at most 63 characters.
pub fn job_name(model: &str, hash: &str) -> String {
    let short: String = hash.chars().take(8).collect();
    format!(
        "retrain-{}-{short}",
        dns_label(model, 63 - "retrain-".len() - 9)
    )
}

/// Lowercase `[a-z0-9-]`, starting and ending alphanumeric, at most `max` characters; `model`
/// when nothing is left.
pub fn dns_label(s: &str, max: usize) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(max)
        .collect();
    let trimmed = mapped.trim_matches('-');
    if trimmed.is_empty() {
        "model".to_string()
    } else {
        trimmed.to_string()
    }
}

/// A Kubernetes label value: `[A-Za-z0-9._-]`, alphanumeric at both ends, at most 63
/// characters (may be empty).
pub fn label_value(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// Whether a trigger opens (or repeats) a drift episode for this monitor: firing, with the
/// monitor's `model` label and one of its `driftPolicy.triggerAlerts`.
pub fn is_episode_trigger(spec: &ModelMonitorSpec, trigger: &AlertTrigger) -> bool {
    trigger.status == AlertStatus::Firing
        && trigger.model() == Some(spec.model.as_str())
        && spec
            .drift_policy
            .trigger_alerts
            .contains(&trigger.alertname)
}

/// Why an episode waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferReason {
    /// A Job for this model is still running.
    ActiveRun,
    /// The cooldown after the last run has not passed.
    Cooldown,
    /// The backoff after consecutive failures has not passed.
    Backoff,
    /// `maxRunsPerDay` runs started in the last 24 hours.
    DailyCap,
}

impl DeferReason {
    /// CamelCase name, as stored in `status.retrain.pending.reason` and used as Event reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ActiveRun => "ActiveRun",
            Self::Cooldown => "Cooldown",
            Self::Backoff => "Backoff",
            Self::DailyCap => "DailyCap",
        }
    }
}

/// What to do about an episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Create the Job with this name.
    Launch {
        /// The deterministic Job name.
        job_name: String,
    },
    /// The episode already got a Job: do nothing.
    AlreadyHandled,
    /// Hold the episode back until `not_before` (or until the running Job ends).
    Defer {
        /// Why.
        reason: DeferReason,
        /// Earliest launch time; `None` while a run is active.
        not_before: Option<DateTime<Utc>>,
    },
}

/// Decides, from the status alone, what to do about `episode` at `now`.
pub fn decide(
    status: &ModelMonitorStatus,
    policy: &RetrainingSpec,
    episode: &Episode,
    now: DateTime<Utc>,
) -> Decision {
    let hash = episode.hash();
    let book = &status.retrain;
    let last = status.last_retrain.as_ref();
    if book.handled_episodes.contains(&hash) || last.is_some_and(|l| l.trigger_hash == hash) {
        return Decision::AlreadyHandled;
    }
    if let Some(last) = last {
        if last.outcome == RetrainOutcome::Running {
            return Decision::Defer {
                reason: DeferReason::ActiveRun,
                not_before: None,
            };
        }
        let finished = last.finished_at.unwrap_or(last.started_at);
        let cooldown_end = finished + Duration::seconds(policy.cooldown_seconds);
        let backoff_end = (book.consecutive_failures > 0).then(|| {
            let exp = (book.consecutive_failures - 1).min(20);
            let wait = policy
                .failure_backoff_seconds
                .saturating_mul(1_i64 << exp)
                .min(MAX_FAILURE_BACKOFF_SECONDS);
            finished + Duration::seconds(wait)
        });
        match backoff_end {
            Some(end) if end > now && end >= cooldown_end => {
                return Decision::Defer {
                    reason: DeferReason::Backoff,
                    not_before: Some(end),
                };
            }
            _ if cooldown_end > now => {
                return Decision::Defer {
                    reason: DeferReason::Cooldown,
                    not_before: Some(cooldown_end),
                };
            }
            _ => {}
        }
    }
    let day_ago = now - Duration::days(1);
    let mut recent: Vec<DateTime<Utc>> = book
        .recent_runs
        .iter()
        .copied()
        .filter(|t| *t > day_ago)
        .collect();
    recent.sort();
    if recent.len() >= policy.max_runs_per_day as usize {
        // The oldest run inside the window leaves it first.
        let not_before = recent.first().map(|t| *t + Duration::days(1));
        return Decision::Defer {
            reason: DeferReason::DailyCap,
            not_before,
        };
    }
    Decision::Launch {
        job_name: episode.job_name(),
    }
}

/// Records a created Job: `lastRetrain` (Running), the handled episode, the run time; clears a
/// pending entry for the same episode.
pub fn record_launch(
    status: &mut ModelMonitorStatus,
    episode: &Episode,
    job_name: &str,
    uid: Option<String>,
    now: DateTime<Utc>,
) {
    let hash = episode.hash();
    status.last_retrain = Some(LastRetrain {
        trigger_hash: hash.clone(),
        episode_start: episode.starts_at,
        model_version: episode.model_version.clone(),
        job_name: job_name.to_string(),
        uid,
        outcome: RetrainOutcome::Running,
        started_at: now,
        finished_at: None,
    });
    let book = &mut status.retrain;
    if !book.handled_episodes.contains(&hash) {
        book.handled_episodes.push(hash.clone());
    }
    let excess = book
        .handled_episodes
        .len()
        .saturating_sub(HANDLED_EPISODES_KEPT);
    book.handled_episodes.drain(..excess);
    let day_ago = now - Duration::days(1);
    book.recent_runs.retain(|t| *t > day_ago);
    book.recent_runs.push(now);
    if book
        .pending
        .as_ref()
        .is_some_and(|p| p.trigger_hash == hash)
    {
        book.pending = None;
    }
}

/// Records a deferred episode as pending (the newest deferred episode wins).
pub fn record_defer(
    book: &mut RetrainBook,
    episode: &Episode,
    reason: DeferReason,
    not_before: Option<DateTime<Utc>>,
) {
    book.pending = Some(PendingEpisode {
        trigger_hash: episode.hash(),
        starts_at: episode.starts_at,
        alertname: episode.alertname.clone(),
        model_version: episode.model_version.clone(),
        reason: reason.as_str().to_string(),
        not_before,
    });
}

/// Records the outcome of the running Job. Returns `true` when the status changed (the outcome
/// was `Running` and `outcome` is final), so callers count each outcome once.
pub fn record_outcome(
    status: &mut ModelMonitorStatus,
    outcome: RetrainOutcome,
    now: DateTime<Utc>,
) -> bool {
    let Some(last) = status.last_retrain.as_mut() else {
        return false;
    };
    if last.outcome != RetrainOutcome::Running || outcome == RetrainOutcome::Running {
        return false;
    }
    last.outcome = outcome;
    last.finished_at = Some(now);
    match outcome {
        RetrainOutcome::Failed => status.retrain.consecutive_failures += 1,
        RetrainOutcome::Succeeded => status.retrain.consecutive_failures = 0,
        RetrainOutcome::Running | RetrainOutcome::Lost => {}
    }
    true
}

/// The outcome a Job reports: `Succeeded` with a `Complete=True` condition, `Failed` with
/// `Failed=True`, else `Running`.
pub fn job_outcome(job: &Job) -> RetrainOutcome {
    let conditions = job
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten());
    for c in conditions {
        if c.status == "True" {
            match c.type_.as_str() {
                "Complete" | "SuccessCriteriaMet" => return RetrainOutcome::Succeeded,
                "Failed" | "FailureTarget" => return RetrainOutcome::Failed,
                _ => {}
            }
        }
    }
    RetrainOutcome::Running
}

/// Builds the batch/v1 Job for an episode.
///
/// Shape: `restartPolicy: Never`; `nvidia.com/gpu` limit of `gpuCount` (with a matching
/// toleration) when above 0; `backoffLimit`, `activeDeadlineSeconds`,
/// `ttlSecondsAfterFinished` from the spec; a `podFailurePolicy` whose rule ignores pod
/// disruptions (`DisruptionTarget=True`: preemption, eviction, node drain), so they do not use
/// up `backoffLimit`; a controller owner reference to the monitor; labels naming the model,
/// version and trigger; the episode passed as `DRIFTWATCH_*` environment variables.
///
/// # Errors
/// [`Error::MissingField`] when the monitor has no namespace, name or uid (it was not read
/// from the API), or [`Error::InvalidSpec`] when it has no `spec.retraining`.
pub fn build_job(monitor: &ModelMonitor, episode: &Episode) -> Result<Job> {
    let policy = monitor
        .spec
        .retraining
        .as_ref()
        .ok_or_else(|| Error::InvalidSpec {
            name: monitor.name_any(),
            message: "spec.retraining is required to launch a retraining Job".to_string(),
        })?;
    let namespace = monitor
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let owner = monitor
        .controller_owner_ref(&())
        .ok_or(Error::MissingField("metadata.uid"))?;
    let hash = episode.hash();
    let labels = BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (
            "app.kubernetes.io/name".to_string(),
            "driftwatch-retrain".to_string(),
        ),
        (LABEL_MONITOR.to_string(), label_value(&monitor.name_any())),
        (LABEL_MODEL.to_string(), label_value(&episode.model)),
        (
            LABEL_VERSION.to_string(),
            episode
                .model_version
                .as_deref()
                .map_or("unknown".to_string(), label_value),
        ),
        (LABEL_TRIGGER.to_string(), hash.clone()),
    ]);
    let annotations = BTreeMap::from([
        (
            "driftwatch.io/alertname".to_string(),
            episode.alertname.clone(),
        ),
        (
            "driftwatch.io/episode-start".to_string(),
            episode.starts_at.to_rfc3339(),
        ),
    ]);
    let mut env = vec![
        env_var("DRIFTWATCH_MODEL", &episode.model),
        env_var("DRIFTWATCH_TRIGGER", &hash),
        env_var("DRIFTWATCH_ALERTNAME", &episode.alertname),
        env_var("DRIFTWATCH_EPISODE_START", &episode.starts_at.to_rfc3339()),
    ];
    if let Some(v) = &episode.model_version {
        env.push(env_var("DRIFTWATCH_MODEL_VERSION", v));
    }
    if let Some(p) = &monitor.spec.reference_profile {
        env.push(env_var("DRIFTWATCH_REFERENCE_PROFILE", p));
    }
    let gpu = policy.gpu_count > 0;
    let resources = gpu.then(|| ResourceRequirements {
        limits: Some(BTreeMap::from([(
            "nvidia.com/gpu".to_string(),
            Quantity(policy.gpu_count.to_string()),
        )])),
        ..ResourceRequirements::default()
    });
    let tolerations = gpu.then(|| {
        vec![Toleration {
            key: Some("nvidia.com/gpu".to_string()),
            operator: Some("Exists".to_string()),
            effect: Some("NoSchedule".to_string()),
            ..Toleration::default()
        }]
    });
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(episode.job_name()),
            namespace: Some(namespace),
            labels: Some(labels.clone()),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(policy.backoff_limit),
            active_deadline_seconds: Some(policy.active_deadline_seconds),
            ttl_seconds_after_finished: Some(policy.ttl_seconds_after_finished),
            pod_failure_policy: Some(PodFailurePolicy {
                rules: vec![PodFailurePolicyRule {
                    action: "Ignore".to_string(),
                    on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                        type_: "DisruptionTarget".to_string(),
                        status: Some("True".to_string()),
                    }]),
                    ..PodFailurePolicyRule::default()
                }],
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".to_string()),
                    service_account_name: policy.service_account_name.clone(),
                    tolerations,
                    containers: vec![Container {
                        name: CONTAINER_NAME.to_string(),
                        image: Some(policy.image.clone()),
                        command: non_empty(&policy.command),
                        args: non_empty(&policy.args),
                        env: Some(env),
                        resources,
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    })
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, h, m, 0)
            .single()
            .expect("valid time")
    }

    fn episode(start: DateTime<Utc>) -> Episode {
        Episode {
            model: "car-loan".into(),
            starts_at: start,
            alertname: types::names::alert::MODEL_DATA_DRIFT.into(),
            model_version: Some("v1.3.0".into()),
        }
    }

    fn policy() -> RetrainingSpec {
        serde_json::from_value(serde_json::json!({"image": "train:1"})).expect("policy")
    }

    #[test]
    fn job_name_is_deterministic_dns_1123_and_at_most_63_chars() {
        let e = episode(t(17, 0));
        assert_eq!(e.hash(), e.clone().hash());
        assert_eq!(e.hash().len(), 16);
        assert_eq!(e.job_name(), format!("retrain-car-loan-{}", &e.hash()[..8]));
        assert_ne!(e.hash(), episode(t(17, 1)).hash());
        let long = Episode {
            model: "A_Very.Long_Model.Name-".repeat(10),
            ..e.clone()
        };
        let name = long.job_name();
        // Cut to 46 characters, then the trailing '-' of the cut is trimmed.
        assert_eq!(
            name,
            format!(
                "retrain-a-very-long-model-name-a-very-long-model-name-{}",
                &long.hash()[..8]
            )
        );
        assert_eq!(name.len(), 62);
        let longest = Episode {
            model: "x".repeat(100),
            ..e
        };
        assert_eq!(longest.job_name().len(), 63);
        assert_eq!(dns_label("--Ünïcode__", 20), "n-code");
        assert_eq!(dns_label("___", 20), "model");
    }

    #[test]
    fn the_same_episode_is_handled_once_even_after_the_job_is_gone() {
        let mut status = ModelMonitorStatus::default();
        let e = episode(t(17, 0));
        let Decision::Launch { job_name } = decide(&status, &policy(), &e, t(17, 10)) else {
            panic!("first trigger launches");
        };
        record_launch(&mut status, &e, &job_name, Some("uid-1".into()), t(17, 10));
        assert_eq!(
            decide(&status, &policy(), &e, t(17, 11)),
            Decision::AlreadyHandled
        );
        // The Job finished and was deleted by its TTL a day later; the episode stays handled.
        assert!(record_outcome(
            &mut status,
            RetrainOutcome::Succeeded,
            t(18, 0)
        ));
        assert!(!record_outcome(
            &mut status,
            RetrainOutcome::Succeeded,
            t(18, 1)
        ));
        assert_eq!(
            decide(&status, &policy(), &e, t(23, 0)),
            Decision::AlreadyHandled
        );
        // Even once lastRetrain moved on to a later episode.
        status.last_retrain = None;
        assert_eq!(
            decide(&status, &policy(), &e, t(23, 0)),
            Decision::AlreadyHandled
        );
    }

    #[test]
    fn active_run_cooldown_backoff_and_daily_cap_defer() {
        let mut status = ModelMonitorStatus::default();
        let p = policy();
        record_launch(&mut status, &episode(t(1, 0)), "j1", None, t(1, 0));
        let next = episode(t(1, 30));
        assert_eq!(
            decide(&status, &p, &next, t(1, 30)),
            Decision::Defer {
                reason: DeferReason::ActiveRun,
                not_before: None
            }
        );
        record_outcome(&mut status, RetrainOutcome::Succeeded, t(2, 0));
        assert_eq!(
            decide(&status, &p, &next, t(2, 30)),
            Decision::Defer {
                reason: DeferReason::Cooldown,
                not_before: Some(t(3, 0))
            }
        );
        assert!(matches!(
            decide(&status, &p, &next, t(3, 0)),
            Decision::Launch { .. }
        ));

        // Two consecutive failures: the backoff is 900 s * 2 = 30 min from the second failure,
        // longer than a 60 s cooldown, so it decides.
        record_launch(&mut status, &next, "j2", None, t(3, 0));
        record_outcome(&mut status, RetrainOutcome::Failed, t(3, 10));
        let third = episode(t(3, 20));
        record_launch(&mut status, &third, "j3", None, t(4, 10));
        record_outcome(&mut status, RetrainOutcome::Failed, t(4, 20));
        assert_eq!(status.retrain.consecutive_failures, 2);
        let fourth = episode(t(4, 30));
        let mut fast = p.clone();
        fast.cooldown_seconds = 60;
        assert_eq!(
            decide(&status, &fast, &fourth, t(4, 30)),
            Decision::Defer {
                reason: DeferReason::Backoff,
                not_before: Some(t(4, 50))
            }
        );
        // Three runs started since 01:00: the cap of 3 per day holds the fourth until 01:00 + 24 h.
        let cap = decide(&status, &fast, &fourth, t(5, 0));
        assert_eq!(
            cap,
            Decision::Defer {
                reason: DeferReason::DailyCap,
                not_before: Some(t(1, 0) + Duration::days(1))
            }
        );
    }

    #[test]
    fn job_outcome_reads_conditions() {
        let mut job: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j"},
            "status": {"conditions": [{"type": "Failed", "status": "True"}]}
        }))
        .expect("job");
        assert_eq!(job_outcome(&job), RetrainOutcome::Failed);
        job.status = None;
        assert_eq!(job_outcome(&job), RetrainOutcome::Running);
    }

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("v1.3.0"), "v1.3.0");
        assert_eq!(label_value("-a b-"), "a_b");
        assert_eq!(label_value(&"x".repeat(80)).len(), 63);
    }
}
