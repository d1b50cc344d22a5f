//! Fan-out of transitions: a [`Transition`] pairs the [`AlertTrigger`] the controller gets with
//! the [`AlertNotification`] Alertmanager gets; `send` queues both on the configured channels.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::state::Instance;
use crate::alertmanager::{AlertNotification, AlertmanagerHandle};
use crate::trigger::{AlertStatus, AlertTrigger, TriggerSource};

/// One transition of an alert instance to firing or to resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// What the controller gets.
    pub trigger: AlertTrigger,
    /// What Alertmanager gets.
    pub notification: AlertNotification,
}

impl Transition {
    /// The transition of `inst` (fingerprint `fp`) to `status`: firing (`ends_at` `None`) or
    /// resolved at `ends_at`. `startsAt` is the window end at which it fired.
    pub(super) fn of_instance(
        fp: &str,
        inst: &Instance,
        status: AlertStatus,
        ends_at: Option<DateTime<Utc>>,
        generator_url: Option<String>,
    ) -> Self {
        let starts_at = inst.fired_at.unwrap_or(inst.active_since);
        let alertname = inst.labels.get("alertname").cloned().unwrap_or_default();
        Transition {
            trigger: AlertTrigger {
                alertname,
                status,
                labels: inst.labels.clone(),
                fingerprint: fp.to_string(),
                starts_at,
                ends_at,
                source: TriggerSource::Engine,
            },
            notification: AlertNotification {
                labels: inst.labels.clone(),
                annotations: inst.annotations.clone(),
                status,
                starts_at,
                ends_at,
                generator_url,
            },
        }
    }
}

/// Sends each transition's trigger to `triggers` (the controller's channel) and its notification
/// to `alertmanager`, waiting for room (backpressure). A closed channel is logged and skipped.
pub(super) async fn send(
    transitions: &[Transition],
    triggers: Option<&mpsc::Sender<AlertTrigger>>,
    alertmanager: Option<&AlertmanagerHandle>,
) {
    for t in transitions {
        if let Some(tx) = triggers
            && tx.send(t.trigger.clone()).await.is_err()
        {
            tracing::warn!(
                alertname = %t.trigger.alertname,
                "controller trigger channel is closed; trigger dropped"
            );
        }
        if let Some(am) = alertmanager
            && let Err(e) = am.notify(t.notification.clone()).await
        {
            tracing::warn!(
                alertname = %t.trigger.alertname,
                error = %e,
                "cannot queue alert for Alertmanager"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::super::fixtures::{report, t};
    use crate::rules::{LOW_PREDICTION_CONFIDENCE, RuleEngine, RulesConfig};
    use crate::trigger::AlertStatus;

    #[tokio::test]
    async fn observe_sends_triggers_on_the_channel() {
        let (tx, mut rx) = mpsc::channel(8);
        let mut e = RuleEngine::new(&RulesConfig::default())
            .unwrap()
            .with_triggers(tx);
        for end in (5..=15).step_by(5) {
            assert!(e.observe(&report(end, None, Some(0.1))).await.is_empty());
        }
        assert!(rx.try_recv().is_err());
        assert_eq!(e.observe(&report(20, None, Some(0.1))).await.len(), 1);
        let trig = rx.try_recv().unwrap();
        assert_eq!(trig.alertname, LOW_PREDICTION_CONFIDENCE);
        assert_eq!(trig.status, AlertStatus::Firing);
        assert_eq!(trig.starts_at, t(20));
        assert!(rx.try_recv().is_err());
        e.observe(&report(25, None, Some(0.9))).await;
        let trig = rx.try_recv().unwrap();
        assert_eq!(trig.status, AlertStatus::Resolved);
        assert_eq!(trig.ends_at, Some(t(25)));
        assert!(rx.try_recv().is_err());
    }
}
