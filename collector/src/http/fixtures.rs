//! Test fixtures shared by the HTTP ingest's unit tests: ingest state with or without a
//! write-ahead log, posting a request to a router, and a two-event NDJSON body.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tokio::sync::mpsc;
use tower::ServiceExt;

use crate::batcher::{BatchConfig, Batcher, SchemaRegistry, SourceBatch};
use crate::http::{HttpIngest, HttpIngestConfig};
use crate::offsets::OffsetTracker;
use crate::telemetry::CollectorMetrics;
use crate::wal::Wal;

pub(super) fn ingest(
    capacity: usize,
    token: Option<&str>,
) -> (HttpIngest, mpsc::Receiver<SourceBatch>) {
    let (tx, rx) = mpsc::channel(capacity);
    let batcher = Batcher::new(
        BatchConfig {
            max_events: 2,
            ..BatchConfig::default()
        },
        SchemaRegistry::default(),
        None,
        "http",
    );
    let config = HttpIngestConfig {
        max_body_bytes: 1024,
        bearer_token: token.map(str::to_string),
        ..HttpIngestConfig::default()
    };
    (
        HttpIngest::new(config, batcher, tx, CollectorMetrics::default()).unwrap(),
        rx,
    )
}

/// Ingest with a write-ahead log in `dir` (batches of 2 events), opened at `resume`.
pub(super) fn wal_ingest(
    dir: &std::path::Path,
    resume: Option<&crate::offsets::PartitionPosition>,
) -> (
    HttpIngest,
    mpsc::Receiver<SourceBatch>,
    crate::wal::Recovered,
    OffsetTracker,
) {
    let tracker = OffsetTracker::new();
    let (wal, recovered) = Wal::open(
        dir,
        crate::wal::DEFAULT_SEGMENT_BYTES,
        tracker.clone(),
        resume,
    )
    .unwrap();
    let (tx, rx) = mpsc::channel(8);
    let batcher = Batcher::new(
        BatchConfig {
            max_events: 2,
            ..BatchConfig::default()
        },
        SchemaRegistry::default(),
        Some(tracker.clone()),
        "http",
    );
    let ingest = HttpIngest::with_wal(
        HttpIngestConfig::default(),
        batcher,
        tx,
        CollectorMetrics::default(),
        wal,
        tracker.clone(),
    )
    .unwrap();
    (ingest, rx, recovered, tracker)
}

pub(super) async fn post(
    router: Router,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::post(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

pub(super) const TWO: &str = "{\"timestamp\": 1, \"model\": \"m\", \"features\": {\"x\": 1}}\n{\"timestamp\": 2, \"model\": \"m\", \"features\": {\"x\": 2}}";
