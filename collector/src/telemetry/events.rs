//! The collector's observable events, one struct each: its `emit()` logs it (at the level and
//! with the fields the collector has always logged it with; events that were never logged log at
//! `debug` or not at all) and counts it in [`CollectorMetrics`], so a log line and its counter
//! cannot drift apart. Call sites write `metrics.emit(Event { .. })` ([`telemetry::Emit`]).
//! The Kafka source's events log under the target `collector::kafka`, HTTP ingest's under
//! `collector::http`, so filters such as `collector::kafka=debug` select them as before.
//!
//! | event | metric | log |
//! |---|---|---|
//! | [`EventsConsumed`] | `driftwatch_events_consumed_total{source}` | — |
//! | [`EventsDecoded`] | `driftwatch_events_decoded_total` | — |
//! | [`MessageUndecodable`] | `driftwatch_decode_errors_total{reason}` | debug |
//! | [`BadEventsInMessage`] | `driftwatch_decode_errors_total{reason}` per event | debug |
//! | [`PairEventsRefused`] | `driftwatch_decode_errors_total{reason}` per event | debug |
//! | [`PairUnassemblable`] | `driftwatch_decode_errors_total{reason}` | debug |
//! | [`DeadLettered`] | `driftwatch_events_dead_lettered_total{reason}` | debug |
//! | [`MessageSkipped`] | `driftwatch_events_skipped_total{reason}` | debug |
//! | [`DeadLetterNotQueued`] | `driftwatch_source_errors_total{kind="dead_letter"}` | error |
//! | [`DeadLetterNotWritten`] | `driftwatch_source_errors_total{kind="dead_letter"}` | error |
//! | [`CommitFailed`] | `driftwatch_source_errors_total{kind="commit"}` | warn |
//! | [`ConsumerFailed`] | `driftwatch_source_errors_total{kind="consumer"}` | warn |
//! | [`ConsumerPaused`] | `driftwatch_consumer_paused` | debug |
//! | [`PartitionLag`] | `driftwatch_consumer_lag{topic, partition}` | — |
//! | [`HalfExpired`] | `driftwatch_unpaired_total{half}` | debug |
//! | [`HalfReplaced`] | `driftwatch_unpaired_total{half}` | debug |
//! | [`RequestRejected`] | `driftwatch_http_rejected_total{reason}` | debug |
//! | [`RequestUndecodable`] | `driftwatch_decode_errors_total{reason}`, `driftwatch_http_rejected_total{reason}` | debug |
//! | [`BadEventsInRequest`] | `driftwatch_decode_errors_total{reason}` per event, `driftwatch_http_rejected_total{reason}` | debug |

use rdkafka::error::KafkaError;
use telemetry::InternalEvent;
use types::offsets::TopicPartition;

use super::CollectorMetrics;
use super::labels::{DecodeReason, Half, RejectReason, Source, SourceErrorKind};
use crate::decode::DecodeError;
use crate::decode::json::BadEvent;

/// The log target of the Kafka source's events, so that `collector::kafka=debug` selects them
/// as it did when each module logged them itself.
const KAFKA: &str = "collector::kafka";
/// The log target of HTTP ingest's events.
const HTTP: &str = "collector::http";

/// `count` messages (Kafka) or events (HTTP) were read from `source`: counted in
/// `driftwatch_events_consumed_total{source}`. Not logged (once per message).
#[derive(Debug, Clone, Copy)]
pub struct EventsConsumed {
    /// Where they were read from.
    pub source: Source,
    /// How many messages or events.
    pub count: u64,
}

impl InternalEvent<CollectorMetrics> for EventsConsumed {
    fn emit(self, metrics: &CollectorMetrics) {
        metrics.count_consumed(self.source, self.count);
    }
}

/// `count` prediction events were decoded and found valid: counted in
/// `driftwatch_events_decoded_total`. Not logged (once per message).
#[derive(Debug, Clone, Copy)]
pub struct EventsDecoded {
    /// How many events.
    pub count: u64,
}

impl InternalEvent<CollectorMetrics> for EventsDecoded {
    fn emit(self, metrics: &CollectorMetrics) {
        metrics.count_decoded(self.count);
    }
}

/// A Kafka message could not be decoded as a whole (not the topic's encoding, invalid JSON, no
/// request id to pair it by, ...): counted once in `driftwatch_decode_errors_total{reason}`,
/// logged at debug with its topic, partition and offset. The message then goes to the
/// dead-letter path ([`DeadLettered`], [`MessageSkipped`]).
#[derive(Debug, Clone, Copy)]
pub struct MessageUndecodable<'a> {
    /// The message's topic.
    pub topic: &'a str,
    /// The message's partition.
    pub partition: i32,
    /// The message's offset.
    pub offset: i64,
    /// What is wrong; its reason is the label.
    pub error: &'a DecodeError,
}

impl InternalEvent<CollectorMetrics> for MessageUndecodable<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        tracing::debug!(target: KAFKA, topic = %self.topic, partition = self.partition, offset = self.offset, reason = %self.error.reason, error = %self.error, "undecodable message");
        metrics.count_decode_error(self.error.reason);
    }
}

/// Events of one Kafka JSON message failed to decode or validate (its good events are kept):
/// each counted in `driftwatch_decode_errors_total{reason}` by its own reason, logged once at
/// debug with the message's topic, partition and offset, their number (`bad`) and the first
/// error (`first`). Nothing when `bad` is empty.
#[derive(Debug, Clone, Copy)]
pub struct BadEventsInMessage<'a> {
    /// The message's topic.
    pub topic: &'a str,
    /// The message's partition.
    pub partition: i32,
    /// The message's offset.
    pub offset: i64,
    /// The bad events.
    pub bad: &'a [BadEvent],
}

impl InternalEvent<CollectorMetrics> for BadEventsInMessage<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        let Some(first) = self.bad.first() else {
            return;
        };
        for b in self.bad {
            metrics.count_decode_error(b.error.reason);
        }
        tracing::debug!(target: KAFKA, topic = %self.topic, partition = self.partition, offset = self.offset, bad = self.bad.len(), first = %first.error, "bad events in a message");
    }
}

/// Events assembled from an OIP v2 pair were refused by the batcher (models past the discovery
/// cap): each counted in `driftwatch_decode_errors_total{reason}`, logged once at debug with the
/// pair's offsets, their number (`refused`) and the first error (`first`). Nothing when
/// `refused` is empty.
#[derive(Debug, Clone, Copy)]
pub struct PairEventsRefused<'a> {
    /// The request's and the response's offsets.
    pub offsets: &'a [(TopicPartition, i64)],
    /// The refused events.
    pub refused: &'a [BadEvent],
}

impl InternalEvent<CollectorMetrics> for PairEventsRefused<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        let Some(first) = self.refused.first() else {
            return;
        };
        for r in self.refused {
            metrics.count_decode_error(r.error.reason);
        }
        tracing::debug!(target: KAFKA, offsets = ?self.offsets, refused = self.refused.len(), first = %first.error, "events of a pair refused");
    }
}

/// An OIP v2 request and response paired but could not be assembled into events (their shapes
/// disagree): counted once in `driftwatch_decode_errors_total{reason}`, logged at debug with the
/// pair's offsets. The pair's offsets complete (it is not dead-lettered).
#[derive(Debug, Clone, Copy)]
pub struct PairUnassemblable<'a> {
    /// The request's and the response's offsets.
    pub offsets: &'a [(TopicPartition, i64)],
    /// What is wrong; its reason is the label.
    pub error: &'a DecodeError,
}

impl InternalEvent<CollectorMetrics> for PairUnassemblable<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        tracing::debug!(target: KAFKA, offsets = ?self.offsets, reason = %self.error.reason, error = %self.error, "cannot assemble a pair");
        metrics.count_decode_error(self.error.reason);
    }
}

/// An undecodable Kafka message was queued for its dead-letter topic: counted in
/// `driftwatch_events_dead_lettered_total{reason}`, logged at debug with the source message's
/// topic, partition and offset.
#[derive(Debug, Clone, Copy)]
pub struct DeadLettered<'a> {
    /// Why the message is dead-lettered (its `driftwatch-reason` header).
    pub reason: DecodeReason,
    /// The source message's topic.
    pub topic: &'a str,
    /// The source message's partition.
    pub partition: i32,
    /// The source message's offset.
    pub offset: i64,
}

impl InternalEvent<CollectorMetrics> for DeadLettered<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        tracing::debug!(target: KAFKA, topic = %self.topic, partition = self.partition, offset = self.offset, reason = %self.reason, "message queued for the dead-letter topic");
        metrics.count_dead_lettered(self.reason);
    }
}

/// An undecodable Kafka message was skipped because the dead-letter topic is disabled
/// (`kafka.dead_letter = false`): counted in `driftwatch_events_skipped_total{reason}`, logged at
/// debug with its topic, partition and offset.
#[derive(Debug, Clone, Copy)]
pub struct MessageSkipped<'a> {
    /// Why the message could not be decoded.
    pub reason: DecodeReason,
    /// The message's topic.
    pub topic: &'a str,
    /// The message's partition.
    pub partition: i32,
    /// The message's offset.
    pub offset: i64,
}

impl InternalEvent<CollectorMetrics> for MessageSkipped<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        tracing::debug!(target: KAFKA, topic = %self.topic, partition = self.partition, offset = self.offset, reason = %self.reason, "undecodable message skipped (no dead-letter topic)");
        metrics.count_skipped(self.reason);
    }
}

/// A dead letter could not be queued to the producer (the message is skipped): counted in
/// `driftwatch_source_errors_total{kind="dead_letter"}`, logged at error with the dead-letter
/// topic.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetterNotQueued<'a> {
    /// The producer's error.
    pub error: &'a KafkaError,
    /// The dead-letter topic.
    pub topic: &'a str,
}

impl InternalEvent<CollectorMetrics> for DeadLetterNotQueued<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        metrics.count_source_error(SourceErrorKind::DeadLetter);
        tracing::error!(target: KAFKA, error = %self.error, topic = self.topic, "cannot queue a dead letter; skipping the message");
    }
}

/// A queued dead letter could not be delivered (the source offset completes anyway, so the
/// partition keeps flowing): counted in `driftwatch_source_errors_total{kind="dead_letter"}`,
/// logged at error with the source message's topic, partition and offset.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetterNotWritten<'a> {
    /// The delivery error.
    pub error: &'a KafkaError,
    /// The source message's topic.
    pub topic: &'a str,
    /// The source message's partition.
    pub partition: i32,
    /// The source message's offset.
    pub offset: i64,
}

impl InternalEvent<CollectorMetrics> for DeadLetterNotWritten<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        metrics.count_source_error(SourceErrorKind::DeadLetter);
        tracing::error!(target: KAFKA, topic = %self.topic, partition = self.partition, offset = self.offset, error = %self.error, "cannot write to the dead-letter topic");
    }
}

/// An offset commit failed (retried at the next commit): counted in
/// `driftwatch_source_errors_total{kind="commit"}`, logged at warn.
#[derive(Debug, Clone, Copy)]
pub struct CommitFailed<'a> {
    /// The commit's error.
    pub error: &'a KafkaError,
}

impl InternalEvent<CollectorMetrics> for CommitFailed<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        metrics.count_source_error(SourceErrorKind::Commit);
        tracing::warn!(target: KAFKA, error = %self.error, "offset commit failed; will retry");
    }
}

/// The Kafka consumer reported an error while polling: counted in
/// `driftwatch_source_errors_total{kind="consumer"}`, logged at warn.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerFailed<'a> {
    /// The consumer's error.
    pub error: &'a KafkaError,
}

impl InternalEvent<CollectorMetrics> for ConsumerFailed<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        metrics.count_source_error(SourceErrorKind::Consumer);
        tracing::warn!(target: KAFKA, error = %self.error, "kafka consumer error");
    }
}

/// The Kafka consumer's partitions were paused (the batch channel is full) or resumed: sets
/// `driftwatch_consumer_paused` to 1 or 0, logged at debug with the number of partitions.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerPaused {
    /// Paused (`true`) or resumed (`false`).
    pub paused: bool,
    /// How many partitions were paused or resumed.
    pub partitions: usize,
}

impl InternalEvent<CollectorMetrics> for ConsumerPaused {
    fn emit(self, metrics: &CollectorMetrics) {
        tracing::debug!(
            target: KAFKA,
            paused = self.paused,
            partitions = self.partitions,
            "backpressure: partitions paused while the batch channel is full (paused=false: resumed)"
        );
        metrics.set_paused(self.paused);
    }
}

/// A partition's lag was measured (every 5 s): sets `driftwatch_consumer_lag{topic, partition}`.
/// Not logged.
#[derive(Debug, Clone, Copy)]
pub struct PartitionLag<'a> {
    /// The partition's topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// Messages between the absorbed position and the end of the partition.
    pub lag: i64,
}

impl InternalEvent<CollectorMetrics> for PartitionLag<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        metrics.set_lag(self.topic, self.partition, self.lag);
    }
}

/// A request or response half (OIP v2 on Kafka, CloudEvents over HTTP) waited the pairing
/// timeout without its partner, was pushed out by the pairing's memory bounds, or was dropped at
/// shutdown: counted in `driftwatch_unpaired_total{half}`, logged at debug with its id.
#[derive(Debug, Clone, Copy)]
pub struct HalfExpired<'a> {
    /// Where the halves arrive (the log target).
    pub source: Source,
    /// Which half.
    pub half: Half,
    /// Its pairing id.
    pub id: &'a str,
}

impl InternalEvent<CollectorMetrics> for HalfExpired<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        match self.source {
            Source::Kafka => {
                tracing::debug!(target: KAFKA, half = %self.half, id = %self.id, "half expired without its partner");
            }
            Source::Http => {
                tracing::debug!(target: HTTP, half = %self.half, id = %self.id, "half expired without its partner");
            }
        }
        metrics.count_unpaired(self.half);
    }
}

/// A waiting half was replaced by a newer half of the same kind and id before its partner came:
/// counted in `driftwatch_unpaired_total{half}`, logged at debug with its id.
#[derive(Debug, Clone, Copy)]
pub struct HalfReplaced<'a> {
    /// Where the halves arrive (the log target).
    pub source: Source,
    /// Which half.
    pub half: Half,
    /// Its pairing id.
    pub id: &'a str,
}

impl InternalEvent<CollectorMetrics> for HalfReplaced<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        match self.source {
            Source::Kafka => {
                tracing::debug!(target: KAFKA, half = %self.half, id = %self.id, "half replaced by a newer one with the same id before its partner came");
            }
            Source::Http => {
                tracing::debug!(target: HTTP, half = %self.half, id = %self.id, "half replaced by a newer one with the same id before its partner came");
            }
        }
        metrics.count_unpaired(self.half);
    }
}

/// An HTTP request was refused before or after its events were decoded (credentials, media
/// type, body size, backpressure, the write-ahead log, shutdown): counted in
/// `driftwatch_http_rejected_total{reason}`, logged at debug.
#[derive(Debug, Clone, Copy)]
pub struct RequestRejected {
    /// Why.
    pub reason: RejectReason,
}

impl InternalEvent<CollectorMetrics> for RequestRejected {
    fn emit(self, metrics: &CollectorMetrics) {
        tracing::debug!(target: HTTP, reason = %self.reason, "request rejected");
        metrics.count_rejected(self.reason);
    }
}

/// An HTTP request was refused (`400`) because its body, a CloudEvents pair or one of its models
/// could not be decoded, assembled or admitted: counted in
/// `driftwatch_decode_errors_total{reason}` and `driftwatch_http_rejected_total{reason}`, logged
/// at debug.
#[derive(Debug, Clone, Copy)]
pub struct RequestUndecodable<'a> {
    /// What is wrong; its reason is the label of both counters.
    pub error: &'a DecodeError,
}

impl InternalEvent<CollectorMetrics> for RequestUndecodable<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        tracing::debug!(target: HTTP, reason = %self.error.reason, error = %self.error, "request rejected");
        metrics.count_decode_error(self.error.reason);
        metrics.count_rejected(self.error.reason.into());
    }
}

/// An HTTP request was refused whole (`400`) because some of its events are bad: each counted
/// in `driftwatch_decode_errors_total{reason}`, the request once in
/// `driftwatch_http_rejected_total{reason}` under the first one's reason, logged at debug with
/// their number (`bad`) and the first error (`first`). Nothing when `bad` is empty.
#[derive(Debug, Clone, Copy)]
pub struct BadEventsInRequest<'a> {
    /// The bad events.
    pub bad: &'a [BadEvent],
}

impl InternalEvent<CollectorMetrics> for BadEventsInRequest<'_> {
    fn emit(self, metrics: &CollectorMetrics) {
        let Some(first) = self.bad.first() else {
            return;
        };
        for b in self.bad {
            metrics.count_decode_error(b.error.reason);
        }
        tracing::debug!(target: HTTP, reason = %first.error.reason, bad = self.bad.len(), first = %first.error, "request rejected");
        metrics.count_rejected(first.error.reason.into());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prometheus_client::registry::Registry;
    use rdkafka::error::RDKafkaErrorCode;
    use telemetry::{Emit, LabelValues, Metrics};

    use super::*;

    fn registered() -> (Registry, CollectorMetrics) {
        let mut registry = Registry::default();
        let metrics = CollectorMetrics::register(&mut registry, &());
        (registry, metrics)
    }

    fn text(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    /// The sample lines of `registry` (no `#` lines), sorted (a family's series come in hash
    /// order).
    fn samples(registry: &Registry) -> Vec<String> {
        let mut lines: Vec<String> = text(registry)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    }

    /// The samples `event`, emitted once on fresh metrics, adds or changes (the unlabelled
    /// counter and gauge are always there, at 0), sorted.
    fn counted<E: InternalEvent<CollectorMetrics>>(event: E) -> Vec<String> {
        let (registry, metrics) = registered();
        let before = samples(&registry);
        metrics.emit(event);
        samples(&registry)
            .into_iter()
            .filter(|l| !before.contains(l))
            .collect()
    }

    /// Emits `event` once on fresh metrics and checks the samples it adds or changes are exactly
    /// `lines` (in any order).
    fn counts<E: InternalEvent<CollectorMetrics>>(event: E, lines: &[&str]) {
        let mut expected = lines.to_vec();
        expected.sort_unstable();
        assert_eq!(counted(event), expected);
    }

    fn error(reason: DecodeReason) -> DecodeError {
        DecodeError::new(reason, "what is wrong")
    }

    fn bad(reasons: &[DecodeReason]) -> Vec<BadEvent> {
        reasons
            .iter()
            .enumerate()
            .map(|(i, &r)| BadEvent {
                line: i + 1,
                error: error(r),
            })
            .collect()
    }

    fn offsets() -> Vec<(TopicPartition, i64)> {
        vec![
            (TopicPartition::new("requests", 0), 7),
            (TopicPartition::new("responses", 1), 9),
        ]
    }

    const KAFKA: KafkaError = KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure);

    #[test]
    fn source_events_are_counted_by_source() {
        counts(
            EventsConsumed {
                source: Source::Kafka,
                count: 1,
            },
            &["driftwatch_events_consumed_total{source=\"kafka\"} 1"],
        );
        counts(
            EventsConsumed {
                source: Source::Http,
                count: 3,
            },
            &["driftwatch_events_consumed_total{source=\"http\"} 3"],
        );
        counts(
            EventsDecoded { count: 5 },
            &["driftwatch_events_decoded_total 5"],
        );
    }

    #[test]
    fn kafka_decode_failures_are_counted_by_reason() {
        let e = error(DecodeReason::WrongEncoding);
        counts(
            MessageUndecodable {
                topic: "t",
                partition: 0,
                offset: 4,
                error: &e,
            },
            &["driftwatch_decode_errors_total{reason=\"wrong_encoding\"} 1"],
        );
        let b = bad(&[
            DecodeReason::MissingField,
            DecodeReason::InvalidConfidence,
            DecodeReason::MissingField,
        ]);
        counts(
            BadEventsInMessage {
                topic: "t",
                partition: 0,
                offset: 4,
                bad: &b,
            },
            &[
                "driftwatch_decode_errors_total{reason=\"missing_field\"} 2",
                "driftwatch_decode_errors_total{reason=\"invalid_confidence\"} 1",
            ],
        );
        let o = offsets();
        let r = bad(&[DecodeReason::UnknownModel]);
        counts(
            PairEventsRefused {
                offsets: &o,
                refused: &r,
            },
            &["driftwatch_decode_errors_total{reason=\"unknown_model\"} 1"],
        );
        let e = error(DecodeReason::InvalidField);
        counts(
            PairUnassemblable {
                offsets: &o,
                error: &e,
            },
            &["driftwatch_decode_errors_total{reason=\"invalid_field\"} 1"],
        );
        // No bad events: nothing counted.
        counts(
            BadEventsInMessage {
                topic: "t",
                partition: 0,
                offset: 4,
                bad: &[],
            },
            &[],
        );
        counts(
            PairEventsRefused {
                offsets: &o,
                refused: &[],
            },
            &[],
        );
    }

    #[test]
    fn dead_letters_and_skips_are_counted_by_reason() {
        counts(
            DeadLettered {
                reason: DecodeReason::TooLarge,
                topic: "t",
                partition: 2,
                offset: 10,
            },
            &["driftwatch_events_dead_lettered_total{reason=\"too_large\"} 1"],
        );
        counts(
            MessageSkipped {
                reason: DecodeReason::InvalidJson,
                topic: "t",
                partition: 2,
                offset: 10,
            },
            &["driftwatch_events_skipped_total{reason=\"invalid_json\"} 1"],
        );
    }

    #[test]
    fn source_errors_are_counted_by_kind() {
        let dead_letter = ["driftwatch_source_errors_total{kind=\"dead_letter\"} 1"];
        counts(
            DeadLetterNotQueued {
                error: &KAFKA,
                topic: "t.dlq",
            },
            &dead_letter,
        );
        counts(
            DeadLetterNotWritten {
                error: &KAFKA,
                topic: "t",
                partition: 0,
                offset: 1,
            },
            &dead_letter,
        );
        counts(
            CommitFailed { error: &KAFKA },
            &["driftwatch_source_errors_total{kind=\"commit\"} 1"],
        );
        counts(
            ConsumerFailed { error: &KAFKA },
            &["driftwatch_source_errors_total{kind=\"consumer\"} 1"],
        );
    }

    #[test]
    fn consumer_gauges_are_set() {
        counts(
            ConsumerPaused {
                paused: true,
                partitions: 3,
            },
            &["driftwatch_consumer_paused 1"],
        );
        let (registry, metrics) = registered();
        for paused in [true, false] {
            metrics.emit(ConsumerPaused {
                paused,
                partitions: 3,
            });
        }
        let now = samples(&registry);
        assert!(
            now.iter().any(|l| l == "driftwatch_consumer_paused 0"),
            "{now:?}"
        );
        counts(
            PartitionLag {
                topic: "t",
                partition: 3,
                lag: 42,
            },
            &["driftwatch_consumer_lag{topic=\"t\",partition=\"3\"} 42"],
        );
    }

    #[test]
    fn unpaired_halves_are_counted_by_half() {
        counts(
            HalfExpired {
                source: Source::Kafka,
                half: Half::Request,
                id: "r1",
            },
            &["driftwatch_unpaired_total{half=\"request\"} 1"],
        );
        counts(
            HalfReplaced {
                source: Source::Http,
                half: Half::Response,
                id: "r1",
            },
            &["driftwatch_unpaired_total{half=\"response\"} 1"],
        );
    }

    #[test]
    fn http_rejections_are_counted_by_reason() {
        for reason in RejectReason::all() {
            assert_eq!(
                counted(RequestRejected { reason }),
                [format!(
                    "driftwatch_http_rejected_total{{reason=\"{reason}\"}} 1"
                )]
            );
            let (_registry, metrics) = registered();
            metrics.emit(RequestRejected { reason });
            assert_eq!(metrics.rejected_total(reason), 1);
        }
        let e = error(DecodeReason::UnknownModel);
        counts(
            RequestUndecodable { error: &e },
            &[
                "driftwatch_decode_errors_total{reason=\"unknown_model\"} 1",
                "driftwatch_http_rejected_total{reason=\"unknown_model\"} 1",
            ],
        );
        let b = bad(&[DecodeReason::InvalidLatency, DecodeReason::MissingField]);
        counts(
            BadEventsInRequest { bad: &b },
            &[
                "driftwatch_decode_errors_total{reason=\"invalid_latency\"} 1",
                "driftwatch_decode_errors_total{reason=\"missing_field\"} 1",
                "driftwatch_http_rejected_total{reason=\"invalid_latency\"} 1",
            ],
        );
        let (_registry, metrics) = registered();
        metrics.emit(BadEventsInRequest { bad: &b });
        assert_eq!(metrics.decode_errors_total(), 2);
        counts(BadEventsInRequest { bad: &[] }, &[]);
    }

    /// The backticked snake_case words of `text` (label values; not `Content-Type`,
    /// `admission.max_discovered_models`).
    fn label_words(text: &str) -> Vec<&str> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .collect()
    }

    /// The reasons `docs/metrics.md` lists (decode and validation reasons, and the ones only
    /// `driftwatch_http_rejected_total` has) are exactly the enums' values: docs and code cannot
    /// disagree.
    #[test]
    fn the_documented_reasons_are_the_enums_values() {
        let doc = include_str!("../../../docs/metrics.md");
        let start = doc
            .find("`reason` values are a fixed set:")
            .expect("docs/metrics.md lists the reasons");
        let paragraph = &doc[start..];
        let paragraph = &paragraph[..paragraph.find("\n\n").unwrap_or(paragraph.len())];
        let (decode, http) = paragraph
            .split_once("`driftwatch_http_rejected_total` also has")
            .expect("docs/metrics.md lists the HTTP-only reasons");
        let decode = label_words(decode.trim_start_matches("`reason` values are a fixed set:"));
        let http = label_words(http);

        let code: Vec<&str> = DecodeReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(decode, code, "driftwatch_decode_errors_total{{reason}}");
        let documented: BTreeSet<&str> = decode.iter().chain(&http).copied().collect();
        let code: BTreeSet<&str> = RejectReason::all().map(RejectReason::as_str).collect();
        assert_eq!(documented, code, "driftwatch_http_rejected_total{{reason}}");
        assert_eq!(
            decode.len() + http.len(),
            RejectReason::all().count(),
            "no reason listed twice"
        );
        // The table's row of the metric names only documented reasons.
        let row = doc
            .lines()
            .find(|l| l.starts_with("| `driftwatch_http_rejected_total`"))
            .expect("the table has driftwatch_http_rejected_total");
        for word in label_words(row) {
            assert!(
                ["driftwatch_http_rejected_total", "reason"].contains(&word) || code.contains(word),
                "{word} in the table is not a RejectReason"
            );
        }
    }
}
