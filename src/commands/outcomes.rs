//! `analyze --problem-type`: realized model quality per chunk over the labelled predictions
//! (issue 22, item 6). The labels come from a column of the current file or from `--labels`, a file
//! joined by `--id-column`; a prediction without a label is left out of its chunk's quality (the
//! count of labelled predictions is reported), and a label that does not parse is an error naming
//! the file, line and column, never a silent skip.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use analyzer::batch::AnalysisReport;
use analyzer::quality::{
    IsotonicCalibrator, ProblemType, Quality, binary_quality, estimate_binary, multiclass_quality,
    regression_quality,
};
use analyzer::table::ColumnSelection;
use analyzer::{ReadOptions, Table};
use anyhow::{Context, bail};

use crate::cli::AnalyzeArgs;
use crate::commands::read_with;

/// A column as text per row (`None` for null).
fn texts(table: &Table, column: &str) -> anyhow::Result<Vec<Option<String>>> {
    let chunks = table
        .column(column)
        .with_context(|| format!("{} has no column `{column}`", table.path.display()))?;
    let mut out = Vec::with_capacity(table.num_rows);
    for c in &chunks {
        let t = analyzer::columns::to_text(c).map_err(|e| anyhow::anyhow!(e))?;
        out.extend(t.iter().map(|v| v.map(str::to_string)));
    }
    Ok(out)
}

/// A column as numbers per row (`None` for null); text that is not a number is an error naming
/// the line.
fn numbers(table: &Table, column: &str) -> anyhow::Result<Vec<Option<f64>>> {
    let chunks = table
        .column(column)
        .with_context(|| format!("{} has no column `{column}`", table.path.display()))?;
    let mut out = Vec::with_capacity(table.num_rows);
    for c in &chunks {
        match analyzer::columns::to_f64(c) {
            Ok(a) => out.extend(a.iter()),
            Err(bad) => bail!(
                "{}: {}: column `{column}`: `{}` is not a number",
                table.path.display(),
                table.locate(out.len() + bad.index),
                bad.value
            ),
        }
    }
    Ok(out)
}

/// A binary class as written: `1`, `1.0`, `true` are positive; `0`, `0.0`, `false` negative.
fn binary_class(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "1.0" | "true" => Some(true),
        "0" | "0.0" | "false" => Some(false),
        _ => None,
    }
}

fn read(path: &Path, text: &[&str], numeric: &[&str], quiet: bool) -> anyhow::Result<Table> {
    let set = |c: &[&str]| c.iter().map(|s| (*s).to_string()).collect::<BTreeSet<_>>();
    read_with(
        path,
        &ReadOptions {
            text_columns: BTreeSet::new(),
            select: Some(ColumnSelection {
                numeric: set(numeric),
                text: set(text),
                categorical: BTreeSet::new(),
            }),
        },
        quiet,
    )
}

/// The isotonic calibration of `score` on the reference data file's `target`, when the reference
/// is a data file with both columns; `None` (with a note) otherwise.
fn reference_calibrator(
    args: &AnalyzeArgs,
    target: &str,
    score: &str,
    quiet: bool,
) -> anyhow::Result<Option<IsotonicCalibrator>> {
    if super::is_profile(&args.reference) {
        tracing::info!("no estimated quality: the reference is a profile, not labelled data");
        return Ok(None);
    }
    let columns = analyzer::table::column_names(&args.reference)?;
    if !columns.iter().any(|c| c == target) || !columns.iter().any(|c| c == score) {
        tracing::info!(
            target,
            score,
            "no estimated quality: the reference lacks the target or score column"
        );
        return Ok(None);
    }
    let reference = read(&args.reference, &[target], &[score], quiet)?;
    let labels = texts(&reference, target)?;
    let scores = numbers(&reference, score)?;
    let (mut s, mut y) = (Vec::new(), Vec::new());
    for (r, (l, sc)) in labels.iter().zip(&scores).enumerate() {
        let (Some(l), Some(sc)) = (l, sc) else {
            continue;
        };
        let Some(l) = binary_class(l) else {
            bail!(
                "{}: {}: column `{target}`: `{l}` is not a binary class (1/0, true/false)",
                args.reference.display(),
                reference.locate(r)
            );
        };
        if !(0.0..=1.0).contains(sc) {
            bail!(
                "{}: {}: column `{score}`: the score {sc} is not a probability in [0, 1]",
                args.reference.display(),
                reference.locate(r)
            );
        }
        s.push(*sc);
        y.push(l);
    }
    Ok(IsotonicCalibrator::fit(&s, &y))
}

/// Fills `report.chunks[*].quality` when `--problem-type` is given.
///
/// # Errors
/// A missing column, an unreadable file, or a label, prediction or score that does not fit the
/// problem type, naming the file, line and column.
pub fn attach_quality(
    args: &AnalyzeArgs,
    report: &mut AnalysisReport,
    quiet: bool,
) -> anyhow::Result<()> {
    let Some(problem) = args.problem_type else {
        return Ok(());
    };
    let Some(target) = args.target_column.as_deref() else {
        bail!("--problem-type needs --target-column (the ground-truth column)");
    };
    if matches!(report.settings.chunking, analyzer::Chunking::Period { .. }) {
        bail!("--problem-type works with --chunk-size or the whole file, not --chunk-period");
    }
    let columns = analyzer::table::column_names(&args.current)?;
    let prediction = args.prediction_column.as_str();
    let score = match (&args.score_column, problem) {
        (Some(s), _) => Some(s.as_str()),
        (None, ProblemType::Binary) if columns.iter().any(|c| c == "y_pred_proba") => {
            Some("y_pred_proba")
        }
        _ => None,
    };
    let regression = problem == ProblemType::Regression;
    // The current file's prediction (and score, and id or label).
    let mut text = Vec::new();
    let mut numeric = Vec::new();
    if regression {
        numeric.push(prediction);
    } else {
        text.push(prediction);
    }
    numeric.extend(score);
    let target_in_labels = args.labels.is_some();
    // Without labels for the current file only the estimate (binary, CBPE) is made.
    let realized = target_in_labels || columns.iter().any(|c| c == target);
    if !realized && problem != ProblemType::Binary {
        bail!(
            "{} has no column `{target}` and no --labels file is given: realized quality needs the labels (only binary models get a label-free estimate)",
            args.current.display()
        );
    }
    if target_in_labels {
        text.push(args.id_column.as_str());
    } else if realized {
        if regression {
            numeric.push(target);
        } else {
            text.push(target);
        }
    }
    let current = read(&args.current, &text, &numeric, quiet)?;
    // The label of every row of the current file (`None`: unlabelled).
    let labels: Vec<Option<String>> = match &args.labels {
        None if !realized => Vec::new(),
        None => texts(&current, target)?,
        Some(path) => {
            let file = read(path, &[args.id_column.as_str(), target], &[], quiet)?;
            let ids = texts(&file, &args.id_column)?;
            let values = texts(&file, target)?;
            let mut by_id: HashMap<String, String> = HashMap::with_capacity(ids.len());
            let mut duplicates = 0usize;
            for (id, v) in ids.into_iter().zip(values) {
                if let (Some(id), Some(v)) = (id, v)
                    && by_id.insert(id, v).is_some()
                {
                    duplicates += 1;
                }
            }
            if duplicates > 0 {
                tracing::warn!(file = %path.display(), duplicates, "labels: ids given more than once; the last label of each is used");
            }
            texts(&current, &args.id_column)?
                .into_iter()
                .map(|id| id.and_then(|id| by_id.get(&id).cloned()))
                .collect()
        }
    };
    let scores = score.map(|s| numbers(&current, s)).transpose()?;
    let (pred_texts, pred_numbers) = if regression {
        (Vec::new(), numbers(&current, prediction)?)
    } else {
        (texts(&current, prediction)?, Vec::new())
    };
    let label_source = args.labels.as_deref().unwrap_or(&args.current);
    let calibrator = match (problem, score) {
        (ProblemType::Binary, Some(score)) => reference_calibrator(args, target, score, quiet)?,
        _ => None,
    };
    if let (Some(calibrator), Some(scores)) = (&calibrator, &scores) {
        // Label-free estimate over every prediction of the chunk, labelled or not.
        for chunk in &mut report.chunks {
            let (mut probabilities, mut predicted) = (Vec::new(), Vec::new());
            for r in chunk.first_row as usize..=chunk.last_row as usize {
                let (Some(Some(s)), Some(Some(p))) = (scores.get(r), pred_texts.get(r)) else {
                    continue;
                };
                if !(0.0..=1.0).contains(s) {
                    bail!(
                        "{}: {}: column `{}`: the score {s} is not a probability in [0, 1]",
                        args.current.display(),
                        current.locate(r),
                        score.unwrap_or_default()
                    );
                }
                let Some(p) = binary_class(p) else {
                    bail!(
                        "{}: {}: column `{prediction}`: `{p}` is not a binary class (1/0, true/false)",
                        args.current.display(),
                        current.locate(r)
                    );
                };
                probabilities.push(calibrator.predict(*s));
                predicted.push(p);
            }
            chunk.estimated_quality = Some(estimate_binary(&probabilities, &predicted));
        }
    }
    for chunk in report.chunks.iter_mut().filter(|_| realized) {
        let rows = chunk.first_row as usize..=chunk.last_row as usize;
        let rows = rows.filter(|&r| r < labels.len());
        chunk.quality = Some(match problem {
            ProblemType::Binary => {
                let preds = &pred_texts;
                let (mut y, mut p, mut s) = (Vec::new(), Vec::new(), Vec::new());
                for r in rows {
                    let (Some(l), Some(pr)) = (&labels[r], &preds[r]) else {
                        continue;
                    };
                    let Some(l) = binary_class(l) else {
                        bail!(
                            "{}: the label `{l}` of the prediction on {} is not a binary class (1/0, true/false)",
                            label_source.display(),
                            current.locate(r)
                        );
                    };
                    let Some(pr) = binary_class(pr) else {
                        bail!(
                            "{}: {}: column `{prediction}`: `{pr}` is not a binary class (1/0, true/false)",
                            args.current.display(),
                            current.locate(r)
                        );
                    };
                    if let Some(sc) = &scores {
                        match sc[r] {
                            Some(v) if (0.0..=1.0).contains(&v) => s.push(v),
                            other => bail!(
                                "{}: {}: column `{}`: the score {other:?} is not a probability in [0, 1]",
                                args.current.display(),
                                current.locate(r),
                                score.unwrap_or_default()
                            ),
                        }
                    }
                    y.push(l);
                    p.push(pr);
                }
                Quality::Binary(binary_quality(
                    &y,
                    &p,
                    scores.as_ref().map(|_| s.as_slice()),
                ))
            }
            ProblemType::Multiclass => {
                let preds = &pred_texts;
                let (mut y, mut p) = (Vec::new(), Vec::new());
                for r in rows {
                    if let (Some(l), Some(pr)) = (&labels[r], &preds[r]) {
                        y.push(l.clone());
                        p.push(pr.clone());
                    }
                }
                let y: Vec<&str> = y.iter().map(String::as_str).collect();
                let p: Vec<&str> = p.iter().map(String::as_str).collect();
                Quality::Multiclass(multiclass_quality(&y, &p))
            }
            ProblemType::Regression => {
                let preds = &pred_numbers;
                let (mut y, mut p) = (Vec::new(), Vec::new());
                for r in rows {
                    let (Some(l), Some(pr)) = (&labels[r], preds[r]) else {
                        continue;
                    };
                    let Ok(l) = l.trim().parse::<f64>() else {
                        bail!(
                            "{}: the target `{l}` of the prediction on {} is not a number",
                            label_source.display(),
                            current.locate(r)
                        );
                    };
                    y.push(l);
                    p.push(pr);
                }
                Quality::Regression(regression_quality(&y, &p))
            }
        });
    }
    Ok(())
}
