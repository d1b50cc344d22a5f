//! Prediction events to Arrow: one [`RecordBatch`] per model with the layout of
//! [`analyzer::event_schema`].

use std::collections::BTreeMap;
use std::sync::Arc;

use analyzer::FeatureKind;
use analyzer::event_schema::{FIXED_COLUMNS, event_schema};
use analyzer::profile::ReferenceProfile;
use arrow::array::{
    ArrayRef, Float64Builder, RecordBatch, StringBuilder, StringDictionaryBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{Int32Type, SchemaRef};
use arrow::error::ArrowError;

use crate::event::{FeatureValue, PredictionEvent};

/// The features of one model's batches, in column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureSchema {
    features: Vec<(String, FeatureKind)>,
    schema: SchemaRef,
}

impl FeatureSchema {
    /// A schema with these features (names that collide with fixed columns are dropped).
    pub fn new(features: Vec<(String, FeatureKind)>) -> Self {
        let features: Vec<(String, FeatureKind)> = features
            .into_iter()
            .filter(|(n, _)| !FIXED_COLUMNS.contains(&n.as_str()))
            .collect();
        let schema = event_schema(&features);
        Self { features, schema }
    }

    /// The features and kinds of a reference profile.
    pub fn from_profile(profile: &ReferenceProfile) -> Self {
        Self::new(
            profile
                .features
                .iter()
                .map(|f| (f.name().to_string(), f.kind()))
                .collect(),
        )
    }

    /// Infers kinds from the events themselves: a feature is numeric when every non-null value is
    /// a number, categorical otherwise (strings, bools). Features in sorted order.
    pub fn infer(events: &[PredictionEvent]) -> Self {
        let mut kinds: BTreeMap<&str, Option<FeatureKind>> = BTreeMap::new();
        for e in events {
            for (name, v) in &e.features {
                let slot = kinds.entry(name).or_insert(None);
                match v {
                    FeatureValue::Null => {}
                    FeatureValue::Number(_) => {
                        slot.get_or_insert(FeatureKind::Numeric);
                    }
                    FeatureValue::Bool(_) | FeatureValue::Text(_) => {
                        *slot = Some(FeatureKind::Categorical)
                    }
                }
            }
        }
        Self::new(
            kinds
                .into_iter()
                .map(|(n, k)| (n.to_string(), k.unwrap_or(FeatureKind::Numeric)))
                .collect(),
        )
    }

    /// The features and their kinds, in column order.
    pub fn features(&self) -> &[(String, FeatureKind)] {
        &self.features
    }

    /// The Arrow schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// What did not fit the schema while building a batch (the events themselves were kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Per feature, values of the wrong type (text in a numeric feature), stored as missing.
    pub mismatched: BTreeMap<String, u64>,
    /// Feature values whose feature is not in the schema (ignored).
    pub unknown_features: u64,
}

/// Builds the record batch of `events` (all of one model) for `schema`.
///
/// A value of the wrong type for its feature (a string in a numeric feature) is stored as missing
/// and counted in [`BatchStats::mismatched`]: one bad feature never drops the event or hides the
/// other features.
///
/// # Errors
/// Arrow errors only (never for data content).
pub fn to_record_batch(
    events: &[PredictionEvent],
    schema: &FeatureSchema,
) -> Result<(RecordBatch, BatchStats), ArrowError> {
    let n = events.len();
    let mut stats = BatchStats::default();
    let mut timestamp = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut model = StringBuilder::with_capacity(n, n * 8);
    let mut version = StringBuilder::with_capacity(n, n * 8);
    let mut variant = StringBuilder::with_capacity(n, n * 6);
    let mut request_id = StringBuilder::with_capacity(n, n * 16);
    let mut prediction = StringBuilder::with_capacity(n, n * 4);
    let mut confidence = Float64Builder::with_capacity(n);
    let mut latency = Float64Builder::with_capacity(n);
    for e in events {
        timestamp.append_value(e.timestamp.0);
        model.append_value(&e.model);
        version.append_option(e.model_version.as_deref());
        variant.append_value(e.variant.as_str());
        request_id.append_option(e.request_id.as_deref());
        prediction.append_option(e.prediction.as_ref().and_then(FeatureValue::as_category));
        confidence.append_option(e.confidence);
        latency.append_option(e.latency_ms);
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(timestamp.finish()),
        Arc::new(model.finish()),
        Arc::new(version.finish()),
        Arc::new(variant.finish()),
        Arc::new(request_id.finish()),
        Arc::new(prediction.finish()),
        Arc::new(confidence.finish()),
        Arc::new(latency.finish()),
    ];
    // Feature values found under a schema feature; the rest of each event's features are unknown.
    let mut known = 0u64;
    for (name, kind) in &schema.features {
        let mut bad = 0u64;
        let column: ArrayRef = match kind {
            FeatureKind::Numeric => {
                let mut b = Float64Builder::with_capacity(n);
                for e in events {
                    let value = e.features.get(name);
                    known += u64::from(value.is_some());
                    match value {
                        None | Some(FeatureValue::Null) => b.append_null(),
                        Some(FeatureValue::Number(x)) => b.append_value(*x),
                        Some(_) => {
                            bad += 1;
                            b.append_null();
                        }
                    }
                }
                Arc::new(b.finish())
            }
            FeatureKind::Categorical => {
                let mut b = StringDictionaryBuilder::<Int32Type>::new();
                for e in events {
                    let value = e.features.get(name);
                    known += u64::from(value.is_some());
                    match value.and_then(FeatureValue::as_category) {
                        Some(s) => {
                            b.append(&s)?;
                        }
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
        };
        if bad > 0 {
            stats.mismatched.insert(name.clone(), bad);
        }
        columns.push(column);
    }
    // Names are unique in both the schema and an event's map, so each found value is one key.
    let keys: u64 = events.iter().map(|e| e.features.len() as u64).sum();
    stats.unknown_features = keys.saturating_sub(known);
    let batch = RecordBatch::try_new(schema.schema(), columns)?;
    Ok((batch, stats))
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type, TimeUnit};

    use super::*;

    fn events() -> Vec<PredictionEvent> {
        [
            r#"{"timestamp": 1000, "model": "m", "model_version": "v1", "features": {"x": 1.5, "c": "a", "b": true}, "prediction": 1, "confidence": 0.9, "latency_ms": 12.0}"#,
            r#"{"timestamp": 2000, "model": "m", "variant": "canary", "features": {"x": "oops", "c": null, "b": false, "extra": 3}}"#,
        ]
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect()
    }

    #[test]
    fn typed_columns_and_mismatches() {
        let events = events();
        let schema = FeatureSchema::new(vec![
            ("x".into(), FeatureKind::Numeric),
            ("c".into(), FeatureKind::Categorical),
            ("b".into(), FeatureKind::Categorical),
        ]);
        let (batch, stats) = to_record_batch(&events, &schema).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.num_columns(), 11);
        assert_eq!(
            batch.column_by_name("timestamp").unwrap().data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
        let x = batch
            .column_by_name("x")
            .unwrap()
            .as_primitive::<Float64Type>();
        assert_eq!(x.value(0), 1.5);
        assert!(x.is_null(1));
        let b = batch.column_by_name("b").unwrap();
        assert!(matches!(b.data_type(), DataType::Dictionary(_, _)));
        let variant = batch.column_by_name("variant").unwrap().as_string::<i32>();
        assert_eq!((variant.value(0), variant.value(1)), ("stable", "canary"));
        assert_eq!(stats.mismatched, BTreeMap::from([("x".to_string(), 1)]));
        assert_eq!(stats.unknown_features, 1);
        let prediction = batch
            .column_by_name("prediction")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(prediction.value(0), "1");
        assert!(prediction.is_null(1));
    }

    #[test]
    fn inference_makes_bools_and_strings_categorical() {
        let schema = FeatureSchema::infer(&events());
        assert_eq!(
            schema.features(),
            &[
                ("b".to_string(), FeatureKind::Categorical),
                ("c".to_string(), FeatureKind::Categorical),
                ("extra".to_string(), FeatureKind::Numeric),
                ("x".to_string(), FeatureKind::Categorical),
            ]
        );
    }
}
