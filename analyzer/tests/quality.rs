//! Issue 22, must-show: realized quality equals scikit-learn's on fixtures the repo generates with
//! scikit-learn (`tests/fixtures/gen_quality.py`): binary with tied scores, one class present, an
//! empty window; multiclass with a class never predicted; regression and a constant target. To
//! 1e-9 relative; ROC AUC with one class is `None` ("undefined"), never NaN.

use analyzer::quality::{
    IsotonicCalibrator, binary_quality, multiclass_quality, regression_quality,
};
use serde_json::Value;

fn close(name: &str, metric: &str, got: Option<f64>, want: &Value) {
    match (got, want.as_f64()) {
        (None, None) => {}
        (Some(g), Some(w)) => {
            let tolerance = 1e-9 * w.abs().max(1e-12);
            assert!(
                (g - w).abs() <= tolerance,
                "{name} {metric}: {g} vs scikit-learn {w}"
            );
        }
        (g, _) => panic!("{name} {metric}: {g:?} vs scikit-learn {want}"),
    }
}

fn floats(case: &Value, key: &str) -> Vec<f64> {
    case[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn classes(case: &Value, key: &str) -> Vec<bool> {
    case[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64() == Some(1))
        .collect()
}

#[test]
fn realized_quality_matches_scikit_learn() {
    let text = include_str!("fixtures/quality_sklearn.json");
    let fixture: Value = serde_json::from_str(text).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let e = &case["expected"];
        match case["kind"].as_str().unwrap() {
            "binary" => {
                let scores = floats(case, "y_score");
                let q = binary_quality(
                    &classes(case, "y_true"),
                    &classes(case, "y_pred"),
                    Some(&scores),
                );
                close(name, "accuracy", q.accuracy, &e["accuracy"]);
                close(name, "precision", q.precision, &e["precision"]);
                close(name, "recall", q.recall, &e["recall"]);
                close(name, "f1", q.f1, &e["f1"]);
                close(name, "roc_auc", q.roc_auc, &e["roc_auc"]);
                close(name, "log_loss", q.log_loss, &e["log_loss"]);
                close(name, "brier", q.brier, &e["brier"]);
                assert_eq!(q.count as usize, scores.len());
            }
            "multiclass" => {
                let texts = |k: &str| -> Vec<&str> {
                    case[k]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap())
                        .collect()
                };
                let q = multiclass_quality(&texts("y_true"), &texts("y_pred"));
                close(name, "accuracy", q.accuracy, &e["accuracy"]);
                close(name, "f1_macro", q.f1_macro, &e["f1_macro"]);
                close(name, "f1_weighted", q.f1_weighted, &e["f1_weighted"]);
            }
            "regression" => {
                let q = regression_quality(&floats(case, "y_true"), &floats(case, "y_pred"));
                close(name, "mae", q.mae, &e["mae"]);
                close(name, "rmse", q.rmse, &e["rmse"]);
                close(name, "mape", q.mape, &e["mape"]);
                close(name, "r2", q.r2, &e["r2"]);
            }
            "isotonic" => {
                // scikit-learn's IsotonicRegression(out_of_bounds="clip"), the calibrator of
                // NannyML's CBPE.
                let c = IsotonicCalibrator::fit(&floats(case, "x"), &classes(case, "y")).unwrap();
                for (q, want) in floats(case, "queries")
                    .iter()
                    .zip(e["predict"].as_array().unwrap())
                {
                    close(name, &format!("predict({q})"), Some(c.predict(*q)), want);
                }
            }
            other => panic!("unknown case kind {other}"),
        }
    }
}
