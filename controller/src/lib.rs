//! driftwatch's Kubernetes controller: the `ModelMonitor` CRD, drift-triggered GPU retraining
//! Jobs, and canary promotion and rollback for Seldon Core v1 and KServe.
//!
//! The key design decision is that every action is decided from the monitor's status alone:
//! retraining from the drift episodes recorded there ([`retrain`]), canary traffic from a pure
//! state machine whose state is stored there ([`canary::machine`]). The controller can therefore
//! restart, see a trigger twice or find a Job deleted by its TTL without acting twice, and the
//! decisions are unit-tested without a cluster. Writes go through server-side apply with the
//! field manager [`FIELD_MANAGER`]; a Lease ([`leader`]) keeps a second replica from acting.
//!
//! Entry points for the binary:
//! - [`crdgen`]: the CRD as YAML (also committed as `deploy/crd/modelmonitor.yaml`);
//! - [`run`]: the controller against the cluster of the ambient kubeconfig or service account;
//! - [`dry_run::plan`]: what it would apply, as YAML, without a cluster: the same orchestration
//!   ([`orchestrate::reconcile_monitor`]) as the reconciler, against a planner.

#![warn(missing_docs)]

pub mod canary;
pub mod crd;
pub mod dry_run;
pub mod error;
pub mod leader;
pub mod metrics;
pub mod orchestrate;
pub mod reconcile;
pub mod retrain;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::watcher;
use kube::{Client, CustomResourceExt};
use tokio::sync::mpsc;
use types::AlertTrigger;

pub use crate::canary::source::{AnalyzerSource, InProcessSource};
pub use crate::crd::{ModelMonitor, ModelMonitorSpec, ModelMonitorStatus};
pub use crate::error::{Error, Result};
pub use crate::metrics::Metrics;

/// The server-side apply field manager of every write, and the Events' reporting controller.
pub const FIELD_MANAGER: &str = "driftwatch";

/// The `ModelMonitor` CustomResourceDefinition as YAML (apiextensions.k8s.io/v1).
///
/// # Errors
/// [`Error::Yaml`] if serialisation fails (not expected for a derived CRD).
pub fn crdgen() -> Result<String> {
    serde_yaml_ng::to_string(&ModelMonitor::crd()).map_err(|source| Error::Yaml {
        operation: "render CRD".to_string(),
        source,
    })
}

/// Settings of [`run`].
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// The namespace watched and acted in (the RBAC Role is namespaced), e.g. `ml`.
    pub namespace: String,
    /// This replica's identity in the Lease and Events: the pod name (`POD_NAME` via the
    /// downward API).
    pub identity: String,
    /// Name of the leader-election Lease in `namespace`. Default `driftwatch-controller`.
    pub lease_name: String,
    /// How long a silent leader keeps the Lease. Default 15 s.
    pub lease_duration: Duration,
    /// How often the Lease is renewed or tried. Default 2 s.
    pub lease_retry: Duration,
    /// Counters; register them with [`Metrics::register`] before calling [`run`].
    pub metrics: Metrics,
    /// In-process canary measurements, published by an analyzer in the same process.
    pub in_process: InProcessSource,
    /// The analyzer service's canary summaries (`--analyzer-url`): the source of monitors
    /// without a Prometheus source when the controller runs as its own Deployment.
    pub analyzer: Option<AnalyzerSource>,
}

impl ControllerConfig {
    /// Defaults for `namespace` and `identity`.
    pub fn new(namespace: &str, identity: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            identity: identity.to_string(),
            lease_name: "driftwatch-controller".to_string(),
            lease_duration: Duration::from_secs(15),
            lease_retry: Duration::from_secs(2),
            metrics: Metrics::default(),
            in_process: InProcessSource::default(),
            analyzer: None,
        }
    }
}

/// Runs the controller until SIGTERM or Ctrl-C: leader election on the Lease, a watch on
/// `ModelMonitor`s and the Jobs they own (label `app.kubernetes.io/managed-by=driftwatch`), and
/// the `triggers` channel (from the rule engine or the Alertmanager webhook), each trigger
/// reconciling the monitors of its `model`.
///
/// # Errors
/// [`Error::Config`] for an empty namespace or identity; [`Error::Kube`] when no client can be
/// built from the environment. Reconcile errors are retried, not returned.
pub async fn run(config: ControllerConfig, triggers: mpsc::Receiver<AlertTrigger>) -> Result<()> {
    if config.namespace.is_empty() || config.identity.is_empty() {
        return Err(Error::Config(
            "namespace and identity must not be empty".to_string(),
        ));
    }
    let client = Client::try_default()
        .await
        .map_err(|e| Error::kube("build a Kubernetes client from the environment", e))?;
    let elector = leader::LeaderElector::new(
        client.clone(),
        &config.namespace,
        &config.lease_name,
        &config.identity,
        config.lease_duration,
    );
    let leader_state = elector.state();
    tokio::spawn(elector.run(config.lease_retry));

    let options = reconcile::ContextOptions {
        identity: config.identity.clone(),
        leader: leader_state,
        metrics: config.metrics.clone(),
        in_process: config.in_process.clone(),
        analyzer: config.analyzer.clone(),
        ..reconcile::ContextOptions::default()
    };
    let ctx = Arc::new(reconcile::Context::new(client.clone(), options));
    let monitors: Api<ModelMonitor> = Api::namespaced(client.clone(), &config.namespace);
    let jobs: Api<Job> = Api::namespaced(client, &config.namespace);
    let owned = watcher::Config::default().labels(&format!(
        "{}={}",
        retrain::MANAGED_BY.0,
        retrain::MANAGED_BY.1
    ));
    let controller = Controller::new(monitors, watcher::Config::default()).owns(jobs, owned);
    let store = controller.store();

    // Each trigger for a watched model reconciles the namespace's monitors (kube 5's per-object
    // `reconcile_on` is unstable; reconciles are idempotent and triggers are rare).
    let (wake_tx, wake_rx) = mpsc::channel::<()>(64);
    let inbox = ctx.inbox().clone();
    tokio::spawn(async move {
        let mut triggers = triggers;
        while let Some(trigger) = triggers.recv().await {
            let Some(model) = inbox.push(trigger) else {
                continue;
            };
            if store.state().iter().any(|m| m.spec.model == model) {
                let _ = wake_tx.try_send(());
            }
        }
    });
    let wake =
        futures::stream::unfold(
            wake_rx,
            |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
        );

    controller
        .reconcile_all_on(wake)
        .shutdown_on_signal()
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(monitor = %obj.name, "reconciled"),
                Err(e) => tracing::warn!(error = %e, "reconcile failed"),
            }
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crdgen_prints_the_modelmonitor_crd() {
        let yaml = crdgen().expect("crd");
        assert!(
            yaml.starts_with(
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
            )
        );
        assert!(yaml.contains("name: modelmonitors.driftwatch.io"));
    }
}
