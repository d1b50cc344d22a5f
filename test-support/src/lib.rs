//! Test helpers shared by driftwatch's crates, as a dev-dependency only (never shipped).
//!
//! - [`car_loan`]: the built-in car_loan data set's features, columns, sizes and paths, from
//!   `data/car_loan/manifest.toml`.
//! - [`fuzz`]: the mutation strategy and case budget of the decoders' fuzz harnesses.
//! - [`wait`]: free ports and bounded waits (sync and async) for integration tests.
//! - [`tansu`]: a real Kafka-protocol broker (tansu) on a loopback port, for every Kafka test.
//! - [`kube_mock`]: the one mock Kubernetes API server (stateful or scripted), for every test of
//!   the controller against an API server.

#![warn(missing_docs)]

pub mod car_loan;
pub mod fuzz;
pub mod kube_mock;
pub mod tansu;
pub mod wait;

pub use wait::{eventually, eventually_blocking, eventually_some, free_port};
