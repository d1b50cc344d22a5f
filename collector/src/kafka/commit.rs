//! Offset commits: the durable watermarks the broker has not accepted yet, committed
//! synchronously.

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use telemetry::Emit;

use crate::offsets::OffsetTracker;
use crate::telemetry::CollectorMetrics;
use crate::telemetry::events::CommitFailed;

/// Commits the durable watermarks not committed yet, synchronously: the tracker records an
/// offset as committed only once the broker has accepted it. (An asynchronous commit returns
/// before the broker answers; one rejected during a group generation change was recorded as
/// committed and never retried, leaving the group's offsets short of the absorbed ones.) The
/// consumer thread blocks for the commit's round trip once per `commit_interval` (up to the
/// session timeout while no group coordinator is reachable).
pub(super) fn commit<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    tracker: &OffsetTracker,
    metrics: &CollectorMetrics,
) {
    let todo = tracker.to_commit();
    if todo.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for (tp, offset) in &todo {
        if list
            .add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*offset))
            .is_err()
        {
            return;
        }
    }
    match consumer.commit(&list, CommitMode::Sync) {
        Ok(()) => tracker.committed(&todo),
        Err(e) => metrics.emit(CommitFailed { error: &e }),
    }
}
