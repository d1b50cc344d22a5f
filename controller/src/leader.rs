//! Leader election over a `coordination.k8s.io/v1` Lease, so that of several controller
//! replicas exactly one acts (kube 5 ships no elector).
//!
//! Protocol (the one client-go's `leaderelection` uses): read the Lease; if it is absent, create
//! it holding it; if we hold it, renew `renewTime`; if another identity holds it and
//! `renewTime + leaseDurationSeconds` has not passed, stand by; if it has expired, take it over.
//! Every write other than the create is a `PUT` carrying the `resourceVersion` that was read, so
//! two replicas racing for an expired Lease cannot both win: the API server answers the loser
//! with 409 Conflict. A leader that cannot renew within the lease duration steps down before
//! another replica may take over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::error::{Error, Result};

/// Whether this replica currently holds the Lease. Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct LeaderState(Arc<AtomicBool>);

impl LeaderState {
    /// A state that is always leader: for a single replica or tests.
    pub fn always_leader() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }

    /// Whether this replica may act now.
    pub fn is_leader(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, leader: bool) {
        self.0.store(leader, Ordering::Release);
    }
}

/// Elects one leader among replicas through one Lease.
#[derive(Debug, Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
    state: LeaderState,
}

fn micro_time(t: DateTime<Utc>) -> Result<MicroTime> {
    Timestamp::from_microsecond(t.timestamp_micros())
        .map(MicroTime)
        .map_err(|e| Error::Config(format!("time {t} does not fit a Lease timestamp: {e}")))
}

fn chrono_time(t: &MicroTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(t.0.as_microsecond())
}

impl LeaderElector {
    /// An elector for Lease `namespace/name`, identifying this replica as `identity` (its pod
    /// name), with `lease_duration` (e.g. 15 s) as the time a silent leader keeps the Lease.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        lease_duration: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            lease_duration,
            state: LeaderState::default(),
        }
    }

    /// The shared flag the reconciler reads.
    pub fn state(&self) -> LeaderState {
        self.state.clone()
    }

    fn spec(
        &self,
        now: DateTime<Utc>,
        acquired: Option<MicroTime>,
        transitions: i32,
    ) -> Result<LeaseSpec> {
        let now = micro_time(now)?;
        Ok(LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(acquired.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        })
    }

    /// One round of the protocol at `now`: returns whether this replica holds the Lease
    /// afterwards, and updates [`LeaderState`]. A lost race (409 Conflict) is `Ok(false)`.
    ///
    /// # Errors
    /// [`Error::Kube`] when the API cannot be reached or refuses for another reason; the state
    /// is left as it was (see [`LeaderElector::run`] for stepping down on repeated errors).
    pub async fn try_acquire_or_renew(&self, now: DateTime<Utc>) -> Result<bool> {
        let leader = self.round(now).await?;
        self.state.set(leader);
        Ok(leader)
    }

    async fn round(&self, now: DateTime<Utc>) -> Result<bool> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| Error::kube(format!("get Lease {}", self.name), e))?;
        let Some(lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, None, 0)?),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(Error::kube(format!("create Lease {}", self.name), e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
        let transitions = spec.lease_transitions.unwrap_or(0);
        let new_spec = if holder == Some(self.identity.as_str()) {
            self.spec(now, spec.acquire_time.clone(), transitions)?
        } else {
            let duration = chrono::Duration::seconds(i64::from(
                spec.lease_duration_seconds.unwrap_or(0).max(0),
            ));
            let renewed = spec.renew_time.as_ref().and_then(chrono_time);
            let expired = renewed.is_none_or(|r| r + duration <= now);
            if holder.is_some() && !expired {
                return Ok(false);
            }
            self.spec(now, None, transitions + 1)?
        };
        let updated = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                resource_version: lease.metadata.resource_version.clone(),
                ..ObjectMeta::default()
            },
            spec: Some(new_spec),
        };
        match self
            .api
            .replace(&self.name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(Error::kube(format!("update Lease {}", self.name), e)),
        }
    }

    /// Runs the protocol every `retry_period` (e.g. 2 s) until the process ends. After failing
    /// to renew for longer than two thirds of the lease duration the replica steps down, so it
    /// stops acting before any other replica may take the Lease over.
    pub async fn run(self, retry_period: Duration) {
        let renew_deadline = self.lease_duration.mul_f64(2.0 / 3.0);
        let mut last_success = tokio::time::Instant::now();
        loop {
            match self.try_acquire_or_renew(Utc::now()).await {
                Ok(_) => last_success = tokio::time::Instant::now(),
                Err(e) => {
                    tracing::warn!(error = %e, "leader election round failed");
                    if last_success.elapsed() > renew_deadline {
                        self.state.set(false);
                    }
                }
            }
            tokio::time::sleep(retry_period).await;
        }
    }
}
