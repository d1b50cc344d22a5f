//! OIP v2 request/response pairing: the pairing key of a message, the offer of a decoded half to
//! the pairer, the assembly of a pair into events, and the expiry of unpaired halves.

use rdkafka::message::{BorrowedMessage, Headers, Message};
use telemetry::Emit;

use super::config::TopicRole;
use super::worker::{PendingHalf, Worker};
use crate::decode::oip::{self, OipMapping, OipMessage, PairTiming};
use crate::decode::pairing::{Half, Offer};
use crate::decode::{DecodeError, DecodeReason};
use crate::offsets::TopicPartition;
use crate::telemetry::Source;
use crate::telemetry::events::{
    EventsDecoded, HalfExpired, HalfReplaced, MessageUndecodable, PairEventsRefused,
    PairUnassemblable,
};

impl Worker {
    /// The pairing key: the `x-request-id` header, else the message key, else the message's id.
    fn pairing_id(message: &BorrowedMessage<'_>, decoded: &OipMessage) -> Option<String> {
        if let Some(headers) = message.headers() {
            for h in headers.iter() {
                if h.key.eq_ignore_ascii_case("x-request-id")
                    && let Some(v) = h.value.and_then(|v| std::str::from_utf8(v).ok())
                {
                    return Some(v.to_string());
                }
            }
        }
        if let Some(k) = message
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .filter(|k| !k.is_empty())
        {
            return Some(k.to_string());
        }
        Some(decoded.id.clone()).filter(|s| !s.is_empty())
    }

    pub(super) fn pair(
        &mut self,
        message: &BorrowedMessage<'_>,
        tp: &TopicPartition,
        decoded: OipMessage,
        role: TopicRole,
        mapping: OipMapping,
    ) {
        let offset = message.offset();
        let Some(id) = Self::pairing_id(message, &decoded) else {
            let err = DecodeError::new(
                DecodeReason::MissingField,
                "no request id: no x-request-id header, no key and no `id` field",
            );
            self.metrics.emit(MessageUndecodable {
                topic: &tp.topic,
                partition: tp.partition,
                offset,
                error: &err,
            });
            self.dead_letter(message, tp, &err);
            return;
        };
        let half = match role {
            TopicRole::Request => Half::Request,
            TopicRole::Response => Half::Response,
        };
        // Weighed by what the decoded half holds, or its message if larger.
        let weight = decoded
            .heap_bytes()
            .max(message.payload().map_or(0, <[u8]>::len));
        let pending = PendingHalf {
            message: decoded,
            timestamp_ms: message.timestamp().to_millis(),
            offset: (tp.clone(), offset),
            mapping,
        };
        let now = self.started.elapsed().as_millis() as u64;
        let offer = self.pairer.offer_weighted(&id, half, pending, now, weight);
        if self.pairer.bytes() > self.config.max_pending_pair_bytes {
            self.expire_pairs(false);
        }
        match offer {
            Offer::Waiting => {}
            Offer::Replaced(old) => {
                self.metrics.emit(HalfReplaced {
                    source: Source::Kafka,
                    half: old.half,
                    id: &id,
                });
                self.tracker.complete(&[old.value.offset]);
            }
            Offer::Paired(request, response) => {
                let timing = PairTiming {
                    request_ms: request.timestamp_ms,
                    response_ms: response.timestamp_ms,
                };
                let fallback = chrono::Utc::now().timestamp_millis();
                match oip::assemble(
                    &request.message,
                    &response.message,
                    &response.mapping,
                    timing,
                    fallback,
                ) {
                    Ok(events) => {
                        let n = events.len();
                        // The batches holding the events hold both offsets.
                        let offsets = [request.offset, response.offset];
                        let (ready, refused) = {
                            let mut batcher = self.lock_batcher();
                            let ready = batcher.push(events, &offsets);
                            (ready, batcher.take_refused())
                        };
                        self.metrics.emit(EventsDecoded {
                            count: (n - refused.len()) as u64,
                        });
                        self.metrics.emit(PairEventsRefused {
                            offsets: &offsets,
                            refused: &refused,
                        });
                        self.send(ready);
                        self.tracker.complete(&offsets);
                    }
                    Err(err) => {
                        let offsets = [request.offset, response.offset];
                        self.metrics.emit(PairUnassemblable {
                            offsets: &offsets,
                            error: &err,
                        });
                        self.tracker.complete(&offsets);
                    }
                }
            }
        }
    }

    pub(super) fn expire_pairs(&mut self, all: bool) {
        let now = self.started.elapsed().as_millis() as u64;
        let expired = if all {
            self.pairer.drain()
        } else {
            self.pairer.expire(now)
        };
        for (id, p) in expired {
            self.metrics.emit(HalfExpired {
                source: Source::Kafka,
                half: p.half,
                id: &id,
            });
            self.tracker.complete(&[p.value.offset]);
        }
    }
}
