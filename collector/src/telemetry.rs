//! The collector's metrics, in one place. Every method updates a metric (and the caller logs); the
//! names and labels are listed in `docs/metrics.md`. Labels are bounded: `source` and `half` are
//! fixed sets, `reason` is a [`crate::decode::DecodeError::reason`], `topic`/`partition` are the
//! configured topics' partitions.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HalfLabel {
    half: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: String,
}

/// Handles to the collector's metrics. Cloning shares them.
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
    rejected: Family<ReasonLabel, Counter>,
}

impl CollectorMetrics {
    /// Metrics registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
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

    /// `n` messages or events read from `source`.
    pub fn consumed(&self, source: &'static str, n: u64) {
        self.consumed
            .get_or_create(&SourceLabel { source })
            .inc_by(n);
    }

    /// `n` valid events decoded.
    pub fn decoded(&self, n: u64) {
        self.decoded.inc_by(n);
    }

    /// One event failed to decode or validate.
    pub fn decode_error(&self, reason: &'static str) {
        self.decode_errors
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// One message was queued for the dead-letter topic.
    pub fn dead_lettered(&self, reason: &'static str) {
        self.dead_lettered
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// One undecodable message was skipped (no dead-letter topic).
    pub fn skipped(&self, reason: &'static str) {
        self.skipped.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// One half expired unpaired.
    pub fn unpaired(&self, half: &'static str) {
        self.unpaired.get_or_create(&HalfLabel { half }).inc();
    }

    /// A dead letter could not be written.
    pub fn dead_letter_failed(&self) {
        self.errors
            .get_or_create(&KindLabel {
                kind: "dead_letter",
            })
            .inc();
    }

    /// An offset commit failed.
    pub fn commit_error(&self) {
        self.errors
            .get_or_create(&KindLabel { kind: "commit" })
            .inc();
    }

    /// The consumer reported an error.
    pub fn consumer_error(&self) {
        self.errors
            .get_or_create(&KindLabel { kind: "consumer" })
            .inc();
    }

    /// An HTTP ingest request was rejected.
    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// The current value of `driftwatch_http_rejected_total{reason}`.
    pub fn rejected_total(&self, reason: &'static str) -> u64 {
        self.rejected.get_or_create(&ReasonLabel { reason }).get()
    }

    /// Whether the consumer is paused by backpressure.
    pub fn set_paused(&self, paused: bool) {
        self.paused.set(i64::from(paused));
    }

    /// Lag of one partition.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.lag
            .get_or_create(&PartitionLabels {
                topic: topic.to_string(),
                partition: partition.to_string(),
            })
            .set(lag);
    }

    /// Total decode errors so far (for tests and summaries).
    pub fn decode_errors_total(&self) -> u64 {
        [
            "invalid_json",
            "missing_field",
            "invalid_field",
            "wrong_encoding",
            "too_large",
            "unpaired",
        ]
        .iter()
        .map(|r| {
            self.decode_errors
                .get_or_create(&ReasonLabel { reason: r })
                .get()
        })
        .sum()
    }
}
