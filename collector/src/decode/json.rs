//! driftwatch's own JSON events: a single object, a JSON array of objects, or NDJSON.

use crate::decode::{DecodeError, json_reason, looks_like_json};
use crate::event::PredictionEvent;

/// One event that failed, with its 1-based line (NDJSON) or position (array).
#[derive(Debug, Clone, PartialEq)]
pub struct BadEvent {
    /// 1-based line in the payload (for an array: 1-based position).
    pub line: usize,
    /// What is wrong.
    pub error: DecodeError,
}

/// The events of a payload, and the ones that failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedEvents {
    /// Valid events, in payload order.
    pub events: Vec<PredictionEvent>,
    /// Events that did not decode or validate.
    pub bad: Vec<BadEvent>,
}

/// Decodes `payload` as one JSON event, a JSON array of events, or NDJSON (blank lines skipped),
/// validating each event. A bad event does not stop the others.
///
/// # Errors
/// `wrong_encoding` when the payload is not JSON text at all (binary framing, E23); `invalid_json`
/// for an array that is not valid JSON as a whole.
pub fn decode_events(payload: &[u8]) -> Result<DecodedEvents, DecodeError> {
    let text = std::str::from_utf8(payload).map_err(|_| {
        DecodeError::new(
            "wrong_encoding",
            "the message is not UTF-8 text; this topic expects JSON events",
        )
    })?;
    if !looks_like_json(payload) {
        let blank = text.trim().is_empty();
        return Err(DecodeError::new(
            if blank {
                "invalid_json"
            } else {
                "wrong_encoding"
            },
            if blank {
                "the message is empty".to_string()
            } else {
                "the message is not JSON (expected `{` or `[`); this topic expects JSON events"
                    .to_string()
            },
        ));
    }
    let mut out = DecodedEvents::default();
    if text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
            DecodeError::new("invalid_json", format!("the JSON array is invalid: {e}"))
        })?;
        for (i, v) in values.into_iter().enumerate() {
            push(
                &mut out,
                i + 1,
                serde_json::from_value::<PredictionEvent>(v),
            );
        }
        return Ok(out);
    }
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        push(
            &mut out,
            i + 1,
            serde_json::from_str::<PredictionEvent>(line),
        );
    }
    Ok(out)
}

fn push(out: &mut DecodedEvents, line: usize, parsed: Result<PredictionEvent, serde_json::Error>) {
    match parsed {
        Ok(event) => match event.validate() {
            Ok(()) => out.events.push(event),
            Err(e) => out.bad.push(BadEvent {
                line,
                error: DecodeError::new(e.reason(), format!("line {line}: {e}")),
            }),
        },
        Err(e) => out.bad.push(BadEvent {
            line,
            error: DecodeError::new(json_reason(&e), format!("line {line}: {e}")),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_array_and_ndjson() {
        let one = br#"{"timestamp": 1, "model": "m", "features": {"x": 1}}"#;
        assert_eq!(decode_events(one).unwrap().events.len(), 1);
        let arr = br#"[{"timestamp": 1, "model": "m", "features": {}}, {"timestamp": 2, "model": "m", "features": {}}]"#;
        assert_eq!(decode_events(arr).unwrap().events.len(), 2);
        let nd = b"{\"timestamp\": 1, \"model\": \"m\", \"features\": {}}\n\n{\"timestamp\": 2, \"model\": \"m\", \"features\": {}}\n";
        assert_eq!(decode_events(nd).unwrap().events.len(), 2);
    }

    #[test]
    fn bad_line_is_named_and_others_kept() {
        let nd = b"{\"timestamp\": 1, \"model\": \"m\", \"features\": {}}\n{\"timestamp\": 2, \"features\": {}}\n{\"timestamp\": 3, \"model\": \"m\", \"features\": {}, \"confidence\": 2}\n{\"timestamp\": 4, \"model\": \"m\", \"features\": {}}";
        let d = decode_events(nd).unwrap();
        assert_eq!(d.events.len(), 2);
        assert_eq!(d.bad.len(), 2);
        assert_eq!((d.bad[0].line, d.bad[0].error.reason), (2, "missing_field"));
        assert!(
            d.bad[0]
                .error
                .message
                .contains("line 2: missing field `model`"),
            "{}",
            d.bad[0].error.message
        );
        assert_eq!(
            (d.bad[1].line, d.bad[1].error.reason),
            (3, "invalid_confidence")
        );
    }

    #[test]
    fn binary_payload_is_wrong_encoding() {
        // A protobuf frame on a JSON topic (edge case E23).
        let err = decode_events(&[0x0a, 0x03, b'a', b'b', b'c', 0x12]).unwrap_err();
        assert_eq!(err.reason, "wrong_encoding");
        let err = decode_events(&[0xff, 0xfe, 0x00]).unwrap_err();
        assert_eq!(err.reason, "wrong_encoding");
    }
}
