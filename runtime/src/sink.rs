//! Window sinks: where each closed window goes, in order.

use std::time::Instant;

use alerting::exporter::ModelMetrics;
use alerting::rules::{ActiveAlert, RuleEngine, Transition};
use futures::FutureExt;
use futures::future::BoxFuture;
use types::ClosedWindow;

/// What the sinks before a sink made of a window: the rule engine's transitions and the alerts
/// active after them, for the sinks after it (the status page, an embedding program's hook).
#[derive(Debug, Default)]
pub struct WindowOutcome {
    /// Alert transitions the window caused (rule engine).
    pub transitions: Vec<Transition>,
    /// The alerts active after the window, if a rule engine ran.
    pub active_alerts: Option<Vec<ActiveAlert>>,
}

/// A consumer of closed windows. The pipeline calls its sinks in the order they were added,
/// each with the outcome of those before it.
pub trait WindowSink: Send {
    /// Takes one closed window.
    fn on_window<'a>(
        &'a mut self,
        closed: &'a ClosedWindow,
        outcome: &'a mut WindowOutcome,
    ) -> BoxFuture<'a, ()>;
}

/// The Prometheus exporter: sets the window's gauges.
#[derive(Debug)]
pub struct ExporterSink(pub ModelMetrics);

impl WindowSink for ExporterSink {
    fn on_window<'a>(
        &'a mut self,
        closed: &'a ClosedWindow,
        _outcome: &'a mut WindowOutcome,
    ) -> BoxFuture<'a, ()> {
        self.0.observe_window(closed, Instant::now());
        futures::future::ready(()).boxed()
    }
}

/// The alert rule engine (with its Alertmanager client and controller triggers): evaluates the
/// rules on the window and records the transitions and active alerts in the outcome.
#[derive(Debug)]
pub struct RuleSink(pub RuleEngine);

impl WindowSink for RuleSink {
    fn on_window<'a>(
        &'a mut self,
        closed: &'a ClosedWindow,
        outcome: &'a mut WindowOutcome,
    ) -> BoxFuture<'a, ()> {
        async move {
            let transitions = self.0.observe(&closed.report).await;
            outcome.transitions.extend(transitions);
            outcome.active_alerts = Some(self.0.active_alerts());
        }
        .boxed()
    }
}
