//! The `POST /v1/cloudevents` handler: one half (request or response) of a KServe inference
//! logger pair, held until its other half arrives, then the pair assembled into events.

use std::sync::PoisonError;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use telemetry::Emit;

use super::request::admit;
use super::state::HttpIngest;
use crate::decode::cloudevents;
use crate::decode::pairing::Offer;
use crate::response::error;
use crate::telemetry::Source;
use crate::telemetry::events::{HalfExpired, HalfReplaced, RequestUndecodable};

pub(super) async fn post_cloudevent(
    State(ingest): State<HttpIngest>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match admit(&ingest, &headers, body) {
        Ok(b) => b,
        Err(refused) => return *refused,
    };
    let pairs = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)));
    let half = match cloudevents::decode(pairs, &body) {
        Ok(h) => h,
        Err(e) => {
            ingest.inner.metrics.emit(RequestUndecodable { error: &e });
            return error(StatusCode::BAD_REQUEST, e.reason.as_str(), e.message, None);
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
    for (id, p) in evicted {
        ingest.inner.metrics.emit(HalfExpired {
            source: Source::Http,
            half: p.half,
            id: &id,
        });
    }
    match offer {
        Offer::Waiting => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "accepted": 0, "waiting_for_pair": id })),
        )
            .into_response(),
        Offer::Replaced(old) => {
            ingest.inner.metrics.emit(HalfReplaced {
                source: Source::Http,
                half: old.half,
                id: &id,
            });
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
                Err(e) => {
                    ingest.inner.metrics.emit(RequestUndecodable { error: &e });
                    error(
                        StatusCode::BAD_REQUEST,
                        e.reason.as_str(),
                        format!("ce-id {id}: {}", e.message),
                        None,
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::super::fixtures::{ingest, post};
    use crate::telemetry::{DecodeReason, RejectReason};

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
        assert_eq!(
            metrics.rejected_total(RejectReason::Decode(DecodeReason::InvalidField)),
            1
        );
        assert!(rx.try_recv().is_err());
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
