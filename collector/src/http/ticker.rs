//! Sending what the batcher holds: [`HttpIngest::tick`] (batches that waited `max_wait`, and the
//! expiry of unpaired CloudEvents), the ticker task [`run_ticker`] that calls it, and
//! [`HttpIngest::flush`] at shutdown.

use std::sync::PoisonError;
use std::time::Duration;

use telemetry::Emit;

use super::state::HttpIngest;
use crate::telemetry::Source;
use crate::telemetry::events::HalfExpired;

impl HttpIngest {
    /// Sends the batches that waited `max_wait` and expires unpaired CloudEvents; call
    /// periodically (the server does every 100 ms).
    pub async fn tick(&self) {
        let due = self.batcher().due();
        self.send(due).await;
        let now = self.inner.started.elapsed().as_millis() as u64;
        let expired = self
            .inner
            .pairer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .expire(now);
        for (id, p) in expired {
            self.inner.metrics.emit(HalfExpired {
                source: Source::Http,
                half: p.half,
                id: &id,
            });
        }
    }

    /// Sends every buffered batch (shutdown). From then on, requests without the write-ahead
    /// log are answered `503 shutting_down` (their events would stay in the batcher); with the
    /// log their records are durable and replayed at the next start.
    pub async fn flush(&self) {
        let all = {
            let mut batcher = self.batcher();
            self.inner
                .closed
                .store(true, std::sync::atomic::Ordering::SeqCst);
            batcher.flush()
        };
        self.send(all).await;
    }
}

/// Runs [`HttpIngest::tick`] every 100 ms until the sender side of `out` is closed.
pub async fn run_ticker(ingest: HttpIngest) {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    loop {
        interval.tick().await;
        if ingest.inner.out.is_closed() {
            return;
        }
        ingest.tick().await;
    }
}
