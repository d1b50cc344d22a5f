//! `driftwatch serve`: sources (Kafka and/or HTTP), the streaming analyzer, the exporter, the
//! alert engine and the controller trigger channel in one process.
//!
//! One tokio task owns the windows: it absorbs batches, closes windows as the watermark passes,
//! feeds the exporter and the rule engine, and checkpoints the state together with the source
//! offsets it covers; only then are those offsets committed. SIGTERM (or SIGINT) drains: HTTP
//! ingest stops accepting, the Kafka source stops fetching and waits for its in-flight batches,
//! the last checkpoint is written and the offsets committed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alerting::AlertTrigger;
use alerting::alertmanager::AlertmanagerHandle;
use alerting::exporter::{EventTimeRejection, InvalidField, ModelMetrics, Readiness};
use alerting::rules::RuleEngine;
use analyzer::ReferenceProfile;
use analyzer::stream::{Checkpointer, ClosedWindow, Windows};
use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Json};
use axum::routing::get;
use collector::FeatureSchema;
use collector::auth::{Authenticator, Credentials, authenticate};
use collector::batcher::{Batcher, SchemaRegistry, SourceBatch};
use collector::http::HttpIngest;
use collector::kafka::{self, KafkaSource};
use collector::offsets::{OffsetTracker, SourceOffsets};
use collector::telemetry::CollectorMetrics;
use collector::wal::{self, Wal, wal_partition};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};

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
    let collector_metrics = CollectorMetrics::register(&mut registry);
    let model_metrics = ModelMetrics::register(&mut registry, &config.metrics);
    let readiness = Readiness::new();
    readiness.set_not_ready("starting");

    // Checkpoint: restore windows, history and source offsets.
    let mut windows = Windows::new(config.windows.clone(), profiles.clone());
    let mut resume = SourceOffsets::default();
    let mut history = Vec::new();
    let checkpointer = match &config.checkpoint {
        Some(c) => {
            let restored = match Checkpointer::restore(&c.dir) {
                Ok(restored) => restored,
                Err(e) if hooks.reset_checkpoint => {
                    let aside = Checkpointer::discard(&c.dir)?;
                    tracing::warn!(dir = %c.dir.display(), error = %e, set_aside = ?aside, "--reset-checkpoint: the checkpoint is unreadable and was set aside; resuming from the offsets committed to Kafka (events absorbed since the last commit are counted again)");
                    None
                }
                Err(e) => anyhow::bail!(
                    "cannot restore the checkpoint in {}: {e}\n  driftwatch does not start from a damaged checkpoint, which would lose or double-count events; to set it aside and resume from the offsets committed to Kafka, start once with `driftwatch serve --reset-checkpoint`",
                    c.dir.display()
                ),
            };
            if let Some(restored) = restored {
                resume = restored.offsets;
                let rows: Vec<(i64, u64)> = restored
                    .windows
                    .iter()
                    .map(|(_, start, w)| (*start, w.rows))
                    .collect();
                tracing::info!(dir = %c.dir.display(), windows = ?rows, offsets = ?resume.partitions, written_at = %restored.written_at, "restoring checkpoint (window start ms, events)");
                windows.restore(restored.clocks, restored.windows);
                history = restored.history;
            }
            Some(Checkpointer::new(&c.dir)?)
        }
        None => None,
    };
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
        let (handle, _task) = AlertmanagerHandle::spawn(am, model_metrics.clone())?;
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
    let tracker = kafka.as_ref().map(|k| k.tracker().clone());

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
    let mut wal_source = None;
    let ingest = if config.http.enabled {
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
                wal_source = Some((tracker, log));
                ingest
            }
            (checkpoint, durable) => {
                if checkpoint.is_some() && !durable {
                    tracing::warn!(
                        "http.durable_ack = false: a 202 is answered before the events are durable; a crash loses what was accepted since the last checkpoint"
                    );
                }
                let batcher = Batcher::new(config.batch.clone(), schemas, None, "http");
                HttpIngest::new(
                    config.http.ingest.clone(),
                    batcher,
                    tx.clone(),
                    collector_metrics.clone(),
                )?
            }
        };
        app = app.merge(ingest.router());
        tokio::spawn(collector::http::run_ticker(ingest.clone()));
        Some(ingest)
    } else {
        None
    };
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
    let (stop_tx, stop_rx) = watch::channel(false);

    let analyzer = Analyzer {
        windows,
        checkpointer,
        tracker,
        // The log's position when the log is not open this run (`durable_ack = false`, HTTP
        // off): carried into every checkpoint, so that reopening it later resumes there instead
        // of replaying the whole retained log (review finding M2).
        carried: match (&wal_source, wal_position) {
            (None, Some(p)) => SourceOffsets {
                partitions: std::collections::BTreeMap::from([(
                    SourceOffsets::key(&wal_partition()),
                    p,
                )]),
            },
            _ => SourceOffsets::default(),
        },
        wal: wal_source,
        metrics: model_metrics,
        rules,
        status: status.clone(),
        on_window: hooks.on_window.take(),
        checkpoint_interval: config
            .checkpoint
            .as_ref()
            .map_or(Duration::from_secs(1), |c| c.interval),
        last_checkpoint: Instant::now(),
    };
    let shutdown_timeout = config.server.shutdown_timeout;
    let done = tokio::spawn(run(
        analyzer,
        rx,
        listener,
        app,
        stop_rx,
        kafka,
        ingest,
        readiness,
        shutdown_timeout,
    ));
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
            "/api/decisions",
            get(|State(s): State<StatusState>| async move { Json(s.decisions()).into_response() }),
        )
        .with_state(status)
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

/// The task that owns the windows.
struct Analyzer {
    windows: Windows,
    checkpointer: Option<Checkpointer>,
    /// The Kafka source's offsets.
    tracker: Option<OffsetTracker>,
    /// HTTP ingest's write-ahead log and the offsets of its partition.
    wal: Option<(OffsetTracker, Wal)>,
    /// Positions of partitions no source opened this run, saved unchanged in every checkpoint.
    carried: SourceOffsets,
    metrics: ModelMetrics,
    rules: RuleEngine,
    status: StatusState,
    on_window: Option<WindowHook>,
    checkpoint_interval: Duration,
    last_checkpoint: Instant,
}

impl Analyzer {
    fn absorb(&mut self, batch: SourceBatch) {
        let now = Instant::now();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let source = batch.watermark_source();
        match self
            .windows
            .absorb_from(&batch.model, &source, &batch.batch, now_ms)
        {
            Ok(a) => {
                if a.future + a.too_old > 0 {
                    tracing::warn!(model = %batch.model, future = a.future, too_old = a.too_old, offsets = ?batch.offsets(), "events refused: their event time is outside the accepted range around this service's clock (windows.max_future_skew, windows.max_event_age)");
                    self.metrics
                        .event_time_rejected(EventTimeRejection::Future, a.future);
                    self.metrics
                        .event_time_rejected(EventTimeRejection::TooOld, a.too_old);
                }
                if a.late > 0 {
                    tracing::debug!(model = %batch.model, late = a.late, offsets = ?batch.offsets(), "late events: their windows have closed");
                    self.metrics.late_events(&batch.model, a.late, now);
                }
            }
            Err(e) => tracing::error!(model = %batch.model, error = %e, "cannot absorb a batch"),
        }
        let mismatched: u64 = batch.stats.mismatched.values().sum();
        if mismatched > 0 {
            self.metrics
                .invalid_value(InvalidField::Feature, mismatched);
        }
        batch.acknowledge();
        if self.checkpointer.is_none()
            && let Some(t) = &self.tracker
        {
            // Without a checkpoint, absorbed in memory is as durable as it gets.
            let s = t.snapshot();
            t.mark_durable(&s);
        }
    }

    async fn close_due(&mut self, now: Instant) {
        for (key, start, window) in self.windows.due(now) {
            self.close(key, start, window).await;
        }
    }

    async fn close(
        &mut self,
        key: analyzer::stream::SeriesKey,
        start: i64,
        window: analyzer::stream::OpenWindow,
    ) {
        let began = Instant::now();
        match self.windows.finish(key.clone(), start, window).await {
            Ok(closed) => {
                tracing::debug!(model = %key.model, version = %key.version, variant = %key.variant, start, requests = closed.report.requests, "window closed");
                self.metrics.observe_window(&closed, Instant::now());
                self.metrics.observe_window_close(began.elapsed());
                let transitions = self.rules.observe(&closed.report).await;
                self.status.set_alerts(self.rules.active_alerts());
                self.status.push_window(closed.report.clone());
                if let Some(f) = self.on_window.as_mut() {
                    f(&closed, &transitions);
                }
            }
            Err(e) => {
                tracing::error!(model = %key.model, start, error = %e, "cannot close a window")
            }
        }
    }

    fn checkpoint(&mut self) {
        let Some(c) = self.checkpointer.as_mut() else {
            return;
        };
        let mut snapshot = self
            .tracker
            .as_ref()
            .map(OffsetTracker::snapshot)
            .unwrap_or_default();
        if let Some((t, _)) = &self.wal {
            snapshot.partitions.extend(t.snapshot().partitions);
        }
        for (key, position) in &self.carried.partitions {
            snapshot
                .partitions
                .entry(key.clone())
                .or_insert_with(|| position.clone());
        }
        match c.write(&mut self.windows, snapshot.clone(), &self.status.history()) {
            Ok(()) => {
                if let Some(t) = &self.tracker {
                    t.mark_durable(&snapshot);
                }
                if let Some((t, log)) = &self.wal {
                    t.mark_durable(&snapshot);
                    if let Some(p) = snapshot.get(&wal_partition()) {
                        log.truncate_below(p.watermark);
                    }
                }
                self.last_checkpoint = Instant::now();
                self.metrics.set_checkpoint_age(Duration::ZERO);
            }
            Err(e) => {
                tracing::error!(error = %e, "checkpoint failed; offsets are not committed until one succeeds")
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    mut analyzer: Analyzer,
    mut rx: mpsc::Receiver<SourceBatch>,
    listener: tokio::net::TcpListener,
    app: Router,
    mut stop: watch::Receiver<bool>,
    kafka: Option<KafkaSource>,
    ingest: Option<HttpIngest>,
    readiness: Readiness,
    shutdown_timeout: Duration,
) -> anyhow::Result<()> {
    let (server_stop_tx, mut server_stop_rx) = watch::channel(false);
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop_rx.wait_for(|s| *s).await;
            })
            .await
    });
    readiness.set_ready();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut draining = false;
    let mut kafka = kafka;
    let mut ingest = ingest;
    let mut drained: Option<tokio::task::JoinHandle<()>> = None;
    let mut flushing: Option<tokio::task::JoinHandle<()>> = None;
    let mut start_drain = false;
    let signal = shutdown_signal();
    tokio::pin!(signal);
    // Set when draining starts: everything, the sources' drain, the last checkpoint and the HTTP
    // server's in-flight requests, ends by then (`server.shutdown_timeout`).
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            () = sleep_until(deadline), if deadline.is_some() => {
                tracing::warn!(timeout = ?shutdown_timeout, "the sources did not drain within server.shutdown_timeout; stopping without them (offsets not yet committed are resumed from the checkpoint, or re-read from the committed offsets without one)");
                break;
            },
            batch = rx.recv() => match batch {
                Some(b) => analyzer.absorb(b),
                None => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                // A Kafka source without partitions (starting, or in a rebalance) delivers
                // nothing: that is not idleness (a restored window would otherwise close before
                // its events arrive). Not at shutdown, where every window closes.
                if analyzer.tracker.as_ref().is_some_and(|t| t.assigned().is_empty()) {
                    analyzer.windows.hold_idle(now);
                }
                analyzer.close_due(now).await;
                if analyzer.checkpointer.is_none()
                    && let Some(t) = &analyzer.tracker
                {
                    // Offsets can complete after the last batch was absorbed (a dead-lettered
                    // message whose good events went on); without a checkpoint they are durable
                    // once absorbed.
                    let s = t.snapshot();
                    t.mark_durable(&s);
                }
                let age = analyzer.last_checkpoint.elapsed();
                if analyzer.checkpointer.is_some() {
                    analyzer.metrics.set_checkpoint_age(age);
                }
                if age >= analyzer.checkpoint_interval {
                    analyzer.checkpoint();
                }
            }
            _ = &mut signal, if !draining => {
                let _ = stop.borrow_and_update();
                start_drain = true;
            }
            _ = stop.changed(), if !draining => {
                start_drain = *stop.borrow();
            }
        }
        if std::mem::take(&mut start_drain) {
            draining = true;
            deadline = Some(tokio::time::Instant::now() + shutdown_timeout);
            tracing::info!("shutting down: draining sources");
            readiness.set_not_ready("shutting down");
            let _ = server_stop_tx.send(true);
            // Both drain in tasks of their own, so that this loop keeps absorbing the batches
            // they send (a full channel would otherwise block the loop that empties it).
            flushing = ingest
                .take()
                .map(|i| tokio::spawn(async move { i.flush().await }));
            drained = kafka
                .take()
                .map(|k| tokio::task::spawn_blocking(move || k.shutdown()));
        }
        let done = |task: &Option<tokio::task::JoinHandle<()>>| {
            task.as_ref()
                .is_none_or(tokio::task::JoinHandle::is_finished)
        };
        if draining && done(&flushing) && done(&drained) {
            break;
        }
    }
    // Requests still in flight can send no more (they see the channel closed and end; with the
    // write-ahead log their events are replayed at the next start); whatever is queued is
    // absorbed.
    rx.close();
    // Whatever is still queued.
    while let Ok(b) = rx.try_recv() {
        analyzer.absorb(b);
    }
    if analyzer.checkpointer.is_some() {
        analyzer.checkpoint();
    } else {
        // Nothing survives the process: close every open window so its report is not lost.
        analyzer
            .close_due(Instant::now() + Duration::from_secs(365 * 24 * 3600))
            .await;
    }
    let _ = server_stop_tx.send(true);
    let remaining = deadline.map_or(shutdown_timeout, |d| {
        d.saturating_duration_since(tokio::time::Instant::now())
    });
    match tokio::time::timeout(remaining, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server error"),
        _ => tracing::warn!("HTTP server did not stop in time"),
    }
    tracing::info!("driftwatch stopped");
    Ok(())
}

/// Sleeps until `deadline` (forever without one).
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
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
