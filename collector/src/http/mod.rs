//! HTTP ingest (axum): `POST /v1/events` for driftwatch events and `POST /v1/cloudevents` for
//! KServe's inference logger.
//!
//! - A JSON array or NDJSON body; a request with any bad event is rejected whole with `400` and a
//!   JSON error naming the first bad line, so the client can fix and resend it.
//! - Bodies over `max_body_bytes` get `413`; a missing or wrong bearer token (when one is
//!   configured) `401`; while the analyzer is behind (the batch channel is full) `503` with
//!   `Retry-After`, so memory stays bounded.
//! - Accepted events answer `202 {"accepted": n}`. With a write-ahead log ([`HttpIngest::with_wal`])
//!   the answer waits until the events are fsynced in it, so a 202 survives `kill -9`; a failed
//!   write answers `503` (reason `not_durable`).
//!
//! # Layout
//!
//! This module re-exports the public items of its parts, whose dependencies point one way
//! (`config` <- `state` <- all the others; `request` <- `events`, `cloudevents` <- `routes`;
//! `accept`, `durable`, `ticker` and `routes` each add methods to [`HttpIngest`], which the
//! handlers call):
//!
//! - `config`: [`HttpIngestConfig`] and the credentials it resolves;
//! - `state`: [`HttpIngest`] (the handlers' shared state), its constructors, the batcher's lock,
//!   the hand-over of batches to the analyzer and the backpressure check;
//! - `durable`: the write-ahead-log path, durable appends and [`HttpIngest::replay`] at start-up;
//! - `accept`: the acceptance of one request's events (model admission, the log or the batcher,
//!   the `202`);
//! - `request`: the media-type and body checks both endpoints make;
//! - `events`: the `POST /v1/events` handler;
//! - `cloudevents`: the `POST /v1/cloudevents` handler and the pairing of its halves;
//! - `routes`: [`HttpIngest::router`];
//! - `ticker`: [`HttpIngest::tick`] (due batches, expiry of unpaired CloudEvents), [`run_ticker`]
//!   and [`HttpIngest::flush`] at shutdown.

mod accept;
mod cloudevents;
mod config;
mod durable;
mod events;
#[cfg(test)]
mod fixtures;
mod request;
mod routes;
mod state;
mod ticker;

pub use config::HttpIngestConfig;
pub use state::HttpIngest;
pub use ticker::run_ticker;
