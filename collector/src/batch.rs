//! Prediction events to Arrow: one [`RecordBatch`] per model with the layout of
//! [`types::event`].

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, Float64Builder, RecordBatch, StringBuilder, StringDictionaryBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{Int32Type, SchemaRef};
use arrow::error::ArrowError;
use types::FeatureKind;
use types::event::{FIXED_COLUMNS, event_schema};

use crate::event::{EventFields, FeatureValue, PredictionEvent, ValueView};

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
    fn append(&mut self, value: ValueView<'_>, buf: &mut String) -> Result<bool, ArrowError> {
        match self {
            FeatureColumn::Numeric(b) => match value {
                ValueView::Number(x) => b.append_value(x),
                ValueView::Null => b.append_null(),
                ValueView::Bool(_) | ValueView::Text(_) => {
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

    fn new(kind: FeatureKind, capacity: usize) -> Self {
        match kind {
            FeatureKind::Numeric => FeatureColumn::Numeric(Float64Builder::with_capacity(capacity)),
            FeatureKind::Categorical => {
                FeatureColumn::Categorical(StringDictionaryBuilder::<Int32Type>::with_capacity(
                    capacity, 64, 1024,
                ))
            }
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            FeatureColumn::Numeric(b) => Arc::new(b.finish()),
            FeatureColumn::Categorical(b) => Arc::new(b.finish()),
        }
    }
}

/// Builds the record batch of `events` (all of one model) for `schema`: a [`BatchBuilder`] fed
/// every event.
///
/// # Errors
/// Arrow errors only (never for data content).
pub fn to_record_batch(
    events: &[PredictionEvent],
    schema: &FeatureSchema,
) -> Result<(RecordBatch, BatchStats), ArrowError> {
    let mut builder = BatchBuilder::new(schema, events.len());
    for e in events {
        builder.append(&e.fields(), e.feature_views())?;
    }
    builder.finish(0)
}

/// One model's record batch in the making: events are appended as they arrive (owned or borrowed
/// straight from a message), so no event is kept whole until its batch is cut.
///
/// A value of the wrong type for its feature (a string in a numeric feature) is stored as missing
/// and counted in [`BatchStats::mismatched`]: one bad feature never drops the event or hides the
/// other features. A feature the schema does not have is counted in
/// [`BatchStats::unknown_features`] and ignored.
///
/// An event's features arrive sorted by name and are merge-joined with the schema's features
/// sorted by name, so a value costs one name comparison or two, and no category is copied into a
/// `String` of its own.
#[derive(Debug)]
pub struct BatchBuilder {
    schema: FeatureSchema,
    /// Schema features by name, with their column.
    by_name: Vec<(String, usize)>,
    timestamp: TimestampMillisecondBuilder,
    model: StringBuilder,
    version: StringBuilder,
    variant: StringBuilder,
    request_id: StringBuilder,
    prediction: StringBuilder,
    confidence: Float64Builder,
    latency: Float64Builder,
    columns: Vec<FeatureColumn>,
    mismatched: Vec<u64>,
    unknown_features: u64,
    rows: usize,
    buf: String,
}

impl std::fmt::Debug for FeatureColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FeatureColumn::Numeric(b) => write!(f, "Numeric({} rows)", b.len()),
            FeatureColumn::Categorical(b) => write!(f, "Categorical({} rows)", b.len()),
        }
    }
}

impl BatchBuilder {
    /// An empty batch for `schema`, with room for `capacity` events.
    pub fn new(schema: &FeatureSchema, capacity: usize) -> Self {
        let n = capacity;
        let mut by_name: Vec<(String, usize)> = schema
            .features
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), i))
            .collect();
        by_name.sort_unstable();
        Self {
            schema: schema.clone(),
            by_name,
            timestamp: TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC"),
            model: StringBuilder::with_capacity(n, n * 8),
            version: StringBuilder::with_capacity(n, n * 8),
            variant: StringBuilder::with_capacity(n, n * 6),
            request_id: StringBuilder::with_capacity(n, n * 16),
            prediction: StringBuilder::with_capacity(n, n * 4),
            confidence: Float64Builder::with_capacity(n),
            latency: Float64Builder::with_capacity(n),
            columns: schema
                .features
                .iter()
                .map(|(_, kind)| FeatureColumn::new(*kind, n))
                .collect(),
            mismatched: vec![0; schema.features.len()],
            unknown_features: 0,
            rows: 0,
            buf: String::new(),
        }
    }

    /// Events appended since the last [`Self::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no event was appended since the last [`Self::finish`].
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Events the columns have room for before they grow.
    pub fn capacity(&self) -> usize {
        self.timestamp.capacity()
    }

    /// The schema the batch is built for.
    pub fn schema(&self) -> &FeatureSchema {
        &self.schema
    }

    /// Appends one event: its fixed fields and its features, which must come sorted by name with
    /// each name once (as a `BTreeMap` iterates, or [`crate::decode::json::EventRef`] gives them).
    ///
    /// # Errors
    /// Arrow errors only (a dictionary past `i32::MAX` categories); the batch is then unusable.
    pub fn append<'v>(
        &mut self,
        fields: &EventFields<'_>,
        features: impl IntoIterator<Item = (&'v str, ValueView<'v>)>,
    ) -> Result<(), ArrowError> {
        self.timestamp.append_value(fields.timestamp);
        self.model.append_value(fields.model);
        self.version.append_option(fields.model_version);
        self.variant.append_value(fields.variant.as_str());
        self.request_id.append_option(fields.request_id);
        self.prediction
            .append_option(fields.prediction.and_then(|p| p.category(&mut self.buf)));
        self.confidence.append_option(fields.confidence);
        self.latency.append_option(fields.latency_ms);
        let row = self.rows;
        let mut wanted = self.by_name.iter().peekable();
        for (name, value) in features {
            // Skip schema features that sort before this name (missing from the event).
            while wanted.next_if(|(w, _)| w.as_str() < name).is_some() {}
            match wanted.next_if(|(w, _)| w.as_str() == name) {
                Some(&(_, i)) => {
                    if !self.columns[i].append(value, &mut self.buf)? {
                        self.mismatched[i] += 1;
                    }
                }
                None => self.unknown_features += 1,
            }
        }
        // Features the event does not have are missing.
        for c in &mut self.columns {
            if c.len() == row {
                c.append_null();
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The record batch of the events appended so far, and what did not fit the schema; the
    /// builder is empty afterwards, with room for `next_capacity` events.
    ///
    /// # Errors
    /// Arrow errors only (never for data content).
    pub fn finish(
        &mut self,
        next_capacity: usize,
    ) -> Result<(RecordBatch, BatchStats), ArrowError> {
        let next = BatchBuilder::new(&self.schema, next_capacity);
        let mut done = std::mem::replace(self, next);
        let mut stats = BatchStats {
            unknown_features: done.unknown_features,
            ..BatchStats::default()
        };
        for ((name, _), bad) in done.schema.features.iter().zip(&done.mismatched) {
            if *bad > 0 {
                stats.mismatched.insert(name.clone(), *bad);
            }
        }
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(done.timestamp.finish()),
            Arc::new(done.model.finish()),
            Arc::new(done.version.finish()),
            Arc::new(done.variant.finish()),
            Arc::new(done.request_id.finish()),
            Arc::new(done.prediction.finish()),
            Arc::new(done.confidence.finish()),
            Arc::new(done.latency.finish()),
        ];
        arrays.extend(done.columns.iter_mut().map(FeatureColumn::finish));
        let batch = RecordBatch::try_new(done.schema.schema(), arrays)?;
        Ok((batch, stats))
    }
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
