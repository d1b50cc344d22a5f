//! The dead-letter topics: the producer's delivery callbacks ([`DlqContext`]), which complete a
//! source offset once its dead letter is written, the creation of missing topics at start, and
//! the headers a dead letter carries.

use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryResult, ProducerContext};
use telemetry::Emit;

use super::client;
use super::config::KafkaConfig;
use crate::decode::DecodeError;
use crate::offsets::{OffsetTracker, TopicPartition};
use crate::telemetry::CollectorMetrics;
use crate::telemetry::events::DeadLetterNotWritten;

/// Dead-letter producer callbacks: complete the source offset once the dead letter is written.
pub(super) struct DlqContext {
    pub(super) tracker: OffsetTracker,
    pub(super) metrics: CollectorMetrics,
}

impl ClientContext for DlqContext {}

impl ProducerContext for DlqContext {
    type DeliveryOpaque = Box<(TopicPartition, i64)>;

    fn delivery(&self, result: &DeliveryResult<'_>, source: Self::DeliveryOpaque) {
        if let Err((e, _)) = result {
            // The message was bad anyway; keep the partition flowing but make the loss visible.
            self.metrics.emit(DeadLetterNotWritten {
                error: e,
                topic: &source.0.topic,
                partition: source.0.partition,
                offset: source.1,
            });
        }
        self.tracker.complete(&[(source.0.clone(), source.1)]);
    }
}

/// Creates the dead-letter topics that do not exist (one partition each); failures (no
/// permission, unsupported) are logged, not fatal.
pub(super) fn create_topics(config: &KafkaConfig) {
    let admin: AdminClient<DefaultClientContext> = match client::admin(config).create() {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "cannot create an admin client for the dead-letter topics");
            return;
        }
    };
    let names: Vec<String> = config
        .topics
        .iter()
        .map(|t| config.dead_letter_topic(&t.name))
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

/// The headers of a dead letter: the reason and error, the source topic, partition and offset,
/// and the bad lines of a JSON message whose good events were kept.
pub(super) fn headers(
    err: &DecodeError,
    tp: &TopicPartition,
    offset: i64,
    lines: Option<&str>,
) -> OwnedHeaders {
    let partition = tp.partition.to_string();
    let offset_text = offset.to_string();
    let mut headers = OwnedHeaders::new()
        .insert(Header {
            key: "driftwatch-reason",
            value: Some(err.reason.as_str()),
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
    if let Some(l) = lines {
        headers = headers.insert(Header {
            key: "driftwatch-bad-lines",
            value: Some(l),
        });
    }
    headers
}
