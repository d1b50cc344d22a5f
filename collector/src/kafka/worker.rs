//! The consumer thread: its state ([`Worker`], [`PendingHalf`]) and loop (poll, hand over due
//! batches, expire pairs, commit, report lag), the pause and resume of partitions on
//! backpressure, the hand-over of batches, and the drain on shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{Producer, ThreadedProducer};
use telemetry::Emit;
use tokio::sync::mpsc;

use super::commit::commit;
use super::config::{KafkaConfig, TopicConfig};
use super::context::Context;
use super::dead_letter::{self, DlqContext};
use crate::batcher::{Batcher, SourceBatch};
use crate::decode::oip::{OipMapping, OipMessage};
use crate::decode::pairing::Pairer;
use crate::offsets::{OffsetTracker, TopicPartition};
use crate::telemetry::CollectorMetrics;
use crate::telemetry::events::{ConsumerFailed, ConsumerPaused, PartitionLag};

/// The consumer thread's state.
pub(super) struct Worker {
    pub(super) config: KafkaConfig,
    pub(super) topics: HashMap<String, TopicConfig>,
    pub(super) dlq: Option<ThreadedProducer<DlqContext>>,
    pub(super) batcher: Arc<Mutex<Batcher>>,
    pub(super) pairer: Pairer<PendingHalf>,
    pub(super) out: mpsc::Sender<SourceBatch>,
    pub(super) tracker: OffsetTracker,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) metrics: CollectorMetrics,
    /// Whether consumption is paused for backpressure (shared with the rebalance callbacks).
    pub(super) paused: Arc<AtomicBool>,
    pub(super) started: Instant,
}

/// An OIP v2 half waiting for its partner, with the offset it holds.
pub(super) struct PendingHalf {
    pub(super) message: OipMessage,
    pub(super) timestamp_ms: Option<i64>,
    pub(super) offset: (TopicPartition, i64),
    pub(super) mapping: OipMapping,
}

impl Worker {
    pub(super) fn run(mut self, consumer: &BaseConsumer<Context>) {
        if self.dlq.is_some() && self.config.create_dead_letter_topics {
            dead_letter::create_topics(&self.config);
        }
        let mut last_commit = Instant::now();
        let mut last_lag = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            self.apply_backpressure(consumer);
            if let Some(result) = consumer.poll(Duration::from_millis(100)) {
                match result {
                    Ok(message) => self.handle(&message),
                    Err(e) => self.metrics.emit(ConsumerFailed { error: &e }),
                }
            }
            let due = self.lock_batcher().due();
            self.send(due);
            self.expire_pairs(false);
            if last_commit.elapsed() >= self.config.commit_interval {
                commit(consumer, &self.tracker, &self.metrics);
                last_commit = Instant::now();
            }
            if last_lag.elapsed() >= Duration::from_secs(5) {
                self.report_lag(consumer);
                last_lag = Instant::now();
            }
        }
        self.drain(consumer);
    }

    pub(super) fn lock_batcher(&self) -> std::sync::MutexGuard<'_, Batcher> {
        self.batcher.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Pauses every assigned partition while the batch channel is full.
    fn apply_backpressure(&mut self, consumer: &BaseConsumer<Context>) {
        let full = self.out.capacity() == 0;
        if full == self.paused.load(Ordering::SeqCst) {
            return;
        }
        let Ok(assignment) = consumer.assignment() else {
            return;
        };
        if assignment.count() == 0 {
            // Nothing to pause or resume; the next assignment takes the state then.
            return;
        }
        let result = if full {
            consumer.pause(&assignment)
        } else {
            consumer.resume(&assignment)
        };
        if result.is_ok() {
            self.paused.store(full, Ordering::SeqCst);
            self.metrics.emit(ConsumerPaused {
                paused: full,
                partitions: assignment.count(),
            });
        }
    }

    pub(super) fn send(&self, batches: Vec<SourceBatch>) {
        for b in batches {
            if self.out.blocking_send(b).is_err() {
                // The analyzer is gone: shutting down; the offsets stay pending.
                self.stop.store(true, Ordering::SeqCst);
                return;
            }
        }
    }

    fn report_lag(&self, consumer: &BaseConsumer<Context>) {
        for tp in self.tracker.assigned() {
            if let Ok((_, high)) =
                consumer.fetch_watermarks(&tp.topic, tp.partition, Duration::from_millis(500))
            {
                let position = self.tracker.snapshot().get(&tp).map_or(0, |p| p.watermark);
                self.metrics.emit(PartitionLag {
                    topic: &tp.topic,
                    partition: tp.partition,
                    lag: (high - position).max(0),
                });
            }
        }
    }

    fn drain(mut self, consumer: &BaseConsumer<Context>) {
        tracing::info!("kafka source draining");
        if let Ok(assignment) = consumer.assignment() {
            let _ = consumer.pause(&assignment);
        }
        self.expire_pairs(true);
        let ready = self.lock_batcher().flush();
        self.send(ready);
        if let Some(p) = &self.dlq {
            let _ = p.flush(self.config.drain_timeout);
        }
        let deadline = Instant::now() + self.config.drain_timeout;
        while Instant::now() < deadline
            && !self.tracker.wait_settled(None, Duration::from_millis(100))
        {
            // Keep serving callbacks while waiting.
            let _ = consumer.poll(Duration::from_millis(0));
        }
        commit(consumer, &self.tracker, &self.metrics);
        consumer.unsubscribe();
        tracing::info!("kafka source stopped");
    }
}
