//! [`HttpIngest`], the state shared by the ingest handlers, its constructors ([`HttpIngest::new`],
//! [`HttpIngest::with_wal`]) and the plumbing every path uses: the batcher's lock, the hand-over of
//! batches to the analyzer and the backpressure check.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::mpsc;

use super::config::HttpIngestConfig;
use crate::auth::{AuthError, Credentials};
use crate::batcher::{Batcher, SourceBatch};
use crate::decode::cloudevents::CloudEventHalf;
use crate::decode::pairing::Pairer;
use crate::offsets::OffsetTracker;
use crate::telemetry::CollectorMetrics;
use crate::wal::Wal;

/// Shared state of the ingest handlers.
#[derive(Debug, Clone)]
pub struct HttpIngest {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) config: HttpIngestConfig,
    pub(super) batcher: Mutex<Batcher>,
    pub(super) pairer: Mutex<Pairer<CloudEventHalf>>,
    pub(super) out: mpsc::Sender<SourceBatch>,
    pub(super) metrics: CollectorMetrics,
    pub(super) started: Instant,
    pub(super) credentials: Option<Credentials>,
    /// The write-ahead log and the tracker of its partition (the batcher's tracker).
    pub(super) wal: Option<(Wal, OffsetTracker)>,
    /// Set by [`HttpIngest::flush`] (shutdown): without the log, later requests would leave
    /// their events in a batcher nobody flushes again, so they are refused.
    pub(super) closed: std::sync::atomic::AtomicBool,
}

impl HttpIngest {
    /// Ingest state sending batches to `out`. `batcher` should be created with no offset tracker.
    ///
    /// # Errors
    /// [`AuthError`] from [`HttpIngestConfig::credentials`].
    pub fn new(
        config: HttpIngestConfig,
        batcher: Batcher,
        out: mpsc::Sender<SourceBatch>,
        metrics: CollectorMetrics,
    ) -> Result<Self, AuthError> {
        let pairer =
            Pairer::new(config.pairing_timeout, 100_000).with_max_bytes(config.pairing_max_bytes);
        let credentials = config.credentials()?;
        Ok(Self {
            inner: Arc::new(Inner {
                credentials,
                config,
                batcher: Mutex::new(batcher),
                pairer: Mutex::new(pairer),
                out,
                metrics,
                started: Instant::now(),
                wal: None,
                closed: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// Ingest state whose 202s are durable: every accepted request is appended to `wal` and
    /// answered once it is fsynced. `batcher` must have been created with `tracker`, the tracker
    /// [`Wal::open`] was given.
    ///
    /// # Errors
    /// [`AuthError`] from [`HttpIngestConfig::credentials`].
    pub fn with_wal(
        config: HttpIngestConfig,
        batcher: Batcher,
        out: mpsc::Sender<SourceBatch>,
        metrics: CollectorMetrics,
        wal: Wal,
        tracker: OffsetTracker,
    ) -> Result<Self, AuthError> {
        let mut ingest = Self::new(config, batcher, out, metrics)?;
        if let Some(inner) = Arc::get_mut(&mut ingest.inner) {
            inner.wal = Some((wal, tracker));
        }
        Ok(ingest)
    }

    pub(super) fn batcher(&self) -> MutexGuard<'_, Batcher> {
        self.inner
            .batcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends batches to the analyzer; `false` when it has stopped taking them (shutdown).
    pub(super) async fn send(&self, batches: Vec<SourceBatch>) -> bool {
        for b in batches {
            if self.inner.out.send(b).await.is_err() {
                return false;
            }
        }
        true
    }

    pub(super) fn backpressured(&self) -> bool {
        self.inner.out.capacity() == 0
    }
}
