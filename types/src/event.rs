//! The Arrow layout of a batch of prediction events: the contract between the collector (which
//! builds the batches) and the analyzer's windows (which read them).
//!
//! Fixed columns come first, then one column per feature: numeric features as `Float64`,
//! categorical ones (strings and bools) as dictionary-encoded strings (`Dictionary(Int32, Utf8)`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

/// How a feature is compared with its reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// Binned by value ranges at reference quantiles; KS and Wasserstein on the raw sample.
    Numeric,
    /// Counted per category, with an "unseen" bucket for categories the reference never had.
    Categorical,
}

impl fmt::Display for FeatureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FeatureKind::Numeric => "numeric",
            FeatureKind::Categorical => "categorical",
        })
    }
}

impl FromStr for FeatureKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "numeric" | "number" | "continuous" => Ok(FeatureKind::Numeric),
            "categorical" | "category" | "string" | "bool" => Ok(FeatureKind::Categorical),
            other => Err(format!(
                "unknown feature kind `{other}` (expected numeric or categorical)"
            )),
        }
    }
}

/// Event time, `Timestamp(Millisecond, "UTC")`, never null.
pub const TIMESTAMP: &str = "timestamp";
/// Model name, `Utf8`, never null.
pub const MODEL: &str = "model";
/// Model version, `Utf8`, null when the event had none.
pub const MODEL_VERSION: &str = "model_version";
/// Deployment variant (`stable` or `canary`), `Utf8`, never null.
pub const VARIANT: &str = "variant";
/// Request id, `Utf8`, nullable.
pub const REQUEST_ID: &str = "request_id";
/// The prediction in text form (class label or score), `Utf8`, nullable.
pub const PREDICTION: &str = "prediction";
/// Confidence in [0, 1], `Float64`, nullable.
pub const CONFIDENCE: &str = "confidence";
/// Latency in milliseconds, `Float64`, nullable.
pub const LATENCY_MS: &str = "latency_ms";

/// The fixed columns, in order; feature names may not reuse them.
pub const FIXED_COLUMNS: [&str; 8] = [
    TIMESTAMP,
    MODEL,
    MODEL_VERSION,
    VARIANT,
    REQUEST_ID,
    PREDICTION,
    CONFIDENCE,
    LATENCY_MS,
];

/// The Arrow type of a feature column.
pub fn feature_type(kind: FeatureKind) -> DataType {
    match kind {
        FeatureKind::Numeric => DataType::Float64,
        FeatureKind::Categorical => {
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
        }
    }
}

/// The schema of an event batch with these features (in this order).
pub fn event_schema(features: &[(String, FeatureKind)]) -> SchemaRef {
    let mut fields = vec![
        Field::new(
            TIMESTAMP,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new(MODEL, DataType::Utf8, false),
        Field::new(MODEL_VERSION, DataType::Utf8, true),
        Field::new(VARIANT, DataType::Utf8, false),
        Field::new(REQUEST_ID, DataType::Utf8, true),
        Field::new(PREDICTION, DataType::Utf8, true),
        Field::new(CONFIDENCE, DataType::Float64, true),
        Field::new(LATENCY_MS, DataType::Float64, true),
    ];
    fields.extend(
        features
            .iter()
            .map(|(name, kind)| Field::new(name, feature_type(*kind), true)),
    );
    Arc::new(Schema::new(fields))
}
