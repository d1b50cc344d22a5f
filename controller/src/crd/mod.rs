//! The `ModelMonitor` custom resource (group `driftwatch.io`, version `v1alpha1`, namespaced):
//! the spec a user writes and the status the controller keeps.
//!
//! The status is the controller's memory: every retraining decision is taken from it alone (never
//! from whether a Job still exists), so a repeated trigger, a restarted controller and a Job
//! deleted by its TTL never launch a second Job for the same drift episode.
//!
//! Validation happens twice: CEL rules and OpenAPI bounds in the generated CRD (the API server
//! rejects a bad object with the rule's message), and [`ModelMonitorSpec::validate`] at reconcile
//! time for the rules CEL cannot express (unique check names across an old server, URL shape).
//! Unknown fields are pruned by the API server (structural schema), so the types do not use
//! `deny_unknown_fields`: an older controller must still read a newer object.
//!
//! The types are split by concern, and all of them are re-exported here (`crate::crd::X`):
//! - `spec.rs`: [`ModelMonitorSpec`] (from which `#[derive(CustomResource)]`
//!   makes [`ModelMonitor`], with its printer columns) and the [`DriftPolicy`];
//! - `retraining_spec.rs`: the retraining Job template and its rate limits ([`RetrainingSpec`]);
//! - `canary_spec.rs`: the canary target, policy, checks and metrics source ([`CanaryPolicy`]);
//! - `status.rs`: [`ModelMonitorStatus`] and its conditions;
//! - `retraining_status.rs`: the last retraining run and the retraining bookkeeping;
//! - `canary_status.rs`: the canary analysis state ([`CanaryState`]) and its measurements;
//! - `validate.rs`: [`ModelMonitorSpec::validate`], the reconcile-time checks.

mod canary_spec;
mod canary_status;
mod retraining_spec;
mod retraining_status;
mod spec;
mod status;
mod validate;

pub use canary_spec::{
    CanaryPolicy, CanaryTarget, CheckKind, CheckSpec, MetricsSourceSpec, PrometheusSourceSpec,
    TargetKind,
};
pub use canary_status::{CanaryPhase, CanaryState, CheckCounters, CheckMeasurement, CheckOutcome};
pub use retraining_spec::RetrainingSpec;
pub use retraining_status::{LastRetrain, PendingEpisode, RetrainBook, RetrainOutcome};
pub use spec::{DriftPolicy, ModelMonitor, ModelMonitorSpec};
pub use status::{ModelMonitorStatus, MonitorCondition};

/// The API group of the CRD.
pub const GROUP: &str = "driftwatch.io";
/// The API version of the CRD.
pub const VERSION: &str = "v1alpha1";
