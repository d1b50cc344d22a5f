//! Streaming analysis: event-time tumbling windows per model, version and variant, with a
//! watermark and allowed lateness, closed into [`WindowReport`]s, and checkpointed.

pub mod checkpoint;
mod window_stats;
pub mod windows;

pub use checkpoint::{Checkpointer, Restored};
pub use types::report::{self as report, ClosedWindow, Quantiles, SeriesKey, WindowReport};
pub use windows::{Absorbed, CustomMetric, ModelClock, OpenWindow, WindowSettings, Windows};
