//! driftwatch's own JSON events: a single object, a JSON array of objects, or NDJSON.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::decode::{DecodeError, DecodeReason, json_reason, looks_like_json};
use crate::event::{
    EventFields, EventTime, FeatureValue, PredictionEvent, ValueView, Variant, validate_event,
};

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

/// The payload as JSON text, or why it is not.
pub(crate) fn json_text(payload: &[u8]) -> Result<&str, DecodeError> {
    // SIMD validation: std's took about 1,500 instructions per car_loan event (callgrind).
    let text = simdutf8::basic::from_utf8(payload).map_err(|_| {
        DecodeError::new(
            DecodeReason::WrongEncoding,
            "the message is not UTF-8 text; this topic expects JSON events",
        )
    })?;
    if !looks_like_json(payload) {
        let blank = text.trim().is_empty();
        return Err(DecodeError::new(
            if blank {
                DecodeReason::InvalidJson
            } else {
                DecodeReason::WrongEncoding
            },
            if blank {
                "the message is empty".to_string()
            } else {
                "the message is not JSON (expected `{` or `[`); this topic expects JSON events"
                    .to_string()
            },
        ));
    }
    Ok(text)
}

/// Decodes `payload` as one JSON event, a JSON array of events, or NDJSON (blank lines skipped),
/// validating each event. A bad event does not stop the others.
///
/// # Errors
/// `wrong_encoding` when the payload is not JSON text at all (binary framing, E23); `invalid_json`
/// for an array that is not valid JSON as a whole.
pub fn decode_events(payload: &[u8]) -> Result<DecodedEvents, DecodeError> {
    let text = json_text(payload)?;
    let mut out = DecodedEvents::default();
    if text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| {
            DecodeError::new(
                DecodeReason::InvalidJson,
                format!("the JSON array is invalid: {e}"),
            )
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

/// An event handed to [`decode_each`]'s callback.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// Borrowed from the payload (the fast path: NDJSON and single events).
    Borrowed(&'a EventRef<'a>),
    /// Owned (events of a JSON array, and events the fast path passed to the exact decoder).
    Owned(PredictionEvent),
}

impl Decoded<'_> {
    /// The fields other than the features.
    pub fn fields(&self) -> EventFields<'_> {
        match self {
            Decoded::Borrowed(e) => e.fields(),
            Decoded::Owned(e) => e.fields(),
        }
    }

    /// The event as an owned [`PredictionEvent`].
    pub fn into_owned(self) -> PredictionEvent {
        match self {
            Decoded::Borrowed(e) => e.to_owned_event(),
            Decoded::Owned(e) => e,
        }
    }
}

/// [`decode_events`] without building a [`PredictionEvent`] per event: each valid event is handed
/// to `each` with its 1-based line (for an array: position) in payload order, borrowed from `payload` where it can be (strings without escapes
/// are not copied, and features are a sorted list rather than a map). The events and the bad
/// events, with their lines and messages, are exactly those of [`decode_events`]: an event the
/// fast path cannot take (invalid JSON, a missing field, a broken rule, an escaped name) is
/// decoded again by [`decode_events`]'s decoder, which names the problem or, for an escaped
/// name, hands the event over owned.
///
/// # Errors
/// As [`decode_events`].
pub fn decode_each(
    payload: &[u8],
    mut each: impl FnMut(usize, Decoded<'_>),
) -> Result<Vec<BadEvent>, DecodeError> {
    let text = json_text(payload)?;
    if text.trim_start().starts_with('[') {
        let decoded = decode_events(payload)?;
        // The good events' positions: every position the bad ones do not take, in order.
        let mut bad_lines = decoded.bad.iter().map(|b| b.line).peekable();
        let mut position = 0;
        for e in decoded.events {
            position += 1;
            while bad_lines.next_if_eq(&position).is_some() {
                position += 1;
            }
            each(position, Decoded::Owned(e));
        }
        return Ok(decoded.bad);
    }
    let mut bad = DecodedEvents::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match EventRef::parse(line) {
            Some(event) => each(i + 1, Decoded::Borrowed(&event)),
            None => {
                push(
                    &mut bad,
                    i + 1,
                    serde_json::from_str::<PredictionEvent>(line),
                );
                bad.events
                    .drain(..)
                    .for_each(|e| each(i + 1, Decoded::Owned(e)));
            }
        }
    }
    Ok(bad.bad)
}

/// A prediction event borrowed from a message's text: the fast path of [`decode_each`]. Same
/// fields and JSON rules as [`PredictionEvent`]; strings without escapes borrow the text, and the
/// features are a list sorted by name (a repeated name keeps its last value, as a map does).
#[derive(Debug, Deserialize)]
pub struct EventRef<'a> {
    timestamp: EventTime,
    #[serde(borrow)]
    model: Text<'a>,
    #[serde(default, borrow)]
    model_version: Option<Text<'a>>,
    #[serde(default)]
    variant: Variant,
    #[serde(default, borrow)]
    request_id: Option<Text<'a>>,
    #[serde(borrow)]
    features: Features<'a>,
    #[serde(default, borrow)]
    prediction: Option<JsonValue<'a>>,
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    latency_ms: Option<f64>,
}

impl<'a> EventRef<'a> {
    /// One event from one line, if it is valid JSON of the event's shape and passes
    /// [`validate_event`]; `None` for anything else (the exact decoder then says why).
    ///
    /// Parsed with sonic-rs (SIMD string scanning and number parsing, correctly rounded as
    /// serde_json's `float_roundtrip`), through the same serde types as the exact decoder.
    pub fn parse(line: &'a str) -> Option<Self> {
        if fast_path_may_differ(line) {
            return None;
        }
        let mut event: EventRef<'a> = sonic_rs::from_str(line).ok()?;
        event.features.normalize();
        validate_event(&event.fields(), event.feature_views()).ok()?;
        Some(event)
    }

    /// The fields other than the features.
    pub fn fields(&self) -> EventFields<'_> {
        EventFields {
            timestamp: self.timestamp.0,
            model: &self.model.0,
            model_version: self.model_version.as_ref().map(|t| &*t.0),
            variant: self.variant,
            request_id: self.request_id.as_ref().map(|t| &*t.0),
            prediction: self.prediction.as_ref().map(JsonValue::view),
            confidence: self.confidence,
            latency_ms: self.latency_ms,
        }
    }

    /// The features, sorted by name, each name once.
    pub fn feature_views(&self) -> impl Iterator<Item = (&str, ValueView<'_>)> {
        self.features.0.iter().map(|(n, v)| (&**n, v.view()))
    }

    /// The owned event, equal to what [`decode_events`] makes of the same line.
    pub fn to_owned_event(&self) -> PredictionEvent {
        let owned = |v: &JsonValue<'_>| match v {
            JsonValue::Bool(b) => FeatureValue::Bool(*b),
            JsonValue::Number(x) => FeatureValue::Number(*x),
            JsonValue::Text(s) => FeatureValue::Text(s.to_string()),
            JsonValue::Null => FeatureValue::Null,
        };
        PredictionEvent {
            timestamp: self.timestamp,
            model: self.model.0.to_string(),
            model_version: self.model_version.as_ref().map(|t| t.0.to_string()),
            variant: self.variant,
            request_id: self.request_id.as_ref().map(|t| t.0.to_string()),
            features: self
                .features
                .0
                .iter()
                .map(|(n, v)| (n.to_string(), owned(v)))
                .collect::<BTreeMap<_, _>>(),
            prediction: self.prediction.as_ref().map(owned),
            confidence: self.confidence,
            latency_ms: self.latency_ms,
        }
    }
}

/// Whether sonic-rs might read `line` differently from serde_json, which decides then:
/// - sonic-rs skips an ignored value's `\u` escapes without checking their four hex digits
///   (serde_json rejects `"\uZZZZ"` even in a field it ignores);
/// - sonic-rs reads a negative zero (`-0`, `-0.0`, `-0e3`) as `0.0`, serde_json as `-0.0`, which
///   differ as a category (`"-0"`) and in their bits.
///
/// Conservative: an escaped backslash before `u`, or `-0` inside a string, also declines, which
/// costs only the exact decoder's time.
fn fast_path_may_differ(line: &str) -> bool {
    // memchr scans, not `str::match_indices`: its two-way substring search was about 2.6k
    // instructions per car_loan event, a fifth of the fast path (callgrind, decode bench).
    let bytes = line.as_bytes();
    let bad_escape = memchr::memchr(b'\\', bytes).is_some()
        && memchr::memmem::find_iter(bytes, b"\\u").any(|at| {
            let hex = bytes.get(at + 2..at + 6);
            !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        });
    bad_escape
        || memchr::memchr_iter(b'-', bytes).any(|at| {
            if bytes.get(at + 1) != Some(&b'0') {
                return false;
            }
            let mut rest = &bytes[at + 2..];
            match rest.first() {
                // `-01...` is no JSON number (a date inside a string, say).
                Some(b'0'..=b'9') => return false,
                Some(b'.') => {
                    rest = &rest[1..];
                    while let Some((b'0', tail)) = rest.split_first() {
                        rest = tail;
                    }
                }
                _ => {}
            }
            // Zero unless a non-zero digit follows the zeros.
            !matches!(rest.first(), Some(b'1'..=b'9'))
        })
}

/// A JSON string, borrowed when it has no escapes.
#[derive(Debug)]
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A feature value as [`FeatureValue`] reads it, with text borrowed when it has no escapes.
#[derive(Debug)]
enum JsonValue<'a> {
    Bool(bool),
    Number(f64),
    Text(Cow<'a, str>),
    Null,
}

impl JsonValue<'_> {
    fn view(&self) -> ValueView<'_> {
        match self {
            JsonValue::Bool(b) => ValueView::Bool(*b),
            JsonValue::Number(x) => ValueView::Number(*x),
            JsonValue::Text(s) => ValueView::Text(s),
            JsonValue::Null => ValueView::Null,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonValue<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonValue<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean, a number, a string or null")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<JsonValue<'de>, E> {
                Ok(JsonValue::Bool(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsonValue<'de>, E> {
                Ok(JsonValue::Number(v as f64))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsonValue<'de>, E> {
                Ok(JsonValue::Number(v as f64))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<JsonValue<'de>, E> {
                Ok(JsonValue::Number(v))
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<JsonValue<'de>, E> {
                Ok(JsonValue::Text(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonValue<'de>, E> {
                Ok(JsonValue::Text(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<JsonValue<'de>, E> {
                Ok(JsonValue::Text(Cow::Owned(v)))
            }

            fn visit_unit<E: de::Error>(self) -> Result<JsonValue<'de>, E> {
                Ok(JsonValue::Null)
            }

            fn visit_none<E: de::Error>(self) -> Result<JsonValue<'de>, E> {
                Ok(JsonValue::Null)
            }

            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<JsonValue<'de>, D2::Error> {
                JsonValue::deserialize(d)
            }
        }
        d.deserialize_any(V)
    }
}

/// The features object as a list of (name, value), in the message's order until
/// [`Features::normalize`] sorts it.
#[derive(Debug)]
struct Features<'a>(Vec<(Cow<'a, str>, JsonValue<'a>)>);

impl Features<'_> {
    /// Sorts by name and keeps the last value of a repeated name, as a `BTreeMap` built from the
    /// same object would.
    fn normalize(&mut self) {
        let list = &mut self.0;
        if list.is_sorted_by(|a, b| a.0 < b.0) {
            return;
        }
        // Reversed, a stable sort puts the last value of each name first; dedup keeps the first.
        list.reverse();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list.dedup_by(|later, first| later.0 == first.0);
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Features<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Features<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Features<'de>, A::Error> {
                let mut list = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((name, value)) = map.next_entry::<Text<'de>, JsonValue<'de>>()? {
                    list.push((name.0, value));
                }
                Ok(Features(list))
            }
        }
        d.deserialize_map(V)
    }
}

fn push(out: &mut DecodedEvents, line: usize, parsed: Result<PredictionEvent, serde_json::Error>) {
    push_validated(&mut out.events, &mut out.bad, line, parsed, |e| {
        e.validate().map_err(|e| (e.reason(), e.to_string()))
    });
}

/// Files one parsed line (array: position) under `good` when it parses and `validate` passes,
/// else under `bad` with its line, a bounded reason and a message starting `line N: `.
pub(crate) fn push_validated<T>(
    good: &mut Vec<T>,
    bad: &mut Vec<BadEvent>,
    line: usize,
    parsed: Result<T, serde_json::Error>,
    validate: impl FnOnce(&T) -> Result<(), (DecodeReason, String)>,
) {
    let error = match parsed {
        Ok(item) => match validate(&item) {
            Ok(()) => return good.push(item),
            Err((reason, message)) => DecodeError::new(reason, format!("line {line}: {message}")),
        },
        Err(e) => DecodeError::new(json_reason(&e), format!("line {line}: {e}")),
    };
    bad.push(BadEvent { line, error });
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
        assert_eq!(
            (d.bad[0].line, d.bad[0].error.reason.as_str()),
            (2, "missing_field")
        );
        assert!(
            d.bad[0]
                .error
                .message
                .contains("line 2: missing field `model`"),
            "{}",
            d.bad[0].error.message
        );
        assert_eq!(
            (d.bad[1].line, d.bad[1].error.reason.as_str()),
            (3, "invalid_confidence")
        );
    }

    #[test]
    fn binary_payload_is_wrong_encoding() {
        // A protobuf frame on a JSON topic (edge case E23).
        let err = decode_events(&[0x0a, 0x03, b'a', b'b', b'c', 0x12]).unwrap_err();
        assert_eq!(err.reason.as_str(), "wrong_encoding");
        let err = decode_events(&[0xff, 0xfe, 0x00]).unwrap_err();
        assert_eq!(err.reason.as_str(), "wrong_encoding");
    }

    /// Both decoders on one payload: (events, bad) of [`decode_each`] and of [`decode_events`].
    fn both(payload: &[u8]) -> (DecodedEvents, DecodedEvents) {
        let mut fast = DecodedEvents::default();
        let exact = decode_events(payload);
        match decode_each(payload, |_, e| fast.events.push(e.into_owned())) {
            Ok(bad) => fast.bad = bad,
            Err(e) => assert_eq!(Err(e), exact.clone().map(|_| ())),
        }
        (fast, exact.unwrap_or_default())
    }

    #[test]
    fn fast_path_matches_the_exact_decoder_on_edge_lines() {
        let payload = concat!(
            // Plain, sorted and unsorted features, escapes in names and values, a repeated
            // feature (the last value wins, as in a map), nulls and every value type.
            "{\"timestamp\": 1, \"model\": \"m\", \"features\": {\"b\": 1, \"a\": \"x\"}}\n",
            "{\"timestamp\": \"2026-11-29T17:00:00.123Z\", \"model\": \"m\\u0031\", \"model_version\": \"v\\n1\", \"variant\": \"canary\", \"request_id\": \"r\", \"features\": {\"s\\u00e9\": \"40K - 60K \\u20ac\", \"n\": null, \"t\": true}, \"prediction\": 0.5, \"confidence\": 1, \"latency_ms\": 0, \"extra\": [1, {}]}\n",
            "{\"timestamp\": 3, \"model\": \"m\", \"features\": {\"x\": 1, \"y\": 2, \"x\": \"last\"}}\n",
            "   \n",
            // Bad: missing model, reserved and empty feature names, confidence out of range,
            // a nested value, a duplicate top-level field, a float timestamp, invalid JSON.
            "{\"timestamp\": 4, \"features\": {}}\n",
            "{\"timestamp\": 5, \"model\": \"m\", \"features\": {\"model\": 1}}\n",
            "{\"timestamp\": 6, \"model\": \"m\", \"features\": {\"\": 1}}\n",
            "{\"timestamp\": 7, \"model\": \"m\", \"features\": {}, \"confidence\": 1.5}\n",
            "{\"timestamp\": 8, \"model\": \"m\", \"features\": {\"a\": [1]}}\n",
            "{\"timestamp\": 9, \"model\": \"m\", \"model\": \"n\", \"features\": {}}\n",
            "{\"timestamp\": 10.5, \"model\": \"m\", \"features\": {}}\n",
            "{\"timestamp\": 11, \"model\": \"m\", \"features\": {\"a\": 1e999}}\n",
            "{\"timestamp\": 12, \"model\": \"m\", \"features\": {\"a\": 1}, \"latency_ms\": -1}\n",
            "{\"timestamp\": 13, \"model\": \"m\", \"features\": {\"a\": 1}\n",
            "{\"timestamp\": 14.0, \"model\": \"m\", \"features\": {}}",
        );
        let (fast, exact) = both(payload.as_bytes());
        assert_eq!(fast, exact);
        assert_eq!(exact.events.len(), 4);
        assert_eq!(
            exact.bad.iter().map(|b| b.line).collect::<Vec<_>>(),
            [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
        );
        assert_eq!(
            exact.events[1].features["s\u{e9}"],
            FeatureValue::Text("40K - 60K \u{20ac}".into())
        );
        assert_eq!(exact.events[1].model, "m1");
        assert_eq!(
            exact.events[2].features["x"],
            FeatureValue::Text("last".into())
        );
        assert_eq!(exact.events[2].features.len(), 2);
    }

    #[test]
    fn fast_path_declines_what_the_exact_decoder_rejects() {
        // JSON the two parsers could read differently: each line must come out as serde_json has
        // it (an error naming the line, or the same event).
        let lines = [
            "{\"timestamp\": 1, \"model\": \"a\tb\", \"features\": {}}",
            "{\"timestamp\": 1, \"model\": \"\\ud800\", \"features\": {}}",
            "{\"timestamp\": 1, \"model\": \"\\ud83d\\ude00\", \"features\": {}}",
            "{\"timestamp\": 1, \"model\": \"m\", \"features\": {}} x",
            "{\"timestamp\": 1, \"model\": \"m\", \"features\": {},}",
            "{\"timestamp\": 1, \"model\": \"m\", \"features\": {\"a\": 01}}",
            "{\"timestamp\": 1, \"model\": \"m\", \"features\": {\"a\": NaN}}",
            "{\"timestamp\": 1, \"model\": \"m\", \"features\": {\"a\": 1.}}",
            "{\"timestamp\": 1, \"model\": \"m\", \"features\": {\"a\": +1}}",
            "{\"timestamp\": 1, \"model\": \"m\", \"features\": {\"a\": 2.2250738585072011e-308}}",
            "{\"timestamp\": 1, \"model\": \"m\", \"features\": {\"a\": 0.30000000000000004441}}",
            "{\"timestamp\": 1, \"model\": \"m\", \"features\": {\"a\": -0.0, \"b\": 1e-400}}",
            "{\"timestamp\": 18446744073709551615, \"model\": \"m\", \"features\": {}}",
            "{\"timestamp\": -1, \"model\": \"m\", \"features\": {\"a\": 123456789012345678901234567890}}",
            "{\"timestamp\": 1, \"model\": \"m\", \"features\": {}, \"x\": [[[[{\"y\": [1, \"z\"]}]]]]}",
            "{\"timestamp\": 1, \"model\": \"m\", \"variant\": \"Canary\", \"features\": {}}",
            "{\"timestamp\": 1, \"model\": \"m\", \"variant\": null, \"features\": {}}",
            "{\"timestamp\": 1, \"model\": \"m\", \"model_version\": null, \"features\": null}",
            "{\"timestamp\": 1, \"model\": \"m\", \"confidence\": \"0.5\", \"features\": {}}",
            "{\"timestamp\": 1 \"model\": \"m\", \"features\": {}}",
            "{\"timestamp\": 1, \"model\": \"m\", \"features\": {\"a\": true, \"a\": null}}",
        ];
        let payload = lines.join("\n");
        let (fast, exact) = both(payload.as_bytes());
        assert_eq!(fast, exact);
        // The good ones: the surrogate pair, the two exact floats, the signed zero and underflow,
        // the nested unknown field, the large integer, the repeated feature.
        assert_eq!(exact.events.len(), 7, "{:?}", exact.bad);
    }

    #[test]
    fn negative_zero_and_bad_escapes_in_ignored_fields_go_to_the_exact_decoder() {
        // Regression: sonic-rs read `-0` as `0.0` (category "0", serde_json "-0") and skipped
        // `\uZZZZ` in an ignored field, which serde_json rejects.
        let payload = concat!(
            "{\"timestamp\": 1, \"model\": \"m\", \"features\": {\"c\": -0, \"d\": -0.00e1, \"e\": -0.05}, \"prediction\": -0}\n",
            "{\"timestamp\": 2, \"model\": \"m\", \"features\": {}, \"extra\": \"\\uZZZZ\"}\n",
            "{\"timestamp\": 3, \"model\": \"m\", \"features\": {}, \"extra\": \"\\\\uZZZZ 2018-01-05\"}",
        );
        let (fast, exact) = both(payload.as_bytes());
        assert_eq!(fast, exact);
        assert_eq!(exact.bad.iter().map(|b| b.line).collect::<Vec<_>>(), [2]);
        let e = &fast.events[0];
        assert_eq!(
            e.features["c"].as_f64().map(f64::to_bits),
            Some((-0.0f64).to_bits())
        );
        assert_eq!(
            e.features["d"].as_f64().map(f64::to_bits),
            Some((-0.0f64).to_bits())
        );
        assert_eq!(
            e.prediction
                .as_ref()
                .and_then(FeatureValue::as_category)
                .as_deref(),
            Some("-0")
        );
        assert!(fast_path_may_differ("{\"a\": -0}"));
        assert!(fast_path_may_differ("{\"a\": \"\\u12G4\"}"));
        assert!(!fast_path_may_differ(
            "{\"a\": -0.05, \"t\": \"2018-01-05\", \"s\": \"\\u20ac\"}"
        ));
    }

    #[test]
    fn fast_path_borrows_plain_strings_and_sorts_features() {
        let line =
            r#"{"timestamp": 1, "model": "m", "features": {"b": 2, "a": "x", "b": 3, "c": null}}"#;
        let e = EventRef::parse(line).unwrap();
        assert!(matches!(e.model.0, Cow::Borrowed("m")));
        assert_eq!(
            e.feature_views().collect::<Vec<_>>(),
            [
                ("a", ValueView::Text("x")),
                ("b", ValueView::Number(3.0)),
                ("c", ValueView::Null)
            ]
        );
        // A rule broken or a shape not matched: the fast path declines.
        assert!(EventRef::parse(r#"{"timestamp": 1, "model": "", "features": {}}"#).is_none());
        assert!(EventRef::parse(r#"{"timestamp": 1, "model": "m"}"#).is_none());
    }

    #[test]
    fn arrays_go_through_the_exact_decoder() {
        let arr = br#"[{"timestamp": 1, "model": "m", "features": {"x": 1}}, {"timestamp": 2, "features": {}}]"#;
        let (fast, exact) = both(arr);
        assert_eq!(fast, exact);
        assert_eq!((exact.events.len(), exact.bad.len()), (1, 1));
        assert_eq!(both(b"not json").0, DecodedEvents::default());
    }

    mod prop {
        use proptest::prelude::*;

        use super::both;

        /// A JSON fragment for a value of any kind, valid for a feature or not.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<i32>().prop_map(|v| v.to_string()),
                any::<f64>()
                    .prop_filter("finite", |v| v.is_finite())
                    .prop_map(|v| format!("{v:?}")),
                Just("1e999".to_string()),
                Just("true".to_string()),
                Just("null".to_string()),
                "[a-c\\\\\"é€ ]{0,4}".prop_map(|s| serde_json::to_string(&s).unwrap()),
                Just("\"\\u0061\"".to_string()),
                Just("[1]".to_string()),
            ]
        }

        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-d]{0,2}".prop_map(|s| serde_json::to_string(&s).unwrap()),
                Just("\"\\u0061\"".to_string()),
                Just("\"model\"".to_string()),
            ]
        }

        fn line() -> impl Strategy<Value = String> {
            let field = prop_oneof![
                prop_oneof![
                    Just("1"),
                    Just("\"2026-11-29T17:00:00Z\""),
                    Just("1.5"),
                    Just("\"x\"")
                ]
                .prop_map(|v| format!("\"timestamp\": {v}")),
                name().prop_map(|v| format!("\"model\": {v}")),
                name().prop_map(|v| format!("\"model_version\": {v}")),
                prop_oneof![Just("\"canary\""), Just("\"stable\""), Just("\"blue\"")]
                    .prop_map(|v| format!("\"variant\": {v}")),
                prop::collection::vec((name(), value()), 0..5).prop_map(|kv| {
                    let body: Vec<String> = kv.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    format!("\"features\": {{{}}}", body.join(", "))
                }),
                value().prop_map(|v| format!("\"prediction\": {v}")),
                value().prop_map(|v| format!("\"confidence\": {v}")),
                value().prop_map(|v| format!("\"latency_ms\": {v}")),
                value().prop_map(|v| format!("\"other\": {v}")),
            ];
            prop_oneof![
                // Mostly events with the required fields first, then random others.
                4 => prop::collection::vec(field.clone(), 0..6).prop_map(|rest| {
                    let mut fields = vec![
                        "\"timestamp\": 1".to_string(),
                        "\"model\": \"m\"".to_string(),
                        "\"features\": {\"a\": 1}".to_string(),
                    ];
                    fields.extend(rest);
                    format!("{{{}}}", fields.join(", "))
                }),
                1 => prop::collection::vec(field, 0..6)
                    .prop_map(|fields| format!("{{{}}}", fields.join(", "))),
                1 => Just(String::new()),
                1 => Just("{\"timestamp\": 1,".to_string()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            /// On any NDJSON payload the fast path gives exactly the exact decoder's events and
            /// bad lines (with their messages).
            #[test]
            fn fast_path_equals_exact_decoder(lines in prop::collection::vec(line(), 1..8)) {
                let payload = lines.join("\n");
                let (fast, exact) = both(payload.as_bytes());
                prop_assert_eq!(fast, exact);
            }

            /// The memchr scan of `fast_path_may_differ` declines exactly the lines the
            /// `str::match_indices` scan it replaced declined.
            #[test]
            fn may_differ_scan_equals_match_indices(line in "[-0.1e\\\\ua9Z\"x]{0,24}") {
                prop_assert_eq!(super::super::fast_path_may_differ(&line), by_match_indices(&line));
            }
        }

        /// The scan before memchr (27c9d61), as the reference.
        fn by_match_indices(line: &str) -> bool {
            let bad_escape = line.contains('\\')
                && line.match_indices("\\u").any(|(at, _)| {
                    let hex = line.as_bytes().get(at + 2..at + 6);
                    !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
                });
            bad_escape
                || line.match_indices("-0").any(|(at, _)| {
                    let mut rest = &line.as_bytes()[at + 2..];
                    match rest.first() {
                        Some(b'0'..=b'9') => return false,
                        Some(b'.') => {
                            rest = &rest[1..];
                            while let Some((b'0', tail)) = rest.split_first() {
                                rest = tail;
                            }
                        }
                        _ => {}
                    }
                    !matches!(rest.first(), Some(b'1'..=b'9'))
                })
        }
    }
}
