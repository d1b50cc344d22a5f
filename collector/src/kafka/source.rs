//! [`KafkaSource`], the handle on the running consumer thread, and [`start`], which validates
//! the configuration, creates the consumer and the dead-letter producer and spawns the thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::ThreadedProducer;
use tokio::sync::mpsc;

use super::client;
use super::config::KafkaConfig;
use super::context::Context;
use super::dead_letter::DlqContext;
use super::error::KafkaError;
use super::worker::Worker;
use crate::batcher::{BatchConfig, Batcher, SchemaRegistry, SourceBatch};
use crate::decode::pairing::Pairer;
use crate::offsets::{OffsetTracker, SourceOffsets};
use crate::telemetry::CollectorMetrics;

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
    let consumer: BaseConsumer<Context> = client::consumer(&config).create_with_context(context)?;
    let topics: Vec<&str> = config.topics.iter().map(|t| t.name.as_str()).collect();
    consumer.subscribe(&topics)?;
    let dlq = if config.dead_letter {
        Some(
            client::dead_letter_producer(&config)
                .create_with_context::<_, ThreadedProducer<DlqContext>>(DlqContext {
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
