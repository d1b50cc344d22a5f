//! HTTP ingest (axum): `POST /v1/events` for driftwatch events and `POST /v1/cloudevents` for
//! KServe's inference logger.
//!
//! - A JSON array or NDJSON body; a request with any bad event is rejected whole with `400` and a
//!   JSON error naming the first bad line, so the client can fix and resend it.
//! - Bodies over `max_body_bytes` get `413`; a missing or wrong bearer token (when one is
//!   configured) `401`; while the analyzer is behind (the batch channel is full) `503` with
//!   `Retry-After`, so memory stays bounded.
//! - Accepted events answer `202 {"accepted": n}`. With a write-ahead log ([`HttpIngest::with_wal`])
//!   the answer waits until the events are fsynced in it, so a 202 survives `kill -9`; a failed
//!   write answers `503` (reason `not_durable`).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::auth::{AuthConfig, AuthError, Authenticator, Credentials, authenticate};
use crate::batcher::{Batcher, SourceBatch};
use crate::decode::cloudevents::{self, CloudEventHalf};
use crate::decode::oip::OipMapping;
use crate::decode::pairing::{Offer, Pairer};
use crate::decode::{DecodeError, json};
use crate::offsets::{OffsetTracker, TopicPartition};
use crate::response::error;
use crate::telemetry::CollectorMetrics;
use crate::wal::{Replay, Wal, WalRecord, wal_partition};

/// Configuration of HTTP ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpIngestConfig {
    /// Largest request body in bytes (default 10 MiB).
    pub max_body_bytes: usize,
    /// Bearer token required in `Authorization: Bearer <token>` (default: none, open). Kept for
    /// older configurations: the same as `auth.bearer_token`; prefer `auth.bearer_token_file`.
    pub bearer_token: Option<String>,
    /// Credentials the ingest endpoints require (default: none, open): a bearer token or basic
    /// auth, from a file, an environment variable or inline ([`AuthConfig`]).
    pub auth: AuthConfig,
    /// Longest wait of a CloudEvents request for its response or the reverse (default `30s`).
    #[serde(with = "humantime_serde")]
    pub pairing_timeout: Duration,
    /// Most bytes of CloudEvents halves waiting for their pair, counted as the memory their
    /// decoded values take (at least their bodies' sizes; default 64 MiB); beyond it the oldest
    /// waiting halves expire early and are counted as unpaired.
    pub pairing_max_bytes: usize,
    /// How CloudEvents bodies map to features (model name, feature names of positional inputs).
    pub cloudevents: OipMapping,
    /// With a checkpoint, answer `202` only once the request's events are fsynced in the
    /// write-ahead log, so they survive `kill -9` (default `true`). `false` answers at once: a
    /// crash loses what was accepted since the last checkpoint.
    pub durable_ack: bool,
}

impl Default for HttpIngestConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 << 20,
            bearer_token: None,
            auth: AuthConfig::default(),
            pairing_timeout: Duration::from_secs(30),
            pairing_max_bytes: crate::kafka::DEFAULT_MAX_PENDING_PAIR_BYTES,
            cloudevents: OipMapping::default(),
            durable_ack: true,
        }
    }
}

impl HttpIngestConfig {
    /// The credentials the ingest endpoints require, resolved; `None` when they are open.
    ///
    /// # Errors
    /// [`AuthError`] for an unusable secret (naming its key under `http`), or both
    /// `bearer_token` and `auth.bearer_token*` set; and for `max_body_bytes = 0`, which would
    /// refuse every request.
    pub fn credentials(&self) -> Result<Option<Credentials>, AuthError> {
        if self.max_body_bytes == 0 {
            return Err(AuthError::Invalid {
                key: "http.max_body_bytes".into(),
                message: "must be at least 1 (0 would refuse every request)".into(),
            });
        }
        let mut auth = self.auth.clone();
        if let Some(token) = &self.bearer_token {
            if auth.bearer_token.is_some()
                || auth.bearer_token_file.is_some()
                || auth.bearer_token_env.is_some()
            {
                return Err(AuthError::Invalid {
                    key: "http.bearer_token".into(),
                    message: "set either it or `http.auth.bearer_token*`, not both".into(),
                });
            }
            auth.bearer_token = Some(token.clone());
        }
        Credentials::resolve(&auth, "http.auth")
    }
}

/// Shared state of the ingest handlers.
#[derive(Debug, Clone)]
pub struct HttpIngest {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: HttpIngestConfig,
    batcher: Mutex<Batcher>,
    pairer: Mutex<Pairer<CloudEventHalf>>,
    out: mpsc::Sender<SourceBatch>,
    metrics: CollectorMetrics,
    started: Instant,
    credentials: Option<Credentials>,
    /// The write-ahead log and the tracker of its partition (the batcher's tracker).
    wal: Option<(Wal, OffsetTracker)>,
    /// Set by [`HttpIngest::flush`] (shutdown): without the log, later requests would leave
    /// their events in a batcher nobody flushes again, so they are refused.
    closed: std::sync::atomic::AtomicBool,
}

impl HttpIngest {
    /// Ingest state sending batches to `out`. `batcher` should be created with no offset tracker.
    ///
    /// # Errors
    /// [`AuthError`] from [`HttpIngestConfig::credentials`].
    pub fn new(
        config: HttpIngestConfig,
        batcher: Batcher,
        out: mpsc::Sender<SourceBatch>,
        metrics: CollectorMetrics,
    ) -> Result<Self, AuthError> {
        let pairer =
            Pairer::new(config.pairing_timeout, 100_000).with_max_bytes(config.pairing_max_bytes);
        let credentials = config.credentials()?;
        Ok(Self {
            inner: Arc::new(Inner {
                credentials,
                config,
                batcher: Mutex::new(batcher),
                pairer: Mutex::new(pairer),
                out,
                metrics,
                started: Instant::now(),
                wal: None,
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// Ingest state whose 202s are durable: every accepted request is appended to `wal` and
    /// answered once it is fsynced. `batcher` must have been created with `tracker`, the tracker
    /// [`Wal::open`] was given.
    ///
    /// # Errors
    /// [`AuthError`] from [`HttpIngestConfig::credentials`].
    pub fn with_wal(
        config: HttpIngestConfig,
        batcher: Batcher,
        out: mpsc::Sender<SourceBatch>,
        metrics: CollectorMetrics,
        wal: Wal,
        tracker: OffsetTracker,
    ) -> Result<Self, AuthError> {
        let mut ingest = Self::new(config, batcher, out, metrics)?;
        if let Some(inner) = Arc::get_mut(&mut ingest.inner) {
            inner.wal = Some((wal, tracker));
        }
        Ok(ingest)
    }

    /// Replays records of the write-ahead log found at start-up ([`crate::wal::Recovered`]),
    /// one segment at a time: their events go to the batcher with their offsets, as when they
    /// were accepted. Returns the number of events replayed. A record that no longer decodes (it
    /// was valid when accepted) or can no longer be read is logged and completed, never allowed
    /// to stall the partition.
    pub async fn replay(&self, mut replay: Replay) -> usize {
        let Some((_, tracker)) = &self.inner.wal else {
            return 0;
        };
        let mut replayed = 0;
        while let Some((offsets, records)) = replay.next_segment() {
            let records = match records {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, records = offsets.len(), "write-ahead log: a segment to replay can no longer be read; its requests are lost");
                    Vec::new()
                }
            };
            let found: std::collections::HashSet<i64> = records.iter().map(|r| r.offset).collect();
            for missing in offsets.iter().filter(|o| !found.contains(o)) {
                tracing::error!(
                    offset = missing,
                    "write-ahead log: a record to replay is gone; skipped"
                );
                tracker.complete(&[(wal_partition(), *missing)]);
            }
            for record in records {
                replayed += self.replay_record(tracker, record).await;
            }
        }
        replayed
    }

    async fn replay_record(&self, tracker: &OffsetTracker, record: WalRecord) -> usize {
        let offsets = [(wal_partition(), record.offset)];
        match json::decode_events(&record.payload) {
            Ok(decoded) => {
                if let Some(bad) = decoded.bad.first() {
                    tracing::error!(offset = record.offset, line = bad.line, error = %bad.error.message, "write-ahead log: a replayed record has a bad event; its good events are replayed");
                }
                let n = decoded.events.len();
                let ready = self.batcher().push(decoded.events, &offsets);
                for refused in self.batcher().take_refused() {
                    tracing::error!(offset = record.offset, line = refused.line, error = %refused.error.message, "write-ahead log: a replayed event was refused");
                }
                tracker.complete(&offsets);
                self.send(ready).await;
                n
            }
            Err(e) => {
                tracing::error!(offset = record.offset, error = %e.message, "write-ahead log: a replayed record is not JSON; skipped");
                tracker.complete(&offsets);
                0
            }
        }
    }

    /// The ingest routes, with the body limit and, when credentials are configured, the
    /// [`authenticate`] check (a route layer: an unknown path stays `404`).
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route("/v1/events", post(post_events))
            .route("/v1/cloudevents", post(post_cloudevent))
            .layer(DefaultBodyLimit::max(self.inner.config.max_body_bytes));
        let routes = match &self.inner.credentials {
            Some(c) => routes.route_layer(middleware::from_fn_with_state(
                Authenticator::new(c.clone(), self.inner.metrics.clone()),
                authenticate,
            )),
            None => routes,
        };
        routes.with_state(self.clone())
    }

    fn batcher(&self) -> MutexGuard<'_, Batcher> {
        self.inner
            .batcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends the batches that waited `max_wait` and expires unpaired CloudEvents; call
    /// periodically (the server does every 100 ms).
    pub async fn tick(&self) {
        let due = self.batcher().due();
        self.send(due).await;
        let now = self.inner.started.elapsed().as_millis() as u64;
        let expired = self
            .inner
            .pairer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .expire(now);
        for (_, p) in expired {
            self.inner.metrics.unpaired(p.half.as_str());
        }
    }

    /// Sends every buffered batch (shutdown). From then on, requests without the write-ahead
    /// log are answered `503 shutting_down` (their events would stay in the batcher); with the
    /// log their records are durable and replayed at the next start.
    pub async fn flush(&self) {
        let all = {
            let mut batcher = self.batcher();
            self.inner
                .closed
                .store(true, std::sync::atomic::Ordering::SeqCst);
            batcher.flush()
        };
        self.send(all).await;
    }

    /// Sends batches to the analyzer; `false` when it has stopped taking them (shutdown).
    async fn send(&self, batches: Vec<SourceBatch>) -> bool {
        for b in batches {
            if self.inner.out.send(b).await.is_err() {
                return false;
            }
        }
        true
    }

    fn backpressured(&self) -> bool {
        self.inner.out.capacity() == 0
    }

    /// Takes the events of one request. `body`, when the events are its JSON events, lets the
    /// error that names a refused event give its line (NDJSON) or position (array); the lines are
    /// found only then, off the accepted path.
    async fn accept(
        &self,
        events: Vec<crate::event::PredictionEvent>,
        body: Option<&Bytes>,
    ) -> Response {
        // Every model must be admitted before any event is kept: a request is taken whole or
        // not at all.
        let models: Vec<&str> = events.iter().map(|e| e.model.as_str()).collect();
        let refused = self.batcher().admit_all(&models).err();
        if let Some((index, err)) = refused {
            let position = body.and_then(|b| event_line(b, index)).unwrap_or(index + 1);
            self.inner.metrics.decode_error(err.reason);
            self.inner.metrics.rejected(err.reason);
            return error(
                StatusCode::BAD_REQUEST,
                err.reason,
                err.message,
                Some(position),
            );
        }
        let n = events.len();
        self.inner.metrics.consumed("http", n as u64);
        self.inner.metrics.decoded(n as u64);
        if self.inner.wal.is_some() {
            // The events as the log keeps them, one record per model (so that each record's
            // events land in one batch and a checkpoint never covers part of a record: review
            // M1): the request's own body when it has one model, else each model's events.
            let groups = group_by_model(events);
            let records: Result<Vec<Bytes>, serde_json::Error> = match (body, groups.len()) {
                (Some(b), 1) => Ok(vec![b.clone()]),
                _ => groups
                    .iter()
                    .map(|g| serde_json::to_vec(g).map(Bytes::from))
                    .collect(),
            };
            let records = match records {
                Ok(r) => r,
                Err(e) => {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "not_durable",
                        format!("cannot encode the events for the write-ahead log: {e}"),
                        None,
                    );
                }
            };
            // A task of its own: once the log has the record, its events must reach the batcher
            // even if the client goes away meanwhile, or the offset would stay pending.
            let ingest = self.clone();
            let durable = tokio::spawn(async move { ingest.append_durably(groups, records).await });
            match durable.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    self.inner.metrics.rejected("not_durable");
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not_durable",
                        e.to_string(),
                        None,
                    );
                }
                Err(e) => {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "not_durable",
                        format!("the write-ahead log task failed: {e}"),
                        None,
                    );
                }
            }
        } else {
            let ready = {
                // Checked under the batcher's lock, which `flush` holds while it closes: an
                // event pushed after the final flush would never be sent.
                let mut batcher = self.batcher();
                if self.inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
                    None
                } else {
                    Some(batcher.push(events, &[]))
                }
            };
            let sent = match ready {
                Some(ready) => self.send(ready).await,
                None => false,
            };
            if !sent {
                // Without the log, events the analyzer no longer takes are lost: not a 202.
                self.inner.metrics.rejected("shutting_down");
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shutting_down",
                    "driftwatch is shutting down; retry against another replica or after the restart".into(),
                    None,
                );
            }
        }
        (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "accepted": n })),
        )
            .into_response()
    }
}

impl HttpIngest {
    /// Appends `records` (one per model group) to the write-ahead log in one group and, once
    /// they are durable, pushes each group's events with its record's offset and completes the
    /// offset's own hold.
    async fn append_durably(
        &self,
        groups: Vec<Vec<crate::event::PredictionEvent>>,
        records: Vec<Bytes>,
    ) -> Result<(), crate::wal::WalError> {
        let Some((wal, tracker)) = &self.inner.wal else {
            return Ok(());
        };
        let offsets = wal.append_all(records).await?;
        let mut ready = Vec::new();
        for (events, offset) in groups.into_iter().zip(offsets) {
            let offsets: [(TopicPartition, i64); 1] = [(wal_partition(), offset)];
            ready.extend(self.batcher().push(events, &offsets));
            tracker.complete(&offsets);
        }
        self.send(ready).await;
        Ok(())
    }
}

/// `events` split by model, each group in request order, groups in order of first appearance.
fn group_by_model(
    events: Vec<crate::event::PredictionEvent>,
) -> Vec<Vec<crate::event::PredictionEvent>> {
    let mut groups: Vec<Vec<crate::event::PredictionEvent>> = Vec::new();
    for e in events {
        match groups.iter_mut().find(|g| g[0].model == e.model) {
            Some(g) => g.push(e),
            None => groups.push(vec![e]),
        }
    }
    groups
}

/// The line (NDJSON) or position (array) of the `index`-th valid event of a JSON events body.
fn event_line(body: &[u8], index: usize) -> Option<usize> {
    let mut lines = Vec::new();
    json::decode_each(body, |line, _| lines.push(line)).ok()?;
    lines.get(index).copied()
}

/// Runs [`HttpIngest::tick`] every 100 ms until the sender side of `out` is closed.
pub async fn run_ticker(ingest: HttpIngest) {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    loop {
        interval.tick().await;
        if ingest.inner.out.is_closed() {
            return;
        }
        ingest.tick().await;
    }
}

fn body_error(ingest: &HttpIngest, rejection: &BytesRejection) -> Response {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ingest.inner.metrics.rejected("too_large");
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the body exceeds {} bytes",
                ingest.inner.config.max_body_bytes
            ),
            None,
        );
    }
    error(
        StatusCode::BAD_REQUEST,
        "invalid_body",
        rejection.body_text(),
        None,
    )
}

/// Media types an event body may declare: JSON (`application/json`, `application/*+json`) and
/// JSON lines (`application/x-ndjson`, `application/jsonl`, `application/json-seq`). A body
/// without `Content-Type` is read as JSON too (curl's `--data-binary` with no type).
fn is_json_media_type(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        media.as_str(),
        "application/json" | "application/x-ndjson" | "application/jsonl" | "application/json-seq"
    ) || (media.starts_with("application/") && media.ends_with("+json"))
}

/// `415` for a body that declares a media type other than JSON (issue 19, finding 8: form and
/// `text/plain` bodies were taken as events).
fn unsupported_media_type(ingest: &HttpIngest, headers: &HeaderMap) -> Option<Response> {
    let declared = headers.get(header::CONTENT_TYPE)?;
    let text = declared.to_str().unwrap_or("(not text)");
    if is_json_media_type(text) {
        return None;
    }
    ingest.inner.metrics.rejected("unsupported_media_type");
    Some(error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "Content-Type `{text}` is not JSON: send events as `application/json` (one object or an array) or `application/x-ndjson` (one object per line)"
        ),
        None,
    ))
}

async fn post_events(
    State(ingest): State<HttpIngest>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(refused) = unsupported_media_type(&ingest, &headers) {
        return refused;
    }
    let body = match body {
        Ok(b) => b,
        Err(r) => return body_error(&ingest, &r),
    };
    if ingest.backpressured() {
        ingest.inner.metrics.rejected("backpressure");
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "backpressure",
            "the analyzer is behind; retry later".into(),
            None,
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return r;
    }
    let decoded = match json::decode_events(&body) {
        Ok(d) => d,
        Err(e) => {
            ingest.inner.metrics.decode_error(e.reason);
            ingest.inner.metrics.rejected(e.reason);
            return error(StatusCode::BAD_REQUEST, e.reason, e.message, None);
        }
    };
    if let Some(first) = decoded.bad.first() {
        for b in &decoded.bad {
            ingest.inner.metrics.decode_error(b.error.reason);
        }
        ingest.inner.metrics.rejected(first.error.reason);
        let more = if decoded.bad.len() > 1 {
            format!(" ({} bad events in all)", decoded.bad.len())
        } else {
            String::new()
        };
        return error(
            StatusCode::BAD_REQUEST,
            first.error.reason,
            format!("{}{more}", first.error.message),
            Some(first.line),
        );
    }
    ingest.accept(decoded.events, Some(&body)).await
}

async fn post_cloudevent(
    State(ingest): State<HttpIngest>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(refused) = unsupported_media_type(&ingest, &headers) {
        return refused;
    }
    let body = match body {
        Ok(b) => b,
        Err(r) => return body_error(&ingest, &r),
    };
    if ingest.backpressured() {
        ingest.inner.metrics.rejected("backpressure");
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "backpressure",
            "the analyzer is behind; retry later".into(),
            None,
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return r;
    }
    let pairs = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)));
    let half = match cloudevents::decode(pairs, &body) {
        Ok(h) => h,
        Err(e) => {
            ingest.inner.metrics.decode_error(e.reason);
            ingest.inner.metrics.rejected(e.reason);
            return error(StatusCode::BAD_REQUEST, e.reason, e.message, None);
        }
    };
    let id = half.id.clone();
    let kind = half.half;
    let now = ingest.inner.started.elapsed().as_millis() as u64;
    let (offer, evicted) = {
        let mut pairer = ingest
            .inner
            .pairer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Weighed by what the decoded half holds, or its body if larger.
        let weight = half.body.heap_bytes().max(body.len());
        let offer = pairer.offer_weighted(&id, kind, half, now, weight);
        (offer, pairer.expire(now))
    };
    for (_, p) in evicted {
        ingest.inner.metrics.unpaired(p.half.as_str());
    }
    match offer {
        Offer::Waiting => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "accepted": 0, "waiting_for_pair": id })),
        )
            .into_response(),
        Offer::Replaced(old) => {
            ingest.inner.metrics.unpaired(old.half.as_str());
            (
                StatusCode::ACCEPTED,
                axum::Json(serde_json::json!({ "accepted": 0, "waiting_for_pair": id })),
            )
                .into_response()
        }
        Offer::Paired(request, response) => {
            let fallback = chrono::Utc::now().timestamp_millis();
            match cloudevents::assemble(
                &request,
                &response,
                &ingest.inner.config.cloudevents,
                fallback,
            ) {
                Ok(events) => ingest.accept(events, None).await,
                Err(DecodeError { reason, message }) => {
                    ingest.inner.metrics.decode_error(reason);
                    ingest.inner.metrics.rejected(reason);
                    error(
                        StatusCode::BAD_REQUEST,
                        reason,
                        format!("ce-id {id}: {message}"),
                        None,
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::batcher::{BatchConfig, SchemaRegistry};

    fn ingest(capacity: usize, token: Option<&str>) -> (HttpIngest, mpsc::Receiver<SourceBatch>) {
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
    fn wal_ingest(
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

    async fn post(
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

    const TWO: &str = "{\"timestamp\": 1, \"model\": \"m\", \"features\": {\"x\": 1}}\n{\"timestamp\": 2, \"model\": \"m\", \"features\": {\"x\": 2}}";

    /// Issue 19, finding 3: 10,000 distinct unknown `model` values each created state and
    /// series. Past the discovery cap a request with a new model is refused whole, naming the
    /// model and the event's position, and the admitted models keep flowing.
    #[tokio::test]
    async fn models_past_the_discovery_cap_are_refused_and_the_rest_flow() {
        let (tx, mut rx) = mpsc::channel(64);
        let batcher = Batcher::new(
            BatchConfig {
                max_events: 1,
                ..BatchConfig::default()
            },
            SchemaRegistry::default().with_max_discovered_models(2),
            None,
            "http",
        );
        let ingest = HttpIngest::new(
            HttpIngestConfig::default(),
            batcher,
            tx,
            CollectorMetrics::default(),
        )
        .unwrap();
        let one = |model: &str| {
            format!(r#"{{"timestamp": 1, "model": "{model}", "features": {{"x": 1}}}}"#)
        };
        for model in ["a", "b", "a"] {
            let (status, _) = post(ingest.router(), "/v1/events", &one(model), &[]).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{model}");
        }
        // A refused request takes no discovery slot: `new` does not use the last one up.
        let (tx2, _rx2) = mpsc::channel(4);
        let one_slot = HttpIngest::new(
            HttpIngestConfig::default(),
            Batcher::new(
                BatchConfig::default(),
                SchemaRegistry::default().with_max_discovered_models(1),
                None,
                "http",
            ),
            tx2,
            CollectorMetrics::default(),
        )
        .unwrap();
        let two_new = format!("{}\n{}", one("new"), one("other"));
        let (status, json) = post(one_slot.router(), "/v1/events", &two_new, &[]).await;
        assert_eq!(
            (status, json["line"].as_u64()),
            (StatusCode::BAD_REQUEST, Some(2))
        );
        assert_eq!(
            post(one_slot.router(), "/v1/events", &one("other"), &[])
                .await
                .0,
            StatusCode::ACCEPTED
        );
        // The error names the event's line, blank lines counted (review found its position
        // among the events reported instead).
        let flood = format!("\n{}\n\n{}", one("a"), one("flood-1"));
        let (status, json) = post(ingest.router(), "/v1/events", &flood, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["reason"], "unknown_model");
        assert_eq!(json["line"], 4);
        assert!(
            json["error"]
                .as_str()
                .unwrap()
                .contains("model `flood-1` has no profile"),
            "{json}"
        );
        for i in 0..1000 {
            let (status, _) = post(
                ingest.router(),
                "/v1/events",
                &one(&format!("flood-{i}")),
                &[],
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
        }
        assert_eq!(
            post(ingest.router(), "/v1/events", &one("b"), &[]).await.0,
            StatusCode::ACCEPTED
        );
        let mut models = Vec::new();
        while let Ok(b) = rx.try_recv() {
            models.push(b.model);
        }
        // Nothing of a refused request is kept: only the four accepted events.
        assert_eq!(models, ["a", "b", "a", "b"]);
    }

    /// Issue 19, finding 8: with a token set, unknown paths answered 401 instead of 404.
    #[tokio::test]
    async fn with_a_token_an_unknown_path_is_still_404() {
        let (ingest, _rx) = ingest(1, Some("s3cret"));
        let app = Router::new().merge(ingest.router());
        let resp = app
            .clone()
            .oneshot(Request::post("/v1/nothing").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let resp = app
            .oneshot(Request::post("/v1/events").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"driftwatch\""
        );
    }

    /// Issue 19, finding 8: `text/plain` and form bodies were accepted as events.
    #[tokio::test]
    async fn bodies_that_declare_a_non_json_type_are_refused_with_415() {
        let (ingest, mut rx) = ingest(4, None);
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            for path in ["/v1/events", "/v1/cloudevents"] {
                let (status, json) = post(
                    ingest.router(),
                    path,
                    TWO,
                    &[("content-type", content_type)],
                )
                .await;
                assert_eq!(
                    status,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "{content_type} {path}"
                );
                assert_eq!(json["reason"], "unsupported_media_type");
                assert!(
                    json["error"]
                        .as_str()
                        .unwrap()
                        .contains(content_type.split(';').next().unwrap())
                );
            }
        }
        assert!(rx.try_recv().is_err(), "nothing of a refused body is kept");
        for content_type in [
            "application/json",
            "application/x-ndjson",
            "Application/JSON; charset=utf-8",
            "application/cloudevents+json",
        ] {
            let (status, _) = post(
                ingest.router(),
                "/v1/events",
                TWO,
                &[("content-type", content_type)],
            )
            .await;
            assert_eq!(status, StatusCode::ACCEPTED, "{content_type}");
        }
    }

    /// Issue 19, finding 8: a CloudEvents pair that fails to assemble was answered 400 but not
    /// counted in `driftwatch_http_rejected_total`.
    #[tokio::test]
    async fn cloudevents_pairing_errors_are_counted_as_rejected() {
        let (ingest, mut rx) = ingest(4, None);
        let metrics = ingest.inner.metrics.clone();
        let half = |kind: &'static str| {
            vec![
                ("ce-id", "p1"),
                ("ce-type", kind),
                ("ce-inferenceservicename", "car-loan"),
            ]
        };
        let (status, _) = post(
            ingest.router(),
            "/v1/cloudevents",
            r#"{"instances": [[1, 2]]}"#,
            &half("org.kubeflow.serving.inference.request"),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        // Two predictions for one instance: the pair cannot be assembled.
        let (status, json) = post(
            ingest.router(),
            "/v1/cloudevents",
            r#"{"predictions": [1, 0]}"#,
            &half("org.kubeflow.serving.inference.response"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
        assert_eq!(json["reason"], "invalid_field", "{json}");
        assert_eq!(metrics.rejected_total("invalid_field"), 1);
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn ndjson_is_accepted_and_batched() {
        let (ingest, mut rx) = ingest(4, None);
        let (status, body) = post(ingest.router(), "/v1/events", TWO, &[]).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(body["accepted"], 2);
        let batch = rx.try_recv().unwrap();
        assert_eq!((batch.model.as_str(), batch.batch.num_rows()), ("m", 2));
    }

    #[tokio::test]
    async fn bad_line_is_rejected_with_its_number() {
        let (ingest, mut rx) = ingest(4, None);
        let body = "{\"timestamp\": 1, \"model\": \"m\", \"features\": {}}\n{\"timestamp\": 2, \"features\": {}}";
        let (status, json) = post(ingest.router(), "/v1/events", body, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["line"], 2);
        assert_eq!(json["reason"], "missing_field");
        assert!(
            json["error"]
                .as_str()
                .unwrap()
                .contains("line 2: missing field `model`")
        );
        assert!(
            rx.try_recv().is_err(),
            "nothing of a rejected request is kept"
        );
    }

    #[tokio::test]
    async fn body_limit_token_and_backpressure() {
        let (ingest, _rx) = ingest(1, Some("s3cret"));
        let (status, json) = post(ingest.router(), "/v1/events", TWO, &[]).await;
        assert_eq!(
            (status, json["reason"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
        let auth = [("authorization", "Bearer s3cret")];
        let big = "x".repeat(2000);
        let (status, json) = post(ingest.router(), "/v1/events", &big, &auth).await;
        assert_eq!(
            (status, json["reason"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large"))
        );
        // The first request fills the one-slot channel; the next one is told to come back later.
        assert_eq!(
            post(ingest.router(), "/v1/events", TWO, &auth).await.0,
            StatusCode::ACCEPTED
        );
        let (status, json) = post(ingest.router(), "/v1/events", TWO, &auth).await;
        assert_eq!(
            (status, json["reason"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("backpressure"))
        );
    }

    #[tokio::test]
    async fn cloudevents_pair_in_either_order() {
        let (ingest, mut rx) = ingest(4, None);
        let response = [
            ("ce-id", "r1"),
            ("ce-type", "org.kubeflow.serving.inference.response"),
            ("ce-inferenceservicename", "car-loan"),
        ];
        let request = [
            ("ce-id", "r1"),
            ("ce-type", "org.kubeflow.serving.inference.request"),
            ("ce-inferenceservicename", "car-loan"),
        ];
        let (status, json) = post(
            ingest.router(),
            "/v1/cloudevents",
            r#"{"predictions": [1, 0]}"#,
            &response,
        )
        .await;
        assert_eq!(
            (status, json["accepted"].as_i64()),
            (StatusCode::ACCEPTED, Some(0))
        );
        let (status, json) = post(
            ingest.router(),
            "/v1/cloudevents",
            r#"{"instances": [{"x": 1.0}, {"x": 2.0}]}"#,
            &request,
        )
        .await;
        assert_eq!(
            (status, json["accepted"].as_i64()),
            (StatusCode::ACCEPTED, Some(2))
        );
        let batch = rx.try_recv().unwrap();
        assert_eq!(
            (batch.model.as_str(), batch.batch.num_rows()),
            ("car-loan", 2)
        );
    }

    /// Without the write-ahead log, a request whose events the stopped analyzer no longer takes
    /// is not answered 202 (before, the send error was ignored and the events lost after a 202).
    #[tokio::test]
    async fn without_the_log_events_refused_at_shutdown_are_not_acknowledged() {
        let (ingest, rx) = ingest(4, None);
        drop(rx);
        // Two events fill a batch (`max_events = 2`), so the request sends one.
        let (status, json) = post(ingest.router(), "/v1/events", TWO, &[]).await;
        assert_eq!(
            (status, json["reason"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("shutting_down"))
        );
    }

    /// Review finding: without the log, a request that arrived after the shutdown flush was
    /// answered 202 while its events stayed in a batcher nobody flushed again.
    #[tokio::test]
    async fn without_the_log_requests_after_the_final_flush_are_refused() {
        let (ingest, mut rx) = ingest(4, None);
        ingest.flush().await;
        let one = "{\"timestamp\": 1, \"model\": \"m\", \"features\": {\"x\": 1}}";
        let (status, json) = post(ingest.router(), "/v1/events", one, &[]).await;
        assert_eq!(
            (status, json["reason"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("shutting_down"))
        );
        assert!(rx.try_recv().is_err(), "nothing was kept");
    }

    /// Review finding M1: a request with events of two models was one record held by both
    /// models' batches, so a checkpoint after one of them was absorbed replayed (and counted
    /// again) the other's events too. Each model's events are now a record of their own.
    #[tokio::test]
    async fn each_model_of_a_request_is_its_own_record() {
        let dir = tempfile::tempdir().unwrap();
        let (ingest, mut rx, _, tracker) = wal_ingest(dir.path(), None);
        let body = "{\"timestamp\": 1, \"model\": \"a\", \"features\": {\"x\": 1}}\n\
                    {\"timestamp\": 2, \"model\": \"b\", \"features\": {\"x\": 2}}\n\
                    {\"timestamp\": 3, \"model\": \"a\", \"features\": {\"x\": 3}}";
        let (status, _) = post(ingest.router(), "/v1/events", body, &[]).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        // Model a filled its batch (2 events): it holds only a's record.
        let a = rx.try_recv().unwrap();
        assert_eq!(
            (a.model.as_str(), a.offsets()),
            ("a", &[(wal_partition(), 0)][..])
        );
        a.acknowledge();
        let position = tracker.snapshot().get(&wal_partition()).unwrap().clone();
        assert_eq!(position.watermark, 1, "a's record is absorbed, b's is not");
        drop(ingest);
        let (_, _, recovered, _) = wal_ingest(dir.path(), Some(&position));
        let records = recovered.replay.read_all().unwrap();
        let replayed = json::decode_events(&records[0].payload).unwrap();
        let models: Vec<&str> = replayed.events.iter().map(|e| e.model.as_str()).collect();
        assert_eq!((recovered.replay.len(), models), (1, vec!["b"]));
    }

    /// With the write-ahead log a 202 comes after the record is durable; the batch holds the
    /// record's offset until it is absorbed; and a new process replays from the log exactly the
    /// events the requests carried, CloudEvents pairs included (stored as the assembled events).
    #[tokio::test]
    async fn durable_acks_are_replayed_from_the_log_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let open = |resume| wal_ingest(dir.path(), resume);
        let (ingest, mut rx, recovered, tracker) = open(None);
        assert!(recovered.replay.is_empty());
        let (status, json) = post(ingest.router(), "/v1/events", TWO, &[]).await;
        assert_eq!(
            (status, json["accepted"].as_i64()),
            (StatusCode::ACCEPTED, Some(2))
        );
        let batch = rx.try_recv().unwrap();
        assert_eq!(batch.offsets(), &[(wal_partition(), 0)]);
        // Not absorbed yet: offset 0 holds the watermark.
        let watermark = |t: &OffsetTracker| t.snapshot().get(&wal_partition()).unwrap().watermark;
        assert_eq!(watermark(&tracker), 0);
        for (kind, body) in [
            ("response", r#"{"predictions": [1, 0]}"#),
            ("request", r#"{"instances": [{"x": 1.5}, {"x": 2.5}]}"#),
        ] {
            let ce_type = format!("org.kubeflow.serving.inference.{kind}");
            let headers = [
                ("ce-id", "r1"),
                ("ce-type", ce_type.as_str()),
                ("ce-inferenceservicename", "car-loan"),
            ];
            let (status, _) = post(ingest.router(), "/v1/cloudevents", body, &headers).await;
            assert_eq!(status, StatusCode::ACCEPTED);
        }
        let pair = rx.try_recv().unwrap();
        assert_eq!(pair.offsets(), &[(wal_partition(), 1)]);
        // The first batch is absorbed; the process dies before the second is.
        batch.acknowledge();
        let position = tracker.snapshot().get(&wal_partition()).unwrap().clone();
        assert_eq!(position.watermark, 1);
        drop((ingest, rx, pair));

        let (ingest, mut rx, recovered, tracker) = open(Some(&position));
        let records = recovered.replay.read_all().unwrap();
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![1]);
        let replayed = json::decode_events(&records[0].payload).unwrap();
        assert!(replayed.bad.is_empty());
        let x: Vec<(&str, f64)> = replayed
            .events
            .iter()
            .map(|e| match e.features["x"] {
                crate::event::FeatureValue::Number(v) => (e.model.as_str(), v),
                ref other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(x, vec![("car-loan", 1.5), ("car-loan", 2.5)]);
        assert_eq!(ingest.replay(recovered.replay).await, 2);
        let batch = rx.try_recv().unwrap();
        assert_eq!(
            (
                batch.model.as_str(),
                batch.batch.num_rows(),
                batch.offsets()
            ),
            ("car-loan", 2, &[(wal_partition(), 1)][..])
        );
        batch.acknowledge();
        assert_eq!(watermark(&tracker), 2);
    }
}
