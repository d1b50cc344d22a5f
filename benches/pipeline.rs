//! Streaming throughput through the whole in-process pipeline, from pre-encoded messages to
//! Prometheus metrics: JSON decode -> Arrow batches (the collector's batcher through
//! `Batcher::push_json`, the borrowed fast path; the Kafka source still decodes owned events, see
//! BENCHMARKS.md) -> bounded channel ->
//! event-time windows -> drift against the reference profile on every window close -> exporter
//! metrics, encoded once at the end as a scrape would. No broker: the test broker and librdkafka's
//! mock cluster are far slower than this pipeline and would measure themselves.
//!
//! The events are car_loan's 50,000 analysis rows as driftwatch JSON events (one per message, as a
//! Kafka source receives them), repeated with advancing event time until `--events` are sent,
//! 5,000 per 60-second window, so a window closes every 5,000 events (all nine statistics, seven
//! features). Two tasks as in `driftwatch serve`: the source (decode + batch) and the analyzer
//! (windows, drift, metrics) joined by a channel of 8 batches, on a tokio runtime with
//! `--threads` workers. Restrict the cores with taskset; `bench/pipeline` runs the matrix:
//!
//! ```sh
//! bench/pipeline                      # 1 and 2 cores, 1M and 4M events
//! cargo bench --workspace --bench pipeline -- --events 1000000 --threads 1
//! ```
//!
//! Prints one line: events, threads, wall seconds, events per second, windows closed, and the
//! process's peak resident memory (VmHWM) and resident memory at the end (VmRSS), in MiB.

/// The allocator of the `driftwatch` binary, so the benchmark measures what it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alerting::exporter::{MetricsConfig, ModelMetrics};
use analyzer::stream::{WindowSettings, Windows};
use analyzer::{ProfileOptions, ReadOptions, ReferenceProfile, read_table};
use collector::batcher::{BatchConfig, Batcher, SchemaRegistry, SourceBatch};
use collector::replay::{ReplayOptions, events_from_file};
use prometheus_client::registry::Registry;
use telemetry::Metrics as _;
use test_support::car_loan::{self, FEATURES};
use tokio::sync::mpsc;

const MODEL: &str = "car-loan";
const PER_WINDOW: i64 = 5_000;
const WINDOW_MS: i64 = 60_000;

fn main() {
    let mut events = 1_000_000usize;
    let mut threads = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--events" => {
                events = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--events N")
            }
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--threads N")
            }
            // cargo bench passes --bench; criterion-style filters are not used here.
            _ => {}
        }
    }
    let messages = messages();
    let profile = profile();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let (closed, absorbed, scrape_bytes) = runtime.block_on(run(messages, events, profile));
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(absorbed, events as u64, "every event reached a window");
    assert_eq!(
        closed,
        (events as u64).div_ceil(PER_WINDOW as u64),
        "5,000 events per window"
    );
    let (hwm, rss) = memory_mib();
    println!(
        "events={events} threads={threads} wall_s={wall:.3} events_per_s={:.0} windows={closed} \
         scrape_bytes={scrape_bytes} peak_rss_mib={hwm:.1} end_rss_mib={rss:.1}",
        events as f64 / wall
    );
}

/// A message with its event time written as 13 ASCII digits of epoch milliseconds at `at`.
struct Encoded {
    bytes: Vec<u8>,
    at: usize,
}

/// car_loan's 50,000 analysis rows as pre-encoded JSON events with an epoch-millisecond
/// timestamp (patched in place per repetition, as a fresh receive buffer would hold it).
fn messages() -> Vec<Encoded> {
    let analysis = car_loan::path(car_loan::ANALYSIS);
    let base = events_from_file(&ReplayOptions::new(analysis, MODEL), 0).unwrap();
    base.iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap();
            v["timestamp"] = serde_json::json!(T0);
            let bytes = serde_json::to_vec(&v).unwrap();
            let needle = T0.to_string();
            let at = bytes
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap();
            Encoded { bytes, at }
        })
        .collect()
}

/// A window boundary (a multiple of 60 s), so every 5,000 events fill exactly one window.
const T0: i64 = 1_699_999_980_000;

/// Writes `t` (13 digits) into `buf[at..at + 13]`.
fn patch_time(buf: &mut [u8], at: usize, mut t: i64) {
    for b in buf[at..at + 13].iter_mut().rev() {
        *b = b'0' + (t % 10) as u8;
        t /= 10;
    }
}

fn profile() -> Arc<ReferenceProfile> {
    let reference = read_table(
        &car_loan::path(car_loan::REFERENCE),
        &ReadOptions::default(),
    )
    .unwrap();
    let features: Vec<String> = FEATURES.iter().map(ToString::to_string).collect();
    Arc::new(ReferenceProfile::fit(&reference, &features, &ProfileOptions::default()).unwrap())
}

/// Runs source and analyzer to the end; returns (windows closed, events in them, scrape bytes).
async fn run(
    messages: Vec<Encoded>,
    events: usize,
    profile: Arc<ReferenceProfile>,
) -> (u64, u64, usize) {
    let (tx, mut rx) = mpsc::channel::<SourceBatch>(8);
    let source = tokio::spawn(async move {
        let mut batcher = Batcher::new(
            BatchConfig::default(),
            SchemaRegistry::default(),
            None,
            "memory",
        );
        let mut buf = Vec::new();
        for i in 0..events {
            let m = &messages[i % messages.len()];
            // Event time: 5,000 events per 60 s window, strictly increasing.
            buf.clear();
            buf.extend_from_slice(&m.bytes);
            patch_time(&mut buf, m.at, T0 + i as i64 * WINDOW_MS / PER_WINDOW);
            for batch in batcher.push_json(&buf, &[]).unwrap().ready {
                tx.send(batch).await.unwrap();
            }
        }
        for batch in batcher.flush() {
            tx.send(batch).await.unwrap();
        }
    });

    let mut registry = Registry::default();
    let metrics = ModelMetrics::register(&mut registry, &MetricsConfig::default());
    let settings = WindowSettings {
        allowed_lateness: Duration::ZERO,
        // Event time runs far ahead of the wall clock here; no window closes on idleness.
        idle_close_after: Duration::from_secs(3600),
        ..WindowSettings::default()
    };
    let mut windows = Windows::new(settings, HashMap::from([(MODEL.to_string(), profile)]));
    let (mut closed, mut absorbed) = (0u64, 0u64);
    let mut close = async |windows: &mut Windows, now: Instant| {
        for (key, start, window) in windows.due(now) {
            let report = windows.finish(key, start, window).await.unwrap();
            metrics.observe_window(&report, Instant::now());
            closed += 1;
            absorbed += report.report.requests;
        }
    };
    while let Some(batch) = rx.recv().await {
        windows.absorb(&batch.model, &batch.batch).unwrap();
        close(&mut windows, Instant::now()).await;
    }
    source.await.unwrap();
    // The end of the stream: every open window closes, as at shutdown.
    close(
        &mut windows,
        Instant::now() + Duration::from_secs(365 * 24 * 3600),
    )
    .await;
    let mut scrape = String::new();
    prometheus_client::encoding::text::encode(&mut scrape, &registry).unwrap();
    (closed, absorbed, scrape.len())
}

/// Peak and current resident memory of this process in MiB (Linux `/proc/self/status`).
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}
