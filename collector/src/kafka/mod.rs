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
//!
//! # Layout
//!
//! This module re-exports the public items of its parts, whose dependencies point one way
//! (`error` <- `config` <- `client` <- `dead_letter`; `commit` <- `context`; `config`, `commit`,
//! `context`, `dead_letter` <- `worker` <- `handle`, `pairing`; all of them <- `source`):
//!
//! - `error`: [`KafkaError`];
//! - `config`: [`KafkaConfig`], [`TopicConfig`], [`TopicRole`], their defaults and validation,
//!   and the dead-letter topic of each topic;
//! - `client`: the librdkafka configurations of the consumer, the dead-letter producer and the
//!   admin client (fixed properties, then the `client` pass-through settings for TLS and SASL);
//! - `commit`: the synchronous commit of the durable offsets;
//! - `context`: the consumer context and its rebalance callbacks (drain revoked partitions,
//!   resume assigned ones from the checkpoint, carry the backpressure pause over);
//! - `dead_letter`: the dead-letter producer's delivery callbacks, the creation of missing
//!   dead-letter topics and the headers of a dead letter;
//! - `worker`: the consumer thread's state and loop, backpressure, the hand-over of batches and
//!   the drain on shutdown;
//! - `handle`: the handling of one message (JSON into the batcher, OIP v2 to the pairing) and
//!   its dead-lettering;
//! - `pairing`: OIP v2 request/response pairing and the expiry of unpaired halves;
//! - `source`: [`KafkaSource`] and [`start`].

mod client;
mod commit;
mod config;
mod context;
mod dead_letter;
mod error;
mod handle;
mod pairing;
mod source;
mod worker;

pub use config::{DEFAULT_MAX_PENDING_PAIR_BYTES, KafkaConfig, TopicConfig, TopicRole};
pub use error::KafkaError;
pub use source::{KafkaSource, start};
