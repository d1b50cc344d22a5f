//! The `[kafka]` section: [`KafkaConfig`], [`TopicConfig`] and [`TopicRole`], their defaults,
//! the cross-field validation and the dead-letter topic of each consumed topic.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::KafkaError;
use crate::decode::Encoding;
use crate::decode::oip::OipMapping;

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

    pub(super) fn dead_letter_topic(&self, topic: &str) -> String {
        self.topics
            .iter()
            .find(|t| t.name == topic)
            .and_then(|t| t.dead_letter_topic.clone())
            .unwrap_or_else(|| format!("{topic}{}", self.dead_letter_suffix))
    }
}
