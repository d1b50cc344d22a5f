//! driftwatch's analyzer: reference profiles, drift statistics, window state and batch analysis.
//!
//! The key design decision is that every statistic is computed from a small, mergeable per-window
//! state (a histogram over the reference bins plus, for numeric features, the window's values), so
//! the same code serves the batch tool (`driftwatch analyze`, chunks of a file) and the streaming
//! windows, and partial states from batches, partitions or threads combine exactly. The statistics
//! themselves match scipy to about 1e-9 relative; `tests/parity.rs` checks them against oracle
//! values computed with scipy.
//!
//! ```
//! use analyzer::stats::ks_2samp;
//! let r = ks_2samp(&[1.0, 2.0, 3.0, 4.0], &[3.0, 6.0, 7.0, 8.0, 9.0, 3.0, 2.0, 1.0, 4.0, 4.0, 5.0, f64::NAN]).unwrap();
//! assert!((r.statistic - 0.45454545454545453).abs() < 1e-15); // NaN dropped (edge case E7)
//! ```

#![warn(missing_docs)]

pub mod batch;
pub mod change;
pub mod drift;
pub mod error;
pub mod kernels;
pub mod multivariate;
pub mod null_law;
pub mod parallel;
pub mod profile;
pub mod quality;
pub mod sql;
pub mod state;
pub mod stats;
pub mod stream;
pub mod thresholds;

// The shared contracts and the file readers, re-exported where the analyzer has always had them.
pub use tables::{columns, table, time};
pub use types::event as event_schema;

pub use batch::{AnalysisReport, AnalysisSettings, Chunking, ThresholdMode, analyze, calibrate};
pub use columns::FeatureKind;
pub use drift::{DriftSettings, FeatureDrift, FeatureStatus};
pub use error::AnalyzerError;
pub use profile::{FeatureProfile, ProfileOptions, ReferenceProfile};
pub use state::{FeatureModel, FeatureState};
pub use stats::Method;
pub use table::{ReadOptions, Table, read_table};
