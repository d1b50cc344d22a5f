//! The alerting crate's error type.

/// Errors of the alerting crate: invalid configuration (rejected once, at load) and the
/// Alertmanager client's failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertingError {
    /// An alert rule in the configuration is invalid (the message names the rule and the key).
    #[error("invalid alert rule `{rule}`: {reason}")]
    InvalidRule {
        /// The rule's `alert` name.
        rule: String,
        /// What is wrong, naming the offending key.
        reason: String,
    },
    /// A rule's `metric` does not name a window metric.
    #[error("invalid rule metric `{metric}`: {reason}")]
    InvalidMetric {
        /// The metric as written in the configuration.
        metric: String,
        /// What is wrong.
        reason: String,
    },
    /// The Alertmanager client configuration is invalid (the message names the key).
    #[error("invalid Alertmanager client configuration: {0}")]
    InvalidClientConfig(String),
    /// The HTTP client could not be built.
    #[error("cannot build the Alertmanager HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The Alertmanager client task has stopped, so notifications can no longer be queued.
    #[error("the Alertmanager client task has stopped")]
    ClientStopped,
    /// The metrics registry could not be encoded as OpenMetrics text.
    #[error("cannot encode the metrics registry: {0}")]
    Encode(#[from] std::fmt::Error),
}

impl AlertingError {
    /// A bounded label for metrics and logs (never error text).
    pub fn metric_label(&self) -> &'static str {
        match self {
            AlertingError::InvalidRule { .. } => "invalid_rule",
            AlertingError::InvalidMetric { .. } => "invalid_metric",
            AlertingError::InvalidClientConfig(_) => "invalid_client_config",
            AlertingError::HttpClient(_) => "http_client",
            AlertingError::ClientStopped => "client_stopped",
            AlertingError::Encode(_) => "encode",
        }
    }

    /// Whether retrying the same operation may succeed. Configuration errors never do.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AlertingError::Encode(_))
    }
}
