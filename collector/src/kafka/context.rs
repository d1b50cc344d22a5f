//! The consumer context: the rebalance callbacks, which drain and commit revoked partitions
//! before they are given up and assign new ones from the checkpoint's position.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use tokio::sync::mpsc;

use super::commit::commit;
use crate::batcher::{Batcher, SourceBatch};
use crate::offsets::{OffsetTracker, SourceOffsets, TopicPartition};
use crate::telemetry::CollectorMetrics;

/// Consumer callbacks: drains revoked partitions before they are given up.
pub(super) struct Context {
    pub(super) tracker: OffsetTracker,
    pub(super) batcher: Arc<Mutex<Batcher>>,
    pub(super) out: mpsc::Sender<SourceBatch>,
    pub(super) resume: Mutex<SourceOffsets>,
    /// Whether the worker has paused consumption (shared with [`Worker`](super::worker::Worker)).
    pub(super) paused: Arc<AtomicBool>,
    pub(super) drain_timeout: Duration,
    pub(super) metrics: CollectorMetrics,
}

impl ClientContext for Context {}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        let revoked: Vec<TopicPartition> = list
            .elements()
            .iter()
            .map(|e| TopicPartition::new(e.topic(), e.partition()))
            .collect();
        tracing::info!(partitions = ?revoked, "partitions revoked: draining");
        let ready = {
            let mut batcher = self.batcher.lock().unwrap_or_else(PoisonError::into_inner);
            let mut ready = batcher.flush();
            // The revoked partitions' builders go with them (their buffers included).
            ready.extend(batcher.release(&revoked));
            ready
        };
        for b in ready {
            if self.out.blocking_send(b).is_err() {
                break;
            }
        }
        let settled = self
            .tracker
            .wait_settled(Some(&revoked), self.drain_timeout);
        if !settled {
            tracing::warn!(
                "drain timed out: unabsorbed events of revoked partitions will be read again by their next owner"
            );
        }
        commit(consumer, &self.tracker, &self.metrics);
        for tp in &revoked {
            self.tracker.revoke(tp);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(list) = rebalance else {
            return;
        };
        // The checkpoint's position holds for the first assignment after the start only; later
        // ones start from the group's committed offsets.
        let mut resume = self.resume.lock().unwrap_or_else(PoisonError::into_inner);
        let mut resumed = Vec::new();
        for e in list.elements() {
            let tp = TopicPartition::new(e.topic(), e.partition());
            let position = resume.take(&tp);
            if let Some(p) = &position {
                resumed.push((tp.clone(), p.watermark));
            }
            self.tracker.assign(&tp, position.as_ref());
        }
        // librdkafka keeps an application pause across unassign and assign: give the new
        // partitions the current backpressure state.
        let result = if self.paused.load(Ordering::SeqCst) {
            consumer.pause(list)
        } else {
            consumer.resume(list)
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot apply the backpressure state to new partitions");
        }
        tracing::info!(partitions = list.count(), from_checkpoint = ?resumed, "partitions assigned");
    }
}
