//! The collector's telemetry, after the workspace's conventions (the `telemetry` crate):
//!
//! - [`CollectorMetrics`], the collector's metric handles, registered by
//!   [`telemetry::Metrics::register`] (no configuration: `&()`);
//! - [`events`]: one struct per observable happening (a message consumed, an event refused, a
//!   dead letter written, a commit failed, ...), whose `emit()` logs it as the collector always
//!   has and counts it; call sites write `metrics.emit(CommitFailed { error: &e })`
//!   ([`telemetry::Emit`]). Events are the only way to update a metric;
//! - [`labels`]: the label values as enums ([`Source`], [`Half`], [`SourceErrorKind`],
//!   [`DecodeReason`], [`RejectReason`]).
//!
//! The names, labels and meanings are listed in `docs/metrics.md`. Labels are bounded: every
//! label is an enum, except `topic`/`partition` of the lag, the configured topics' partitions.

pub mod events;
pub mod labels;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use telemetry::LabelValues;

pub use labels::{DecodeReason, Half, Refusal, RejectReason, Source, SourceErrorKind};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: Source,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: DecodeReason,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectLabel {
    reason: RejectReason,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HalfLabel {
    half: Half,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: SourceErrorKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: i32,
}

/// Handles to the collector's metrics (`driftwatch_events_consumed_total{source}`,
/// `driftwatch_events_decoded_total`, `driftwatch_decode_errors_total{reason}`,
/// `driftwatch_events_dead_lettered_total{reason}`, `driftwatch_events_skipped_total{reason}`,
/// `driftwatch_unpaired_total{half}`, `driftwatch_source_errors_total{kind}`,
/// `driftwatch_consumer_lag{topic, partition}`, `driftwatch_consumer_paused`,
/// `driftwatch_http_rejected_total{reason}`). Cloning shares them; [`Default`] gives metrics
/// registered nowhere (tests). They are updated by emitting the [`events`].
#[derive(Clone, Debug, Default)]
pub struct CollectorMetrics {
    consumed: Family<SourceLabel, Counter>,
    decoded: Counter,
    decode_errors: Family<ReasonLabel, Counter>,
    dead_lettered: Family<ReasonLabel, Counter>,
    skipped: Family<ReasonLabel, Counter>,
    unpaired: Family<HalfLabel, Counter>,
    errors: Family<KindLabel, Counter>,
    lag: Family<PartitionLabels, Gauge>,
    paused: Gauge,
    rejected: Family<RejectLabel, Counter>,
}

impl telemetry::Metrics for CollectorMetrics {
    type Config = ();

    /// The collector's metrics, registered in `registry` under their documented names.
    fn register(registry: &mut Registry, _: &()) -> Self {
        let m = Self::default();
        registry.register(
            "driftwatch_events_consumed",
            "Messages or events read from a source",
            m.consumed.clone(),
        );
        registry.register(
            "driftwatch_events_decoded",
            "Prediction events decoded and valid",
            m.decoded.clone(),
        );
        registry.register(
            "driftwatch_decode_errors",
            "Events that could not be decoded or validated, by reason",
            m.decode_errors.clone(),
        );
        registry.register(
            "driftwatch_events_dead_lettered",
            "Messages written to the dead-letter topic, by reason",
            m.dead_lettered.clone(),
        );
        registry.register(
            "driftwatch_events_skipped",
            "Undecodable messages skipped (dead-letter topic disabled), by reason",
            m.skipped.clone(),
        );
        registry.register(
            "driftwatch_unpaired",
            "Request or response halves that expired without their partner",
            m.unpaired.clone(),
        );
        registry.register(
            "driftwatch_source_errors",
            "Source errors by kind (consumer, commit, dead_letter)",
            m.errors.clone(),
        );
        registry.register(
            "driftwatch_consumer_lag",
            "Messages between the absorbed position and the end of the partition",
            m.lag.clone(),
        );
        registry.register(
            "driftwatch_consumer_paused",
            "1 while the Kafka consumer is paused by backpressure",
            m.paused.clone(),
        );
        registry.register(
            "driftwatch_http_rejected",
            "HTTP ingest requests rejected, by reason",
            m.rejected.clone(),
        );
        m
    }
}

/// The setters the [`events`] use: private to this module and its children.
impl CollectorMetrics {
    fn count_consumed(&self, source: Source, n: u64) {
        self.consumed
            .get_or_create(&SourceLabel { source })
            .inc_by(n);
    }

    fn count_decoded(&self, n: u64) {
        self.decoded.inc_by(n);
    }

    fn count_decode_error(&self, reason: DecodeReason) {
        self.decode_errors
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    fn count_dead_lettered(&self, reason: DecodeReason) {
        self.dead_lettered
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    fn count_skipped(&self, reason: DecodeReason) {
        self.skipped.get_or_create(&ReasonLabel { reason }).inc();
    }

    fn count_unpaired(&self, half: Half) {
        self.unpaired.get_or_create(&HalfLabel { half }).inc();
    }

    fn count_source_error(&self, kind: SourceErrorKind) {
        self.errors.get_or_create(&KindLabel { kind }).inc();
    }

    fn count_rejected(&self, reason: RejectReason) {
        self.rejected.get_or_create(&RejectLabel { reason }).inc();
    }

    fn set_paused(&self, paused: bool) {
        self.paused.set(i64::from(paused));
    }

    fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.lag
            .get_or_create(&PartitionLabels {
                topic: topic.to_string(),
                partition,
            })
            .set(lag);
    }
}

/// Read accessors (tests and summaries).
impl CollectorMetrics {
    /// The current value of `driftwatch_http_rejected_total{reason}`.
    pub fn rejected_total(&self, reason: RejectReason) -> u64 {
        self.rejected
            .get(&RejectLabel { reason })
            .map_or(0, |c| c.get())
    }

    /// Total decode errors so far, all reasons (`driftwatch_decode_errors_total`).
    pub fn decode_errors_total(&self) -> u64 {
        DecodeReason::ALL
            .iter()
            .map(|&reason| {
                self.decode_errors
                    .get(&ReasonLabel { reason })
                    .map_or(0, |c| c.get())
            })
            .sum()
    }
}
