//! The exposition formats of `GET /metrics`: the registry encoded as OpenMetrics text, its
//! rewrite into the Prometheus text format 0.0.4, and which of the two an `Accept` header asks
//! for.

use std::collections::HashSet;

use prometheus_client::registry::Registry;

use crate::error::AlertingError;

/// The content type of `GET /metrics` (OpenMetrics text 1.0.0).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Encodes `registry` as OpenMetrics text (ending with `# EOF`).
///
/// # Errors
/// [`AlertingError::Encode`] when a metric cannot be written (the text writer itself never fails).
pub fn encode_registry(registry: &Registry) -> Result<String, AlertingError> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

/// The content type of `GET /metrics` in the Prometheus text format 0.0.4.
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Rewrites OpenMetrics text (as [`encode_registry`] writes it) in the Prometheus text format
/// 0.0.4, for scrapers and tools that ask for it (`promtool check metrics`, older Prometheus):
/// a counter family's `# HELP` and `# TYPE` lines name its `_total` samples (in OpenMetrics they
/// name the family without the suffix, which the 0.0.4 parser reports as "no help text"), its
/// `_created` samples are dropped, `# UNIT` lines and the closing `# EOF` are dropped, and an
/// `info` family becomes a gauge. Samples and label escaping are the same in both formats.
/// Sources: the OpenMetrics 1.0 specification (counters, `# EOF`) and Prometheus' "Exposition
/// formats" (text format 0.0.4).
pub fn openmetrics_to_prometheus_text(openmetrics: &str) -> String {
    let mut counters = HashSet::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some((name, kind)) = rest.split_once(' ')
            && kind == "counter"
        {
            counters.insert(name.to_string());
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        let rewritten = if line == "# EOF" || line.starts_with("# UNIT ") {
            None
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(if counters.contains(name) {
                format!("# HELP {name}_total {help}")
            } else {
                line.to_string()
            })
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            Some(match rest.split_once(' ') {
                Some((name, "counter")) => format!("# TYPE {name}_total counter"),
                Some((name, "info")) => format!("# TYPE {name}_info gauge"),
                _ => line.to_string(),
            })
        } else {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            let created = name
                .strip_suffix("_created")
                .is_some_and(|family| counters.contains(family));
            (!created).then(|| line.to_string())
        };
        if let Some(l) = rewritten {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// Whether an `Accept` header asks for the Prometheus text format rather than OpenMetrics: it
/// accepts `text/plain` (with a quality above 0) and does not accept
/// `application/openmetrics-text`. Without an `Accept` header, or with `*/*`, `/metrics`
/// answers OpenMetrics.
pub(super) fn wants_prometheus_text(accept: Option<&str>) -> bool {
    let Some(accept) = accept else { return false };
    // Media ranges with their quality (RFC 9110 section 12.5.1); `q=0` means "not acceptable".
    let accepted = |media: &str| {
        accept.split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let name = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            name == media && q > 0.0
        })
    };
    accepted("text/plain") && !accepted("application/openmetrics-text")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_counters_become_total_families_in_text_format() {
        let om = "# HELP c Things.\n# TYPE c counter\nc_total{a=\"1\"} 3\nc_created{a=\"1\"} 1.5e9\n# HELP g Level.\n# TYPE g gauge\n# UNIT g seconds\ng 2.5\n# EOF\n";
        assert_eq!(
            openmetrics_to_prometheus_text(om),
            "# HELP c_total Things.\n# TYPE c_total counter\nc_total{a=\"1\"} 3\n# HELP g Level.\n# TYPE g gauge\ng 2.5\n"
        );
        assert!(wants_prometheus_text(Some("text/plain; version=0.0.4")));
        assert!(wants_prometheus_text(Some(
            "application/openmetrics-text; version=1.0.0; q=0, text/plain; version=0.0.4"
        )));
        assert!(!wants_prometheus_text(Some("text/plain;q=0, */*")));
        assert!(!wants_prometheus_text(Some("*/*")));
        assert!(!wants_prometheus_text(None));
    }
}
