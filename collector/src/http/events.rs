//! The `POST /v1/events` handler: driftwatch events as a JSON array or NDJSON, refused whole
//! (`400`, naming the first bad line) when any event is bad.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use telemetry::Emit;

use super::request::admit;
use super::state::HttpIngest;
use crate::decode::json;
use crate::response::error;
use crate::telemetry::events::{BadEventsInRequest, RequestUndecodable};

pub(super) async fn post_events(
    State(ingest): State<HttpIngest>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match admit(&ingest, &headers, body) {
        Ok(b) => b,
        Err(refused) => return *refused,
    };
    let decoded = match json::decode_events(&body) {
        Ok(d) => d,
        Err(e) => {
            ingest.inner.metrics.emit(RequestUndecodable { error: &e });
            return error(StatusCode::BAD_REQUEST, e.reason.as_str(), e.message, None);
        }
    };
    if let Some(first) = decoded.bad.first() {
        ingest
            .inner
            .metrics
            .emit(BadEventsInRequest { bad: &decoded.bad });
        let more = if decoded.bad.len() > 1 {
            format!(" ({} bad events in all)", decoded.bad.len())
        } else {
            String::new()
        };
        return error(
            StatusCode::BAD_REQUEST,
            first.error.reason.as_str(),
            format!("{}{more}", first.error.message),
            Some(first.line),
        );
    }
    ingest.accept(decoded.events, Some(&body)).await
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::super::fixtures::{TWO, ingest, post};

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
}
