//! The controller's error type: one `#[non_exhaustive]` enum whose variants each map to a bounded
//! metric label ([`Error::metric_label`]) and a retry decision ([`Error::is_retryable`]).

telemetry::label_values! {
    /// Why a reconcile failed, in `driftwatch_reconcile_errors_total{reason}`
    /// ([`Error::metric_label`]).
    pub enum ReconcileErrorReason {
        /// The API server answered 409 Conflict.
        KubeConflict => "kube_conflict",
        /// The API server answered 404 Not Found.
        KubeNotFound => "kube_not_found",
        /// The API server answered 403 Forbidden.
        KubeForbidden => "kube_forbidden",
        /// Another API error status.
        KubeApi => "kube_api",
        /// The API server could not be reached.
        KubeTransport => "kube_transport",
        /// The ModelMonitor's spec is invalid.
        InvalidSpec => "invalid_spec",
        /// An object lacks a field the controller needs.
        MissingField => "missing_field",
        /// The canary target cannot be used.
        CanaryTarget => "canary_target",
        /// The canary's metrics source failed.
        MetricsSource => "metrics_source",
        /// An object could not be (de)serialised.
        Serialisation => "serialisation",
        /// A YAML document could not be read.
        Yaml => "yaml",
        /// The controller's configuration is unusable.
        Config => "config",
    }
}

/// Everything that can go wrong while reconciling a `ModelMonitor`, electing a leader, reading
/// canary metrics or rendering a dry run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Kubernetes API call failed. `operation` names the call, e.g. `create Job retrain-x-1a2b3c4d`.
    #[error("Kubernetes API call failed: {operation}: {source}")]
    Kube {
        /// What was being done, e.g. `patch ModelMonitor car-loan status`.
        operation: String,
        /// The client error (HTTP status and API message when the server answered).
        #[source]
        source: Box<kube::Error>,
    },
    /// The `ModelMonitor` spec breaks a rule the schema cannot express (or that an old API server
    /// did not enforce). The message names the field, e.g. `spec.canary.maxWeight (120) must be
    /// at most 100`.
    #[error("invalid ModelMonitor {name}: {message}")]
    InvalidSpec {
        /// `namespace/name` of the monitor.
        name: String,
        /// Every broken rule, joined by `; `.
        message: String,
    },
    /// An object lacks a field the controller needs (namespace, name or uid).
    #[error("object is missing {0}")]
    MissingField(&'static str),
    /// The canary target (SeldonDeployment or InferenceService) does not have the shape the
    /// adapter needs, e.g. the named predictor is absent.
    #[error("canary target {target}: {message}")]
    Target {
        /// `Kind/name` of the target.
        target: String,
        /// What is wrong with it.
        message: String,
    },
    /// The metrics source (the analyzer or a Prometheus HTTP API) could not be read as a whole.
    #[error("metrics source unavailable: {0}")]
    MetricsSource(String),
    /// Serialising an object to JSON failed.
    #[error("cannot serialise {what} to JSON: {source}")]
    Json {
        /// The object being serialised.
        what: &'static str,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing YAML failed (CRD generation, dry-run input or output).
    #[error("cannot {operation} YAML: {source}")]
    Yaml {
        /// `parse` or `render`, with the document, e.g. `parse dry-run document 3`.
        operation: String,
        /// The YAML error.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// The controller configuration is unusable, e.g. an empty namespace.
    #[error("invalid controller configuration: {0}")]
    Config(String),
}

impl Error {
    /// Wraps a kube client error with the operation that failed.
    pub fn kube(operation: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            operation: operation.into(),
            source: Box::new(source),
        }
    }

    /// A bounded, low-cardinality label for `driftwatch_reconcile_errors_total{reason}`: never
    /// error text or object names.
    pub fn metric_label(&self) -> ReconcileErrorReason {
        match self {
            Self::Kube { source, .. } => match source.as_ref() {
                kube::Error::Api(status) if status.code == 409 => {
                    ReconcileErrorReason::KubeConflict
                }
                kube::Error::Api(status) if status.code == 404 => {
                    ReconcileErrorReason::KubeNotFound
                }
                kube::Error::Api(status) if status.code == 403 => {
                    ReconcileErrorReason::KubeForbidden
                }
                kube::Error::Api(_) => ReconcileErrorReason::KubeApi,
                _ => ReconcileErrorReason::KubeTransport,
            },
            Self::InvalidSpec { .. } => ReconcileErrorReason::InvalidSpec,
            Self::MissingField(_) => ReconcileErrorReason::MissingField,
            Self::Target { .. } => ReconcileErrorReason::CanaryTarget,
            Self::MetricsSource(_) => ReconcileErrorReason::MetricsSource,
            Self::Json { .. } => ReconcileErrorReason::Serialisation,
            Self::Yaml { .. } => ReconcileErrorReason::Yaml,
            Self::Config(_) => ReconcileErrorReason::Config,
        }
    }

    /// Whether retrying the same reconcile later can succeed. Spec and shape errors need a
    /// change to the object first, so the controller waits for one instead of retrying.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Kube { source, .. } => match source.as_ref() {
                // 400 Bad Request and 422 Invalid: the object we send is wrong; retrying repeats it.
                kube::Error::Api(status) => !matches!(status.code, 400 | 422),
                _ => true,
            },
            Self::Target { .. } | Self::MetricsSource(_) => true,
            Self::InvalidSpec { .. }
            | Self::MissingField(_)
            | Self::Json { .. }
            | Self::Yaml { .. }
            | Self::Config(_) => false,
        }
    }
}

/// `Result` with the controller's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> Error {
        Error::kube(
            "create Job",
            kube::Error::Api(Box::new(
                kube::core::Status::failure("boom", "Reason").with_code(code),
            )),
        )
    }

    #[test]
    fn labels_are_bounded_and_retry_decisions_follow_the_status_code() {
        assert_eq!(api_error(409).metric_label(), "kube_conflict");
        assert_eq!(api_error(500).metric_label(), "kube_api");
        assert!(api_error(500).is_retryable());
        assert!(!api_error(422).is_retryable());
        let invalid = Error::InvalidSpec {
            name: "ns/m".into(),
            message: "spec.model must not be empty".into(),
        };
        assert_eq!(invalid.metric_label(), "invalid_spec");
        assert!(!invalid.is_retryable());
        assert!(Error::MetricsSource("down".into()).is_retryable());
    }
}
