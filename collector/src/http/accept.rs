//! The acceptance of one request's events: admission of their models (a request is taken whole
//! or not at all), then either the write-ahead log (one record per model) or straight into the
//! batcher, and the `202`.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use telemetry::Emit;

use super::state::HttpIngest;
use crate::decode::json;
use crate::response::error;
use crate::telemetry::events::{
    EventsConsumed, EventsDecoded, RequestRejected, RequestUndecodable,
};
use crate::telemetry::{Refusal, RejectReason, Source};

impl HttpIngest {
    /// Takes the events of one request. `body`, when the events are its JSON events, lets the
    /// error that names a refused event give its line (NDJSON) or position (array); the lines are
    /// found only then, off the accepted path.
    pub(super) async fn accept(
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
            self.inner.metrics.emit(RequestUndecodable { error: &err });
            return error(
                StatusCode::BAD_REQUEST,
                err.reason.as_str(),
                err.message,
                Some(position),
            );
        }
        let n = events.len();
        self.inner.metrics.emit(EventsConsumed {
            source: Source::Http,
            count: n as u64,
        });
        self.inner.metrics.emit(EventsDecoded { count: n as u64 });
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
                        RejectReason::Refused(Refusal::NotDurable).as_str(),
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
                    let reason = RejectReason::Refused(Refusal::NotDurable);
                    self.inner.metrics.emit(RequestRejected { reason });
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        reason.as_str(),
                        e.to_string(),
                        None,
                    );
                }
                Err(e) => {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        RejectReason::Refused(Refusal::NotDurable).as_str(),
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
                let reason = RejectReason::Refused(Refusal::ShuttingDown);
                self.inner.metrics.emit(RequestRejected { reason });
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    reason.as_str(),
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

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use tokio::sync::mpsc;

    use super::super::fixtures::{TWO, ingest, post};
    use crate::batcher::{BatchConfig, Batcher, SchemaRegistry};
    use crate::http::{HttpIngest, HttpIngestConfig};
    use crate::telemetry::CollectorMetrics;

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
}
