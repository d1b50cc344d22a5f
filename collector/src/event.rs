//! The prediction event: one JSON object per prediction, as serving pods send it.
//!
//! ```json
//! {"timestamp": "2026-11-29T17:00:00.123Z", "model": "car-loan", "model_version": "v1.3.0",
//!  "variant": "canary", "request_id": "9f1c", "features": {"car_value": 39811.0,
//!  "salary_range": "40K - 60K €", "repaid_loan_on_prev_car": false}, "prediction": 1,
//!  "confidence": 0.99, "latency_ms": 41.2}
//! ```
//!
//! `timestamp` (RFC 3339 or integer epoch milliseconds), `model` and `features` are required;
//! everything else is optional. Unknown top-level fields are ignored so producers can add fields
//! before driftwatch knows them. The JSON Schema is published in `schemas/prediction-event.schema.json`
//! (generated from these types; a test fails when it is stale).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::telemetry::labels::DecodeReason;

/// Names of the columns every event batch has ([`types::event`]); a feature may not use
/// them.
pub const RESERVED_COLUMNS: [&str; 8] = types::event::FIXED_COLUMNS;

/// Longest model name, version or request id accepted (bytes).
pub const MAX_NAME_LEN: usize = 256;

/// Most features one event may carry. Each feature of a model without a profile becomes a column
/// of its batches, so this bounds what one event can make the service allocate (issue 19, item 1).
pub const MAX_FEATURES_PER_EVENT: usize = 10_000;

/// One prediction made by a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    title = "driftwatch prediction event",
    description = "One prediction made by a model in production."
)]
pub struct PredictionEvent {
    /// When the prediction was made (event time).
    pub timestamp: EventTime,
    /// The model's name, e.g. `car-loan`.
    pub model: String,
    /// The model version, e.g. `v1.3.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// Which deployment variant served it (default `stable`).
    #[serde(default)]
    pub variant: Variant,
    /// The request's id, used to join later ground-truth labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The model's input features by name: numbers, strings, bools or null (missing).
    pub features: BTreeMap<String, FeatureValue>,
    /// The model's output: a class label or a score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<FeatureValue>,
    /// The model's confidence in its prediction, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Time the model took to answer, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

/// A deployment variant.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// The current production version.
    #[default]
    Stable,
    /// A new version receiving part of the traffic.
    Canary,
}

impl Variant {
    /// The label value (`stable` or `canary`).
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Stable => "stable",
            Variant::Canary => "canary",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A feature value (or a prediction). In JSON: a boolean, a number, a string or `null`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum FeatureValue {
    /// A boolean (categorical: `"true"` / `"false"`).
    Bool(bool),
    /// A number.
    Number(f64),
    /// Text (categorical).
    Text(String),
    /// Missing.
    Null,
}

/// Deserialised by the value's own JSON type, in one pass. (A derived `untagged` enum buffers each
/// value and tries the variants in turn, formatting an error message for every miss: most of the
/// decoding time of an event.)
impl<'de> Deserialize<'de> for FeatureValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FeatureValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean, a number, a string or null")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Bool(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Number(v as f64))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Number(v as f64))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Number(v))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Text(v.to_owned()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Text(v))
            }

            fn visit_unit<E: de::Error>(self) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Null)
            }

            fn visit_none<E: de::Error>(self) -> Result<FeatureValue, E> {
                Ok(FeatureValue::Null)
            }

            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<FeatureValue, D2::Error> {
                FeatureValue::deserialize(d)
            }
        }
        d.deserialize_any(V)
    }
}

impl FeatureValue {
    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FeatureValue::Number(x) => Some(*x),
            _ => None,
        }
    }

    /// The value as a category: text as is, bools as `true`/`false`, numbers in Rust's shortest
    /// decimal form (`1`, `0.5`). `None` for null.
    pub fn as_category(&self) -> Option<String> {
        self.category(&mut String::new()).map(str::to_owned)
    }

    /// [`Self::as_category`] without allocating: text and bools are borrowed, a number is written
    /// into `buf` (cleared first) and borrowed from there. The batcher's hot path.
    pub fn category<'a>(&'a self, buf: &'a mut String) -> Option<&'a str> {
        self.view().category(buf)
    }

    /// The value borrowed, as the batcher appends it.
    pub fn view(&self) -> ValueView<'_> {
        match self {
            FeatureValue::Bool(b) => ValueView::Bool(*b),
            FeatureValue::Number(x) => ValueView::Number(*x),
            FeatureValue::Text(s) => ValueView::Text(s),
            FeatureValue::Null => ValueView::Null,
        }
    }
}

/// A feature value (or a prediction) borrowed from an owned [`FeatureValue`] or straight from a
/// message's bytes ([`crate::decode::json::decode_each`]): what the batcher appends to a column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueView<'a> {
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(f64),
    /// Text.
    Text(&'a str),
    /// Missing.
    Null,
}

/// 2^53: every integer of smaller magnitude is an exact `f64` and an exact `i64`.
const INTEGER_EXACT: f64 = 9_007_199_254_740_992.0;

impl<'a> ValueView<'a> {
    /// The value as a category, as [`FeatureValue::as_category`]: text is borrowed, bools are
    /// `true`/`false`, a number is written into `buf` (cleared first) in Rust's shortest decimal
    /// form and borrowed from there. `None` for null.
    pub fn category<'b>(self, buf: &'b mut String) -> Option<&'b str>
    where
        'a: 'b,
    {
        use std::fmt::Write as _;
        match self {
            ValueView::Bool(true) => Some("true"),
            ValueView::Bool(false) => Some("false"),
            ValueView::Number(x) => {
                buf.clear();
                if x.fract() == 0.0
                    && x.abs() < INTEGER_EXACT
                    && !(x == 0.0 && x.is_sign_negative())
                {
                    // A class label: the same digits as `{x}` (no exponent, no `.0`) through
                    // itoa, without the float formatter (about a tenth of the cost).
                    buf.push_str(itoa::Buffer::new().format(x as i64));
                } else {
                    // Writing to a String cannot fail.
                    let _ = write!(buf, "{x}");
                }
                Some(buf.as_str())
            }
            ValueView::Text(s) => Some(s),
            ValueView::Null => None,
        }
    }
}

/// Event time in milliseconds since the Unix epoch, UTC. Deserialises from an RFC 3339 string or an
/// integer of epoch milliseconds; serialises as RFC 3339 with milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventTime(pub i64);

impl EventTime {
    /// As a UTC date-time (`None` outside chrono's range).
    pub fn to_utc(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.0)
    }
}

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.to_utc() {
            Some(t) => s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            None => s.serialize_i64(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = EventTime;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp string or integer epoch milliseconds")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EventTime, E> {
                Ok(EventTime(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EventTime, E> {
                i64::try_from(v)
                    .map(EventTime)
                    .map_err(|_| E::custom("epoch milliseconds out of range"))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EventTime, E> {
                if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
                    Ok(EventTime(v as i64))
                } else {
                    Err(E::custom(format!("{v} is not integer epoch milliseconds")))
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<EventTime, E> {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| EventTime(t.timestamp_millis()))
                    .map_err(|e| E::custom(format!("`{v}` is not an RFC 3339 timestamp: {e}")))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for EventTime {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EventTime".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Event time: an RFC 3339 string or integer milliseconds since the Unix epoch.",
            "oneOf": [
                {"type": "string", "format": "date-time"},
                {"type": "integer"}
            ]
        })
    }
}

/// Why an event is invalid. Each variant maps to a bounded metric label ([`Self::reason`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidEvent {
    /// `model` is empty or too long.
    #[error("field `model` must be 1 to {MAX_NAME_LEN} bytes")]
    Model,
    /// A name field is too long.
    #[error("field `{0}` is longer than {MAX_NAME_LEN} bytes")]
    TooLong(&'static str),
    /// `confidence` is outside [0, 1] or not finite.
    #[error("field `confidence` must be a number in [0, 1], got {0}")]
    Confidence(f64),
    /// `latency_ms` is negative or not finite.
    #[error("field `latency_ms` must be a finite number >= 0, got {0}")]
    Latency(f64),
    /// A feature has an empty name or a reserved one.
    #[error(
        "feature name `{0}` is empty or reserved (reserved: timestamp, model, model_version, variant, request_id, prediction, confidence, latency_ms)"
    )]
    FeatureName(String),
    /// A numeric feature value is not finite.
    #[error("feature `{0}` is not a finite number")]
    FeatureNotFinite(String),
    /// More features than [`MAX_FEATURES_PER_EVENT`].
    #[error("the event has more than {MAX_FEATURES_PER_EVENT} features")]
    TooManyFeatures,
}

impl InvalidEvent {
    /// Bounded label for `driftwatch_events_dead_lettered_total{reason}` and decode-error metrics.
    pub fn reason(&self) -> DecodeReason {
        match self {
            InvalidEvent::Model => DecodeReason::InvalidModel,
            InvalidEvent::TooLong(_) => DecodeReason::FieldTooLong,
            InvalidEvent::Confidence(_) => DecodeReason::InvalidConfidence,
            InvalidEvent::Latency(_) => DecodeReason::InvalidLatency,
            InvalidEvent::FeatureName(_) => DecodeReason::InvalidFeatureName,
            InvalidEvent::FeatureNotFinite(_) => DecodeReason::InvalidFeatureValue,
            InvalidEvent::TooManyFeatures => DecodeReason::TooManyFeatures,
        }
    }
}

/// The fields of an event other than its features, borrowed from a [`PredictionEvent`] or from a
/// message's bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventFields<'a> {
    /// Event time, epoch milliseconds.
    pub timestamp: i64,
    /// The model's name.
    pub model: &'a str,
    /// The model version.
    pub model_version: Option<&'a str>,
    /// The deployment variant.
    pub variant: Variant,
    /// The request's id.
    pub request_id: Option<&'a str>,
    /// The model's output.
    pub prediction: Option<ValueView<'a>>,
    /// The model's confidence, in [0, 1].
    pub confidence: Option<f64>,
    /// Time the model took to answer, in milliseconds.
    pub latency_ms: Option<f64>,
}

/// [`PredictionEvent::validate`] on borrowed parts: the same rules in the same order, so a
/// borrowed event and its owned copy are judged alike.
///
/// # Errors
/// The first rule broken.
pub fn validate_event<'a>(
    fields: &EventFields<'_>,
    features: impl IntoIterator<Item = (&'a str, ValueView<'a>)>,
) -> Result<(), InvalidEvent> {
    if fields.model.is_empty() || fields.model.len() > MAX_NAME_LEN {
        return Err(InvalidEvent::Model);
    }
    if fields.model_version.is_some_and(|v| v.len() > MAX_NAME_LEN) {
        return Err(InvalidEvent::TooLong("model_version"));
    }
    if fields.request_id.is_some_and(|v| v.len() > MAX_NAME_LEN) {
        return Err(InvalidEvent::TooLong("request_id"));
    }
    if let Some(c) = fields.confidence
        && !(0.0..=1.0).contains(&c)
    {
        return Err(InvalidEvent::Confidence(c));
    }
    if let Some(l) = fields.latency_ms
        && !(l.is_finite() && l >= 0.0)
    {
        return Err(InvalidEvent::Latency(l));
    }
    for (i, (name, value)) in features.into_iter().enumerate() {
        if i == MAX_FEATURES_PER_EVENT {
            return Err(InvalidEvent::TooManyFeatures);
        }
        if name.is_empty() || RESERVED_COLUMNS.contains(&name) {
            return Err(InvalidEvent::FeatureName(name.to_string()));
        }
        if let ValueView::Number(x) = value
            && !x.is_finite()
        {
            return Err(InvalidEvent::FeatureNotFinite(name.to_string()));
        }
    }
    Ok(())
}

impl PredictionEvent {
    /// Checks the rules JSON Schema cannot express well: name lengths, confidence in [0, 1],
    /// non-negative finite latency, feature names.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        validate_event(&self.fields(), self.feature_views())
    }

    /// The fields other than the features, borrowed.
    pub fn fields(&self) -> EventFields<'_> {
        EventFields {
            timestamp: self.timestamp.0,
            model: &self.model,
            model_version: self.model_version.as_deref(),
            variant: self.variant,
            request_id: self.request_id.as_deref(),
            prediction: self.prediction.as_ref().map(FeatureValue::view),
            confidence: self.confidence,
            latency_ms: self.latency_ms,
        }
    }

    /// The features borrowed, sorted by name (each name once).
    pub fn feature_views(&self) -> impl Iterator<Item = (&str, ValueView<'_>)> {
        self.features.iter().map(|(n, v)| (n.as_str(), v.view()))
    }

    /// The JSON Schema of an event, pretty-printed.
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(PredictionEvent);
        serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Issue 19, item 1: the number of features per event is bounded (each becomes a column of a
    /// discovered model's batches).
    #[test]
    fn more_than_the_feature_limit_is_an_invalid_event() {
        let features = |n: usize| {
            (0..n)
                .map(|i| format!("\"f{i}\": {i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let event = |n: usize| {
            serde_json::from_str::<PredictionEvent>(&format!(
                r#"{{"timestamp": 1, "model": "m", "features": {{{}}}}}"#,
                features(n)
            ))
            .unwrap()
        };
        assert_eq!(event(MAX_FEATURES_PER_EVENT).validate(), Ok(()));
        let err = event(MAX_FEATURES_PER_EVENT + 1).validate().unwrap_err();
        assert_eq!(err, InvalidEvent::TooManyFeatures);
        assert_eq!(err.reason().as_str(), "too_many_features");
    }

    proptest! {
        /// The integer fast path of [`ValueView::category`] writes what Rust's float formatter
        /// writes, for any float (integers near 2^53, negative zero, fractions, huge values).
        #[test]
        fn number_categories_are_rusts_float_display(
            x in prop_oneof![
                any::<f64>(),
                (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
                (-(1i64 << 54)..(1i64 << 54)).prop_map(|i| i as f64),
                Just(-0.0),
                Just(INTEGER_EXACT),
                Just(-INTEGER_EXACT),
                Just(INTEGER_EXACT - 1.0),
                Just(f64::INFINITY),
                Just(f64::NAN),
            ]
        ) {
            let mut buf = String::new();
            let display = format!("{x}");
            prop_assert_eq!(ValueView::Number(x).category(&mut buf), Some(display.as_str()));
        }
    }

    #[test]
    fn class_labels_and_negative_zero_are_written_as_rust_writes_them() {
        let mut buf = String::new();
        for (x, text) in [
            (1.0, "1"),
            (-3.0, "-3"),
            (0.0, "0"),
            (-0.0, "-0"),
            (2.5, "2.5"),
            (1e20, "100000000000000000000"),
        ] {
            assert_eq!(ValueView::Number(x).category(&mut buf), Some(text), "{x}");
        }
    }

    #[test]
    fn feature_values_take_their_json_type() {
        let v: BTreeMap<String, FeatureValue> = serde_json::from_str(
            r#"{"b": true, "i": -2, "u": 18446744073709551615, "f": 1.5, "t": "x", "n": null}"#,
        )
        .unwrap();
        assert_eq!(v["b"], FeatureValue::Bool(true));
        assert_eq!(v["i"], FeatureValue::Number(-2.0));
        assert_eq!(v["u"], FeatureValue::Number(18446744073709551615.0));
        assert_eq!(v["f"], FeatureValue::Number(1.5));
        assert_eq!(v["t"], FeatureValue::Text("x".into()));
        assert_eq!(v["n"], FeatureValue::Null);
        for bad in [r#"{"a": [1]}"#, r#"{"a": {"b": 1}}"#] {
            let err = serde_json::from_str::<BTreeMap<String, FeatureValue>>(bad).unwrap_err();
            assert!(
                err.to_string()
                    .contains("expected a boolean, a number, a string or null"),
                "{err}"
            );
        }
        // Round trip: serialised as the bare JSON value.
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(
            serde_json::from_str::<BTreeMap<String, FeatureValue>>(&text).unwrap(),
            v
        );
    }

    #[test]
    fn design_example_parses() {
        let e: PredictionEvent = serde_json::from_str(
            r#"{"timestamp": "2026-11-29T17:00:00.123Z", "model": "car-loan", "model_version": "v1.3.0",
             "variant": "canary", "request_id": "9f1c", "features": {"car_value": 39811.0,
             "salary_range": "40K - 60K €", "repaid_loan_on_prev_car": false, "gone": null}, "prediction": 1,
             "confidence": 0.99, "latency_ms": 41.2, "extra": "ignored"}"#,
        )
        .unwrap();
        assert_eq!(
            e.timestamp.to_utc().unwrap().to_rfc3339(),
            "2026-11-29T17:00:00.123+00:00"
        );
        assert_eq!(e.variant, Variant::Canary);
        assert_eq!(e.features["car_value"], FeatureValue::Number(39811.0));
        assert_eq!(
            e.features["repaid_loan_on_prev_car"]
                .as_category()
                .as_deref(),
            Some("false")
        );
        assert_eq!(e.features["gone"], FeatureValue::Null);
        assert_eq!(
            e.prediction
                .as_ref()
                .and_then(FeatureValue::as_category)
                .as_deref(),
            Some("1")
        );
        e.validate().unwrap();
    }

    #[test]
    fn epoch_millis_and_defaults() {
        let e: PredictionEvent =
            serde_json::from_str(r#"{"timestamp": 1764435600123, "model": "m", "features": {}}"#)
                .unwrap();
        assert_eq!(e.timestamp, EventTime(1_764_435_600_123));
        assert_eq!(e.variant, Variant::Stable);
        let back: PredictionEvent =
            serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn missing_required_field_is_named() {
        let err = serde_json::from_str::<PredictionEvent>(r#"{"timestamp": 1, "features": {}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("missing field `model`"), "{err}");
        let err = serde_json::from_str::<PredictionEvent>(
            r#"{"timestamp": "01-09-2018", "model": "m", "features": {}}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("not an RFC 3339 timestamp"),
            "{err}"
        );
    }

    #[test]
    fn validation_rules() {
        let mut e: PredictionEvent =
            serde_json::from_str(r#"{"timestamp": 1, "model": "m", "features": {"x": 1}}"#)
                .unwrap();
        e.confidence = Some(1.5);
        assert_eq!(
            e.validate().unwrap_err().reason().as_str(),
            "invalid_confidence"
        );
        e.confidence = Some(0.5);
        e.latency_ms = Some(-1.0);
        assert_eq!(
            e.validate().unwrap_err().reason().as_str(),
            "invalid_latency"
        );
        e.latency_ms = None;
        e.features.insert("model".into(), FeatureValue::Number(1.0));
        assert_eq!(
            e.validate().unwrap_err(),
            InvalidEvent::FeatureName("model".into())
        );
    }
}
