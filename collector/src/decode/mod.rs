//! Decoders: bytes from a source to prediction events.
//!
//! - [`json`]: driftwatch's own events, one JSON object, a JSON array, or NDJSON (one per line).
//! - [`oip`]: Open Inference Protocol v2 requests and responses (protobuf as Seldon Core v2 writes
//!   them to Kafka, or JSON as REST clients send them), paired by request id.
//! - [`cloudevents`]: KServe's inference logger (CloudEvents binary mode over HTTP).
//! - [`label`]: label events (ground truth, joined to predictions by model and request id).
//!
//! Every failure is a [`DecodeError`] with a bounded [`DecodeReason`] for metrics and dead-letter
//! headers, and a message that names the offending line or field.

pub mod cloudevents;
pub mod json;
pub mod label;
pub mod oip;
pub mod pairing;
mod proto;

#[cfg(test)]
mod fuzz;

use serde::{Deserialize, Serialize};

pub use crate::telemetry::labels::DecodeReason;

/// How the messages of a topic are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// driftwatch prediction events as JSON: one object, an array, or NDJSON.
    #[default]
    Json,
    /// Open Inference Protocol v2 `ModelInferRequest` / `ModelInferResponse` in protobuf, as
    /// Seldon Core v2 writes to its `.inputs` / `.outputs` topics.
    OipV2Protobuf,
    /// Open Inference Protocol v2 request / response JSON (the REST form).
    OipV2Json,
}

impl Encoding {
    /// Whether messages are JSON text (as opposed to a binary framing).
    pub fn is_text(self) -> bool {
        !matches!(self, Encoding::OipV2Protobuf)
    }
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// Bounded label (see `docs/metrics.md`): `invalid_json`, `missing_field`, `invalid_field`,
    /// `wrong_encoding`, `too_large`, `unknown_model`, or an [`crate::InvalidEvent::reason`].
    pub reason: DecodeReason,
    /// What is wrong, naming the line (1-based, within the message) or field.
    pub message: String,
}

impl DecodeError {
    /// A new error.
    pub fn new(reason: DecodeReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Classifies a serde_json error into a bounded reason.
pub(crate) fn json_reason(e: &serde_json::Error) -> DecodeReason {
    let text = e.to_string();
    if text.starts_with("missing field") {
        DecodeReason::MissingField
    } else if e.is_data() {
        DecodeReason::InvalidField
    } else {
        DecodeReason::InvalidJson
    }
}

/// Whether `bytes` look like JSON text (first non-blank byte is `{` or `[`).
pub(crate) fn looks_like_json(bytes: &[u8]) -> bool {
    matches!(
        bytes.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}
