//! The streaming runtime of `driftwatch serve`, as a library.
//!
//! [`Source`]s (Kafka, HTTP ingest) decode events into Arrow batches and send them, with the
//! offsets they hold, into one channel. One [`Pipeline`] task owns the event-time windows and
//! keeps one order, the order that makes a restart lose and double-count nothing:
//!
//! 1. **absorb** a batch into its windows, and acknowledge its offsets;
//! 2. **close** the windows the watermark has passed and hand each to the [`WindowSink`]s
//!    (exporter, rule engine, status page, the embedding program's hook), in order;
//! 3. **checkpoint** windows, history and the offsets they cover to disk;
//! 4. **commit**: only then does each source learn that those offsets are durable (the Kafka
//!    source commits them to the group; the HTTP write-ahead log deletes the segments below).
//!
//! A crash after 3 and before 4 re-reads the events after the committed offsets at the next
//! start; those the checkpoint covers are skipped by offset ([`collector::offsets::Observed::Skip`]),
//! so each event is counted once. `tests/order.rs` runs that crash with fake sources and sinks.

#![warn(missing_docs)]

pub mod error;
pub mod metrics;
pub mod pipeline;
pub mod sink;
pub mod source;

pub use error::RuntimeError;
pub use metrics::RuntimeMetrics;
pub use pipeline::{CheckpointSettings, Pipeline, Restored, RunOptions};
pub use sink::{ExporterSink, RuleSink, WindowOutcome, WindowSink};
pub use source::{HttpSource, KafkaInput, Source};
