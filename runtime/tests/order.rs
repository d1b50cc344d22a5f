//! The pipeline's order, absorb -> close -> checkpoint -> commit, with fake sources and sinks:
//! a source commits only offsets a checkpoint on disk covers, a crash between the checkpoint and
//! the commit counts no event twice after the restart, a failed checkpoint commits nothing, and
//! without a checkpoint every window is closed at the stop and its offsets committed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alerting::exporter::{MetricsConfig, ModelMetrics};
use analyzer::stream::{Checkpointer, WindowSettings, Windows};
use collector::FeatureSchema;
use collector::batcher::{BatchConfig, Batcher, SchemaRegistry, SourceBatch};
use collector::offsets::{Observed, OffsetTracker};
use futures::FutureExt;
use futures::future::BoxFuture;
use runtime::{
    CheckpointSettings, Pipeline, RunOptions, RuntimeMetrics, Source, WindowOutcome, WindowSink,
};
use telemetry::Metrics as _;
use tokio::sync::{mpsc, oneshot};
use types::{ClosedWindow, FeatureKind, SourceOffsets, TopicPartition};

/// An hour boundary: every test event falls in the one window `[BASE, BASE + 1h)`.
const BASE_MS: i64 = 1_767_225_600_000;

fn tp() -> TopicPartition {
    TopicPartition::new("predictions", 0)
}

fn settings() -> WindowSettings {
    WindowSettings {
        size: Duration::from_secs(3600),
        idle_close_after: Duration::from_secs(3600),
        ..WindowSettings::default()
    }
}

fn metrics() -> ModelMetrics {
    ModelMetrics::register(
        &mut prometheus_client::registry::Registry::default(),
        &MetricsConfig::default(),
    )
}

/// A Kafka partition as the fake source sees it: the committed offset, and how many times a
/// commit was refused because no checkpoint on disk covered it.
#[derive(Debug, Default)]
struct Broker {
    committed: i64,
    commits: Vec<i64>,
    uncovered: Vec<String>,
}

/// A source whose `commit` is a commit to [`Broker`]. It checks at every commit that the
/// checkpoint on disk covers what is committed, and "crashes" (panics) instead of committing
/// while `crash` is set.
struct FakeSource {
    tracker: OffsetTracker,
    broker: Arc<Mutex<Broker>>,
    checkpoint: Option<PathBuf>,
    crash: Arc<AtomicBool>,
}

impl Source for FakeSource {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn tracker(&self) -> Option<&OffsetTracker> {
        Some(&self.tracker)
    }

    fn commit(&self, durable: &SourceOffsets) {
        if self.crash.load(Ordering::SeqCst) {
            panic!("crash between the checkpoint and the commit");
        }
        let Some(position) = durable.get(&tp()) else {
            return;
        };
        let mut broker = self.broker.lock().unwrap();
        if let Some(dir) = &self.checkpoint {
            let on_disk = Checkpointer::restore(dir)
                .unwrap()
                .and_then(|r| r.offsets.get(&tp()).map(|p| p.watermark));
            if on_disk.is_none_or(|w| w < position.watermark) {
                broker.uncovered.push(format!(
                    "commit {} with the checkpoint at {on_disk:?}",
                    position.watermark
                ));
            }
        }
        broker.committed = position.watermark;
        broker.commits.push(position.watermark);
    }

    fn drain(&mut self) -> BoxFuture<'static, ()> {
        futures::future::ready(()).boxed()
    }
}

/// Delivers offsets `from..to` of the partition the way the Kafka source does: each offset is
/// observed (skipped if a restored checkpoint holds it), decoded into the batcher, completed,
/// and the batches sent. Returns how many events were sent.
async fn deliver(
    tracker: &OffsetTracker,
    tx: &mpsc::Sender<SourceBatch>,
    from: i64,
    to: i64,
) -> usize {
    let schemas = SchemaRegistry::new(HashMap::from([(
        "m".to_string(),
        FeatureSchema::new(vec![("x".to_string(), FeatureKind::Numeric)]),
    )]));
    let mut batcher = Batcher::new(
        BatchConfig {
            max_events: 16,
            ..BatchConfig::default()
        },
        schemas,
        Some(tracker.clone()),
        "kafka",
    );
    let mut sent = 0;
    for offset in from..to {
        if tracker.observe(&tp(), offset) != Observed::Process {
            continue;
        }
        let event = format!(
            r#"{{"timestamp": {}, "model": "m", "features": {{"x": {offset}.5}}}}"#,
            BASE_MS + offset
        );
        let pushed = batcher
            .push_json(event.as_bytes(), &[(tp(), offset)])
            .unwrap();
        assert!(pushed.bad.is_empty(), "{:?}", pushed.bad);
        sent += pushed.good;
        tracker.complete(&[(tp(), offset)]);
        for b in pushed.ready {
            tx.send(b).await.unwrap();
        }
    }
    for b in batcher.flush() {
        tx.send(b).await.unwrap();
    }
    sent
}

/// Events held in the open windows.
fn open_rows(pipeline: &mut Pipeline) -> u64 {
    pipeline.windows().open_windows().map(|(_, w)| w.rows).sum()
}

struct Harness {
    tracker: OffsetTracker,
    crash: Arc<AtomicBool>,
}

/// A pipeline over `dir` (or without a checkpoint) with one fake source assigned the partition
/// at its restored position; the broker redelivers from its committed offset.
fn open(
    dir: Option<&Path>,
    broker: Arc<Mutex<Broker>>,
    sinks: Vec<Box<dyn WindowSink>>,
) -> (Pipeline, Harness) {
    let checkpoint = dir.map(|d| CheckpointSettings {
        dir: d.to_path_buf(),
        // Only the final checkpoint at the stop, so that the test knows when it is written.
        interval: Duration::from_secs(3600),
    });
    let (mut pipeline, restored) = Pipeline::open(
        Windows::new(settings(), HashMap::new()),
        checkpoint.as_ref(),
        false,
        RuntimeMetrics::default(),
        metrics(),
    )
    .unwrap();
    let tracker = OffsetTracker::new();
    tracker.assign(&tp(), restored.offsets.get(&tp()));
    let crash = Arc::new(AtomicBool::new(false));
    pipeline.add_source(Box::new(FakeSource {
        tracker: tracker.clone(),
        broker,
        checkpoint: dir.map(Path::to_path_buf),
        crash: crash.clone(),
    }));
    for s in sinks {
        pipeline.add_sink(s);
    }
    (pipeline, Harness { tracker, crash })
}

fn options(stop: oneshot::Receiver<()>) -> RunOptions {
    RunOptions {
        stop: async move {
            let _ = stop.await;
        }
        .boxed(),
        shutdown_timeout: Duration::from_secs(10),
        on_drain: None,
        tick: Duration::from_millis(20),
    }
}

/// Delivers `from..to` into the channel, calls `inspect` on the pipeline before it has absorbed
/// any of it, then runs the pipeline and stops it; returns the run's join result and how many
/// events were sent.
async fn run_delivering(
    mut pipeline: Pipeline,
    h: &Harness,
    from: i64,
    to: i64,
    inspect: impl FnOnce(&mut Pipeline) + Send + 'static,
) -> (Result<(), tokio::task::JoinError>, usize) {
    let (tx, rx) = mpsc::channel(64);
    let (stop_tx, stop_rx) = oneshot::channel();
    let sent = deliver(&h.tracker, &tx, from, to).await;
    drop(tx);
    inspect(&mut pipeline);
    let _ = stop_tx.send(());
    let task = tokio::spawn(async move {
        pipeline.run(rx, options(stop_rx)).await;
    });
    (task.await, sent)
}

#[tokio::test]
async fn commits_only_what_a_checkpoint_on_disk_covers() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Arc::new(Mutex::new(Broker::default()));
    let (pipeline, h) = open(Some(dir.path()), broker.clone(), Vec::new());
    let (result, sent) = run_delivering(pipeline, &h, 0, 100, |_| {}).await;
    result.unwrap();
    assert_eq!(sent, 100);
    let b = broker.lock().unwrap();
    assert!(b.uncovered.is_empty(), "{:?}", b.uncovered);
    // The final checkpoint covers all 100 offsets; then, and only then, they are committed.
    assert_eq!(b.committed, 100);
    let restored = Checkpointer::restore(dir.path()).unwrap().unwrap();
    assert_eq!(restored.offsets.get(&tp()).unwrap().watermark, 100);
    let rows: u64 = restored.windows.iter().map(|(_, _, w)| w.rows).sum();
    assert_eq!(rows, 100);
}

#[tokio::test]
async fn a_crash_between_checkpoint_and_commit_counts_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Arc::new(Mutex::new(Broker::default()));

    // First run: 60 events absorbed and checkpointed; the process dies before the commit.
    let (pipeline, h) = open(Some(dir.path()), broker.clone(), Vec::new());
    h.crash.store(true, Ordering::SeqCst);
    let (result, sent) = run_delivering(pipeline, &h, 0, 60, |_| {}).await;
    assert!(result.unwrap_err().is_panic());
    assert_eq!(sent, 60);
    assert_eq!(broker.lock().unwrap().committed, 0, "nothing was committed");

    // Restart: the broker redelivers from its committed offset 0; the restored checkpoint holds
    // offsets 0..60, which are skipped, and 60..100 are new.
    let (pipeline, h) = open(Some(dir.path()), broker.clone(), Vec::new());
    let restored_rows = Arc::new(Mutex::new(0));
    let seen = restored_rows.clone();
    let (result, sent) = run_delivering(pipeline, &h, 0, 100, move |p| {
        *seen.lock().unwrap() = open_rows(p);
    })
    .await;
    result.unwrap();
    assert_eq!(sent, 40, "offsets 0..60 are skipped, 60..100 delivered");
    // The windows restored from the checkpoint hold the first run's 60 events.
    assert_eq!(*restored_rows.lock().unwrap(), 60);
    let b = broker.lock().unwrap();
    assert_eq!(b.committed, 100);
    assert!(b.uncovered.is_empty(), "{:?}", b.uncovered);
    let restored = Checkpointer::restore(dir.path()).unwrap().unwrap();
    let rows: u64 = restored.windows.iter().map(|(_, _, w)| w.rows).sum();
    assert_eq!(rows, 100, "each of the 100 events counted once");
}

#[tokio::test]
async fn a_failed_checkpoint_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("checkpoint");
    let broker = Arc::new(Mutex::new(Broker::default()));
    let (pipeline, h) = open(Some(&checkpoint), broker.clone(), Vec::new());
    // The checkpoint directory is replaced by a file: every write fails.
    std::fs::remove_dir_all(&checkpoint).unwrap();
    std::fs::write(&checkpoint, b"not a directory").unwrap();
    let (result, sent) = run_delivering(pipeline, &h, 0, 50, |_| {}).await;
    result.unwrap();
    assert_eq!(sent, 50);
    let b = broker.lock().unwrap();
    assert!(b.commits.is_empty(), "committed {:?}", b.commits);
    assert!(h.tracker.to_commit().is_empty());
}

/// Per window a sink saw: the sink's name, the window's requests, and the transitions the sinks
/// before it recorded.
type SinkLog = Arc<Mutex<Vec<(&'static str, u64, usize)>>>;

/// Records each window it sees, and what the sinks before it left in the outcome.
struct Recorder {
    name: &'static str,
    log: SinkLog,
}

impl WindowSink for Recorder {
    fn on_window<'a>(
        &'a mut self,
        closed: &'a ClosedWindow,
        outcome: &'a mut WindowOutcome,
    ) -> BoxFuture<'a, ()> {
        self.log.lock().unwrap().push((
            self.name,
            closed.report.requests,
            outcome.transitions.len(),
        ));
        futures::future::ready(()).boxed()
    }
}

#[tokio::test]
async fn without_a_checkpoint_windows_close_at_the_stop_in_sink_order_and_offsets_commit() {
    let broker = Arc::new(Mutex::new(Broker::default()));
    let log = Arc::new(Mutex::new(Vec::new()));
    let sinks: Vec<Box<dyn WindowSink>> = vec![
        Box::new(Recorder {
            name: "first",
            log: log.clone(),
        }),
        Box::new(Recorder {
            name: "second",
            log: log.clone(),
        }),
    ];
    let (pipeline, h) = open(None, broker.clone(), sinks);
    let (result, sent) = run_delivering(pipeline, &h, 0, 70, |_| {}).await;
    result.unwrap();
    assert_eq!(sent, 70);
    // One window (all events in one hour), closed at the stop, seen by both sinks in order.
    assert_eq!(*log.lock().unwrap(), [("first", 70, 0), ("second", 70, 0)]);
    // Absorbed in memory is as durable as it gets without a checkpoint.
    assert_eq!(broker.lock().unwrap().committed, 70);
}
