//! Drift statistics with the exact semantics of DESIGN.md, each checked against scipy.
//!
//! All inputs are `f64` samples (sorted, NaN already dropped and counted by the caller) or `u64`
//! histogram counts; all outputs are `f64`. Every function documents the scipy function it matches.

pub mod chi2;
pub mod divergence;
pub mod ecdf;
pub mod kolmogorov;
pub mod ks;
pub mod wasserstein;

pub use chi2::{Chi2Result, chi2_homogeneity};
pub use divergence::{hellinger, jensen_shannon, kl, l_infinity, psi};
pub use ecdf::{EcdfDistances, ecdf_distances};
pub use ks::{KsResult, ks_2samp, ks_2samp_sorted, ks_from_statistic};
pub use types::drift::{Direction, Method, UnknownMethod};
pub use wasserstein::wasserstein_sorted;
