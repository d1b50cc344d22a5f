//! The per-window metrics a rule compares ([`WindowMetric`]): their configuration syntax
//! (`latency_p95`, `drift:<feature>:<method>`, ...), its parser, and their values in a
//! [`WindowReport`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use types::drift::Method;
use types::report::WindowReport;

use crate::error::AlertingError;

/// A per-window metric a rule can compare. Written as a string in the configuration (see
/// [`RuleConfig::metric`]).
///
/// [`RuleConfig::metric`]: super::RuleConfig::metric
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum WindowMetric {
    /// `requests`: predictions in the window.
    Requests,
    /// `latency_p50`: median latency, seconds.
    LatencyP50,
    /// `latency_p95`: 95th percentile latency, seconds.
    LatencyP95,
    /// `latency_p99`: 99th percentile latency, seconds.
    LatencyP99,
    /// `confidence_median`: median prediction confidence.
    ConfidenceMedian,
    /// `missing_ratio:<feature>`: share of missing values of a feature.
    MissingRatio(String),
    /// `drift:<feature>:<method>`: a drift statistic of a feature.
    Drift {
        /// The feature.
        feature: String,
        /// The statistic.
        method: Method,
    },
    /// `custom:<name>`: a user-defined window metric.
    Custom(String),
}

impl WindowMetric {
    /// The metric's value in `report`; `None` when the window has none (no observations: E17,
    /// feature or method not reported, custom query without value) or it is not finite.
    pub fn value(&self, report: &WindowReport) -> Option<f64> {
        let v = match self {
            WindowMetric::Requests => Some(report.requests as f64),
            WindowMetric::LatencyP50 => report.latency_seconds.p50,
            WindowMetric::LatencyP95 => report.latency_seconds.p95,
            WindowMetric::LatencyP99 => report.latency_seconds.p99,
            WindowMetric::ConfidenceMedian => report.confidence.p50,
            WindowMetric::MissingRatio(f) => report.missing_ratio.get(f).copied(),
            WindowMetric::Drift { feature, method } => report
                .drift
                .iter()
                .find(|d| &d.feature == feature)
                .and_then(|d| d.method(*method))
                .and_then(|m| m.value),
            WindowMetric::Custom(name) => report.custom.get(name).copied().flatten(),
        };
        v.filter(|v| v.is_finite())
    }

    /// The labels the metric adds to its alerts (`feature`, `method`).
    pub(super) fn labels(&self) -> Vec<(&'static str, String)> {
        match self {
            WindowMetric::MissingRatio(f) => vec![("feature", f.clone())],
            WindowMetric::Drift { feature, method } => {
                vec![
                    ("feature", feature.clone()),
                    ("method", method.name().to_string()),
                ]
            }
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for WindowMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowMetric::Requests => f.write_str("requests"),
            WindowMetric::LatencyP50 => f.write_str("latency_p50"),
            WindowMetric::LatencyP95 => f.write_str("latency_p95"),
            WindowMetric::LatencyP99 => f.write_str("latency_p99"),
            WindowMetric::ConfidenceMedian => f.write_str("confidence_median"),
            WindowMetric::MissingRatio(x) => write!(f, "missing_ratio:{x}"),
            WindowMetric::Drift { feature, method } => write!(f, "drift:{feature}:{method}"),
            WindowMetric::Custom(x) => write!(f, "custom:{x}"),
        }
    }
}

impl FromStr for WindowMetric {
    type Err = AlertingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| AlertingError::InvalidMetric {
            metric: s.to_string(),
            reason: reason.to_string(),
        };
        let nonempty = |x: &str, what: &str| {
            if x.is_empty() {
                Err(err(&format!("the {what} name is empty")))
            } else {
                Ok(x.to_string())
            }
        };
        Ok(match s {
            "requests" => WindowMetric::Requests,
            "latency_p50" => WindowMetric::LatencyP50,
            "latency_p95" => WindowMetric::LatencyP95,
            "latency_p99" => WindowMetric::LatencyP99,
            "confidence_median" => WindowMetric::ConfidenceMedian,
            _ => {
                if let Some(f) = s.strip_prefix("missing_ratio:") {
                    WindowMetric::MissingRatio(nonempty(f, "feature")?)
                } else if let Some(name) = s.strip_prefix("custom:") {
                    WindowMetric::Custom(nonempty(name, "custom metric")?)
                } else if let Some(rest) = s.strip_prefix("drift:") {
                    let (feature, method) = rest
                        .rsplit_once(':')
                        .ok_or_else(|| err("expected `drift:<feature>:<method>`"))?;
                    let method = method.parse::<Method>().map_err(|e| err(&e.to_string()))?;
                    WindowMetric::Drift {
                        feature: nonempty(feature, "feature")?,
                        method,
                    }
                } else {
                    return Err(err(
                        "expected one of requests, latency_p50, latency_p95, latency_p99, \
                         confidence_median, missing_ratio:<feature>, drift:<feature>:<method>, \
                         custom:<name>",
                    ));
                }
            }
        })
    }
}

impl TryFrom<String> for WindowMetric {
    type Error = AlertingError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<WindowMetric> for String {
    fn from(m: WindowMetric) -> Self {
        m.to_string()
    }
}
