//! The checks both ingest endpoints make before decoding a body: its declared media type
//! (`415` unless JSON), the body extraction's errors (`413` over `max_body_bytes`, `400`) and
//! backpressure (`503` with `Retry-After` while the analyzer is behind).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use telemetry::Emit;

use super::state::HttpIngest;
use crate::response::error;
use crate::telemetry::events::RequestRejected;
use crate::telemetry::{DecodeReason, Refusal, RejectReason};

/// The body of a request both endpoints may go on with, or the answer that refuses it: `415`
/// for a non-JSON media type, `413`/`400` for a body that could not be read, `503` with
/// `Retry-After: 1` while the analyzer is behind (counted under `rejected{reason}`).
pub(super) fn admit(
    ingest: &HttpIngest,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Box<Response>> {
    if let Some(refused) = unsupported_media_type(ingest, headers) {
        return Err(Box::new(refused));
    }
    let body = body.map_err(|r| Box::new(body_error(ingest, &r)))?;
    if ingest.backpressured() {
        let reason = RejectReason::Refused(Refusal::Backpressure);
        ingest.inner.metrics.emit(RequestRejected { reason });
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            reason.as_str(),
            "the analyzer is behind; retry later".into(),
            None,
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return Err(Box::new(r));
    }
    Ok(body)
}

pub(super) fn body_error(ingest: &HttpIngest, rejection: &BytesRejection) -> Response {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        let reason = RejectReason::Decode(DecodeReason::TooLarge);
        ingest.inner.metrics.emit(RequestRejected { reason });
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            reason.as_str(),
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
pub(super) fn unsupported_media_type(ingest: &HttpIngest, headers: &HeaderMap) -> Option<Response> {
    let declared = headers.get(header::CONTENT_TYPE)?;
    let text = declared.to_str().unwrap_or("(not text)");
    if is_json_media_type(text) {
        return None;
    }
    let reason = RejectReason::Refused(Refusal::UnsupportedMediaType);
    ingest.inner.metrics.emit(RequestRejected { reason });
    Some(error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        reason.as_str(),
        format!(
            "Content-Type `{text}` is not JSON: send events as `application/json` (one object or an array) or `application/x-ndjson` (one object per line)"
        ),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::super::fixtures::{TWO, ingest, post};

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
}
