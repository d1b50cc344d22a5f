//! driftwatch's collector: turns what serving pods send (prediction events as JSON, Open Inference
//! Protocol v2 pairs, KServe CloudEvents) into Arrow record batches for the analyzer.
//!
//! The key design decision is that batches are typed per model by the model's reference profile:
//! numeric features become `Float64` columns and categorical ones dictionary-encoded strings, so a
//! value of the wrong type is caught at the edge, stored as missing and counted, and never stops
//! the event or hides its other features.

#![warn(missing_docs)]

pub mod auth;
pub mod batch;
pub mod batcher;
pub mod decode;
pub mod event;
pub mod http;
pub mod kafka;
pub mod offsets;
pub mod replay;
mod response;
pub mod telemetry;
pub mod wal;

pub use batch::{BatchStats, FeatureSchema, to_record_batch};
pub use event::{EventTime, FeatureValue, InvalidEvent, PredictionEvent, Variant};
