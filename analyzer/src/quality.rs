//! Realized model quality over labelled predictions (issue 22, item 3): binary classification,
//! multiclass classification and regression, with scikit-learn's definitions (checked against
//! values scikit-learn 1.9 computes in `tests/quality.rs`, to 1e-9 relative).
//!
//! A metric that is undefined for the input (ROC AUC with one class present, anything over no
//! labelled prediction) is `None`, never NaN. Where scikit-learn returns 0 with a warning for a
//! zero denominator (`zero_division = 0`: precision with no predicted positive, recall with no
//! positive, F1 of a class never predicted nor present), so does this module.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The kind of model whose quality is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemType {
    /// Two classes; the positive class is `1` / `true`, scores are its probability.
    Binary,
    /// Several classes, compared as text.
    Multiclass,
    /// A real-valued target.
    Regression,
}

impl std::str::FromStr for ProblemType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "binary" | "binary_classification" => Ok(Self::Binary),
            "multiclass" | "multiclass_classification" => Ok(Self::Multiclass),
            "regression" => Ok(Self::Regression),
            other => Err(format!(
                "unknown problem type `{other}`: use binary, multiclass or regression"
            )),
        }
    }
}

/// Binary classification quality. Shapes: one entry per labelled prediction.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BinaryQuality {
    /// Labelled predictions.
    pub count: u64,
    /// Positive labels among them.
    pub positives: u64,
    /// Share of predictions equal to the label.
    pub accuracy: Option<f64>,
    /// `TP / (TP + FP)` (0 without a predicted positive).
    pub precision: Option<f64>,
    /// `TP / (TP + FN)` (0 without a positive label).
    pub recall: Option<f64>,
    /// `2 TP / (2 TP + FP + FN)` (0 when that is 0 / 0).
    pub f1: Option<f64>,
    /// Area under the ROC curve of the scores: the Mann-Whitney U statistic over `positives x
    /// negatives`, ties counted half (Hanley and McNeil, *Radiology* 143, 1982). `None` with one
    /// class present or without scores.
    pub roc_auc: Option<f64>,
    /// Mean negative log-likelihood of the labels under the scores, scores clipped to
    /// `[eps, 1 - eps]` (`eps` = `f64::EPSILON`, as scikit-learn does for float64).
    pub log_loss: Option<f64>,
    /// Mean squared difference between score and label (Brier, *Mon. Weather Rev.* 78, 1950).
    pub brier: Option<f64>,
}

/// Binary quality of `labels` (true = positive) against hard `predicted` classes and optional
/// positive-class `scores` in `[0, 1]`. All slices have one entry per labelled prediction.
///
/// # Panics
/// Never; slices of different lengths are cut to the shortest.
pub fn binary_quality(
    labels: &[bool],
    predicted: &[bool],
    scores: Option<&[f64]>,
) -> BinaryQuality {
    let n = labels.len().min(predicted.len());
    let (labels, predicted) = (&labels[..n], &predicted[..n]);
    let positives = labels.iter().filter(|&&l| l).count();
    let mut q = BinaryQuality {
        count: n as u64,
        positives: positives as u64,
        ..BinaryQuality::default()
    };
    if n == 0 {
        return q;
    }
    let (mut tp, mut fp, mut fn_, mut correct) = (0u64, 0u64, 0u64, 0u64);
    for (&l, &p) in labels.iter().zip(predicted) {
        match (l, p) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            (false, false) => {}
        }
        correct += u64::from(l == p);
    }
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    q.accuracy = Some(correct as f64 / n as f64);
    q.precision = Some(ratio(tp, tp + fp));
    q.recall = Some(ratio(tp, tp + fn_));
    q.f1 = Some(ratio(2 * tp, 2 * tp + fp + fn_));
    if let Some(scores) = scores.filter(|s| s.len() >= n) {
        let scores = &scores[..n];
        q.roc_auc = roc_auc(labels, scores);
        let eps = f64::EPSILON;
        let log_loss = labels
            .iter()
            .zip(scores)
            .map(|(&l, &s)| {
                let p = s.clamp(eps, 1.0 - eps);
                if l { -p.ln() } else { -(1.0 - p).ln() }
            })
            .sum::<f64>()
            / n as f64;
        q.log_loss = Some(log_loss);
        q.brier = Some(
            labels
                .iter()
                .zip(scores)
                .map(|(&l, &s)| (s - f64::from(u8::from(l))).powi(2))
                .sum::<f64>()
                / n as f64,
        );
    }
    q
}

/// ROC AUC by average ranks; `None` with one class present.
fn roc_auc(labels: &[bool], scores: &[f64]) -> Option<f64> {
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the positives' ranks (1-based, ties get their average rank).
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        let tied_positives = order[i..=j].iter().filter(|&&k| labels[k]).count();
        rank_sum += average_rank * tied_positives as f64;
        i = j + 1;
    }
    let (p, q) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * q))
}

/// Multiclass classification quality.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MulticlassQuality {
    /// Labelled predictions.
    pub count: u64,
    /// Share of predictions equal to the label.
    pub accuracy: Option<f64>,
    /// Unweighted mean of the per-class F1 over every class in the labels or the predictions.
    pub f1_macro: Option<f64>,
    /// Per-class F1 weighted by each class's number of labels.
    pub f1_weighted: Option<f64>,
}

/// Multiclass quality of `labels` against `predicted` (one entry per labelled prediction).
pub fn multiclass_quality(labels: &[&str], predicted: &[&str]) -> MulticlassQuality {
    let n = labels.len().min(predicted.len());
    let mut q = MulticlassQuality {
        count: n as u64,
        ..MulticlassQuality::default()
    };
    if n == 0 {
        return q;
    }
    let classes: BTreeSet<&str> = labels[..n].iter().chain(&predicted[..n]).copied().collect();
    // Per class: (true positives, predicted, actual).
    let mut counts: BTreeMap<&str, (u64, u64, u64)> =
        classes.iter().map(|&c| (c, (0, 0, 0))).collect();
    let mut correct = 0u64;
    for (&l, &p) in labels[..n].iter().zip(&predicted[..n]) {
        if l == p {
            correct += 1;
            if let Some(c) = counts.get_mut(l) {
                c.0 += 1;
            }
        }
        if let Some(c) = counts.get_mut(p) {
            c.1 += 1;
        }
        if let Some(c) = counts.get_mut(l) {
            c.2 += 1;
        }
    }
    let f1 = |&(tp, predicted, actual): &(u64, u64, u64)| {
        let d = predicted + actual;
        if d == 0 {
            0.0
        } else {
            2.0 * tp as f64 / d as f64
        }
    };
    let k = counts.len() as f64;
    q.accuracy = Some(correct as f64 / n as f64);
    q.f1_macro = Some(counts.values().map(f1).sum::<f64>() / k);
    q.f1_weighted = Some(counts.values().map(|c| f1(c) * c.2 as f64).sum::<f64>() / n as f64);
    q
}

/// Regression quality.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RegressionQuality {
    /// Labelled predictions.
    pub count: u64,
    /// Mean absolute error, in the target's unit.
    pub mae: Option<f64>,
    /// Root mean squared error, in the target's unit.
    pub rmse: Option<f64>,
    /// Mean of `|y - y_hat| / max(|y|, eps)` (scikit-learn's definition; huge when a target is 0).
    pub mape: Option<f64>,
    /// Coefficient of determination `1 - SS_res / SS_tot`; for a constant target 1 when every
    /// prediction is exact, else 0 (scikit-learn's `force_finite`).
    pub r2: Option<f64>,
}

/// Regression quality of `targets` against `predicted` (one entry per labelled prediction).
pub fn regression_quality(targets: &[f64], predicted: &[f64]) -> RegressionQuality {
    let n = targets.len().min(predicted.len());
    let mut q = RegressionQuality {
        count: n as u64,
        ..RegressionQuality::default()
    };
    if n == 0 {
        return q;
    }
    let (t, p) = (&targets[..n], &predicted[..n]);
    let nf = n as f64;
    let mean = t.iter().sum::<f64>() / nf;
    let (mut abs, mut sq, mut pct, mut tot) = (0.0, 0.0, 0.0, 0.0);
    for (&y, &yh) in t.iter().zip(p) {
        let e = y - yh;
        abs += e.abs();
        sq += e * e;
        pct += e.abs() / y.abs().max(f64::EPSILON);
        tot += (y - mean) * (y - mean);
    }
    q.mae = Some(abs / nf);
    q.rmse = Some((sq / nf).sqrt());
    q.mape = Some(pct / nf);
    q.r2 = Some(if tot == 0.0 {
        if sq == 0.0 { 1.0 } else { 0.0 }
    } else {
        1.0 - sq / tot
    });
    q
}

/// Realized quality of one chunk or window, by problem type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "problem_type", rename_all = "snake_case")]
pub enum Quality {
    /// Binary classification.
    Binary(BinaryQuality),
    /// Multiclass classification.
    Multiclass(MulticlassQuality),
    /// Regression.
    Regression(RegressionQuality),
}

/// Isotonic calibration of binary scores on labelled reference data: the non-decreasing step
/// function of the score closest to the labels in least squares, fitted by pool-adjacent-
/// violators (Ayer et al., *Ann. Math. Stat.* 26, 1955), predicted by linear interpolation
/// between the fitted points and clipped at the ends (scikit-learn's `IsotonicRegression` with
/// `out_of_bounds="clip"`, which NannyML's CBPE uses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsotonicCalibrator {
    /// Distinct scores, ascending.
    pub scores: Vec<f64>,
    /// Calibrated probability at each score.
    pub probabilities: Vec<f64>,
}

impl IsotonicCalibrator {
    /// Fits on reference `scores` and `labels` (one entry per labelled prediction), ignoring
    /// non-finite scores; `None` without a finite one.
    pub fn fit(scores: &[f64], labels: &[bool]) -> Option<Self> {
        let n = scores.len().min(labels.len());
        // Only finite scores calibrate (a NaN would sort last and poison the top block).
        let mut order: Vec<usize> = (0..n).filter(|&i| scores[i].is_finite()).collect();
        if order.is_empty() {
            return None;
        }
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        // Blocks of (score, mean label, weight), first merged by equal score.
        let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
        for &i in &order {
            let y = f64::from(u8::from(labels[i]));
            match blocks.last_mut() {
                Some(b) if b.0 == scores[i] => {
                    b.1 = (b.1 * b.2 + y) / (b.2 + 1.0);
                    b.2 += 1.0;
                }
                _ => blocks.push((scores[i], y, 1.0)),
            }
        }
        // Pool adjacent violators; each pooled block keeps the scores it spans.
        let mut pooled: Vec<(f64, f64, usize, usize)> = Vec::new(); // (mean, weight, first, last)
        for (k, &(_, y, w)) in blocks.iter().enumerate() {
            pooled.push((y, w, k, k));
            while pooled.len() >= 2 {
                let (b, a) = (pooled[pooled.len() - 1], pooled[pooled.len() - 2]);
                if a.0 <= b.0 {
                    break;
                }
                let w = a.1 + b.1;
                let merged = ((a.0 * a.1 + b.0 * b.1) / w, w, a.2, b.3);
                pooled.truncate(pooled.len() - 2);
                pooled.push(merged);
            }
        }
        let mut probabilities = vec![0.0; blocks.len()];
        for (mean, _, first, last) in pooled {
            probabilities[first..=last]
                .iter_mut()
                .for_each(|p| *p = mean);
        }
        Some(Self {
            scores: blocks.iter().map(|b| b.0).collect(),
            probabilities,
        })
    }

    /// The calibrated probability of `score` (NaN for a NaN score; callers check scores first).
    pub fn predict(&self, score: f64) -> f64 {
        let (xs, ys) = (&self.scores, &self.probabilities);
        if score.is_nan() {
            return f64::NAN;
        }
        if score <= xs[0] {
            return ys[0];
        }
        if score >= xs[xs.len() - 1] {
            return ys[ys.len() - 1];
        }
        let i = xs.partition_point(|&x| x <= score);
        let (x0, x1, y0, y1) = (xs[i - 1], xs[i], ys[i - 1], ys[i]);
        y0 + (y1 - y0) * (score - x0) / (x1 - x0)
    }
}

/// Label-free estimate of binary quality (confidence-based performance estimation, CBPE, as
/// NannyML defines it): with calibrated probabilities `p_i` of the positive class and the hard
/// predictions, the expected confusion matrix is `TP = sum p_i` over predicted positives, `FP =
/// sum (1 - p_i)` over them, `FN = sum p_i` over predicted negatives, `TN = sum (1 - p_i)` over
/// them; accuracy, precision, recall and F1 follow from it, and the expected ROC curve from the
/// cumulative sums of `p_i` and `1 - p_i` down the sorted probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct EstimatedBinary {
    /// Predictions the estimate covers.
    pub count: u64,
    /// Expected accuracy.
    pub accuracy: Option<f64>,
    /// Expected precision.
    pub precision: Option<f64>,
    /// Expected recall.
    pub recall: Option<f64>,
    /// Expected F1.
    pub f1: Option<f64>,
    /// Expected ROC AUC.
    pub roc_auc: Option<f64>,
}

/// CBPE estimate from calibrated probabilities and hard predictions (one entry per prediction).
pub fn estimate_binary(probabilities: &[f64], predicted: &[bool]) -> EstimatedBinary {
    let n = probabilities.len().min(predicted.len());
    let mut e = EstimatedBinary {
        count: n as u64,
        ..EstimatedBinary::default()
    };
    if n == 0 {
        return e;
    }
    let (mut tp, mut fp, mut fn_, mut tn) = (0.0, 0.0, 0.0, 0.0);
    for (&p, &pred) in probabilities[..n].iter().zip(&predicted[..n]) {
        if pred {
            tp += p;
            fp += 1.0 - p;
        } else {
            fn_ += p;
            tn += 1.0 - p;
        }
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    e.accuracy = Some((tp + tn) / n as f64);
    e.precision = Some(ratio(tp, tp + fp));
    e.recall = Some(ratio(tp, tp + fn_));
    e.f1 = Some(ratio(2.0 * tp, 2.0 * tp + fp + fn_));
    // Expected ROC curve: thresholds at each distinct probability, highest first.
    let mut sorted: Vec<f64> = probabilities[..n].to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let (pos, neg): (f64, f64) = (sorted.iter().sum(), sorted.iter().map(|p| 1.0 - p).sum());
    if pos > 0.0 && neg > 0.0 {
        let (mut cum_tp, mut cum_fp, mut auc, mut last_tpr, mut last_fpr) =
            (0.0, 0.0, 0.0, 0.0, 0.0);
        let mut i = 0;
        while i < sorted.len() {
            let mut j = i;
            while j < sorted.len() && sorted[j] == sorted[i] {
                cum_tp += sorted[j];
                cum_fp += 1.0 - sorted[j];
                j += 1;
            }
            let (tpr, fpr) = (cum_tp / pos, cum_fp / neg);
            auc += (fpr - last_fpr) * (tpr + last_tpr) / 2.0;
            (last_tpr, last_fpr) = (tpr, fpr);
            i = j;
        }
        e.roc_auc = Some(auc);
    }
    e
}
