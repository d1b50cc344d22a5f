//! Prediction events to Arrow: one [`RecordBatch`] per model with the layout of
//! [`analyzer::event_schema`].

use std::collections::BTreeMap;
use std::sync::Arc;

use analyzer::FeatureKind;
use analyzer::event_schema::{FIXED_COLUMNS, event_schema};
use analyzer::profile::ReferenceProfile;
use arrow::array::{
    ArrayBuilder, ArrayRef, Float64Builder, RecordBatch, StringBuilder, StringDictionaryBuilder,
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

/// The column builder of one schema feature.
enum FeatureColumn {
    Numeric(Float64Builder),
    Categorical(StringDictionaryBuilder<Int32Type>),
}

impl FeatureColumn {
    fn len(&self) -> usize {
        match self {
            FeatureColumn::Numeric(b) => b.len(),
            FeatureColumn::Categorical(b) => b.len(),
        }
    }

    fn append_null(&mut self) {
        match self {
            FeatureColumn::Numeric(b) => b.append_null(),
            FeatureColumn::Categorical(b) => b.append_null(),
        }
    }

    /// Appends `value`; `false` when it has the wrong type for the column (stored as missing).
    fn append(&mut self, value: &FeatureValue, buf: &mut String) -> Result<bool, ArrowError> {
        match self {
            FeatureColumn::Numeric(b) => match value {
                FeatureValue::Number(x) => b.append_value(*x),
                FeatureValue::Null => b.append_null(),
                FeatureValue::Bool(_) | FeatureValue::Text(_) => {
                    b.append_null();
                    return Ok(false);
                }
            },
            FeatureColumn::Categorical(b) => match value.category(buf) {
                Some(s) => {
                    b.append(s)?;
                }
                None => b.append_null(),
            },
        }
        Ok(true)
    }

    fn finish(self) -> ArrayRef {
        match self {
            FeatureColumn::Numeric(mut b) => Arc::new(b.finish()),
            FeatureColumn::Categorical(mut b) => Arc::new(b.finish()),
        }
    }
}

/// Builds the record batch of `events` (all of one model) for `schema`.
///
/// A value of the wrong type for its feature (a string in a numeric feature) is stored as missing
/// and counted in [`BatchStats::mismatched`]: one bad feature never drops the event or hides the
/// other features.
///
/// One pass over the events: each event's features (a map sorted by name) are merge-joined with
/// the schema's features sorted by name, so a value costs one name comparison or two, and no
/// category is copied into a `String` of its own.
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
    let mut buf = String::new();
    for e in events {
        timestamp.append_value(e.timestamp.0);
        model.append_value(&e.model);
        version.append_option(e.model_version.as_deref());
        variant.append_value(e.variant.as_str());
        request_id.append_option(e.request_id.as_deref());
        prediction.append_option(e.prediction.as_ref().and_then(|p| p.category(&mut buf)));
        confidence.append_option(e.confidence);
        latency.append_option(e.latency_ms);
    }
    let mut fixed: Vec<ArrayRef> = vec![
        Arc::new(timestamp.finish()),
        Arc::new(model.finish()),
        Arc::new(version.finish()),
        Arc::new(variant.finish()),
        Arc::new(request_id.finish()),
        Arc::new(prediction.finish()),
        Arc::new(confidence.finish()),
        Arc::new(latency.finish()),
    ];

    let mut columns: Vec<FeatureColumn> = schema
        .features
        .iter()
        .map(|(_, kind)| match kind {
            FeatureKind::Numeric => FeatureColumn::Numeric(Float64Builder::with_capacity(n)),
            FeatureKind::Categorical => {
                FeatureColumn::Categorical(StringDictionaryBuilder::<Int32Type>::new())
            }
        })
        .collect();
    let mut mismatched = vec![0u64; columns.len()];
    // Schema features by name (the order of an event's `BTreeMap`), with their column.
    let mut by_name: Vec<(&str, usize)> = schema
        .features
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.as_str(), i))
        .collect();
    by_name.sort_unstable();
    for (row, e) in events.iter().enumerate() {
        let mut wanted = by_name.iter().peekable();
        for (name, value) in &e.features {
            // Skip schema features that sort before this name (missing from the event).
            while wanted.next_if(|(w, _)| *w < name.as_str()).is_some() {}
            match wanted.next_if(|(w, _)| *w == name.as_str()) {
                Some(&(_, i)) => {
                    if !columns[i].append(value, &mut buf)? {
                        mismatched[i] += 1;
                    }
                }
                None => stats.unknown_features += 1,
            }
        }
        // Features the event does not have are missing.
        for c in &mut columns {
            if c.len() == row {
                c.append_null();
            }
        }
    }
    for ((name, _), bad) in schema.features.iter().zip(mismatched) {
        if bad > 0 {
            stats.mismatched.insert(name.clone(), bad);
        }
    }
    fixed.extend(columns.into_iter().map(FeatureColumn::finish));
    let batch = RecordBatch::try_new(schema.schema(), fixed)?;
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
    fn merge_join_fills_missing_unknown_and_mismatched_features() {
        // Schema order differs from name order; event names sort between and after schema names.
        let events: Vec<PredictionEvent> = [
            r#"{"timestamp": 1, "model": "m", "features": {"a": 1, "c": "x", "e": 2}}"#,
            r#"{"timestamp": 2, "model": "m", "features": {"d": true}}"#,
            r#"{"timestamp": 3, "model": "m", "features": {}}"#,
            r#"{"timestamp": 4, "model": "m", "features": {"b": "oops", "d": 3.5, "z": null}}"#,
        ]
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
        let schema = FeatureSchema::new(vec![
            ("b".into(), FeatureKind::Numeric),
            ("d".into(), FeatureKind::Categorical),
            ("a".into(), FeatureKind::Numeric),
        ]);
        let (batch, stats) = to_record_batch(&events, &schema).unwrap();
        let a = batch
            .column_by_name("a")
            .unwrap()
            .as_primitive::<Float64Type>();
        assert_eq!(
            (0..4)
                .map(|i| a.is_valid(i).then(|| a.value(i)))
                .collect::<Vec<_>>(),
            [Some(1.0), None, None, None]
        );
        assert_eq!(batch.column_by_name("b").unwrap().null_count(), 4);
        let d = arrow::compute::cast(batch.column_by_name("d").unwrap(), &DataType::Utf8).unwrap();
        let d = d.as_string::<i32>();
        assert_eq!(
            (0..4)
                .map(|i| d.is_valid(i).then(|| d.value(i)))
                .collect::<Vec<_>>(),
            [None, Some("true"), None, Some("3.5")]
        );
        assert_eq!(stats.mismatched, BTreeMap::from([("b".to_string(), 1)]));
        // "c", "e" and "z" are not in the schema.
        assert_eq!(stats.unknown_features, 3);
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
