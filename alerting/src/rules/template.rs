//! Annotation templates: `{{ $value }}` and `{{ $labels.NAME }}` rendered when an alert fires,
//! values formatted with 4 significant digits.

use std::collections::BTreeMap;

/// Formats a value with 4 significant digits, like `printf "%.4g"`.
pub(super) fn format_value(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let exp = v.abs().log10().floor() as i32;
    if !(-4..4).contains(&exp) {
        return format!("{v:.3e}");
    }
    let decimals = usize::try_from(3 - exp).unwrap_or(0);
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Replaces `{{ $value }}` and `{{ $labels.NAME }}` (spaces inside the braces optional); any other
/// `{{ ... }}` is kept as written.
pub(super) fn render(
    template: &str,
    labels: &BTreeMap<String, String>,
    value: Option<f64>,
) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let inner = after[..close].trim();
        if inner == "$value" {
            out.push_str(&value.map_or_else(|| "no data".to_string(), format_value));
        } else if let Some(name) = inner.strip_prefix("$labels.") {
            out.push_str(labels.get(name).map_or("", String::as_str));
        } else {
            out.push_str(&rest[open..open + 2 + close + 2]);
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_formatted_with_four_significant_digits() {
        assert_eq!(format_value(2.0), "2");
        assert_eq!(format_value(0.31234), "0.3123");
        assert_eq!(format_value(1234.6), "1235");
        assert_eq!(format_value(0.000_012_5), "1.250e-5");
        assert_eq!(format_value(0.0), "0");
    }
}
