//! Label events: the ground truth of one prediction, sent when it becomes known and joined to the
//! prediction later by `(model, request_id)`.
//!
//! ```json
//! {"timestamp": "2026-11-30T09:12:00Z", "model": "car-loan", "request_id": "9f1c", "label": 1}
//! ```
//!
//! `label` is a number, a string or a bool (a class, or a regression target); `timestamp` (when the
//! label became known, RFC 3339 or epoch milliseconds) is optional. A payload is one object, a
//! JSON array of objects, or NDJSON, as for prediction events; a bad label does not stop the
//! others, and each is named by its 1-based line (array: position) and field.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::decode::json::{BadEvent, json_text, push_validated};
use crate::decode::{DecodeError, DecodeReason};
use crate::event::{EventTime, FeatureValue, MAX_NAME_LEN};

/// The ground truth of one prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "driftwatch label event",
    description = "The ground truth of one prediction, joined to it by model and request_id."
)]
pub struct LabelEvent {
    /// When the label became known (event time); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<EventTime>,
    /// The model's name, as in the prediction event.
    pub model: String,
    /// The prediction's `request_id`.
    pub request_id: String,
    /// The true outcome: a class (number, string or bool) or a regression target (number).
    pub label: FeatureValue,
}

/// Why a label event is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidLabel {
    /// `model` is empty or longer than [`MAX_NAME_LEN`] bytes.
    #[error("field `model` must be 1 to {MAX_NAME_LEN} bytes")]
    Model,
    /// `request_id` is empty.
    #[error("field `request_id` must not be empty (labels join predictions by it)")]
    EmptyRequestId,
    /// A text field is longer than [`MAX_NAME_LEN`] bytes.
    #[error("field `{0}` is longer than {MAX_NAME_LEN} bytes")]
    TooLong(&'static str),
    /// `label` is null.
    #[error("field `label` is null; send the label when it is known")]
    NullLabel,
    /// `label` is an empty string.
    #[error("field `label` is an empty string")]
    EmptyLabel,
}

impl InvalidLabel {
    /// The bounded reason counted in `driftwatch_decode_errors_total{reason}`.
    pub fn reason(&self) -> DecodeReason {
        match self {
            InvalidLabel::Model => DecodeReason::InvalidModel,
            InvalidLabel::EmptyRequestId | InvalidLabel::EmptyLabel => DecodeReason::InvalidField,
            InvalidLabel::TooLong(_) => DecodeReason::FieldTooLong,
            InvalidLabel::NullLabel => DecodeReason::MissingField,
        }
    }
}

impl LabelEvent {
    /// Checks what the JSON shape cannot: name lengths, a non-empty request id, a label that is
    /// present and not empty. (JSON numbers are always finite: `1e999` does not parse.)
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), InvalidLabel> {
        if self.model.is_empty() || self.model.len() > MAX_NAME_LEN {
            return Err(InvalidLabel::Model);
        }
        if self.request_id.is_empty() {
            return Err(InvalidLabel::EmptyRequestId);
        }
        if self.request_id.len() > MAX_NAME_LEN {
            return Err(InvalidLabel::TooLong("request_id"));
        }
        match &self.label {
            FeatureValue::Null => Err(InvalidLabel::NullLabel),
            FeatureValue::Text(s) if s.is_empty() => Err(InvalidLabel::EmptyLabel),
            FeatureValue::Text(s) if s.len() > MAX_NAME_LEN => Err(InvalidLabel::TooLong("label")),
            _ => Ok(()),
        }
    }
}

impl LabelEvent {
    /// The JSON Schema of a label event, pretty-printed (published as
    /// `schemas/label-event.schema.json`).
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(LabelEvent);
        serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
    }
}

/// The labels of a payload, and the ones that failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedLabels {
    /// Valid labels, in payload order.
    pub labels: Vec<LabelEvent>,
    /// Labels that did not decode or validate, with their 1-based line (array: position).
    pub bad: Vec<BadEvent>,
}

/// Decodes `payload` as one JSON label event, a JSON array of them, or NDJSON (blank lines
/// skipped), validating each. A bad label does not stop the others.
///
/// # Errors
/// `wrong_encoding` when the payload is not JSON text (binary, or not starting with `{` or `[`),
/// `invalid_json` for an empty payload or an array that is not valid JSON as a whole.
pub fn decode_labels(payload: &[u8]) -> Result<DecodedLabels, DecodeError> {
    let text = json_text(payload)?;
    let mut out = DecodedLabels::default();
    if text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
            DecodeError::new(
                DecodeReason::InvalidJson,
                format!("the JSON array is invalid: {e}"),
            )
        })?;
        for (i, v) in values.into_iter().enumerate() {
            push(&mut out, i + 1, serde_json::from_value::<LabelEvent>(v));
        }
        return Ok(out);
    }
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        push(&mut out, i + 1, serde_json::from_str::<LabelEvent>(line));
    }
    Ok(out)
}

fn push(out: &mut DecodedLabels, line: usize, parsed: Result<LabelEvent, serde_json::Error>) {
    push_validated(&mut out.labels, &mut out.bad, line, parsed, |l| {
        l.validate().map_err(|e| (e.reason(), e.to_string()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(d: &DecodedLabels) -> Vec<(usize, &'static str)> {
        d.bad
            .iter()
            .map(|b| (b.line, b.error.reason.as_str()))
            .collect()
    }

    #[test]
    fn one_object_an_array_and_ndjson_decode_with_every_label_type() {
        let one = br#"{"model": "m", "request_id": "r1", "label": 1}"#;
        let d = decode_labels(one).unwrap();
        assert_eq!(d.labels.len(), 1);
        assert_eq!(d.labels[0].label, FeatureValue::Number(1.0));
        assert_eq!(d.labels[0].timestamp, None);
        let array = br#"[{"model": "m", "request_id": "r1", "label": "approved", "timestamp": 1700000000000},
                         {"model": "m", "request_id": "r2", "label": true, "timestamp": "2026-11-30T09:12:00Z"}]"#;
        let d = decode_labels(array).unwrap();
        assert_eq!(d.labels.len(), 2);
        assert_eq!(d.labels[0].label, FeatureValue::Text("approved".into()));
        assert_eq!(d.labels[0].timestamp, Some(EventTime(1_700_000_000_000)));
        assert_eq!(d.labels[1].label, FeatureValue::Bool(true));
        // date -d 2026-11-30T09:12:00Z +%s = 1796029920.
        assert_eq!(d.labels[1].timestamp, Some(EventTime(1_796_029_920_000)));
        let ndjson = b"{\"model\": \"m\", \"request_id\": \"a\", \"label\": 0.25}\n\n{\"model\": \"m\", \"request_id\": \"b\", \"label\": -3}\n";
        let d = decode_labels(ndjson).unwrap();
        assert_eq!(d.labels.len(), 2);
        assert!(d.bad.is_empty());
    }

    /// Each broken rule is named by its line and counted under a bounded reason; the good
    /// labels around it still decode.
    #[test]
    fn bad_labels_are_named_by_line_and_reason_and_the_rest_decode() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        let payload = format!(
            "{{\"model\": \"m\", \"request_id\": \"ok1\", \"label\": 1}}\n\
             {{\"model\": \"m\", \"label\": 1}}\n\
             {{\"model\": \"m\", \"request_id\": \"\", \"label\": 1}}\n\
             {{\"model\": \"m\", \"request_id\": \"r\", \"label\": null}}\n\
             {{\"model\": \"m\", \"request_id\": \"r\", \"label\": [1, 2]}}\n\
             {{\"model\": \"\", \"request_id\": \"r\", \"label\": 1}}\n\
             {{\"model\": \"m\", \"request_id\": \"{long}\", \"label\": 1}}\n\
             {{\"model\": \"m\", \"request_id\": \"r\", \"label\": \"\"}}\n\
             {{\"model\": \"m\", \"request_id\": \"r\", \"label\": 1, \"timestamp\": \"yesterday\"}}\n\
             {{\"model\": \"m\", \"request_id\": \"r\"\n\
             {{\"model\": \"m\", \"request_id\": \"ok2\", \"label\": 0}}\n"
        );
        let d = decode_labels(payload.as_bytes()).unwrap();
        let ids: Vec<&str> = d.labels.iter().map(|l| l.request_id.as_str()).collect();
        assert_eq!(ids, ["ok1", "ok2"]);
        assert_eq!(
            reasons(&d),
            [
                (2, "missing_field"),
                (3, "invalid_field"),
                (4, "missing_field"),
                (5, "invalid_field"),
                (6, "invalid_model"),
                (7, "field_too_long"),
                (8, "invalid_field"),
                (9, "invalid_field"),
                (10, "invalid_json"),
            ]
        );
        assert!(
            d.bad[0]
                .error
                .message
                .starts_with("line 2: missing field `request_id`")
        );
        assert!(
            d.bad[2].error.message.contains("`label` is null"),
            "{:?}",
            d.bad[2]
        );
    }

    #[test]
    fn payloads_that_are_not_json_labels_are_refused_whole() {
        let e = decode_labels(b"\x00\x01binary").unwrap_err();
        assert_eq!(e.reason, DecodeReason::WrongEncoding);
        let e = decode_labels(b"  \n").unwrap_err();
        assert_eq!(e.reason, DecodeReason::InvalidJson);
        let e = decode_labels(b"[{\"model\": \"m\"").unwrap_err();
        assert_eq!(e.reason, DecodeReason::InvalidJson);
    }
}
