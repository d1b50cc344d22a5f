//! Canary analysis: the pure state machine ([`machine`]), the checks it evaluates ([`checks`]),
//! where its measurements come from ([`source`]) and the traffic adapters for Seldon Core v1 and
//! KServe ([`adapters`]).

pub mod adapters;
pub mod checks;
pub mod machine;
pub mod source;

pub use checks::{CheckMeasurement, CheckOutcome, Sample};
pub use machine::{CanaryPhase, CanaryState, Inputs, TargetObservation, TrafficAction};
pub use source::{InProcessSource, MetricsSource, PrometheusSource};
