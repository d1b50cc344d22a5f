//! Batching decoded events into per-model Arrow record batches, by size and by time.
//!
//! A batch leaves when it holds `max_events` events or its oldest event has waited `max_wait`.
//! Each batch carries the source offsets of the messages whose events it holds; downstream calls
//! [`SourceBatch::acknowledge`] once the batch is absorbed, which completes those offsets in the
//! [`OffsetTracker`]. A batch dropped without acknowledgement leaves its offsets pending, so they
//! are never committed and are read again after a restart.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::batch::{BatchStats, FeatureSchema, to_record_batch};
use crate::event::PredictionEvent;
use crate::offsets::{OffsetTracker, TopicPartition};

/// When a batch leaves the batcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Most events per batch (default 4096).
    pub max_events: usize,
    /// Longest time the first event of a batch waits for more (default `500ms`).
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// Batches buffered between the sources and the analyzer (default 16). When they are all
    /// taken, Kafka partitions are paused and HTTP ingest answers 503: memory stays bounded.
    pub channel_capacity: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_events: 4096,
            max_wait: Duration::from_millis(500),
            channel_capacity: 16,
        }
    }
}

/// Feature schemas per model: fixed ones from reference profiles, inferred ones for other models
/// (from their first batch, then kept so columns stay stable).
#[derive(Debug, Clone, Default)]
pub struct SchemaRegistry {
    schemas: Arc<RwLock<HashMap<String, FeatureSchema>>>,
}

impl SchemaRegistry {
    /// A registry with the given fixed schemas.
    pub fn new(fixed: HashMap<String, FeatureSchema>) -> Self {
        Self {
            schemas: Arc::new(RwLock::new(fixed)),
        }
    }

    /// The schema of `model`, inferring it from `events` the first time.
    pub fn schema_for(&self, model: &str, events: &[PredictionEvent]) -> FeatureSchema {
        if let Ok(map) = self.schemas.read()
            && let Some(s) = map.get(model)
        {
            return s.clone();
        }
        let inferred = FeatureSchema::infer(events);
        if let Ok(mut map) = self.schemas.write() {
            return map.entry(model.to_string()).or_insert(inferred).clone();
        }
        inferred
    }
}

/// A record batch of one model, on its way to the analyzer.
#[derive(Debug)]
pub struct SourceBatch {
    /// The model all events belong to.
    pub model: String,
    /// The events, with the layout of [`analyzer::event_schema`].
    pub batch: RecordBatch,
    /// Values that did not fit the schema.
    pub stats: BatchStats,
    /// Where the events came from (`kafka`, `http`, `memory`), for metrics.
    pub source: &'static str,
    offsets: Vec<(TopicPartition, i64)>,
    tracker: Option<OffsetTracker>,
}

impl SourceBatch {
    /// A batch without offsets (HTTP, tests).
    pub fn unacknowledged(
        model: String,
        batch: RecordBatch,
        stats: BatchStats,
        source: &'static str,
    ) -> Self {
        Self {
            model,
            batch,
            stats,
            source,
            offsets: Vec::new(),
            tracker: None,
        }
    }

    /// The source offsets the batch holds events of.
    pub fn offsets(&self) -> &[(TopicPartition, i64)] {
        &self.offsets
    }

    /// The batch is absorbed downstream: its offsets may complete.
    pub fn acknowledge(self) {
        if let Some(t) = &self.tracker {
            t.complete(&self.offsets);
        }
    }
}

#[derive(Debug)]
struct Builder {
    events: Vec<PredictionEvent>,
    offsets: Vec<(TopicPartition, i64)>,
    since: Instant,
}

/// Accumulates events per model and cuts batches.
#[derive(Debug)]
pub struct Batcher {
    config: BatchConfig,
    schemas: SchemaRegistry,
    tracker: Option<OffsetTracker>,
    source: &'static str,
    builders: HashMap<String, Builder>,
}

impl Batcher {
    /// A batcher for one source; `tracker` is the source's offset tracker, if it has offsets.
    pub fn new(
        config: BatchConfig,
        schemas: SchemaRegistry,
        tracker: Option<OffsetTracker>,
        source: &'static str,
    ) -> Self {
        Self {
            config,
            schemas,
            tracker,
            source,
            builders: HashMap::new(),
        }
    }

    /// Adds the events of one message (or of a request/response pair) with the offsets they came
    /// from. Each batch that receives some of the events becomes a holder of those offsets; the
    /// caller still completes its own hold. Returns the batches that became full.
    pub fn push(
        &mut self,
        events: Vec<PredictionEvent>,
        offsets: &[(TopicPartition, i64)],
    ) -> Vec<SourceBatch> {
        let now = Instant::now();
        let mut touched: Vec<String> = Vec::new();
        for e in events {
            // Look up before inserting: the model name is copied once per model, not per event.
            if !self.builders.contains_key(&e.model) {
                self.builders.insert(
                    e.model.clone(),
                    Builder {
                        events: Vec::new(),
                        offsets: Vec::new(),
                        since: now,
                    },
                );
            }
            let Some(b) = self.builders.get_mut(&e.model) else {
                continue;
            };
            if b.events.is_empty() {
                b.since = now;
            }
            if !touched.contains(&e.model) {
                touched.push(e.model.clone());
            }
            b.events.push(e);
        }
        for model in &touched {
            if let Some(b) = self.builders.get_mut(model) {
                b.offsets.extend_from_slice(offsets);
                if let Some(t) = &self.tracker {
                    t.hold(offsets);
                }
            }
        }
        let full: Vec<String> = touched
            .into_iter()
            .filter(|m| {
                self.builders
                    .get(m)
                    .is_some_and(|b| b.events.len() >= self.config.max_events)
            })
            .collect();
        full.into_iter().filter_map(|m| self.cut(&m)).collect()
    }

    /// Batches whose oldest event has waited `max_wait`.
    pub fn due(&mut self) -> Vec<SourceBatch> {
        let now = Instant::now();
        let due: Vec<String> = self
            .builders
            .iter()
            .filter(|(_, b)| {
                !b.events.is_empty() && now.duration_since(b.since) >= self.config.max_wait
            })
            .map(|(m, _)| m.clone())
            .collect();
        due.into_iter().filter_map(|m| self.cut(&m)).collect()
    }

    /// Every non-empty batch, now (shutdown, rebalance).
    pub fn flush(&mut self) -> Vec<SourceBatch> {
        let models: Vec<String> = self.builders.keys().cloned().collect();
        models.into_iter().filter_map(|m| self.cut(&m)).collect()
    }

    /// Events waiting in the batcher.
    pub fn buffered(&self) -> usize {
        self.builders.values().map(|b| b.events.len()).sum()
    }

    fn cut(&mut self, model: &str) -> Option<SourceBatch> {
        let b = self.builders.get_mut(model)?;
        if b.events.is_empty() {
            return None;
        }
        // The next batch of this model likely fills as this one did: reserve its size once
        // rather than growing (and copying) the buffer a dozen times on the way to `max_events`.
        let next = Vec::with_capacity(b.events.len());
        let events = std::mem::replace(&mut b.events, next);
        let offsets = std::mem::take(&mut b.offsets);
        let schema = self.schemas.schema_for(model, &events);
        match to_record_batch(&events, &schema) {
            Ok((batch, stats)) => Some(SourceBatch {
                model: model.to_string(),
                batch,
                stats,
                source: self.source,
                offsets,
                tracker: self.tracker.clone(),
            }),
            Err(e) => {
                // Arrow refused the columns (a bug, not bad data): drop the batch but never stall
                // the partition.
                tracing::error!(model, error = %e, "cannot build a record batch; dropping {} events", events.len());
                if let Some(t) = &self.tracker {
                    t.complete(&offsets);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(model: &str, t: i64) -> PredictionEvent {
        serde_json::from_str(&format!(
            r#"{{"timestamp": {t}, "model": "{model}", "features": {{"x": {t}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn batches_by_size_per_model_and_offsets_complete_after_every_holder() {
        let tracker = OffsetTracker::new();
        let tp = TopicPartition::new("t", 0);
        tracker.assign(&tp, None);
        let config = BatchConfig {
            max_events: 2,
            ..BatchConfig::default()
        };
        let mut b = Batcher::new(
            config,
            SchemaRegistry::default(),
            Some(tracker.clone()),
            "kafka",
        );
        // Message 0 holds events of models a and b.
        tracker.observe(&tp, 0);
        let out = b.push(vec![event("a", 1), event("b", 2)], &[(tp.clone(), 0)]);
        assert!(out.is_empty());
        tracker.complete(&[(tp.clone(), 0)]); // the consumer's own hold
        tracker.observe(&tp, 1);
        let out = b.push(vec![event("a", 3)], &[(tp.clone(), 1)]);
        tracker.complete(&[(tp.clone(), 1)]);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].model.as_str(), out[0].batch.num_rows()), ("a", 2));
        out.into_iter().for_each(SourceBatch::acknowledge);
        // Offset 0 still waits for model b's batch.
        assert_eq!(tracker.snapshot().get(&tp).unwrap().watermark, 0);
        let rest = b.flush();
        assert_eq!(rest.len(), 1);
        rest.into_iter().for_each(SourceBatch::acknowledge);
        assert_eq!(tracker.snapshot().get(&tp).unwrap().watermark, 2);
    }

    #[test]
    fn batches_by_time() {
        let config = BatchConfig {
            max_events: 100,
            max_wait: Duration::from_millis(0),
            ..BatchConfig::default()
        };
        let mut b = Batcher::new(config, SchemaRegistry::default(), None, "http");
        assert!(b.push(vec![event("a", 1)], &[]).is_empty());
        let due = b.due();
        assert_eq!(due.len(), 1);
        assert_eq!(b.buffered(), 0);
    }
}
