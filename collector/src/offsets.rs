//! Offset tracking for at-least-once delivery (exactly-once with the checkpoint).
//!
//! Every Kafka message's offset is *pending* from the moment it is read until the batch holding
//! its events is *absorbed* downstream (or it was dead-lettered, skipped, or its pairing expired).
//! Because events of one partition spread over several per-model batches that complete out of
//! order, absorbed offsets are not a prefix: per partition the tracker keeps the pending offsets and
//! the absorbed ones above the *watermark* (the first offset not yet absorbed).
//!
//! Absorbing is not enough to commit: the analyzer's state must be *durable* first. The analyzer
//! takes a [`SourceOffsets`] together with its state, writes both in one checkpoint, then calls
//! [`OffsetTracker::mark_durable`]; only durable watermarks are committed to Kafka. After a crash
//! the consumer resumes at the checkpoint's watermarks and skips the absorbed offsets above them,
//! so nothing is lost and nothing is counted twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use types::offsets::{PartitionPosition, SourceOffsets, TopicPartition};

#[derive(Debug, Default)]
struct PartitionState {
    /// Lowest offset this process may still have to absorb (start of the assignment).
    start: Option<i64>,
    /// Pending offsets with the number of holders (batches) each waits for.
    pending: BTreeMap<i64, u32>,
    absorbed: BTreeSet<i64>,
    /// Highest offset read + 1.
    next: i64,
    /// Offsets to skip: absorbed before a restart (from the checkpoint).
    skip: BTreeSet<i64>,
    durable_watermark: Option<i64>,
    committed: Option<i64>,
}

impl PartitionState {
    fn watermark(&self) -> i64 {
        match self.pending.first_key_value() {
            Some((&p, _)) => p,
            None => self.next.max(self.start.unwrap_or(0)),
        }
    }

    fn position(&self) -> PartitionPosition {
        let w = self.watermark();
        PartitionPosition {
            watermark: w,
            absorbed_above: self.absorbed.range(w..).copied().collect(),
        }
    }

    fn compact(&mut self) {
        let w = self.watermark();
        self.absorbed = self.absorbed.split_off(&w);
    }
}

#[derive(Debug, Default)]
struct Inner {
    partitions: BTreeMap<TopicPartition, PartitionState>,
}

/// Shared offset bookkeeping between the consumer thread, the downstream acknowledgements and the
/// checkpointing analyzer. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct OffsetTracker {
    inner: Arc<(Mutex<Inner>, Condvar)>,
}

/// The outcome of [`OffsetTracker::observe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// New: process it and complete it later.
    Process,
    /// Already absorbed before a restart: skip it (it is complete).
    Skip,
    /// The partition is not assigned to this consumer any more: drop it.
    NotAssigned,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A partition was assigned. `resume` is its checkpointed position, if any: offsets absorbed
    /// above the watermark are skipped when they arrive again.
    pub fn assign(&self, tp: &TopicPartition, resume: Option<&PartitionPosition>) {
        let mut inner = self.lock();
        let state = inner.partitions.entry(tp.clone()).or_default();
        *state = PartitionState::default();
        if let Some(r) = resume {
            state.start = Some(r.watermark);
            state.next = r.watermark;
            state.skip = r.absorbed_above.iter().copied().collect();
            state.durable_watermark = Some(r.watermark);
        }
    }

    /// A partition was revoked: forget it; later completions for it are ignored (its offsets are
    /// never committed by this consumer again).
    pub fn revoke(&self, tp: &TopicPartition) {
        self.lock().partitions.remove(tp);
        self.inner.1.notify_all();
    }

    /// Partitions currently assigned.
    pub fn assigned(&self) -> Vec<TopicPartition> {
        self.lock().partitions.keys().cloned().collect()
    }

    /// A message at `offset` was read.
    pub fn observe(&self, tp: &TopicPartition, offset: i64) -> Observed {
        let mut inner = self.lock();
        let Some(state) = inner.partitions.get_mut(tp) else {
            return Observed::NotAssigned;
        };
        match state.start {
            // Below the resume point: absorbed before the restart.
            Some(start) if offset < start => return Observed::Skip,
            Some(_) => {}
            None => state.start = Some(offset),
        }
        state.next = state.next.max(offset + 1);
        if state.skip.remove(&offset) {
            state.absorbed.insert(offset);
            state.compact();
            return Observed::Skip;
        }
        state.pending.insert(offset, 1);
        Observed::Process
    }

    /// Adds one holder to each offset: a batch now carries events of that message, so the offset
    /// completes only when every holder has completed it.
    pub fn hold(&self, offsets: &[(TopicPartition, i64)]) {
        let mut inner = self.lock();
        for (tp, offset) in offsets {
            if let Some(n) = inner
                .partitions
                .get_mut(tp)
                .and_then(|s| s.pending.get_mut(offset))
            {
                *n += 1;
            }
        }
    }

    /// One holder of each offset is done: its batch was absorbed, or the message was
    /// dead-lettered, skipped or its pairing expired. An offset is absorbed when its last holder
    /// completes it.
    pub fn complete(&self, offsets: &[(TopicPartition, i64)]) {
        let mut inner = self.lock();
        for (tp, offset) in offsets {
            let Some(state) = inner.partitions.get_mut(tp) else {
                continue;
            };
            let Some(n) = state.pending.get_mut(offset) else {
                continue;
            };
            *n -= 1;
            if *n == 0 {
                state.pending.remove(offset);
                state.absorbed.insert(*offset);
            }
        }
        for state in inner.partitions.values_mut() {
            state.compact();
        }
        drop(inner);
        self.inner.1.notify_all();
    }

    /// The absorbed position of every assigned partition, to save with the downstream state.
    pub fn snapshot(&self) -> SourceOffsets {
        let inner = self.lock();
        SourceOffsets {
            partitions: inner
                .partitions
                .iter()
                .map(|(tp, s)| (SourceOffsets::key(tp), s.position()))
                .collect(),
        }
    }

    /// The state covering `snapshot` is durable: its watermarks may be committed.
    pub fn mark_durable(&self, snapshot: &SourceOffsets) {
        let mut inner = self.lock();
        for (tp, pos) in snapshot.iter() {
            if let Some(state) = inner.partitions.get_mut(&tp) {
                let w = state
                    .durable_watermark
                    .map_or(pos.watermark, |d| d.max(pos.watermark));
                state.durable_watermark = Some(w);
            }
        }
        drop(inner);
        self.inner.1.notify_all();
    }

    /// Durable watermarks not yet committed (the caller commits them, then calls
    /// [`Self::committed`]).
    pub fn to_commit(&self) -> Vec<(TopicPartition, i64)> {
        let inner = self.lock();
        inner
            .partitions
            .iter()
            .filter_map(|(tp, s)| {
                let d = s.durable_watermark?;
                (s.committed != Some(d)).then(|| (tp.clone(), d))
            })
            .collect()
    }

    /// These offsets were committed.
    pub fn committed(&self, offsets: &[(TopicPartition, i64)]) {
        let mut inner = self.lock();
        for (tp, o) in offsets {
            if let Some(s) = inner.partitions.get_mut(tp) {
                s.committed = Some(*o);
            }
        }
    }

    /// Offsets still pending for these partitions (all partitions when `None`).
    pub fn pending(&self, partitions: Option<&[TopicPartition]>) -> usize {
        let inner = self.lock();
        inner
            .partitions
            .iter()
            .filter(|(tp, _)| partitions.is_none_or(|ps| ps.contains(tp)))
            .map(|(_, s)| s.pending.len())
            .sum()
    }

    /// Whether everything read from these partitions is absorbed and durable.
    fn settled(inner: &Inner, partitions: Option<&[TopicPartition]>) -> bool {
        inner
            .partitions
            .iter()
            .filter(|(tp, _)| partitions.is_none_or(|ps| ps.contains(tp)))
            .all(|(_, s)| {
                s.pending.is_empty() && s.durable_watermark.is_some_and(|d| d >= s.watermark())
                    || s.start.is_none()
            })
    }

    /// Blocks until every offset read from `partitions` (all when `None`) is absorbed and durable,
    /// or `timeout` passes. Returns whether it settled.
    pub fn wait_settled(&self, partitions: Option<&[TopicPartition]>, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            if Self::settled(&inner, partitions) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            inner = self
                .inner
                .1
                .wait_timeout(inner, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition::new("events", 0)
    }

    #[test]
    fn watermark_is_the_first_unabsorbed_offset() {
        let t = OffsetTracker::new();
        t.assign(&tp(), None);
        for o in 0..5 {
            assert_eq!(t.observe(&tp(), o), Observed::Process);
        }
        // Out-of-order completion (two per-model batches).
        t.complete(&[(tp(), 0), (tp(), 1), (tp(), 3)]);
        let snap = t.snapshot();
        let pos = snap.get(&tp()).unwrap();
        assert_eq!(pos.watermark, 2);
        assert_eq!(pos.absorbed_above, vec![3]);
        // Nothing is committed before the state is durable.
        assert!(t.to_commit().is_empty());
        t.mark_durable(&snap);
        assert_eq!(t.to_commit(), vec![(tp(), 2)]);
    }

    #[test]
    fn e21_restart_resumes_at_the_watermark_and_skips_absorbed_offsets() {
        // Offsets 0-4 in flight; 0, 1 and 3 absorbed and checkpointed; the process dies.
        let before = OffsetTracker::new();
        before.assign(&tp(), None);
        (0..5).for_each(|o| {
            before.observe(&tp(), o);
        });
        before.complete(&[(tp(), 0), (tp(), 1), (tp(), 3)]);
        let checkpoint = before.snapshot();

        let after = OffsetTracker::new();
        after.assign(&tp(), checkpoint.get(&tp()));
        // The consumer seeks to the watermark (2) and reads 2, 3, 4 again.
        assert_eq!(after.observe(&tp(), 2), Observed::Process);
        assert_eq!(after.observe(&tp(), 3), Observed::Skip);
        assert_eq!(after.observe(&tp(), 4), Observed::Process);
        after.complete(&[(tp(), 2), (tp(), 4)]);
        assert_eq!(after.snapshot().get(&tp()).unwrap().watermark, 5);
    }

    #[test]
    fn revoked_partitions_are_never_committed() {
        let t = OffsetTracker::new();
        t.assign(&tp(), None);
        t.observe(&tp(), 0);
        t.revoke(&tp());
        t.complete(&[(tp(), 0)]);
        t.mark_durable(&SourceOffsets {
            partitions: BTreeMap::from([(
                "events/0".into(),
                PartitionPosition {
                    watermark: 1,
                    absorbed_above: vec![],
                },
            )]),
        });
        assert!(t.to_commit().is_empty());
        assert_eq!(t.observe(&tp(), 1), Observed::NotAssigned);
    }

    #[test]
    fn wait_settled_returns_when_durable() {
        let t = OffsetTracker::new();
        t.assign(&tp(), None);
        t.observe(&tp(), 0);
        assert!(!t.wait_settled(None, Duration::from_millis(10)));
        let t2 = t.clone();
        let h = std::thread::spawn(move || {
            t2.complete(&[(tp(), 0)]);
            let s = t2.snapshot();
            t2.mark_durable(&s);
        });
        assert!(t.wait_settled(None, Duration::from_secs(5)));
        h.join().unwrap();
    }
}
