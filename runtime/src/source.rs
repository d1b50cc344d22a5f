//! Sources: what delivers batches into the pipeline and learns when their offsets are durable.

use collector::http::HttpIngest;
use collector::kafka::KafkaSource;
use collector::offsets::OffsetTracker;
use collector::wal::{Wal, wal_partition};
use futures::FutureExt;
use futures::future::BoxFuture;
use types::SourceOffsets;

/// A source of [`collector::batcher::SourceBatch`]es.
///
/// The batches themselves travel through the pipeline's channel (a source holds its sender);
/// this trait is the control side: which offsets the source has, when they are durable, and how
/// it stops.
pub trait Source: Send {
    /// The source's name in logs (`kafka`, `http`).
    fn name(&self) -> &'static str;

    /// The offsets of the source's partitions, if it has offsets: their positions are saved in
    /// every checkpoint, and restored into the source at the next start.
    fn tracker(&self) -> Option<&OffsetTracker>;

    /// True while the source holds no partitions (starting, or a Kafka rebalance): it delivers
    /// nothing, and that is not idleness, so the pipeline holds idle windows open.
    fn is_unassigned(&self) -> bool {
        false
    }

    /// The offsets in `durable` are covered by a checkpoint on disk (or, without a checkpoint,
    /// absorbed): the source may release them (commit them to its consumer group, delete the
    /// log below them). Positions of other sources' partitions in `durable` are ignored.
    fn commit(&self, durable: &SourceOffsets) {
        if let Some(t) = self.tracker() {
            t.mark_durable(durable);
        }
    }

    /// Stops taking new input; the future resolves once every batch in flight has been sent
    /// into the pipeline's channel. The pipeline keeps absorbing while it runs, and keeps
    /// checkpointing and committing the source's offsets until its own end. Called once.
    fn drain(&mut self) -> BoxFuture<'static, ()>;
}

/// The Kafka consumer group source ([`collector::kafka::start`]).
#[derive(Debug)]
pub struct KafkaInput {
    tracker: OffsetTracker,
    source: Option<KafkaSource>,
}

impl KafkaInput {
    /// Wraps a started Kafka source.
    pub fn new(source: KafkaSource) -> Self {
        Self {
            tracker: source.tracker().clone(),
            source: Some(source),
        }
    }
}

impl Source for KafkaInput {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn tracker(&self) -> Option<&OffsetTracker> {
        Some(&self.tracker)
    }

    fn is_unassigned(&self) -> bool {
        self.tracker.assigned().is_empty()
    }

    fn drain(&mut self) -> BoxFuture<'static, ()> {
        match self.source.take() {
            // The consumer thread joins its in-flight batches; that blocks.
            Some(source) => tokio::task::spawn_blocking(move || source.shutdown())
                .map(|_| ())
                .boxed(),
            None => futures::future::ready(()).boxed(),
        }
    }
}

/// HTTP ingest, with its write-ahead log when `http.durable_ack` is on.
#[derive(Debug)]
pub struct HttpSource {
    ingest: HttpIngest,
    wal: Option<(OffsetTracker, Wal)>,
}

impl HttpSource {
    /// HTTP ingest without offsets: what it accepted is durable once absorbed.
    pub fn new(ingest: HttpIngest) -> Self {
        Self { ingest, wal: None }
    }

    /// HTTP ingest whose requests are logged in `wal` under the offsets of `tracker`.
    pub fn with_wal(ingest: HttpIngest, tracker: OffsetTracker, wal: Wal) -> Self {
        Self {
            ingest,
            wal: Some((tracker, wal)),
        }
    }
}

impl Source for HttpSource {
    fn name(&self) -> &'static str {
        "http"
    }

    fn tracker(&self) -> Option<&OffsetTracker> {
        self.wal.as_ref().map(|(t, _)| t)
    }

    fn commit(&self, durable: &SourceOffsets) {
        if let Some((tracker, log)) = &self.wal {
            tracker.mark_durable(durable);
            if let Some(p) = durable.get(&wal_partition()) {
                log.truncate_below(p.watermark);
            }
        }
    }

    fn drain(&mut self) -> BoxFuture<'static, ()> {
        let ingest = self.ingest.clone();
        async move { ingest.flush().await }.boxed()
    }
}
