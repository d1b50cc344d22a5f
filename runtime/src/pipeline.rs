//! The task that owns the windows: absorb -> close -> checkpoint -> commit.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alerting::exporter::{InvalidField, InvalidValues, LateEvents, ModelMetrics};
use analyzer::stream::{Checkpointer, OpenWindow, Windows};
use collector::batcher::SourceBatch;
use futures::future::BoxFuture;
use telemetry::Emit;
use tokio::sync::mpsc;
use types::{SeriesKey, SourceOffsets, WindowReport};

use crate::error::RuntimeError;
use crate::metrics::{CheckpointAge, EventsRefusedOnTime, RuntimeMetrics, WindowClosed};
use crate::sink::{WindowOutcome, WindowSink};
use crate::source::Source;

/// Where and how often the pipeline checkpoints (`[checkpoint]`).
#[derive(Debug, Clone)]
pub struct CheckpointSettings {
    /// The checkpoint directory (`checkpoint.dir`).
    pub dir: PathBuf,
    /// Time between checkpoints (`checkpoint.interval`); offsets are committed after each.
    pub interval: Duration,
}

/// What a restored checkpoint gives the rest of the service.
#[derive(Debug, Default)]
pub struct Restored {
    /// The absorbed position of every source partition the checkpoint covers: the sources
    /// resume there (events at or above it that the checkpoint already holds are skipped).
    pub offsets: SourceOffsets,
    /// Closed-window reports kept for the status page.
    pub history: Vec<WindowReport>,
}

/// The closed-window history saved in each checkpoint (the status page's), read at checkpoint
/// time.
pub type HistoryFn = Box<dyn Fn() -> Vec<WindowReport> + Send>;

/// How [`Pipeline::run`] stops.
pub struct RunOptions {
    /// Resolves when the service should drain (a signal, or the embedding program's stop).
    pub stop: BoxFuture<'static, ()>,
    /// Everything after the stop (the sources' drain, the last checkpoint) ends within this
    /// (`server.shutdown_timeout`).
    pub shutdown_timeout: Duration,
    /// Called once when draining starts (readiness goes down, the HTTP server stops accepting).
    pub on_drain: Option<Box<dyn FnOnce() + Send>>,
    /// How often windows are checked for closing and the checkpoint age for a checkpoint.
    pub tick: Duration,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    /// When the drain's time is up (`None` when the channel closed without a stop).
    pub deadline: Option<tokio::time::Instant>,
}

/// The window-owning task: absorbs [`SourceBatch`]es, closes windows as the watermark passes
/// and hands them to its sinks, checkpoints, and only then lets its sources commit.
pub struct Pipeline {
    windows: Windows,
    checkpointer: Option<Checkpointer>,
    checkpoint_interval: Duration,
    last_checkpoint: Instant,
    /// Positions of partitions no source opened this run, saved unchanged in every checkpoint.
    carried: SourceOffsets,
    metrics: RuntimeMetrics,
    model_metrics: ModelMetrics,
    sinks: Vec<Box<dyn WindowSink>>,
    history: Option<HistoryFn>,
    sources: Vec<Box<dyn Source>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("windows", &self.windows)
            .field("checkpointer", &self.checkpointer)
            .field("sinks", &self.sinks.len())
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline over `windows`, restored from the checkpoint in `checkpoint.dir` if there is
    /// one. With `reset`, an unreadable checkpoint is set aside (its manifest renamed) and the
    /// pipeline starts empty, logging that it did.
    ///
    /// # Errors
    /// [`RuntimeError::UnreadableCheckpoint`] (naming the file and `--reset-checkpoint`) when
    /// the checkpoint cannot be read and `reset` is off; [`RuntimeError::CheckpointDir`] when
    /// the directory cannot be created.
    pub fn open(
        mut windows: Windows,
        checkpoint: Option<&CheckpointSettings>,
        reset: bool,
        metrics: RuntimeMetrics,
        model_metrics: ModelMetrics,
    ) -> Result<(Self, Restored), RuntimeError> {
        let mut out = Restored::default();
        let checkpointer = match checkpoint {
            Some(c) => {
                let restored = match Checkpointer::restore(&c.dir) {
                    Ok(restored) => restored,
                    Err(e) if reset => {
                        let aside = Checkpointer::discard(&c.dir).map_err(|source| {
                            RuntimeError::CheckpointDir {
                                dir: c.dir.clone(),
                                source: Box::new(source),
                            }
                        })?;
                        tracing::warn!(dir = %c.dir.display(), error = %e, set_aside = ?aside, "--reset-checkpoint: the checkpoint is unreadable and was set aside; resuming from the offsets committed to Kafka (events absorbed since the last commit are counted again)");
                        None
                    }
                    Err(source) => {
                        return Err(RuntimeError::UnreadableCheckpoint {
                            dir: c.dir.clone(),
                            source: Box::new(source),
                        });
                    }
                };
                if let Some(restored) = restored {
                    let rows: Vec<(i64, u64)> = restored
                        .windows
                        .iter()
                        .map(|(_, start, w)| (*start, w.rows))
                        .collect();
                    tracing::info!(dir = %c.dir.display(), windows = ?rows, offsets = ?restored.offsets.partitions, written_at = %restored.written_at, "restoring checkpoint (window start ms, events)");
                    windows.restore(restored.clocks, restored.windows);
                    out.offsets = restored.offsets;
                    out.history = restored.history;
                }
                Some(
                    Checkpointer::new(&c.dir).map_err(|source| RuntimeError::CheckpointDir {
                        dir: c.dir.clone(),
                        source: Box::new(source),
                    })?,
                )
            }
            None => None,
        };
        Ok((
            Self {
                windows,
                checkpointer,
                checkpoint_interval: checkpoint.map_or(Duration::from_secs(1), |c| c.interval),
                last_checkpoint: Instant::now(),
                carried: SourceOffsets::default(),
                metrics,
                model_metrics,
                sinks: Vec::new(),
                history: None,
                sources: Vec::new(),
            },
            out,
        ))
    }

    /// Adds a sink; sinks see each closed window in the order they were added.
    pub fn add_sink(&mut self, sink: Box<dyn WindowSink>) {
        self.sinks.push(sink);
    }

    /// Adds a source: its offsets are checkpointed and committed by this pipeline, and it is
    /// drained when the pipeline stops.
    pub fn add_source(&mut self, source: Box<dyn Source>) {
        self.sources.push(source);
    }

    /// Positions saved unchanged in every checkpoint: partitions of a source that is not open
    /// this run (the HTTP write-ahead log with `http.durable_ack = false`), so that reopening it
    /// later resumes there instead of replaying everything it still holds.
    pub fn carry(&mut self, offsets: SourceOffsets) {
        self.carried = offsets;
    }

    /// The history each checkpoint saves (the status page's closed-window reports).
    pub fn with_history(&mut self, history: HistoryFn) {
        self.history = Some(history);
    }

    /// The windows (open counts, clocks), for tests and diagnostics.
    pub fn windows(&mut self) -> &mut Windows {
        &mut self.windows
    }

    /// Step 1: absorbs one batch and acknowledges its offsets. Without a checkpoint, absorbed in
    /// memory is as durable as it gets, so the sources commit at once.
    pub fn absorb(&mut self, batch: SourceBatch) {
        let now = Instant::now();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let source = batch.watermark_source();
        match self
            .windows
            .absorb_from(&batch.model, &source, &batch.batch, now_ms)
        {
            Ok(a) => {
                let offsets = batch.offsets();
                self.metrics.emit(EventsRefusedOnTime {
                    model: &batch.model,
                    future: a.future,
                    too_old: a.too_old,
                    offsets: &offsets,
                });
                self.model_metrics.emit(LateEvents {
                    model: &batch.model,
                    count: a.late,
                    offsets: &offsets,
                    now,
                });
            }
            Err(e) => tracing::error!(model = %batch.model, error = %e, "cannot absorb a batch"),
        }
        let mismatched: u64 = batch.stats.mismatched.values().sum();
        self.model_metrics.emit(InvalidValues {
            field: InvalidField::Feature,
            count: mismatched,
        });
        batch.acknowledge();
        if self.checkpointer.is_none() {
            self.commit_absorbed();
        }
    }

    /// Without a checkpoint: every absorbed offset is committed.
    fn commit_absorbed(&self) {
        for s in &self.sources {
            if let Some(t) = s.tracker() {
                s.commit(&t.snapshot());
            }
        }
    }

    /// Step 2: closes every window due at `now` and hands each to the sinks, oldest first.
    pub async fn close_due(&mut self, now: Instant) {
        if self.sources.iter().any(|s| s.is_unassigned()) {
            // A source without partitions (starting, or in a rebalance) delivers nothing: that
            // is not idleness (a restored window would otherwise close before its events
            // arrive).
            self.windows.hold_idle(now);
        }
        self.close_all_due(now).await;
    }

    async fn close_all_due(&mut self, now: Instant) {
        for (key, start, window) in self.windows.due(now) {
            self.close(key, start, window).await;
        }
    }

    async fn close(&mut self, key: SeriesKey, start: i64, window: OpenWindow) {
        let began = Instant::now();
        match self.windows.finish(key.clone(), start, window).await {
            Ok(closed) => {
                self.metrics.emit(WindowClosed {
                    key: &key,
                    start,
                    requests: closed.report.requests,
                    elapsed: began.elapsed(),
                });
                let mut outcome = WindowOutcome::default();
                for sink in &mut self.sinks {
                    sink.on_window(&closed, &mut outcome).await;
                }
            }
            Err(e) => {
                tracing::error!(model = %key.model, start, error = %e, "cannot close a window")
            }
        }
    }

    /// Steps 3 and 4: writes a checkpoint of the windows, the history and the offsets of every
    /// source, and only when that succeeded lets each source commit those offsets. Returns
    /// whether a checkpoint was written (`false` without a checkpoint directory or on failure,
    /// which is logged; nothing is committed until one succeeds).
    pub fn checkpoint(&mut self) -> bool {
        let Some(c) = self.checkpointer.as_mut() else {
            return false;
        };
        let mut snapshot = SourceOffsets::default();
        for s in &self.sources {
            if let Some(t) = s.tracker() {
                snapshot.partitions.extend(t.snapshot().partitions);
            }
        }
        for (key, position) in &self.carried.partitions {
            snapshot
                .partitions
                .entry(key.clone())
                .or_insert_with(|| position.clone());
        }
        let history = self.history.as_ref().map(|h| h()).unwrap_or_default();
        match c.write(&mut self.windows, snapshot.clone(), &history) {
            Ok(()) => {
                for s in &self.sources {
                    s.commit(&snapshot);
                }
                self.last_checkpoint = Instant::now();
                self.metrics.emit(CheckpointAge {
                    age: Duration::ZERO,
                });
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "checkpoint failed; offsets are not committed until one succeeds");
                false
            }
        }
    }

    /// One tick: closes due windows, commits absorbed offsets without a checkpoint, and
    /// checkpoints when `checkpoint.interval` has passed.
    pub async fn tick(&mut self, now: Instant) {
        self.close_due(now).await;
        if self.checkpointer.is_none() {
            // Offsets can complete after the last batch was absorbed (a dead-lettered message
            // whose good events went on); without a checkpoint they are durable once absorbed.
            self.commit_absorbed();
        }
        let age = self.last_checkpoint.elapsed();
        if self.checkpointer.is_some() {
            self.metrics.emit(CheckpointAge { age });
        }
        if age >= self.checkpoint_interval {
            self.checkpoint();
        }
    }

    /// Runs until `options.stop` resolves (then drains) or every sender of `rx` is gone.
    ///
    /// The drain: `on_drain` is called, every source drains in a task of its own while this
    /// loop keeps absorbing what they send, then whatever is still queued is absorbed and the
    /// last checkpoint written and committed. Without a checkpoint every open window is closed
    /// instead, so that its report is not lost. The drain ends by `shutdown_timeout` after the
    /// stop; sources that have not drained by then are left (their offsets are not committed).
    /// The final checkpoint (or the final closes) then runs even when the deadline has passed:
    /// it covers only what was absorbed, and a kill during it leaves the previous checkpoint
    /// intact (the manifest is replaced atomically), so the time it takes is the one step
    /// `shutdown_timeout` does not bound; give the pod's grace period that margin.
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<SourceBatch>,
        options: RunOptions,
    ) -> Stopped {
        let RunOptions {
            stop,
            shutdown_timeout,
            mut on_drain,
            tick,
        } = options;
        let mut ticker = tokio::time::interval(tick);
        let mut stop = Some(stop);
        let mut draining: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let stopping = async {
                match stop.as_mut() {
                    Some(s) => s.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep_until(deadline), if deadline.is_some() => {
                    tracing::warn!(timeout = ?shutdown_timeout, "the sources did not drain within server.shutdown_timeout; stopping without them (offsets not yet committed are resumed from the checkpoint, or re-read from the committed offsets without one)");
                    break;
                },
                batch = rx.recv() => match batch {
                    Some(b) => self.absorb(b),
                    None => break,
                },
                _ = ticker.tick() => self.tick(Instant::now()).await,
                () = stopping => {
                    stop = None;
                    deadline = Some(tokio::time::Instant::now() + shutdown_timeout);
                    tracing::info!("shutting down: draining sources");
                    if let Some(f) = on_drain.take() {
                        f();
                    }
                    // Each drains in a task of its own, so that this loop keeps absorbing the
                    // batches they send (a full channel would otherwise block the loop that
                    // empties it).
                    draining = self
                        .sources
                        .iter_mut()
                        .map(|s| tokio::spawn(s.drain()))
                        .collect();
                }
            }
            if deadline.is_some() && draining.iter().all(tokio::task::JoinHandle::is_finished) {
                break;
            }
        }
        // Requests still in flight can send no more (they see the channel closed and end; with
        // the write-ahead log their events are replayed at the next start); whatever is queued
        // is absorbed.
        rx.close();
        while let Ok(b) = rx.try_recv() {
            self.absorb(b);
        }
        if self.checkpointer.is_some() {
            self.checkpoint();
        } else {
            self.close_all_due(Instant::now() + Duration::from_secs(365 * 24 * 3600))
                .await;
        }
        Stopped { deadline }
    }
}

/// Sleeps until `deadline` (forever without one).
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
