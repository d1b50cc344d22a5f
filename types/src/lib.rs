//! The plain types every driftwatch crate shares, and nothing heavy: serde, chrono and
//! arrow-schema only.
//!
//! - [`event`]: the Arrow layout of a batch of prediction events ([`event::event_schema`]) and
//!   [`FeatureKind`]; the collector builds such batches, the analyzer's windows read them.
//! - [`report`]: what a closed event-time window reports ([`WindowReport`], keyed by
//!   [`SeriesKey`]); the analyzer produces them, the exporter, rule engine and status page consume
//!   them.
//! - [`drift`]: the drift statistics ([`Method`]) and one feature's result in one window
//!   ([`FeatureDrift`]).
//! - [`alert`]: alert transitions as the controller sees them ([`AlertTrigger`]).
//! - [`offsets`]: source positions (Kafka partition offsets) as they cross the checkpoint.
//! - [`names`]: metric and alert names, written once.
//! - [`auth`]: the credentials an endpoint group requires (configuration only).
//! - [`canary`]: per-variant measurements of a canary step ([`canary::CanarySummary`]), as the
//!   service serves them to the controller.
//!
//! The key design decision is that the crates talk through these values and Arrow record batches,
//! never through each other's internals, so that the collector, alerting and the controller build
//! without DataFusion and the controller without the alerting crate.
//!
//! ```
//! use types::{Method, SeriesKey};
//! let key = SeriesKey::new("car-loan", "v1", "canary");
//! assert_eq!(key.variant, "canary");
//! assert_eq!("js".parse::<Method>().unwrap(), Method::JensenShannon);
//! assert_eq!(Method::Ks.default_threshold(), Some(0.05));
//! // Raw Wasserstein is in the feature's unit: no default threshold.
//! assert_eq!(Method::Wasserstein.default_threshold(), None);
//! ```

#![warn(missing_docs)]

pub mod alert;
pub mod auth;
pub mod canary;
pub mod drift;
pub mod event;
pub mod hash;
pub mod names;
pub mod offsets;
pub mod report;

pub use alert::{AlertStatus, AlertTrigger, TriggerSource, fingerprint};
pub use drift::{
    DataQuality, Direction, FeatureDrift, FeatureStatus, Method, MethodResult, NewCategory,
    Threshold, ThresholdSource, UnknownMethod,
};
pub use event::FeatureKind;
pub use offsets::{PartitionPosition, SourceOffsets, TopicPartition};
pub use report::{ClosedWindow, Quantiles, SeriesKey, WindowReport};
