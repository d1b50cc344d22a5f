//! The JSON error answer shared by HTTP ingest and the endpoint authentication middleware.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: String,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
}

/// A JSON error answer: `{"error": message, "reason": reason, "line"?: N}`.
pub(crate) fn error(
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
