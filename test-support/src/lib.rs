//! Test helpers shared by driftwatch's crates, as a dev-dependency only (never shipped).
//!
//! - [`fuzz`]: the mutation strategy and case budget of the decoders' fuzz harnesses.

#![warn(missing_docs)]

pub mod fuzz;
