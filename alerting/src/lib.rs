//! driftwatch's alerting: the Prometheus exporter, the alert rule engine, the Alertmanager v2
//! client and the Alertmanager webhook receiver.
//!
//! - [`exporter`]: [`ModelMetrics`] registers the model and service metrics of `docs/metrics.md`
//!   into the binary's one [`prometheus_client::registry::Registry`] and updates them once per
//!   closed window; [`exporter::router`] serves `GET /metrics`, `/healthz` and `/readyz`.
//! - [`rules`]: [`RuleEngine`] evaluates the built-in rules (mirroring
//!   `rules/driftwatch.rules.yaml`) and user rules on every window report, in event time.
//! - [`alertmanager`]: [`AlertmanagerHandle`] feeds a task that posts alerts to Alertmanager's v2
//!   API with Prometheus' resend cadence, retries and backoff.
//! - [`webhook`]: [`webhook::router`] receives Alertmanager's webhook notifications.
//!
//! The key design decision is that every alert transition, whether decided by the built-in rule
//! engine or received from Alertmanager's webhook, becomes one [`AlertTrigger`] per alert (never
//! per group, edge case E19) on a channel the controller consumes, identified by the alert's label
//! fingerprint so that repeats are idempotent. The engine's clock is event time (the end of each
//! closed window), so replays of logs at any speed alert exactly as the live stream did.
//!
//! ```
//! use alerting::{RuleEngine, RulesConfig};
//! use types::report::{Quantiles, SeriesKey, WindowReport};
//! use chrono::{TimeDelta, TimeZone, Utc};
//!
//! let mut engine = RuleEngine::new(&RulesConfig::default()).unwrap();
//! let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap();
//! let slow = |end: i64| WindowReport {
//!     key: SeriesKey::new("car-loan", "v1", "stable"),
//!     start: t0 + TimeDelta::minutes(end - 5),
//!     end: t0 + TimeDelta::minutes(end),
//!     requests: 100,
//!     latency_seconds: Quantiles { count: 100, p50: Some(0.8), p95: Some(1.5), p99: None },
//!     confidence: Quantiles::default(),
//!     missing_ratio: Default::default(),
//!     drift: Vec::new(),
//!     custom: Default::default(),
//!     sampled: false,
//! };
//! assert!(engine.evaluate(&slow(5)).is_empty()); // pending: p95 1.5 s > 1 s
//! let fired = engine.evaluate(&slow(10)); // 5m later, in event time
//! assert_eq!(fired[0].trigger.alertname, "HighModelLatency");
//! ```

#![warn(missing_docs)]

pub mod alertmanager;
pub mod alertmanager_telemetry;
pub mod error;
pub mod exporter;
pub mod rules;
pub mod webhook;

pub use alertmanager::{AlertNotification, AlertmanagerConfig, AlertmanagerHandle, FlushReport};
pub use alertmanager_telemetry::AlertmanagerMetrics;
pub use error::AlertingError;
pub use exporter::{InvalidField, MetricsConfig, ModelMetrics, Readiness};
pub use rules::{
    ActiveAlert, AlertState, AlertsView, Operator, RuleConfig, RuleEngine, RulesConfig, Transition,
    WindowMetric,
};
pub use types::alert::{self as trigger, AlertStatus, AlertTrigger, TriggerSource, fingerprint};
pub use webhook::{WebhookAlert, WebhookConfig, WebhookPayload};
