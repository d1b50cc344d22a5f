//! The label sets of the exporter's families (see "Bounded labels" in the module docs), their
//! construction from a [`SeriesKey`], and the index of the label sets each series currently has,
//! which the removal of stale label sets and the series TTL work on.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use types::report::SeriesKey;

telemetry::label_values! {
    /// Which field held a rejected value in `driftwatch_invalid_values_total{field}`.
    pub enum InvalidField {
        /// A NaN or infinite latency.
        Latency => "latency",
        /// A NaN or infinite confidence.
        Confidence => "confidence",
        /// A feature value of the wrong type.
        Feature => "feature",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ModelLabels {
    model: String,
    version: String,
    variant: String,
}

impl From<&SeriesKey> for ModelLabels {
    fn from(k: &SeriesKey) -> Self {
        Self {
            model: k.model.clone(),
            version: k.version.clone(),
            variant: k.variant.clone(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct FeatureLabels {
    model: String,
    version: String,
    variant: String,
    feature: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CustomMetricLabels {
    pub(super) model: String,
    pub(super) version: String,
    pub(super) variant: String,
    pub(super) metric: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DriftLabels {
    pub(super) model: String,
    pub(super) version: String,
    pub(super) variant: String,
    pub(super) feature: String,
    pub(super) method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct FieldLabel {
    pub(super) field: InvalidField,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ModelOnlyLabel {
    pub(super) model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct VersionLabel {
    pub(super) version: &'static str,
}

pub(super) fn feature_labels(key: &SeriesKey, feature: &str) -> FeatureLabels {
    FeatureLabels {
        model: key.model.clone(),
        version: key.version.clone(),
        variant: key.variant.clone(),
        feature: feature.to_string(),
    }
}

/// The label sets one series currently has in the per-feature families, so that the ones a new
/// window no longer has, and all of them at expiry, can be removed.
#[derive(Debug, Default)]
pub(super) struct SeriesLabelSets {
    pub(super) last_update: Option<Instant>,
    pub(super) drift: HashSet<DriftLabels>,
    pub(super) p_value: HashSet<DriftLabels>,
    pub(super) threshold: HashSet<DriftLabels>,
    pub(super) verdict: HashSet<FeatureLabels>,
    pub(super) missing: HashSet<FeatureLabels>,
    pub(super) surge: HashSet<FeatureLabels>,
    pub(super) out_of_reference: HashSet<FeatureLabels>,
    pub(super) custom: HashSet<CustomMetricLabels>,
}

#[derive(Debug, Default)]
pub(super) struct SeriesIndex {
    pub(super) series: HashMap<SeriesKey, SeriesLabelSets>,
    pub(super) late_models: HashMap<String, Instant>,
}
