//! HTTP ingest (axum): `POST /v1/events` for driftwatch events and `POST /v1/cloudevents` for
//! KServe's inference logger.
//!
//! - A JSON array or NDJSON body; a request with any bad event is rejected whole with `400` and a
//!   JSON error naming the first bad line, so the client can fix and resend it.
//! - Bodies over `max_body_bytes` get `413`; a missing or wrong bearer token (when one is
//!   configured) `401`; while the analyzer is behind (the batch channel is full) `503` with
//!   `Retry-After`, so memory stays bounded.
//! - Accepted events answer `202 {"accepted": n}`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::batcher::{Batcher, SourceBatch};
use crate::decode::cloudevents::{self, CloudEventHalf};
use crate::decode::oip::OipMapping;
use crate::decode::pairing::{Offer, Pairer};
use crate::decode::{DecodeError, json};
use crate::telemetry::CollectorMetrics;

/// Configuration of HTTP ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpIngestConfig {
    /// Largest request body in bytes (default 10 MiB).
    pub max_body_bytes: usize,
    /// Bearer token required in `Authorization: Bearer <token>` (default: none, open).
    pub bearer_token: Option<String>,
    /// Longest wait of a CloudEvents request for its response or the reverse (default `30s`).
    #[serde(with = "humantime_serde")]
    pub pairing_timeout: Duration,
    /// How CloudEvents bodies map to features (model name, feature names of positional inputs).
    pub cloudevents: OipMapping,
}

impl Default for HttpIngestConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 << 20,
            bearer_token: None,
            pairing_timeout: Duration::from_secs(30),
            cloudevents: OipMapping::default(),
        }
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
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: String,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
}

fn error(
    status: StatusCode,
    reason: &'static str,
    message: String,
    line: Option<usize>,
) -> Response {
    (
        status,
        axum::Json(ErrorBody {
            error: message,
            reason,
            line,
        }),
    )
        .into_response()
}

impl HttpIngest {
    /// Ingest state sending batches to `out`. `batcher` should be created with no offset tracker.
    pub fn new(
        config: HttpIngestConfig,
        batcher: Batcher,
        out: mpsc::Sender<SourceBatch>,
        metrics: CollectorMetrics,
    ) -> Self {
        let pairer = Pairer::new(config.pairing_timeout, 100_000);
        Self {
            inner: Arc::new(Inner {
                config,
                batcher: Mutex::new(batcher),
                pairer: Mutex::new(pairer),
                out,
                metrics,
                started: Instant::now(),
            }),
        }
    }

    /// The ingest routes, with the body limit and the bearer-token check applied.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/events", post(post_events))
            .route("/v1/cloudevents", post(post_cloudevent))
            .layer(DefaultBodyLimit::max(self.inner.config.max_body_bytes))
            .layer(middleware::from_fn_with_state(self.clone(), authorize))
            .with_state(self.clone())
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

    /// Sends every buffered batch (shutdown).
    pub async fn flush(&self) {
        let all = self.batcher().flush();
        self.send(all).await;
    }

    async fn send(&self, batches: Vec<SourceBatch>) {
        for b in batches {
            if self.inner.out.send(b).await.is_err() {
                return;
            }
        }
    }

    fn backpressured(&self) -> bool {
        self.inner.out.capacity() == 0
    }

    async fn accept(&self, events: Vec<crate::event::PredictionEvent>) -> Response {
        let n = events.len();
        self.inner.metrics.consumed("http", n as u64);
        self.inner.metrics.decoded(n as u64);
        let ready = self.batcher().push(events, &[]);
        self.send(ready).await;
        (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "accepted": n })),
        )
            .into_response()
    }
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

async fn authorize(State(ingest): State<HttpIngest>, request: Request, next: Next) -> Response {
    if let Some(token) = &ingest.inner.config.bearer_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            ingest.inner.metrics.rejected("unauthorized");
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong bearer token".into(),
                None,
            );
        }
    }
    next.run(request).await
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

async fn post_events(
    State(ingest): State<HttpIngest>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
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
    if let Some(bad) = decoded.bad.first() {
        for b in &decoded.bad {
            ingest.inner.metrics.decode_error(b.error.reason);
        }
        ingest.inner.metrics.rejected(bad.error.reason);
        let more = if decoded.bad.len() > 1 {
            format!(" ({} bad events in all)", decoded.bad.len())
        } else {
            String::new()
        };
        return error(
            StatusCode::BAD_REQUEST,
            bad.error.reason,
            format!("{}{more}", bad.error.message),
            Some(bad.line),
        );
    }
    ingest.accept(decoded.events).await
}

async fn post_cloudevent(
    State(ingest): State<HttpIngest>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
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
    let offer = ingest
        .inner
        .pairer
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .offer(&id, kind, half, now);
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
                Ok(events) => ingest.accept(events).await,
                Err(DecodeError { reason, message }) => {
                    ingest.inner.metrics.decode_error(reason);
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
            HttpIngest::new(config, batcher, tx, CollectorMetrics::default()),
            rx,
        )
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
}
