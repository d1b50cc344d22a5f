//! The Kafka source: a consumer group member that decodes, batches and hands events to the
//! analyzer with manual offset management.
//!
//! It runs on a dedicated thread as an explicit state machine:
//!
//! - **Consuming**: poll, decode, batch. When the batch channel is full the assigned partitions are
//!   paused (polling continues, so rebalances and heartbeats are served) and resumed once there is
//!   room: memory stays bounded however slow the analyzer is.
//! - **Draining** (shutdown): stop fetching, flush the batcher, wait (up to `drain_timeout`) until
//!   every batch handed over is absorbed and checkpointed, commit, leave the group.
//! - **Done**.
//!
//! An offset is committed only when the events up to it are absorbed into durable state (see
//! [`crate::offsets`]). On a rebalance the revoked partitions are drained the same way before they
//! are given up, and a revoked partition's offsets are never committed afterwards. An undecodable
//! message goes to the dead-letter topic with its reason, source topic, partition and offset in
//! headers; its offset completes once the dead-letter write is acknowledged, so the partition never
//! stalls (edge case E22).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::batcher::{BatchConfig, Batcher, PushedJson, SchemaRegistry, SourceBatch};
use crate::decode::oip::{self, OipMapping, OipMessage, PairTiming};
use crate::decode::pairing::{Half, Offer, Pairer};
use crate::decode::{DecodeError, Encoding};
use crate::offsets::{Observed, OffsetTracker, SourceOffsets, TopicPartition};
use crate::telemetry::CollectorMetrics;

/// Configuration of the Kafka source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Consumer group id (default `driftwatch`).
    #[serde(default = "default_group")]
    pub group_id: String,
    /// Topics to consume and how each is decoded.
    pub topics: Vec<TopicConfig>,
    /// Where to start in a partition without a committed offset: `earliest` (default) or `latest`.
    #[serde(default = "default_reset")]
    pub auto_offset_reset: String,
    /// Send undecodable messages to a dead-letter topic (default true). When false they are
    /// counted and skipped.
    #[serde(default = "yes")]
    pub dead_letter: bool,
    /// Suffix of the dead-letter topic of each topic (default `.dlq`: `events` -> `events.dlq`).
    #[serde(default = "default_dlq_suffix")]
    pub dead_letter_suffix: String,
    /// Create missing dead-letter topics at start (one partition; default true). Brokers without
    /// topic auto-creation otherwise hold dead letters until `dead_letter_timeout`.
    #[serde(default = "yes")]
    pub create_dead_letter_topics: bool,
    /// Longest time a dead letter may wait for delivery before it is counted as failed and its
    /// offset released (default `30s`).
    #[serde(default = "default_dlq_timeout", with = "humantime_serde")]
    pub dead_letter_timeout: Duration,
    /// How often durable offsets are committed (default `1s`).
    #[serde(default = "default_commit_interval", with = "humantime_serde")]
    pub commit_interval: Duration,
    /// Longest wait, on shutdown or rebalance, for in-flight batches to be absorbed before giving
    /// up a partition (default `10s`). What is not absorbed by then is read again by the next owner.
    #[serde(default = "default_drain_timeout", with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// Longest wait of an OIP v2 request for its response or the reverse (default `30s`).
    #[serde(default = "default_pairing_timeout", with = "humantime_serde")]
    pub pairing_timeout: Duration,
    /// Most unpaired halves held (default 100,000); the oldest expire early beyond it.
    #[serde(default = "default_max_pending_pairs")]
    pub max_pending_pairs: usize,
    /// Most bytes of unpaired halves held, counted as the memory their decoded values take (at
    /// least their messages' sizes; default 64 MiB); the oldest expire early beyond it.
    #[serde(default = "default_max_pending_pair_bytes")]
    pub max_pending_pair_bytes: usize,
    /// Largest message accepted, in bytes (default 1 MiB); larger ones are dead-lettered
    /// (`too_large`).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Extra librdkafka settings passed through unchanged, e.g. `security.protocol`,
    /// `sasl.mechanisms`, `sasl.username`, `ssl.ca.location` (librdkafka is built with vendored
    /// OpenSSL: TLS and SASL PLAIN and SCRAM work; GSSAPI and OIDC do not).
    #[serde(default)]
    pub client: BTreeMap<String, String>,
}

fn default_group() -> String {
    "driftwatch".into()
}
fn default_reset() -> String {
    "earliest".into()
}
fn yes() -> bool {
    true
}
fn default_dlq_suffix() -> String {
    ".dlq".into()
}
fn default_dlq_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_commit_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_drain_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_pairing_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_pending_pairs() -> usize {
    100_000
}
/// Default of `max_pending_pair_bytes` (Kafka) and `http.pairing_max_bytes`: 64 MiB.
pub const DEFAULT_MAX_PENDING_PAIR_BYTES: usize = 64 << 20;
fn default_max_pending_pair_bytes() -> usize {
    DEFAULT_MAX_PENDING_PAIR_BYTES
}
fn default_max_message_bytes() -> usize {
    1 << 20
}

/// One consumed topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Topic name.
    pub name: String,
    /// How its messages are encoded (default `json`).
    #[serde(default)]
    pub encoding: Encoding,
    /// For OIP v2 topics: whether the topic carries requests (`request`, e.g. Seldon's
    /// `seldon.<ns>.model.<m>.inputs`) or responses (`response`, `...outputs`).
    #[serde(default)]
    pub role: Option<TopicRole>,
    /// How OIP v2 tensors map to features and outputs.
    #[serde(default)]
    pub mapping: OipMapping,
    /// Dead-letter topic for this topic (default: the name plus `dead_letter_suffix`).
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
}

/// The half of an inference exchange an OIP v2 topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicRole {
    /// Inference requests (features).
    Request,
    /// Inference responses (predictions).
    Response,
}

/// Errors starting the Kafka source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    /// librdkafka refused the configuration or the subscription.
    #[error("kafka: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    /// The configuration is inconsistent.
    #[error("invalid kafka setting `{key}`: {message}")]
    Config {
        /// The setting.
        key: String,
        /// Why.
        message: String,
    },
}

impl KafkaConfig {
    /// Checks cross-field rules.
    ///
    /// # Errors
    /// [`KafkaError::Config`] naming the key.
    pub fn validate(&self) -> Result<(), KafkaError> {
        let bad = |key: &str, message: &str| {
            Err(KafkaError::Config {
                key: key.into(),
                message: message.into(),
            })
        };
        if self.brokers.trim().is_empty() {
            return bad("kafka.brokers", "must name at least one host:port");
        }
        if self.topics.is_empty() {
            return bad("kafka.topics", "must list at least one topic");
        }
        if !matches!(self.auto_offset_reset.as_str(), "earliest" | "latest") {
            return bad("kafka.auto_offset_reset", "must be `earliest` or `latest`");
        }
        for (i, t) in self.topics.iter().enumerate() {
            let oip = matches!(t.encoding, Encoding::OipV2Json | Encoding::OipV2Protobuf);
            if oip && t.role.is_none() {
                return bad(
                    &format!("kafka.topics[{i}].role"),
                    "an OIP v2 topic needs `role = \"request\"` or `\"response\"`",
                );
            }
            if !oip && t.role.is_some() {
                return bad(
                    &format!("kafka.topics[{i}].role"),
                    "only OIP v2 topics have a role",
                );
            }
        }
        Ok(())
    }

    fn dead_letter_topic(&self, topic: &str) -> String {
        self.topics
            .iter()
            .find(|t| t.name == topic)
            .and_then(|t| t.dead_letter_topic.clone())
            .unwrap_or_else(|| format!("{topic}{}", self.dead_letter_suffix))
    }
}

/// A running Kafka source. Dropping it does not stop it; call [`KafkaSource::shutdown`].
#[derive(Debug)]
pub struct KafkaSource {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    tracker: OffsetTracker,
}

impl KafkaSource {
    /// The offset tracker: the analyzer snapshots it with its state and marks snapshots durable.
    pub fn tracker(&self) -> &OffsetTracker {
        &self.tracker
    }

    /// Starts draining and waits for the consumer thread to commit and leave the group.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Whether the consumer thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

/// Starts the consumer thread. Batches go to `out`; `resume` is the position saved in the last
/// checkpoint (absorbed offsets above the committed ones are skipped, so nothing is counted twice).
///
/// # Errors
/// [`KafkaError`] when the configuration is invalid or librdkafka refuses it.
pub fn start(
    config: KafkaConfig,
    batch: BatchConfig,
    schemas: SchemaRegistry,
    out: mpsc::Sender<SourceBatch>,
    resume: SourceOffsets,
    metrics: CollectorMetrics,
) -> Result<KafkaSource, KafkaError> {
    config.validate()?;
    let tracker = OffsetTracker::new();
    let batcher = Arc::new(Mutex::new(Batcher::new(
        batch,
        schemas,
        Some(tracker.clone()),
        "kafka",
    )));
    let paused = Arc::new(AtomicBool::new(false));
    let context = Context {
        tracker: tracker.clone(),
        batcher: batcher.clone(),
        out: out.clone(),
        resume: Mutex::new(resume),
        paused: paused.clone(),
        drain_timeout: config.drain_timeout,
        metrics: metrics.clone(),
    };
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", &config.auto_offset_reset)
        .set("partition.assignment.strategy", "range,roundrobin")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000");
    for (k, v) in &config.client {
        client.set(k, v);
    }
    let consumer: BaseConsumer<Context> = client.create_with_context(context)?;
    let topics: Vec<&str> = config.topics.iter().map(|t| t.name.as_str()).collect();
    consumer.subscribe(&topics)?;
    let dlq = if config.dead_letter {
        let mut p = ClientConfig::new();
        p.set("bootstrap.servers", &config.brokers)
            .set("linger.ms", "5")
            .set(
                "message.timeout.ms",
                config.dead_letter_timeout.as_millis().to_string(),
            );
        for (k, v) in &config.client {
            p.set(k, v);
        }
        Some(
            p.create_with_context::<_, ThreadedProducer<DlqContext>>(DlqContext {
                tracker: tracker.clone(),
                metrics: metrics.clone(),
            })?,
        )
    } else {
        None
    };
    let stop = Arc::new(AtomicBool::new(false));
    let worker = Worker {
        pairer: Pairer::new(config.pairing_timeout, config.max_pending_pairs)
            .with_max_bytes(config.max_pending_pair_bytes),
        topics: config
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect(),
        config,
        dlq,
        batcher,
        out,
        tracker: tracker.clone(),
        stop: stop.clone(),
        metrics,
        paused,
        started: Instant::now(),
    };
    let thread = std::thread::Builder::new()
        .name("kafka-consumer".into())
        .spawn(move || worker.run(&consumer))
        .map_err(|e| KafkaError::Config {
            key: "kafka".into(),
            message: format!("cannot start the consumer thread: {e}"),
        })?;
    Ok(KafkaSource {
        stop,
        thread: Some(thread),
        tracker,
    })
}

/// Consumer callbacks: drains revoked partitions before they are given up.
struct Context {
    tracker: OffsetTracker,
    batcher: Arc<Mutex<Batcher>>,
    out: mpsc::Sender<SourceBatch>,
    resume: Mutex<SourceOffsets>,
    /// Whether the worker has paused consumption (shared with [`Worker`]).
    paused: Arc<AtomicBool>,
    drain_timeout: Duration,
    metrics: CollectorMetrics,
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

/// Commits the durable watermarks not committed yet, synchronously: the tracker records an
/// offset as committed only once the broker has accepted it. (An asynchronous commit returns
/// before the broker answers; one rejected during a group generation change was recorded as
/// committed and never retried, leaving the group's offsets short of the absorbed ones.) The
/// consumer thread blocks for the commit's round trip once per `commit_interval` (up to the
/// session timeout while no group coordinator is reachable).
fn commit(consumer: &BaseConsumer<Context>, tracker: &OffsetTracker, metrics: &CollectorMetrics) {
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
        Err(e) => {
            metrics.commit_error();
            tracing::warn!(error = %e, "offset commit failed; will retry");
        }
    }
}

/// Dead-letter producer callbacks: complete the source offset once the dead letter is written.
struct DlqContext {
    tracker: OffsetTracker,
    metrics: CollectorMetrics,
}

impl ClientContext for DlqContext {}

impl ProducerContext for DlqContext {
    type DeliveryOpaque = Box<(TopicPartition, i64)>;

    fn delivery(&self, result: &DeliveryResult<'_>, source: Self::DeliveryOpaque) {
        if let Err((e, _)) = result {
            // The message was bad anyway; keep the partition flowing but make the loss visible.
            self.metrics.dead_letter_failed();
            tracing::error!(topic = %source.0.topic, partition = source.0.partition, offset = source.1, error = %e, "cannot write to the dead-letter topic");
        }
        self.tracker.complete(&[(source.0.clone(), source.1)]);
    }
}

/// The consumer thread's state.
struct Worker {
    config: KafkaConfig,
    topics: HashMap<String, TopicConfig>,
    dlq: Option<ThreadedProducer<DlqContext>>,
    batcher: Arc<Mutex<Batcher>>,
    pairer: Pairer<PendingHalf>,
    out: mpsc::Sender<SourceBatch>,
    tracker: OffsetTracker,
    stop: Arc<AtomicBool>,
    metrics: CollectorMetrics,
    /// Whether consumption is paused for backpressure (shared with the rebalance callbacks).
    paused: Arc<AtomicBool>,
    started: Instant,
}

/// An OIP v2 half waiting for its partner, with the offset it holds.
struct PendingHalf {
    message: OipMessage,
    timestamp_ms: Option<i64>,
    offset: (TopicPartition, i64),
    mapping: OipMapping,
}

impl Worker {
    fn run(mut self, consumer: &BaseConsumer<Context>) {
        if self.dlq.is_some() && self.config.create_dead_letter_topics {
            self.create_dead_letter_topics();
        }
        let mut last_commit = Instant::now();
        let mut last_lag = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            self.apply_backpressure(consumer);
            if let Some(result) = consumer.poll(Duration::from_millis(100)) {
                match result {
                    Ok(message) => self.handle(&message),
                    Err(e) => {
                        self.metrics.consumer_error();
                        tracing::warn!(error = %e, "kafka consumer error");
                    }
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

    fn lock_batcher(&self) -> std::sync::MutexGuard<'_, Batcher> {
        self.batcher.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates the dead-letter topics that do not exist (one partition each); failures (no
    /// permission, unsupported) are logged, not fatal.
    fn create_dead_letter_topics(&self) {
        let mut admin_config = ClientConfig::new();
        admin_config.set("bootstrap.servers", &self.config.brokers);
        for (k, v) in &self.config.client {
            admin_config.set(k, v);
        }
        let admin: AdminClient<DefaultClientContext> = match admin_config.create() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create an admin client for the dead-letter topics");
                return;
            }
        };
        let names: Vec<String> = self
            .config
            .topics
            .iter()
            .map(|t| self.config.dead_letter_topic(&t.name))
            .collect();
        let topics: Vec<NewTopic<'_>> = names
            .iter()
            .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        match futures::executor::block_on(admin.create_topics(&topics, &options)) {
            Ok(results) => {
                for r in results {
                    match r {
                        Ok(t) => tracing::info!(topic = %t, "created dead-letter topic"),
                        Err((t, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                            tracing::debug!(topic = %t, "dead-letter topic exists")
                        }
                        Err((t, e)) => {
                            tracing::warn!(topic = %t, error = %e, "cannot create dead-letter topic")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot create dead-letter topics"),
        }
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
            tracing::debug!(
                paused = full,
                partitions = assignment.count(),
                "backpressure: partitions paused while the batch channel is full (paused=false: resumed)"
            );
            self.paused.store(full, Ordering::SeqCst);
            self.metrics.set_paused(full);
        }
    }

    fn send(&self, batches: Vec<SourceBatch>) {
        for b in batches {
            if self.out.blocking_send(b).is_err() {
                // The analyzer is gone: shutting down; the offsets stay pending.
                self.stop.store(true, Ordering::SeqCst);
                return;
            }
        }
    }

    fn handle(&mut self, message: &BorrowedMessage<'_>) {
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
        self.metrics.consumed("kafka", 1);
        let payload = message.payload().unwrap_or_default();
        let Some(topic) = self.topics.get(message.topic()).cloned() else {
            self.tracker.complete(&[(tp, offset)]);
            return;
        };
        if payload.len() > self.config.max_message_bytes {
            let err = DecodeError::new(
                "too_large",
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
                        if let Some(first) = bad.first() {
                            for b in &bad {
                                self.metrics.decode_error(b.error.reason);
                            }
                            tracing::debug!(topic = %tp.topic, partition = tp.partition, offset, bad = bad.len(), first = %first.error, "bad events in a message");
                        }
                        self.metrics.decoded(good as u64);
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
                        self.metrics.decode_error(err.reason);
                        self.dead_letter(message, &tp, &err);
                    }
                }
            }
            (encoding, Some(role)) => {
                let response = role == TopicRole::Response;
                match oip::decode_message(payload, encoding, response) {
                    Ok(decoded) => self.pair(message, &tp, decoded, role, topic.mapping.clone()),
                    Err(err) => {
                        self.metrics.decode_error(err.reason);
                        self.dead_letter(message, &tp, &err);
                    }
                }
            }
            (_, None) => self.tracker.complete(&[(tp, offset)]),
        }
    }

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

    fn pair(
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
                "missing_field",
                "no request id: no x-request-id header, no key and no `id` field",
            );
            self.metrics.decode_error(err.reason);
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
                self.metrics.unpaired(old.half.as_str());
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
                        self.metrics.decoded((n - refused.len()) as u64);
                        if let Some(first) = refused.first() {
                            for r in &refused {
                                self.metrics.decode_error(r.error.reason);
                            }
                            tracing::debug!(offsets = ?offsets, refused = refused.len(), first = %first.error, "events of a pair refused");
                        }
                        self.send(ready);
                        self.tracker.complete(&offsets);
                    }
                    Err(err) => {
                        self.metrics.decode_error(err.reason);
                        self.tracker.complete(&[request.offset, response.offset]);
                    }
                }
            }
        }
    }

    fn expire_pairs(&mut self, all: bool) {
        let now = self.started.elapsed().as_millis() as u64;
        let expired = if all {
            self.pairer.drain()
        } else {
            self.pairer.expire(now)
        };
        for (_, p) in expired {
            self.metrics.unpaired(p.half.as_str());
            self.tracker.complete(&[p.value.offset]);
        }
    }

    fn dead_letter(&self, message: &BorrowedMessage<'_>, tp: &TopicPartition, err: &DecodeError) {
        self.dead_letter_with(message, tp, err, None);
    }

    fn dead_letter_with(
        &self,
        message: &BorrowedMessage<'_>,
        tp: &TopicPartition,
        err: &DecodeError,
        lines: Option<String>,
    ) {
        let offset = message.offset();
        let Some(producer) = &self.dlq else {
            self.metrics.skipped(err.reason);
            self.tracker.complete(&[(tp.clone(), offset)]);
            return;
        };
        let partition = tp.partition.to_string();
        let offset_text = offset.to_string();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "driftwatch-reason",
                value: Some(err.reason),
            })
            .insert(Header {
                key: "driftwatch-error",
                value: Some(err.message.as_str()),
            })
            .insert(Header {
                key: "driftwatch-source-topic",
                value: Some(tp.topic.as_str()),
            })
            .insert(Header {
                key: "driftwatch-source-partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "driftwatch-source-offset",
                value: Some(offset_text.as_str()),
            });
        if let Some(l) = &lines {
            headers = headers.insert(Header {
                key: "driftwatch-bad-lines",
                value: Some(l.as_str()),
            });
        }
        let topic = self.config.dead_letter_topic(&tp.topic);
        let mut record = BaseRecord::with_opaque_to(&topic, Box::new((tp.clone(), offset)))
            .payload(message.payload().unwrap_or_default())
            .headers(headers);
        if let Some(k) = message.key() {
            record = record.key(k);
        }
        match producer.send(record) {
            Ok(()) => self.metrics.dead_lettered(err.reason),
            Err((e, _)) => {
                self.metrics.dead_letter_failed();
                tracing::error!(error = %e, topic, "cannot queue a dead letter; skipping the message");
                self.tracker.complete(&[(tp.clone(), offset)]);
            }
        }
    }

    fn report_lag(&self, consumer: &BaseConsumer<Context>) {
        for tp in self.tracker.assigned() {
            if let Ok((_, high)) =
                consumer.fetch_watermarks(&tp.topic, tp.partition, Duration::from_millis(500))
            {
                let position = self.tracker.snapshot().get(&tp).map_or(0, |p| p.watermark);
                self.metrics
                    .set_lag(&tp.topic, tp.partition, (high - position).max(0));
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
