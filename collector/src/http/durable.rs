//! The write-ahead-log path: [`HttpIngest::replay`] of the records found at start-up and the
//! durable append of an accepted request's records before its `202`.

use axum::body::Bytes;

use super::state::HttpIngest;
use crate::decode::json;
use crate::offsets::{OffsetTracker, TopicPartition};
use crate::wal::{Replay, WalRecord, wal_partition};

impl HttpIngest {
    /// Replays records of the write-ahead log found at start-up ([`crate::wal::Recovered`]),
    /// one segment at a time: their events go to the batcher with their offsets, as when they
    /// were accepted. Returns the number of events replayed. A record that no longer decodes (it
    /// was valid when accepted) or can no longer be read is logged and completed, never allowed
    /// to stall the partition.
    pub async fn replay(&self, mut replay: Replay) -> usize {
        let Some((_, tracker)) = &self.inner.wal else {
            return 0;
        };
        let mut replayed = 0;
        while let Some((offsets, records)) = replay.next_segment() {
            let records = match records {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, records = offsets.len(), "write-ahead log: a segment to replay can no longer be read; its requests are lost");
                    Vec::new()
                }
            };
            let found: std::collections::HashSet<i64> = records.iter().map(|r| r.offset).collect();
            for missing in offsets.iter().filter(|o| !found.contains(o)) {
                tracing::error!(
                    offset = missing,
                    "write-ahead log: a record to replay is gone; skipped"
                );
                tracker.complete(&[(wal_partition(), *missing)]);
            }
            for record in records {
                replayed += self.replay_record(tracker, record).await;
            }
        }
        replayed
    }

    async fn replay_record(&self, tracker: &OffsetTracker, record: WalRecord) -> usize {
        let offsets = [(wal_partition(), record.offset)];
        match json::decode_events(&record.payload) {
            Ok(decoded) => {
                if let Some(bad) = decoded.bad.first() {
                    tracing::error!(offset = record.offset, line = bad.line, error = %bad.error.message, "write-ahead log: a replayed record has a bad event; its good events are replayed");
                }
                let n = decoded.events.len();
                let ready = self.batcher().push(decoded.events, &offsets);
                for refused in self.batcher().take_refused() {
                    tracing::error!(offset = record.offset, line = refused.line, error = %refused.error.message, "write-ahead log: a replayed event was refused");
                }
                tracker.complete(&offsets);
                self.send(ready).await;
                n
            }
            Err(e) => {
                tracing::error!(offset = record.offset, error = %e.message, "write-ahead log: a replayed record is not JSON; skipped");
                tracker.complete(&offsets);
                0
            }
        }
    }
}

impl HttpIngest {
    /// Appends `records` (one per model group) to the write-ahead log in one group and, once
    /// they are durable, pushes each group's events with its record's offset and completes the
    /// offset's own hold.
    pub(super) async fn append_durably(
        &self,
        groups: Vec<Vec<crate::event::PredictionEvent>>,
        records: Vec<Bytes>,
    ) -> Result<(), crate::wal::WalError> {
        let Some((wal, tracker)) = &self.inner.wal else {
            return Ok(());
        };
        let offsets = wal.append_all(records).await?;
        let mut ready = Vec::new();
        for (events, offset) in groups.into_iter().zip(offsets) {
            let offsets: [(TopicPartition, i64); 1] = [(wal_partition(), offset)];
            ready.extend(self.batcher().push(events, &offsets));
            tracker.complete(&offsets);
        }
        self.send(ready).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::super::fixtures::{TWO, post, wal_ingest};
    use crate::decode::json;
    use crate::offsets::OffsetTracker;
    use crate::wal::wal_partition;

    /// Review finding M1: a request with events of two models was one record held by both
    /// models' batches, so a checkpoint after one of them was absorbed replayed (and counted
    /// again) the other's events too. Each model's events are now a record of their own.
    #[tokio::test]
    async fn each_model_of_a_request_is_its_own_record() {
        let dir = tempfile::tempdir().unwrap();
        let (ingest, mut rx, _, tracker) = wal_ingest(dir.path(), None);
        let body = "{\"timestamp\": 1, \"model\": \"a\", \"features\": {\"x\": 1}}\n\
                    {\"timestamp\": 2, \"model\": \"b\", \"features\": {\"x\": 2}}\n\
                    {\"timestamp\": 3, \"model\": \"a\", \"features\": {\"x\": 3}}";
        let (status, _) = post(ingest.router(), "/v1/events", body, &[]).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        // Model a filled its batch (2 events): it holds only a's record.
        let a = rx.try_recv().unwrap();
        assert_eq!(
            (a.model.as_str(), a.offsets()),
            ("a", &[(wal_partition(), 0)][..])
        );
        a.acknowledge();
        let position = tracker.snapshot().get(&wal_partition()).unwrap().clone();
        assert_eq!(position.watermark, 1, "a's record is absorbed, b's is not");
        drop(ingest);
        let (_, _, recovered, _) = wal_ingest(dir.path(), Some(&position));
        let records = recovered.replay.read_all().unwrap();
        let replayed = json::decode_events(&records[0].payload).unwrap();
        let models: Vec<&str> = replayed.events.iter().map(|e| e.model.as_str()).collect();
        assert_eq!((recovered.replay.len(), models), (1, vec!["b"]));
    }

    /// With the write-ahead log a 202 comes after the record is durable; the batch holds the
    /// record's offset until it is absorbed; and a new process replays from the log exactly the
    /// events the requests carried, CloudEvents pairs included (stored as the assembled events).
    #[tokio::test]
    async fn durable_acks_are_replayed_from_the_log_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let open = |resume| wal_ingest(dir.path(), resume);
        let (ingest, mut rx, recovered, tracker) = open(None);
        assert!(recovered.replay.is_empty());
        let (status, json) = post(ingest.router(), "/v1/events", TWO, &[]).await;
        assert_eq!(
            (status, json["accepted"].as_i64()),
            (StatusCode::ACCEPTED, Some(2))
        );
        let batch = rx.try_recv().unwrap();
        assert_eq!(batch.offsets(), &[(wal_partition(), 0)]);
        // Not absorbed yet: offset 0 holds the watermark.
        let watermark = |t: &OffsetTracker| t.snapshot().get(&wal_partition()).unwrap().watermark;
        assert_eq!(watermark(&tracker), 0);
        for (kind, body) in [
            ("response", r#"{"predictions": [1, 0]}"#),
            ("request", r#"{"instances": [{"x": 1.5}, {"x": 2.5}]}"#),
        ] {
            let ce_type = format!("org.kubeflow.serving.inference.{kind}");
            let headers = [
                ("ce-id", "r1"),
                ("ce-type", ce_type.as_str()),
                ("ce-inferenceservicename", "car-loan"),
            ];
            let (status, _) = post(ingest.router(), "/v1/cloudevents", body, &headers).await;
            assert_eq!(status, StatusCode::ACCEPTED);
        }
        let pair = rx.try_recv().unwrap();
        assert_eq!(pair.offsets(), &[(wal_partition(), 1)]);
        // The first batch is absorbed; the process dies before the second is.
        batch.acknowledge();
        let position = tracker.snapshot().get(&wal_partition()).unwrap().clone();
        assert_eq!(position.watermark, 1);
        drop((ingest, rx, pair));

        let (ingest, mut rx, recovered, tracker) = open(Some(&position));
        let records = recovered.replay.read_all().unwrap();
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![1]);
        let replayed = json::decode_events(&records[0].payload).unwrap();
        assert!(replayed.bad.is_empty());
        let x: Vec<(&str, f64)> = replayed
            .events
            .iter()
            .map(|e| match e.features["x"] {
                crate::event::FeatureValue::Number(v) => (e.model.as_str(), v),
                ref other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(x, vec![("car-loan", 1.5), ("car-loan", 2.5)]);
        assert_eq!(ingest.replay(recovered.replay).await, 2);
        let batch = rx.try_recv().unwrap();
        assert_eq!(
            (
                batch.model.as_str(),
                batch.batch.num_rows(),
                batch.offsets()
            ),
            ("car-loan", 2, &[(wal_partition(), 1)][..])
        );
        batch.acknowledge();
        assert_eq!(watermark(&tracker), 2);
    }
}
