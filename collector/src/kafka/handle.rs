//! Message handling: [`Worker::handle`] routes a consumed message by its topic's encoding (JSON
//! into the batcher, OIP v2 to the pairing), and dead-letters what cannot be decoded.

use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::BaseRecord;
use telemetry::Emit;

use super::config::TopicRole;
use super::dead_letter;
use super::worker::Worker;
use crate::batcher::PushedJson;
use crate::decode::oip;
use crate::decode::{DecodeError, DecodeReason, Encoding};
use crate::offsets::{Observed, TopicPartition};
use crate::telemetry::Source;
use crate::telemetry::events::{
    BadEventsInMessage, DeadLetterNotQueued, DeadLettered, EventsConsumed, EventsDecoded,
    MessageSkipped, MessageUndecodable,
};

impl Worker {
    pub(super) fn handle(&mut self, message: &BorrowedMessage<'_>) {
        let tp = TopicPartition::new(message.topic(), message.partition());
        let offset = message.offset();
        match self.tracker.observe(&tp, offset) {
            Observed::Process => {}
            Observed::Skip => return,
            Observed::NotAssigned => {
                tracing::debug!(topic = %tp.topic, partition = tp.partition, offset, "message of a partition not assigned: dropped (its next owner reads it)");
                return;
            }
        }
        self.metrics.emit(EventsConsumed {
            source: Source::Kafka,
            count: 1,
        });
        let payload = message.payload().unwrap_or_default();
        let Some(topic) = self.topics.get(message.topic()).cloned() else {
            self.tracker.complete(&[(tp, offset)]);
            return;
        };
        if payload.len() > self.config.max_message_bytes {
            let err = DecodeError::new(
                DecodeReason::TooLarge,
                format!(
                    "{} bytes exceed max_message_bytes {}",
                    payload.len(),
                    self.config.max_message_bytes
                ),
            );
            self.dead_letter(message, &tp, &err);
            return;
        }
        match (topic.encoding, topic.role) {
            (Encoding::Json, _) => {
                // The batcher's lock ends with this statement (never held across the send).
                let pushed = self
                    .lock_batcher()
                    .push_json(payload, &[(tp.clone(), offset)]);
                match pushed {
                    Ok(PushedJson { ready, bad, good }) => {
                        self.metrics.emit(BadEventsInMessage {
                            topic: &tp.topic,
                            partition: tp.partition,
                            offset,
                            bad: &bad,
                        });
                        self.metrics.emit(EventsDecoded { count: good as u64 });
                        if let Some(first) = bad.first().map(|b| b.error.clone()) {
                            // Keep the good events; the whole message is dead-lettered for inspection.
                            let lines: Vec<String> =
                                bad.iter().map(|b| b.line.to_string()).collect();
                            self.dead_letter_with(message, &tp, &first, Some(lines.join(",")));
                        } else {
                            // The message's own hold ends before its batch can be acknowledged:
                            // completed after the send, the last offset of a partition could become
                            // absorbed after the downstream had already marked its state durable, and
                            // stay uncommitted until another batch came (regression test in
                            // tests/mock_cluster.rs).
                            self.tracker.complete(&[(tp, offset)]);
                        }
                        self.send(ready);
                    }
                    Err(err) => {
                        self.metrics.emit(MessageUndecodable {
                            topic: &tp.topic,
                            partition: tp.partition,
                            offset,
                            error: &err,
                        });
                        self.dead_letter(message, &tp, &err);
                    }
                }
            }
            (encoding, Some(role)) => {
                let response = role == TopicRole::Response;
                match oip::decode_message(payload, encoding, response) {
                    Ok(decoded) => self.pair(message, &tp, decoded, role, topic.mapping.clone()),
                    Err(err) => {
                        self.metrics.emit(MessageUndecodable {
                            topic: &tp.topic,
                            partition: tp.partition,
                            offset,
                            error: &err,
                        });
                        self.dead_letter(message, &tp, &err);
                    }
                }
            }
            (_, None) => self.tracker.complete(&[(tp, offset)]),
        }
    }

    pub(super) fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        tp: &TopicPartition,
        err: &DecodeError,
    ) {
        self.dead_letter_with(message, tp, err, None);
    }

    pub(super) fn dead_letter_with(
        &self,
        message: &BorrowedMessage<'_>,
        tp: &TopicPartition,
        err: &DecodeError,
        lines: Option<String>,
    ) {
        let offset = message.offset();
        let Some(producer) = &self.dlq else {
            self.metrics.emit(MessageSkipped {
                reason: err.reason,
                topic: &tp.topic,
                partition: tp.partition,
                offset,
            });
            self.tracker.complete(&[(tp.clone(), offset)]);
            return;
        };
        let headers = dead_letter::headers(err, tp, offset, lines.as_deref());
        let topic = self.config.dead_letter_topic(&tp.topic);
        let mut record = BaseRecord::with_opaque_to(&topic, Box::new((tp.clone(), offset)))
            .payload(message.payload().unwrap_or_default())
            .headers(headers);
        if let Some(k) = message.key() {
            record = record.key(k);
        }
        match producer.send(record) {
            Ok(()) => self.metrics.emit(DeadLettered {
                reason: err.reason,
                topic: &tp.topic,
                partition: tp.partition,
                offset,
            }),
            Err((e, _)) => {
                self.metrics.emit(DeadLetterNotQueued {
                    error: &e,
                    topic: &topic,
                });
                self.tracker.complete(&[(tp.clone(), offset)]);
            }
        }
    }
}
