//! Test helpers shared by driftwatch's crates, as a dev-dependency only (never shipped).
//!
//! - [`fuzz`]: the mutation strategy and case budget of the decoders' fuzz harnesses.
//! - [`wait`]: free ports and bounded waits (sync and async) for integration tests.

#![warn(missing_docs)]

pub mod fuzz;
pub mod wait;

pub use wait::{eventually, eventually_blocking, eventually_some, free_port};
