//! Terminal rendering of an analysis report: a table per chunk and a feature-by-chunk summary.

use std::fmt::Write as _;

use analyzer::drift::{FeatureDrift, MethodResult};
use analyzer::stats::Direction;
use analyzer::{AnalysisReport, Chunking, FeatureStatus, Method};
use comfy_table::{Cell, CellAlignment, Table, presets};

/// Renders `report`; the table shows each feature's verdict methods plus `extra` methods.
pub fn render_table(report: &AnalysisReport, extra: &[Method]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "driftwatch analyze: {} ({} rows) against {}",
        report.current,
        report.current_rows,
        report.reference.join(" + ")
    );
    let _ = writeln!(out, "{}", describe_settings(report));
    for chunk in &report.chunks {
        let _ = writeln!(out);
        let verdict = match (chunk.dataset_drift, chunk.drifted_features.is_empty()) {
            (None, _) => "no verdict (not enough data)".to_string(),
            (Some(_), true) => format!("no drift (0 of {} features)", judged(chunk)),
            (Some(dataset), false) => format!(
                "DRIFT in {} of {} features{}: {}",
                chunk.drifted_features.len(),
                judged(chunk),
                if dataset { ", dataset drift" } else { "" },
                chunk.drifted_features.join(", ")
            ),
        };
        let span = match (chunk.start, chunk.end) {
            (Some(s), Some(e)) => format!(
                "{} to {}",
                s.format("%Y-%m-%d %H:%M:%S"),
                e.format("%Y-%m-%d %H:%M:%S")
            ),
            _ => format!("rows {}-{}", chunk.first_row, chunk.last_row),
        };
        let _ = writeln!(
            out,
            "chunk {} | {} ({} rows) | {}",
            chunk.index, span, chunk.rows, verdict
        );
        let _ = writeln!(out, "{}", chunk_table(&chunk.features, extra));
        if let Some(m) = &chunk.multivariate {
            let _ = writeln!(out, "{}", multivariate_line(m, report));
        }
        if let Some(q) = &chunk.quality {
            let _ = writeln!(out, "{}", quality_line(q));
        }
        if let Some(e) = &chunk.estimated_quality {
            let shown = named_metrics(&[
                ("accuracy", e.accuracy),
                ("precision", e.precision),
                ("recall", e.recall),
                ("f1", e.f1),
                ("roc_auc", e.roc_auc),
            ]);
            let _ = writeln!(
                out,
                "estimated quality, without labels (CBPE, {} predictions): {shown}\n",
                e.count
            );
        }
    }
    out.push('\n');
    out.push_str(&summary(report));
    out
}

/// One chunk's multivariate drift: `multivariate (PCA reconstruction error): 1.249 outside the
/// band 1.115-1.153: ALERT`.
fn multivariate_line(
    m: &analyzer::multivariate::ChunkMultivariate,
    report: &AnalysisReport,
) -> String {
    let bound = |b: Option<f64>, open: &str| b.map_or_else(|| open.to_string(), number);
    let band = report.multivariate.as_ref().map_or_else(
        || "-".to_string(),
        |s| {
            format!(
                "{} to {}",
                bound(s.lower_threshold, "-inf"),
                bound(s.upper_threshold, "inf")
            )
        },
    );
    let value = m
        .reconstruction_error
        .map_or_else(|| "-".to_string(), number);
    let verdict = if m.alert { "ALERT" } else { "no alert" };
    format!("multivariate (PCA reconstruction error): {value}, band {band}: {verdict}\n")
}

/// One chunk's realized quality: `quality (N labelled): metric value, ...` (`-` when undefined).
fn quality_line(q: &analyzer::quality::Quality) -> String {
    use analyzer::quality::Quality;
    let (count, metrics): (u64, Vec<(&str, Option<f64>)>) = match q {
        Quality::Binary(b) => (
            b.count,
            vec![
                ("accuracy", b.accuracy),
                ("precision", b.precision),
                ("recall", b.recall),
                ("f1", b.f1),
                ("roc_auc", b.roc_auc),
                ("log_loss", b.log_loss),
                ("brier", b.brier),
            ],
        ),
        Quality::Multiclass(m) => (
            m.count,
            vec![
                ("accuracy", m.accuracy),
                ("f1_macro", m.f1_macro),
                ("f1_weighted", m.f1_weighted),
            ],
        ),
        Quality::Regression(r) => (
            r.count,
            vec![
                ("mae", r.mae),
                ("rmse", r.rmse),
                ("mape", r.mape),
                ("r2", r.r2),
            ],
        ),
    };
    format!("quality ({count} labelled): {}\n", named_metrics(&metrics))
}

/// `name value, name value, ...` with short numbers (`-` when undefined).
fn named_metrics(metrics: &[(&str, Option<f64>)]) -> String {
    metrics
        .iter()
        .map(|(name, v)| format!("{name} {}", v.map_or_else(|| "-".to_string(), number)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn judged(chunk: &analyzer::batch::ChunkReport) -> usize {
    chunk.features.iter().filter(|f| f.drift.is_some()).count()
}

fn describe_settings(report: &AnalysisReport) -> String {
    let s = &report.settings;
    let chunking = match &s.chunking {
        Chunking::Size { rows } => format!("chunks of {rows} rows"),
        Chunking::Period { millis, column, .. } => {
            format!(
                "chunks of {} by `{column}`",
                humantime::format_duration(std::time::Duration::from_millis(*millis as u64))
            )
        }
        Chunking::Whole => "the whole file as one chunk".to_string(),
    };
    let names = |m: &[Method]| m.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ");
    format!(
        "{chunking}; verdict: numeric by {}, categorical by {}; {} thresholds; min {} values per chunk",
        names(&s.drift.numeric_verdict),
        names(&s.drift.categorical_verdict),
        match s.threshold_mode {
            analyzer::ThresholdMode::Adaptive => "adaptive",
            analyzer::ThresholdMode::Fixed => "fixed",
            analyzer::ThresholdMode::Calibrated => "calibrated",
        },
        s.drift.min_samples
    )
}

fn chunk_table(features: &[FeatureDrift], extra: &[Method]) -> String {
    let mut table = Table::new();
    table.load_preset(presets::ASCII_BORDERS_ONLY_CONDENSED);
    table.set_header([
        "feature",
        "kind",
        "method",
        "value",
        "p-value",
        "threshold",
        "verdict",
    ]);
    for f in features {
        let shown: Vec<&MethodResult> = f
            .methods
            .iter()
            .filter(|m| m.verdict_method || extra.contains(&m.method))
            .collect();
        match &f.status {
            FeatureStatus::NoData { reason } | FeatureStatus::NoReference { reason } => {
                let label = if matches!(f.status, FeatureStatus::NoData { .. }) {
                    "no data"
                } else {
                    "no reference"
                };
                table.add_row(vec![
                    Cell::new(&f.feature),
                    Cell::new(f.kind),
                    Cell::new("-"),
                    Cell::new(""),
                    Cell::new(""),
                    Cell::new(""),
                    Cell::new(format!("{label}: {reason}")),
                ]);
                continue;
            }
            _ => {}
        }
        for (i, m) in shown.iter().enumerate() {
            let verdict = match (&f.status, m.drift, m.verdict_method) {
                (FeatureStatus::InsufficientData { min_samples }, _, _) => {
                    format!("insufficient data ({} < {min_samples})", f.count)
                }
                (_, Some(true), true) => "DRIFT".to_string(),
                (_, Some(false), true) => "ok".to_string(),
                (_, Some(true), false) => "crosses (not a verdict method)".to_string(),
                (_, Some(false), false) => "-".to_string(),
                (_, None, _) if m.threshold.is_none() => "-".to_string(),
                (_, None, _) => "undefined".to_string(),
            };
            let threshold = match m.threshold {
                Some(t) if t.direction == Direction::Above => format!("> {}", number(t.value)),
                Some(t) => format!("p < {}", number(t.value)),
                None => String::new(),
            };
            table.add_row(vec![
                Cell::new(if i == 0 { f.feature.as_str() } else { "" }),
                Cell::new(if i == 0 {
                    f.kind.to_string()
                } else {
                    String::new()
                }),
                Cell::new(m.method.name()),
                Cell::new(m.value.map(number).unwrap_or_else(|| "-".into()))
                    .set_alignment(CellAlignment::Right),
                Cell::new(m.p_value.map(number).unwrap_or_default())
                    .set_alignment(CellAlignment::Right),
                Cell::new(threshold),
                Cell::new(verdict),
            ]);
        }
        if let Some(first) = f.new_categories.first() {
            table.add_row(vec![
                Cell::new(""),
                Cell::new(""),
                Cell::new("new categories"),
                Cell::new(f.new_categories.len()),
                Cell::new(""),
                Cell::new(""),
                Cell::new(format!("e.g. `{}` x{}", first.value, first.count)),
            ]);
        }
    }
    table.to_string()
}

/// A number in at most 4 significant decimals, scientific when very small or large.
fn number(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.is_nan() {
        "NaN".into()
    } else if v.abs() >= 1e-3 && v.abs() < 1e6 {
        let s = format!("{v:.4}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format!("{v:.3e}")
    }
}

fn summary(report: &AnalysisReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "drift by chunk  (x drift, . no drift, ? insufficient data, - no data or reference)"
    );
    let width = report
        .features
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap_or(7)
        .max(if report.multivariate.is_some() { 14 } else { 7 });
    let _ = write!(out, "{:width$}", "feature");
    for c in &report.chunks {
        let _ = write!(out, " {:>2}", c.index);
    }
    out.push('\n');
    for (i, f) in report.features.iter().enumerate() {
        let _ = write!(out, "{:width$}", f.name);
        for c in &report.chunks {
            let mark = match c.features.get(i).map(|d| (&d.status, d.drift)) {
                Some((FeatureStatus::InsufficientData { .. }, _)) => '?',
                Some((_, Some(true))) => 'x',
                Some((_, Some(false))) => '.',
                _ => '-',
            };
            let _ = write!(out, " {mark:>2}");
        }
        out.push('\n');
    }
    if report.multivariate.is_some() {
        let _ = write!(out, "{:width$}", "(multivariate)");
        for c in &report.chunks {
            let mark = match c.multivariate.map(|m| m.alert) {
                Some(true) => 'x',
                Some(false) => '.',
                None => '-',
            };
            let _ = write!(out, " {mark:>2}");
        }
        out.push('\n');
    }
    // Cells that could be judged (a verdict of either way).
    let judged = report
        .chunks
        .iter()
        .flat_map(|c| &c.features)
        .filter(|d| d.drift.is_some())
        .count();
    let cells: usize = report.chunks.iter().map(|c| c.features.len()).sum();
    if judged == 0 {
        let min_samples = report.settings.drift.min_samples;
        let _ = writeln!(
            out,
            "insufficient data: none of the {cells} (chunk, feature) cells could be judged (each needs at least {min_samples} values, --min-samples; or the feature has no reference values); no drift verdict was made"
        );
    } else if report.drifted_chunks.is_empty() {
        let skipped = cells - judged;
        let _ = if skipped == 0 {
            writeln!(out, "no feature drifted in any chunk")
        } else {
            writeln!(
                out,
                "no feature drifted in the {judged} judged (chunk, feature) cells; {skipped} could not be judged (?, -)"
            )
        };
    } else {
        for (feature, chunks) in &report.drifted_chunks {
            let list: Vec<String> = chunks.iter().map(ToString::to_string).collect();
            let _ = writeln!(out, "{feature} drifted in chunks {}", list.join(", "));
        }
    }
    if let Some(m) = &report.multivariate {
        let list: Vec<String> = m.alert_chunks.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "multivariate drift (PCA reconstruction error; {} components of {} features explain {:.0}% of the reference variance): {}",
            m.components,
            m.features.len(),
            m.explained_variance * 100.0,
            if list.is_empty() {
                "no alert".to_string()
            } else {
                format!("alerts in chunks {}", list.join(", "))
            }
        );
    }
    // Data quality: missing-rate surges, by feature.
    for (i, f) in report.features.iter().enumerate() {
        let surged: Vec<(usize, f64, f64)> = report
            .chunks
            .iter()
            .filter_map(|c| {
                let q = c.features.get(i)?.quality?;
                (q.missing_surge == Some(true)).then_some((
                    c.index,
                    q.missing_rate,
                    q.reference_missing_rate,
                ))
            })
            .collect();
        if let Some(&(_, _, reference)) = surged.first() {
            let list: Vec<String> = surged
                .iter()
                .map(|(c, rate, _)| format!("{c} ({:.1}%)", rate * 100.0))
                .collect();
            let _ = writeln!(
                out,
                "{} missing rate surged in chunks {} (reference {:.1}%)",
                f.name,
                list.join(", "),
                reference * 100.0
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::number;

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(0.017076480612245), "0.0171");
        assert_eq!(number(348.31642), "348.3164");
        assert_eq!(number(3.6e-45), "3.600e-45");
        assert_eq!(number(0.5), "0.5");
    }
}
