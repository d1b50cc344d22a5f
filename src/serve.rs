//! `driftwatch serve`: sources (Kafka and/or HTTP), the streaming analyzer, the exporter, the
//! alert engine and the controller trigger channel in one process.
//!
//! This is wiring: the sources, the sinks and the one task that owns the windows are
//! [`runtime`]'s ([`runtime::Pipeline`] keeps the absorb -> close -> checkpoint -> commit order).
//! Here they are built from the configuration, with the HTTP server (ingest, `/metrics`, the
//! webhook and the status page) beside them. SIGTERM (or SIGINT) drains: HTTP ingest stops
//! accepting, the Kafka source stops fetching and waits for its in-flight batches, the last
//! checkpoint is written and the offsets committed.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use alerting::AlertTrigger;
use alerting::AlertmanagerMetrics;
use alerting::alertmanager::AlertmanagerHandle;
use alerting::exporter::{ModelMetrics, Readiness};
use alerting::rules::RuleEngine;
use analyzer::ReferenceProfile;
use analyzer::stream::{ClosedWindow, Windows};
use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Json};
use axum::routing::get;
use collector::FeatureSchema;
use collector::auth::{Authenticator, Credentials, authenticate};
use collector::batcher::{Batcher, SchemaRegistry, SourceBatch};
use collector::http::HttpIngest;
use collector::kafka;
use collector::offsets::{OffsetTracker, SourceOffsets};
use collector::telemetry::CollectorMetrics;
use collector::wal::{self, Wal, wal_partition};
use prometheus_client::registry::Registry;
use runtime::{
    CheckpointSettings, ExporterSink, HttpSource, KafkaInput, Pipeline, Restored, RuleSink,
    RunOptions, RuntimeMetrics, WindowOutcome, WindowSink,
};
use telemetry::Metrics as _;
use tokio::sync::{mpsc, watch};

/// A boxed future (the window sinks' return type).
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

use crate::config::Config;
use crate::status::{Decision, StatusState};

/// A running service.
#[derive(Debug)]
pub struct Running {
    /// The address the HTTP server listens on.
    pub addr: SocketAddr,
    /// Shared state of the status page.
    pub status: StatusState,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Starts a graceful shutdown and waits for it.
    ///
    /// # Errors
    /// The first error of a task.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.done.await.context("the service task panicked")?
    }

    /// Waits until the service ends (after a signal).
    ///
    /// # Errors
    /// The first error of a task.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.done.await.context("the service task panicked")?
    }
}

/// A callback on every closed window with the alert transitions it caused.
pub type WindowHook = Box<dyn FnMut(&ClosedWindow, &[alerting::rules::Transition]) + Send>;

/// Hooks for callers that embed the service (the demo).
#[derive(Default)]
pub struct Hooks {
    /// Called with every closed window, after the exporter and the rules.
    pub on_window: Option<WindowHook>,
    /// Receives every alert trigger (else they are logged and recorded on the status page).
    pub triggers: Option<mpsc::Sender<AlertTrigger>>,
    /// `serve --reset-checkpoint`: an unreadable checkpoint is set aside (its manifest renamed)
    /// and the service resumes from the offsets committed to Kafka, instead of refusing to start.
    pub reset_checkpoint: bool,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

/// Starts the service and returns once it listens.
///
/// # Errors
/// Configuration, profile, checkpoint, Kafka or socket errors, naming what failed.
pub async fn start(config: Config, mut hooks: Hooks) -> anyhow::Result<Running> {
    let profiles = config.load_profiles()?;
    let mut registry = Registry::default();
    let collector_metrics = CollectorMetrics::register(&mut registry, &());
    let model_metrics = ModelMetrics::register(&mut registry, &config.metrics);
    let runtime_metrics = RuntimeMetrics::register(&mut registry, &());
    let alertmanager_metrics = AlertmanagerMetrics::register(&mut registry, &());
    let readiness = Readiness::new();
    readiness.set_not_ready("starting");

    // Checkpoint: restore windows, history and source offsets.
    let checkpoint = config.checkpoint.as_ref().map(|c| CheckpointSettings {
        dir: c.dir.clone(),
        interval: c.interval,
    });
    let (
        mut pipeline,
        Restored {
            offsets: resume,
            history,
        },
    ) = Pipeline::open(
        Windows::new(config.windows.clone(), profiles.clone()),
        checkpoint.as_ref(),
        hooks.reset_checkpoint,
        runtime_metrics,
        model_metrics.clone(),
    )?;
    let status = StatusState::new(config.server.history, history);

    // Triggers: to the caller, or recorded on the status page.
    let triggers_tx = match hooks.triggers.take() {
        Some(tx) => tx,
        None => {
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(record_triggers(rx, status.clone()));
            tx
        }
    };
    let mut rules = RuleEngine::new(&config.rules)?.with_triggers(triggers_tx.clone());
    if let Some(am) = &config.alertmanager {
        let (handle, _task) = AlertmanagerHandle::spawn(am, alertmanager_metrics)?;
        rules = rules.with_alertmanager(handle);
    }

    let wal_position = resume.get(&wal_partition()).cloned();
    let (tx, rx) = mpsc::channel::<SourceBatch>(config.batch.channel_capacity);
    let schemas = SchemaRegistry::new(
        profiles
            .iter()
            .map(|(m, p): (&String, &Arc<ReferenceProfile>)| {
                (m.clone(), FeatureSchema::new(p.feature_kinds()))
            })
            .collect::<HashMap<_, _>>(),
    )
    .with_max_discovered_models(config.admission.max_discovered_models);
    let kafka = match &config.kafka {
        Some(k) => Some(
            kafka::start(
                k.clone(),
                config.batch.clone(),
                schemas.clone(),
                tx.clone(),
                resume,
                collector_metrics.clone(),
            )
            .context("cannot start the Kafka source")?,
        ),
        None => None,
    };
    if let Some(k) = kafka {
        pipeline.add_source(Box::new(KafkaInput::new(k)));
    }

    let registry = Arc::new(registry);
    let mut webhook = alerting::webhook::router(triggers_tx, &config.webhook);
    if let Some(credentials) = Credentials::resolve(&config.webhook.auth, "webhook.auth")? {
        webhook = webhook.route_layer(axum::middleware::from_fn_with_state(
            Authenticator::new(credentials, collector_metrics.clone()),
            authenticate,
        ));
    }
    let mut app = Router::new()
        .merge(alerting::exporter::router(registry, readiness.clone()))
        .merge(webhook)
        .merge(status_router(status.clone(), config.server.listen));
    let mut wal_open = false;
    if config.http.enabled {
        let ingest = match (&config.checkpoint, config.http.ingest.durable_ack) {
            (Some(c), true) => {
                let dir = c.dir.join("http-wal");
                let tracker = OffsetTracker::new();
                let (log, recovered) = Wal::open(
                    &dir,
                    wal::DEFAULT_SEGMENT_BYTES,
                    tracker.clone(),
                    wal_position.as_ref(),
                )
                .with_context(|| {
                    format!("cannot open the HTTP write-ahead log in {}", dir.display())
                })?;
                let batcher =
                    Batcher::new(config.batch.clone(), schemas, Some(tracker.clone()), "http");
                let ingest = HttpIngest::with_wal(
                    config.http.ingest.clone(),
                    batcher,
                    tx.clone(),
                    collector_metrics.clone(),
                    log.clone(),
                    tracker.clone(),
                )?;
                if !recovered.replay.is_empty() || recovered.skipped > 0 {
                    tracing::info!(dir = %dir.display(), records = recovered.replay.len(), skipped = recovered.skipped, torn_bytes = recovered.torn_bytes, "replaying HTTP requests accepted before the restart that the checkpoint does not cover");
                }
                let replaying = ingest.clone();
                tokio::spawn(async move {
                    let events = replaying.replay(recovered.replay).await;
                    if events > 0 {
                        tracing::info!(events, "write-ahead log replayed");
                    }
                });
                wal_open = true;
                pipeline.add_source(Box::new(HttpSource::with_wal(ingest.clone(), tracker, log)));
                ingest
            }
            (checkpoint, durable) => {
                if checkpoint.is_some() && !durable {
                    tracing::warn!(
                        "http.durable_ack = false: a 202 is answered before the events are durable; a crash loses what was accepted since the last checkpoint"
                    );
                }
                let batcher = Batcher::new(config.batch.clone(), schemas, None, "http");
                let ingest = HttpIngest::new(
                    config.http.ingest.clone(),
                    batcher,
                    tx.clone(),
                    collector_metrics.clone(),
                )?;
                pipeline.add_source(Box::new(HttpSource::new(ingest.clone())));
                ingest
            }
        };
        app = app.merge(ingest.router());
        tokio::spawn(collector::http::run_ticker(ingest));
    }
    drop(tx);

    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (`server.listen`)",
                config.server.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let (stop_tx, mut stop_rx) = watch::channel(false);

    // The position of the HTTP write-ahead log when the log is not open this run
    // (`durable_ack = false`, HTTP off): carried into every checkpoint, so that reopening it
    // later resumes there instead of replaying the whole retained log (review finding M2).
    if let (false, Some(p)) = (wal_open, wal_position) {
        pipeline.carry(SourceOffsets {
            partitions: std::collections::BTreeMap::from([(
                SourceOffsets::key(&wal_partition()),
                p,
            )]),
        });
    }
    pipeline.add_sink(Box::new(ExporterSink(model_metrics)));
    pipeline.add_sink(Box::new(RuleSink(rules)));
    pipeline.add_sink(Box::new(StatusSink(status.clone())));
    if let Some(hook) = hooks.on_window.take() {
        pipeline.add_sink(Box::new(HookSink(hook)));
    }
    let history = status.clone();
    pipeline.with_history(Box::new(move || history.history()));

    let (server_stop_tx, mut server_stop_rx) = watch::channel(false);
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop_rx.wait_for(|s| *s).await;
            })
            .await
    });
    readiness.set_ready();
    let shutdown_timeout = config.server.shutdown_timeout;
    let drain_server = server_stop_tx.clone();
    let options = RunOptions {
        stop: Box::pin(async move {
            tokio::select! {
                () = shutdown_signal() => {}
                _ = stop_rx.wait_for(|s| *s) => {}
            }
        }),
        shutdown_timeout,
        on_drain: Some(Box::new(move || {
            readiness.set_not_ready("shutting down");
            let _ = drain_server.send(true);
        })),
        tick: Duration::from_millis(100),
    };
    let done = tokio::spawn(async move {
        let stopped = pipeline.run(rx, options).await;
        let _ = server_stop_tx.send(true);
        let remaining = stopped.deadline.map_or(shutdown_timeout, |d| {
            d.saturating_duration_since(tokio::time::Instant::now())
        });
        match tokio::time::timeout(remaining, server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server error"),
            _ => tracing::warn!("HTTP server did not stop in time"),
        }
        tracing::info!("driftwatch stopped");
        Ok(())
    });
    tracing::info!(%addr, "driftwatch serving");
    Ok(Running {
        addr,
        status,
        stop: stop_tx,
        done,
    })
}

fn status_router(status: StatusState, listen: SocketAddr) -> Router {
    let base = format!("http://{listen}");
    Router::new()
        .route(
            "/",
            get(move |State(s): State<StatusState>| {
                let base = base.clone();
                async move {
                    let urls = [
                        ("metrics", format!("{base}/metrics")),
                        ("windows (JSON)", format!("{base}/api/windows")),
                    ];
                    Html(crate::status::render(&s, &urls))
                }
            }),
        )
        .route(
            "/api/windows",
            get(|State(s): State<StatusState>| async move { Json(s.history()).into_response() }),
        )
        .route(
            "/api/alerts",
            get(|State(s): State<StatusState>| async move { Json(s.alerts()).into_response() }),
        )
        .route(
            "/api/canary/{model}",
            get(
                |State(s): State<StatusState>,
                 axum::extract::Path(model): axum::extract::Path<String>,
                 axum::extract::Query(q): axum::extract::Query<CanaryQuery>| async move {
                    Json(types::canary::CanarySummary::from_history(
                        &model,
                        q.window_seconds,
                        &s.history(),
                    ))
                    .into_response()
                },
            ),
        )
        .route(
            "/api/decisions",
            get(|State(s): State<StatusState>| async move { Json(s.decisions()).into_response() }),
        )
        .with_state(status)
}

/// `GET /api/canary/{model}?window_seconds=N`: the step the controller's analyzer source asks
/// for (default 60 s).
#[derive(Debug, serde::Deserialize)]
struct CanaryQuery {
    #[serde(default = "default_canary_window")]
    window_seconds: u64,
}

fn default_canary_window() -> u64 {
    60
}

/// Logs triggers and shows them on the status page when no controller consumes them.
async fn record_triggers(mut rx: mpsc::Receiver<AlertTrigger>, status: StatusState) {
    while let Some(t) = rx.recv().await {
        tracing::info!(alertname = %t.alertname, status = ?t.status, labels = ?t.labels, "alert trigger");
        status.push_decision(Decision {
            at: chrono::Utc::now(),
            kind: "trigger".into(),
            summary: format!(
                "{} {:?} from {:?}: model {} feature {} method {}",
                t.alertname,
                t.status,
                t.source,
                t.labels.get("model").map_or("", String::as_str),
                t.labels.get("feature").map_or("", String::as_str),
                t.labels.get("method").map_or("", String::as_str)
            ),
            detail: None,
        });
    }
}

/// The status page: keeps the window's report and the alerts active after it.
struct StatusSink(StatusState);

impl WindowSink for StatusSink {
    fn on_window<'a>(
        &'a mut self,
        closed: &'a ClosedWindow,
        outcome: &'a mut WindowOutcome,
    ) -> BoxFuture<'a, ()> {
        if let Some(alerts) = outcome.active_alerts.take() {
            self.0.set_alerts(alerts);
        }
        self.0.push_window(closed.report.clone());
        Box::pin(async {})
    }
}

/// The embedding program's hook ([`Hooks::on_window`]).
struct HookSink(WindowHook);

impl WindowSink for HookSink {
    fn on_window<'a>(
        &'a mut self,
        closed: &'a ClosedWindow,
        outcome: &'a mut WindowOutcome,
    ) -> BoxFuture<'a, ()> {
        (self.0)(closed, &outcome.transitions);
        Box::pin(async {})
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
