//! The Alertmanager client's telemetry: [`AlertmanagerMetrics`] and its event [`AlertsPosted`]
//! (`driftwatch_alerts_sent_total{status,outcome}`), in the conventions of the `telemetry` crate.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use telemetry::{InternalEvent, Registry};

use crate::trigger::AlertStatus;

telemetry::label_values! {
    /// An alert's state as posted, in `driftwatch_alerts_sent_total{status}`.
    pub enum SentStatus {
        /// Posted as firing (no `endsAt` in the past).
        Firing => "firing",
        /// Posted as resolved.
        Resolved => "resolved",
    }
}

impl From<AlertStatus> for SentStatus {
    fn from(status: AlertStatus) -> Self {
        match status {
            AlertStatus::Firing => Self::Firing,
            AlertStatus::Resolved => Self::Resolved,
        }
    }
}

telemetry::label_values! {
    /// Whether Alertmanager accepted a post, in `driftwatch_alerts_sent_total{outcome}`.
    pub enum PostOutcome {
        /// Alertmanager answered 2xx.
        Ok => "ok",
        /// Unreachable, failing or refusing.
        Error => "error",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertSentLabels {
    status: SentStatus,
    outcome: PostOutcome,
}

/// Handles to the Alertmanager client's counters. Clones share them.
#[derive(Clone, Debug, Default)]
pub struct AlertmanagerMetrics {
    alerts_sent: Family<AlertSentLabels, Counter>,
}

impl telemetry::Metrics for AlertmanagerMetrics {
    type Config = ();

    fn register(registry: &mut Registry, _: &()) -> Self {
        let m = Self::default();
        registry.register(
            "driftwatch_alerts_sent",
            "Alerts posted to Alertmanager, by status and outcome",
            m.alerts_sent.clone(),
        );
        m
    }
}

impl AlertmanagerMetrics {
    /// The current value of `driftwatch_alerts_sent_total{status,outcome}` (`ok`: accepted).
    pub fn alerts_sent_total(&self, status: AlertStatus, ok: bool) -> u64 {
        self.alerts_sent
            .get(&AlertSentLabels {
                status: status.into(),
                outcome: if ok {
                    PostOutcome::Ok
                } else {
                    PostOutcome::Error
                },
            })
            .map_or(0, |c| c.get())
    }
}

/// `count` alerts of one status were posted to Alertmanager with `outcome`: counted in
/// `driftwatch_alerts_sent_total{status,outcome}` and logged at debug (the client logs the
/// failure itself, with its retry decision).
#[derive(Debug, Clone, Copy)]
pub struct AlertsPosted {
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Whether Alertmanager accepted them.
    pub outcome: PostOutcome,
    /// How many alerts.
    pub count: u64,
}

impl InternalEvent<AlertmanagerMetrics> for AlertsPosted {
    fn emit(self, metrics: &AlertmanagerMetrics) {
        if self.count == 0 {
            return;
        }
        let status = SentStatus::from(self.status);
        tracing::debug!(%status, outcome = %self.outcome, count = self.count, "alerts posted to Alertmanager");
        metrics
            .alerts_sent
            .get_or_create(&AlertSentLabels {
                status,
                outcome: self.outcome,
            })
            .inc_by(self.count);
    }
}

#[cfg(test)]
mod tests {
    use telemetry::{Emit, Metrics as _};

    use super::*;

    #[test]
    fn posted_alerts_count_by_status_and_outcome() {
        let mut registry = Registry::default();
        let m = AlertmanagerMetrics::register(&mut registry, &());
        m.emit(AlertsPosted {
            status: AlertStatus::Firing,
            outcome: PostOutcome::Ok,
            count: 3,
        });
        m.emit(AlertsPosted {
            status: AlertStatus::Resolved,
            outcome: PostOutcome::Error,
            count: 0,
        });
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("driftwatch_alerts_sent_total{status=\"firing\",outcome=\"ok\"} 3\n"),
            "{text}"
        );
        assert!(!text.contains("resolved"), "{text}");
        assert_eq!(m.alerts_sent_total(AlertStatus::Firing, true), 3);
        assert_eq!(m.alerts_sent_total(AlertStatus::Firing, false), 0);
    }
}
