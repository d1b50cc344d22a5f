//! Batching decoded events into per-model Arrow record batches, by size and by time.
//!
//! A batch leaves when it holds `max_events` events or its oldest event has waited `max_wait`.
//! Each batch carries the source offsets of the messages whose events it holds; downstream calls
//! [`SourceBatch::acknowledge`] once the batch is absorbed, which completes those offsets in the
//! [`OffsetTracker`]. A batch dropped without acknowledgement leaves its offsets pending, so they
//! are never committed and are read again after a restart.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::batch::{BatchBuilder, BatchStats, FeatureSchema, to_record_batch};
use crate::decode::json::{BadEvent, Decoded, decode_each};
use crate::decode::{DecodeError, DecodeReason};
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

/// Default of [`SchemaRegistry::with_max_discovered_models`]: models without a configured profile
/// that may create state and series.
pub const DEFAULT_MAX_DISCOVERED_MODELS: usize = 100;

/// Feature schemas per model, and which models may create state at all.
///
/// Configured models (those with a reference profile) have fixed schemas and are always admitted.
/// Other models are *discovered*: admitted on their first event, with a schema inferred from their
/// first batch, up to a cap ([`SchemaRegistry::with_max_discovered_models`], default
/// [`DEFAULT_MAX_DISCOVERED_MODELS`]). Events of any further model are refused with the reason
/// `unknown_model`, so distinct `model` values cannot grow the service's state and series without
/// bound (issue 19, finding 3). Cloning shares the registry.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    schemas: Arc<RwLock<HashMap<String, FeatureSchema>>>,
    /// Models admitted without a profile, in admission order.
    discovered: Arc<RwLock<HashSet<String>>>,
    max_discovered: usize,
}

impl Default for SchemaRegistry {
    fn default() -> Self {
        Self::new(HashMap::new())
    }
}

impl SchemaRegistry {
    /// A registry with the given fixed schemas (the configured models).
    pub fn new(fixed: HashMap<String, FeatureSchema>) -> Self {
        Self {
            schemas: Arc::new(RwLock::new(fixed)),
            discovered: Arc::default(),
            max_discovered: DEFAULT_MAX_DISCOVERED_MODELS,
        }
    }

    /// Admits at most `max` models without a fixed schema (0: configured models only).
    pub fn with_max_discovered_models(mut self, max: usize) -> Self {
        self.max_discovered = max;
        self
    }

    /// Admits `model`: a configured one, one discovered before, or a new one while fewer than the
    /// cap are discovered (it is then recorded as discovered).
    ///
    /// # Errors
    /// `unknown_model` when the model is not configured and the cap is reached.
    pub fn admit(&self, model: &str) -> Result<(), DecodeError> {
        self.admit_all(&[model]).map_err(|(_, e)| e)
    }

    /// Admits every model of `models` or none: when the new ones among them do not all fit under
    /// the cap, nothing is recorded and the error names the first that does not fit, with its
    /// index in `models` (review found a refused request keeping its earlier new models'
    /// slots).
    ///
    /// # Errors
    /// `(index, unknown_model)`.
    pub fn admit_all(&self, models: &[&str]) -> Result<(), (usize, DecodeError)> {
        let schemas = self.schemas.read().unwrap_or_else(PoisonError::into_inner);
        let known = |m: &str, discovered: &HashSet<String>| {
            schemas.contains_key(m) || discovered.contains(m)
        };
        {
            let discovered = self
                .discovered
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            // One lookup per run of equal models (a request is mostly one model), not per event.
            let mut last = None;
            let all_known = models.iter().all(|&m| {
                let same = last == Some(m);
                last = Some(m);
                same || known(m, &discovered)
            });
            if all_known {
                return Ok(());
            }
        }
        let mut discovered = self
            .discovered
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut new: Vec<&str> = Vec::new();
        for (i, &m) in models.iter().enumerate() {
            if known(m, &discovered) || new.contains(&m) {
                continue;
            }
            if discovered.len() + new.len() >= self.max_discovered {
                let shown: String = m.chars().take(64).collect();
                return Err((
                    i,
                    DecodeError::new(
                        DecodeReason::UnknownModel,
                        format!(
                            "model `{shown}` has no profile in the configuration (`[[models]]`) and the {} models this service may discover without one are taken (`admission.max_discovered_models`)",
                            self.max_discovered
                        ),
                    ),
                ));
            }
            new.push(m);
        }
        discovered.extend(new.into_iter().map(str::to_string));
        Ok(())
    }

    /// The schema of `model` if it is known (fixed, or inferred before).
    pub fn get(&self, model: &str) -> Option<FeatureSchema> {
        self.schemas.read().ok()?.get(model).cloned()
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
    /// The events, with the layout of [`types::event`].
    pub batch: RecordBatch,
    /// Values that did not fit the schema.
    pub stats: BatchStats,
    /// Where the events came from (`kafka`, `http`, `memory`), for metrics.
    pub source: &'static str,
    /// The one source partition all its events came from (Kafka, or HTTP's write-ahead log);
    /// `None` without offsets.
    pub partition: Option<TopicPartition>,
    offsets: Vec<(TopicPartition, i64)>,
    tracker: Option<OffsetTracker>,
}

impl SourceBatch {
    /// The source the analyzer keeps a watermark for: `kafka:topic/partition`, `http`, or the
    /// source name without a partition.
    pub fn watermark_source(&self) -> String {
        match &self.partition {
            Some(tp) if self.source == "kafka" => format!("kafka:{}/{}", tp.topic, tp.partition),
            _ => self.source.to_string(),
        }
    }

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
            partition: None,
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

/// One model's batch in the making.
#[derive(Debug)]
struct Builder {
    model: String,
    /// The source partition of its events (Kafka; HTTP's write-ahead log), so that every batch
    /// comes from one partition and the analyzer can keep a watermark per source.
    partition: Option<TopicPartition>,
    /// The columns, once the model's schema is known (fixed, or inferred from its first batch).
    columns: Option<BatchBuilder>,
    /// Events of a model whose schema is not known yet: its first batch, kept whole to infer the
    /// schema from.
    pending: Vec<PredictionEvent>,
    offsets: Vec<(TopicPartition, i64)>,
    since: Instant,
    /// Whether the message being pushed had events of this model.
    touched: bool,
}

impl Builder {
    fn len(&self) -> usize {
        self.pending.len() + self.columns.as_ref().map_or(0, BatchBuilder::len)
    }
}

/// Accumulates events per model and cuts batches.
///
/// Events go straight into their model's Arrow column builders ([`BatchBuilder`]) as they arrive,
/// so no event is kept whole; only a model without a known schema keeps its first batch of
/// events, to infer the schema from.
#[derive(Debug)]
pub struct Batcher {
    config: BatchConfig,
    schemas: SchemaRegistry,
    tracker: Option<OffsetTracker>,
    source: &'static str,
    builders: Vec<Builder>,
    /// Model name to the indices in `builders` of its builders, one per source partition.
    index: HashMap<String, Vec<usize>>,
    /// The partition of the message being pushed.
    partition: Option<TopicPartition>,
    /// The builder of the last event (consecutive events are mostly of one model).
    last: Option<usize>,
    /// Builders the current message touched.
    touched: Vec<usize>,
    /// Events refused since the last [`Batcher::take_refused`] (unknown models), with their
    /// 1-based position in their message.
    refused: Vec<BadEvent>,
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
            builders: Vec::new(),
            index: HashMap::new(),
            partition: None,
            last: None,
            touched: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// Whether events of `model` may be pushed ([`SchemaRegistry::admit`]; admits a new model
    /// while the discovery cap allows).
    ///
    /// # Errors
    /// `unknown_model`.
    pub fn admit(&self, model: &str) -> Result<(), DecodeError> {
        self.schemas.admit(model)
    }

    /// [`SchemaRegistry::admit_all`]: every model of `models` or none.
    ///
    /// # Errors
    /// `(index, unknown_model)`.
    pub fn admit_all(&self, models: &[&str]) -> Result<(), (usize, DecodeError)> {
        self.schemas.admit_all(models)
    }

    /// Events [`Batcher::push`] refused since the last call (their model was not admitted, see
    /// [`SchemaRegistry::admit`]), with their 1-based position in the pushed list.
    pub fn take_refused(&mut self) -> Vec<BadEvent> {
        std::mem::take(&mut self.refused)
    }

    /// Adds the events of one message (or of a request/response pair) with the offsets they came
    /// from. Each batch that receives some of the events becomes a holder of those offsets; the
    /// caller still completes its own hold. Returns the batches that became full. Events of a
    /// model that is not admitted are refused and kept for [`Batcher::take_refused`].
    pub fn push(
        &mut self,
        events: Vec<PredictionEvent>,
        offsets: &[(TopicPartition, i64)],
    ) -> Vec<SourceBatch> {
        let now = Instant::now();
        self.partition = offsets.first().map(|(tp, _)| tp.clone());
        for (i, e) in events.into_iter().enumerate() {
            if let Err(error) = self.add(Decoded::Owned(e), now) {
                self.refused.push(BadEvent { line: i + 1, error });
            }
        }
        self.end_message(offsets)
    }

    /// Decodes one message of driftwatch JSON events ([`decode_each`]) straight into the batches,
    /// with the offsets it came from, as [`Self::push`] does with decoded events. Returns the
    /// batches that became full, the bad events (line and error, as [`decode_events`] names
    /// them), and how many events were good.
    ///
    /// [`decode_events`]: crate::decode::json::decode_events
    ///
    /// # Errors
    /// As [`decode_each`]: the whole message is not JSON; nothing was added.
    pub fn push_json(
        &mut self,
        payload: &[u8],
        offsets: &[(TopicPartition, i64)],
    ) -> Result<PushedJson, DecodeError> {
        let now = Instant::now();
        self.partition = offsets.first().map(|(tp, _)| tp.clone());
        let mut good = 0;
        let mut refused = Vec::new();
        let mut bad = decode_each(payload, |line, event| match self.add(event, now) {
            Ok(()) => good += 1,
            Err(error) => refused.push(BadEvent { line, error }),
        })?;
        if !refused.is_empty() {
            bad.extend(refused);
            bad.sort_by_key(|b| b.line);
        }
        let ready = self.end_message(offsets);
        Ok(PushedJson { ready, bad, good })
    }

    /// Appends one event to its model's batch.
    ///
    /// # Errors
    /// `unknown_model` when the event's model is new and not admitted ([`SchemaRegistry::admit`]);
    /// nothing is kept of the event.
    fn add(&mut self, event: Decoded<'_>, now: Instant) -> Result<(), DecodeError> {
        let fields = event.fields();
        let partition = &self.partition;
        let builders = &self.builders;
        let found = match self.last {
            Some(i) if builders[i].model == fields.model && builders[i].partition == *partition => {
                Some(i)
            }
            _ => self.index.get(fields.model).and_then(|ids| {
                ids.iter()
                    .copied()
                    .find(|&i| builders[i].partition == *partition)
            }),
        };
        let i = match found {
            Some(i) => i,
            None => {
                if !self.index.contains_key(fields.model) {
                    self.schemas.admit(fields.model)?;
                }
                let model = fields.model.to_string();
                let columns = self.schemas.get(&model).map(|s| BatchBuilder::new(&s, 0));
                self.builders.push(Builder {
                    model: model.clone(),
                    partition: self.partition.clone(),
                    columns,
                    pending: Vec::new(),
                    offsets: Vec::new(),
                    since: now,
                    touched: false,
                });
                let i = self.builders.len() - 1;
                self.index.entry(model).or_default().push(i);
                i
            }
        };
        self.last = Some(i);
        let b = &mut self.builders[i];
        if b.len() == 0 {
            b.since = now;
        }
        if !b.touched {
            b.touched = true;
            self.touched.push(i);
        }
        match &mut b.columns {
            Some(columns) => {
                let appended = match &event {
                    Decoded::Borrowed(e) => columns.append(&fields, e.feature_views()),
                    Decoded::Owned(e) => columns.append(&fields, e.feature_views()),
                };
                if let Err(e) = appended {
                    // Arrow refused a value (a bug, not bad data); the batch fails when cut.
                    tracing::error!(model = %b.model, error = %e, "cannot append an event to a record batch");
                }
            }
            None => b.pending.push(event.into_owned()),
        }
        Ok(())
    }

    /// Ends a message: the touched batches hold its offsets; returns the batches that are full.
    fn end_message(&mut self, offsets: &[(TopicPartition, i64)]) -> Vec<SourceBatch> {
        let touched = std::mem::take(&mut self.touched);
        let mut full = Vec::new();
        for &i in &touched {
            let b = &mut self.builders[i];
            b.touched = false;
            b.offsets.extend_from_slice(offsets);
            if let Some(t) = &self.tracker {
                t.hold(offsets);
            }
            if b.len() >= self.config.max_events {
                full.extend(self.cut(i));
            }
        }
        self.touched = touched;
        self.touched.clear();
        full
    }

    /// Batches whose oldest event has waited `max_wait`.
    pub fn due(&mut self) -> Vec<SourceBatch> {
        let now = Instant::now();
        (0..self.builders.len())
            .filter(|&i| {
                let b = &self.builders[i];
                b.len() > 0 && now.duration_since(b.since) >= self.config.max_wait
            })
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|i| self.cut(i))
            .collect()
    }

    /// Every non-empty batch, now (shutdown, rebalance).
    pub fn flush(&mut self) -> Vec<SourceBatch> {
        (0..self.builders.len())
            .filter_map(|i| self.cut(i))
            .collect()
    }

    /// A consumer gave up `partitions` (a Kafka rebalance revoked them): their pending events
    /// are cut into batches (returned, to send before the offsets are given up) and their
    /// builders dropped with the column buffers they reserved, so a consumer that sees many
    /// rebalances holds builders only for the partitions it owns (review finding M4).
    pub fn release(&mut self, partitions: &[TopicPartition]) -> Vec<SourceBatch> {
        let gone = |b: &Builder| b.partition.as_ref().is_some_and(|p| partitions.contains(p));
        let ready: Vec<SourceBatch> = (0..self.builders.len())
            .filter(|&i| gone(&self.builders[i]))
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|i| self.cut(i))
            .collect();
        self.builders.retain(|b| !gone(b));
        self.index.clear();
        for (i, b) in self.builders.iter().enumerate() {
            self.index.entry(b.model.clone()).or_default().push(i);
        }
        self.last = None;
        self.touched.clear();
        ready
    }

    /// Builders held: one per model and source partition that delivered events.
    pub fn builders(&self) -> usize {
        self.builders.len()
    }

    /// Events waiting in the batcher.
    pub fn buffered(&self) -> usize {
        self.builders.iter().map(Builder::len).sum()
    }

    fn cut(&mut self, i: usize) -> Option<SourceBatch> {
        let b = &mut self.builders[i];
        let n = b.len();
        if n == 0 {
            return None;
        }
        let offsets = std::mem::take(&mut b.offsets);
        // A model that filled its batch likely fills the next: its columns are reserved at this
        // size once rather than grown (and copied) a dozen times on the way. Any other model's
        // columns start empty, so idle models hold no buffers.
        let next = if n >= self.config.max_events { n } else { 0 };
        let built = match &mut b.columns {
            Some(columns) => columns.finish(next),
            None => {
                // The model's first batch: its schema is inferred from these events (or another
                // source registered one meanwhile), and its later events go straight to columns.
                let events = std::mem::take(&mut b.pending);
                let schema = self.schemas.schema_for(&b.model, &events);
                let built = to_record_batch(&events, &schema);
                b.columns = Some(BatchBuilder::new(&schema, next));
                built
            }
        };
        match built {
            Ok((batch, stats)) => Some(SourceBatch {
                model: b.model.clone(),
                partition: b.partition.clone(),
                batch,
                stats,
                source: self.source,
                offsets,
                tracker: self.tracker.clone(),
            }),
            Err(e) => {
                // Arrow refused the columns (a bug, not bad data): drop the batch but never stall
                // the partition.
                tracing::error!(model = %b.model, error = %e, "cannot build a record batch; dropping {n} events");
                if let Some(t) = &self.tracker {
                    t.complete(&offsets);
                }
                None
            }
        }
    }
}

/// What [`Batcher::push_json`] did with a message.
#[derive(Debug)]
pub struct PushedJson {
    /// Batches that became full.
    pub ready: Vec<SourceBatch>,
    /// Events that did not decode or validate, with their lines.
    pub bad: Vec<BadEvent>,
    /// Events added.
    pub good: usize,
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

    /// Review finding M4: a revoked partition's builders (and the column buffers a full batch
    /// reserved) were kept forever; `release` cuts their events into a batch and drops them.
    #[test]
    fn released_partitions_give_up_their_events_and_builders() {
        let mut b = Batcher::new(
            BatchConfig {
                max_events: 2,
                ..BatchConfig::default()
            },
            SchemaRegistry::default(),
            None,
            "kafka",
        );
        let (p0, p1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        // p0: one full batch (its columns are then reserved at 2) and one pending event.
        let full = b.push(vec![event("m", 1), event("m", 2)], &[(p0.clone(), 10)]);
        assert_eq!(full.len(), 1);
        assert!(b.push(vec![event("m", 3)], &[(p0.clone(), 11)]).is_empty());
        assert!(b.push(vec![event("m", 4)], &[(p1.clone(), 20)]).is_empty());
        assert_eq!((b.builders(), b.buffered()), (2, 2));

        let released = b.release(std::slice::from_ref(&p0));
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].batch.num_rows(), 1);
        assert_eq!(released[0].offsets(), [(p0.clone(), 11)]);
        assert_eq!((b.builders(), b.buffered()), (1, 1), "p1's builder stays");
        // The index was rebuilt: p1's next event joins its builder, p0's makes a new one.
        assert_eq!(b.push(vec![event("m", 5)], &[(p1.clone(), 21)]).len(), 1);
        assert!(b.push(vec![event("m", 6)], &[(p0, 12)]).is_empty());
        assert_eq!((b.builders(), b.buffered()), (2, 1));
    }

    /// Issue 19, finding 3: only configured models and, up to the cap, discovered ones create
    /// state; the others are refused with their position (push) or line (push_json).
    #[test]
    fn models_past_the_discovery_cap_are_refused_with_their_position() {
        let fixed = HashMap::from([(
            "configured".to_string(),
            FeatureSchema::new(vec![("x".into(), types::FeatureKind::Numeric)]),
        )]);
        let registry = SchemaRegistry::new(fixed).with_max_discovered_models(1);
        let mut b = Batcher::new(BatchConfig::default(), registry, None, "kafka");
        b.push(
            vec![
                event("configured", 1),
                event("new", 2),
                event("other", 3),
                event("new", 4),
            ],
            &[],
        );
        let refused = b.take_refused();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].line, 3);
        assert_eq!(refused[0].error.reason.as_str(), "unknown_model");
        assert!(b.take_refused().is_empty());
        assert_eq!(b.buffered(), 3);

        let payload = concat!(
            r#"{"timestamp": 5, "model": "third", "features": {"x": 5}}"#,
            "\n",
            r#"{"timestamp": 6, "model": "new", "features": {"x": 6}}"#,
            "\n",
            r#"{"timestamp": 7, "model": "configured", "features": {"x": "seven"}}"#,
        );
        let pushed = b.push_json(payload.as_bytes(), &[]).unwrap();
        assert_eq!(pushed.good, 2);
        let bad: Vec<(usize, &str)> = pushed
            .bad
            .iter()
            .map(|e| (e.line, e.error.reason.as_str()))
            .collect();
        assert_eq!(bad, [(1, "unknown_model")]);
        // An array's events are refused by their position.
        let array = r#"[{"timestamp": 1, "model": "x1", "features": {}}, {"model": "bad"}, {"timestamp": 1, "model": "x2", "features": {}}]"#;
        let pushed = b.push_json(array.as_bytes(), &[]).unwrap();
        let bad: Vec<(usize, &str)> = pushed
            .bad
            .iter()
            .map(|e| (e.line, e.error.reason.as_str()))
            .collect();
        assert_eq!(
            bad,
            [
                (1, "unknown_model"),
                (2, "missing_field"),
                (3, "unknown_model")
            ]
        );
        assert_eq!(pushed.good, 0);
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

    /// Issue 19, item 2: each batch holds events of one source partition (and names it), so the
    /// analyzer can keep a watermark per partition.
    #[test]
    fn batches_hold_one_partition_each() {
        let (p0, p1) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        let mut b = Batcher::new(
            BatchConfig {
                max_events: 2,
                ..BatchConfig::default()
            },
            SchemaRegistry::default(),
            None,
            "kafka",
        );
        assert!(b.push(vec![event("a", 1)], &[(p0.clone(), 0)]).is_empty());
        assert!(b.push(vec![event("a", 2)], &[(p1.clone(), 0)]).is_empty());
        let full = b.push(vec![event("a", 3)], &[(p0.clone(), 1)]);
        assert_eq!(full.len(), 1);
        assert_eq!(
            (
                full[0].partition.as_ref(),
                full[0].batch.num_rows(),
                full[0].offsets()
            ),
            (Some(&p0), 2, &[(p0.clone(), 0), (p0.clone(), 1)][..])
        );
        assert_eq!(full[0].watermark_source(), "kafka:t/0");
        let rest = b.flush();
        assert_eq!(rest.len(), 1);
        assert_eq!(
            (rest[0].partition.as_ref(), rest[0].batch.num_rows()),
            (Some(&p1), 1)
        );
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

    /// Batches of the NDJSON `lines` cut by `max_events` 2, through `push_json` (one message per
    /// line) or through `decode_events` and `push`.
    fn batches(
        lines: &[&str],
        schemas: SchemaRegistry,
        json: bool,
    ) -> Vec<(String, RecordBatch, BatchStats)> {
        let config = BatchConfig {
            max_events: 2,
            ..BatchConfig::default()
        };
        let mut b = Batcher::new(config, schemas, None, "kafka");
        let mut out = Vec::new();
        for line in lines {
            let ready = if json {
                b.push_json(line.as_bytes(), &[]).unwrap().ready
            } else {
                let events = crate::decode::json::decode_events(line.as_bytes())
                    .unwrap()
                    .events;
                b.push(events, &[])
            };
            out.extend(ready);
        }
        out.extend(b.flush());
        out.into_iter()
            .map(|s| (s.model, s.batch, s.stats))
            .collect()
    }

    #[test]
    fn json_straight_to_columns_equals_whole_events() {
        let lines = [
            r#"{"timestamp": 1, "model": "a", "features": {"x": 1.5, "c": "u"}, "prediction": 1, "confidence": 0.5}"#,
            r#"{"timestamp": 2, "model": "b", "features": {"y": true}}"#,
            r#"{"timestamp": 3, "model": "a", "model_version": "v2", "variant": "canary", "features": {"c": "w", "x": "bad", "z": 1}}"#,
            r#"{"timestamp": 4, "model": "a", "features": {}}"#,
            r#"{"timestamp": 5, "model": "a", "features": {"x": 2, "c": "\u0076"}, "latency_ms": 3}"#,
            r#"{"timestamp": 6, "model": "b", "features": {"y": false, "w": 2}}"#,
        ];
        // Model a has a fixed schema (columns from its first event); model b's is inferred from
        // its first batch (kept as events until then).
        let fixed = HashMap::from([(
            "a".to_string(),
            FeatureSchema::new(vec![
                ("x".into(), types::FeatureKind::Numeric),
                ("c".into(), types::FeatureKind::Categorical),
            ]),
        )]);
        let fast = batches(&lines, SchemaRegistry::new(fixed.clone()), true);
        let slow = batches(&lines, SchemaRegistry::new(fixed), false);
        assert_eq!(fast, slow);
        let shape: Vec<(&str, usize)> = fast
            .iter()
            .map(|(m, b, _)| (m.as_str(), b.num_rows()))
            .collect();
        assert_eq!(shape, [("a", 2), ("a", 2), ("b", 2)]);
        // Model a's first batch: one mismatched x ("bad"), one unknown feature (z).
        assert_eq!(
            fast[0].2.mismatched,
            std::collections::BTreeMap::from([("x".to_string(), 1)])
        );
        assert_eq!(fast[0].2.unknown_features, 1);
        // Model b: its schema was inferred from the two events of its first batch.
        assert_eq!(fast[2].1.schema().fields().len(), 8 + 2);
    }

    #[test]
    fn push_json_reports_bad_lines_and_keeps_the_good_ones() {
        let mut b = Batcher::new(
            BatchConfig::default(),
            SchemaRegistry::default(),
            None,
            "kafka",
        );
        let payload = b"{\"timestamp\": 1, \"model\": \"m\", \"features\": {}}\n{\"timestamp\": 2, \"features\": {}}\n{\"timestamp\": 3, \"model\": \"m\", \"features\": {\"a\": 1}}";
        let pushed = b.push_json(payload, &[]).unwrap();
        assert_eq!(pushed.good, 2);
        assert_eq!(pushed.bad.len(), 1);
        assert_eq!(
            (pushed.bad[0].line, pushed.bad[0].error.reason.as_str()),
            (2, "missing_field")
        );
        assert_eq!(b.buffered(), 2);
        assert_eq!(
            b.push_json(b"\x00\x01", &[]).unwrap_err().reason.as_str(),
            "wrong_encoding"
        );
        assert_eq!(b.buffered(), 2);
    }

    #[test]
    fn only_models_that_fill_a_batch_keep_room_for_the_next() {
        // Regression: every cut reserved the next batch at the last one's size, and a new model
        // 1,024 rows, so thousands of idle models held their columns' buffers.
        let fixed = HashMap::from([(
            "m".to_string(),
            FeatureSchema::new(vec![("x".into(), types::FeatureKind::Numeric)]),
        )]);
        let config = BatchConfig {
            max_events: 4,
            max_wait: Duration::ZERO,
            ..BatchConfig::default()
        };
        let mut b = Batcher::new(config, SchemaRegistry::new(fixed), None, "http");
        let line = br#"{"timestamp": 1, "model": "m", "features": {"x": 1}}"#;
        b.push_json(line, &[]).unwrap();
        let capacity = |b: &Batcher| b.builders[0].columns.as_ref().map(BatchBuilder::capacity);
        assert_eq!(b.due().len(), 1);
        assert_eq!(capacity(&b), Some(0));
        let full: Vec<SourceBatch> = (0..4)
            .flat_map(|_| b.push_json(line, &[]).unwrap().ready)
            .collect();
        assert_eq!(full.len(), 1);
        assert_eq!(full[0].batch.num_rows(), 4);
        assert!(capacity(&b).is_some_and(|c| c >= 4), "{:?}", capacity(&b));
    }
}
