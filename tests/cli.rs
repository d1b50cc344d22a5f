//! The `driftwatch` binary as a user runs it: the built-in data through `analyze` and `profile`,
//! and bad input that must give a clear error (file, line, column), a non-zero exit and no panic.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use test_support::car_loan::{self, CATEGORICAL, DRIFTED, FEATURES, NUMERIC, STABLE};

fn driftwatch() -> Command {
    let mut cmd = Command::cargo_bin("driftwatch").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).arg("--quiet");
    cmd
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// `driftwatch analyze --format json` of car_loan (analysis.csv against reference.csv) with
/// `extra` arguments: the report.
fn car_loan_json(extra: &[&str]) -> serde_json::Value {
    let out = driftwatch()
        .args([
            "analyze",
            "--format",
            "json",
            "--reference",
            car_loan::REFERENCE,
            "--current",
            car_loan::ANALYSIS,
        ])
        .args(extra)
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

/// Runs `cmd` and checks that it fails with an error naming `file` and saying `message`.
fn fails_naming(cmd: &mut Command, file: &str, message: &str) {
    cmd.assert()
        .failure()
        .stderr(predicate::str::contains(file).and(predicate::str::contains(message)));
}

const REFERENCE: &str = "x,c\n1.0,a\n2.0,b\n3.0,a\n4.0,b\n";

#[test]
fn analyze_prints_the_table_and_summary_for_car_loan() {
    let out = driftwatch()
        .args([
            "analyze",
            "--reference",
            car_loan::REFERENCE,
            "--current",
            car_loan::ANALYSIS,
        ])
        .args(["--chunk-size", "5000"])
        .assert()
        .success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.contains("chunk 5 | rows 25000-29999 (5000 rows) | DRIFT in 4 of 7 features"),
        "{stdout}"
    );
    assert!(
        stdout.contains("chunk 0 | rows 0-4999 (5000 rows) | no drift (0 of 7 features)"),
        "{stdout}"
    );
    for f in DRIFTED.iter() {
        assert!(
            stdout.contains(&format!("{f} drifted in chunks 5, 6, 7, 8, 9")),
            "{f}: {stdout}"
        );
    }
    for f in STABLE.iter() {
        assert!(!stdout.contains(&format!("{f} drifted")), "{f}: {stdout}");
    }
}

#[test]
fn profile_then_analyze_json_agrees_with_the_data_file_reference() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("car_loan.profile.json");
    driftwatch()
        .args([
            "profile",
            "--input",
            car_loan::REFERENCE,
            "--exclude",
            &car_loan::MANIFEST.label,
            "--out",
        ])
        .arg(&profile)
        .assert()
        .success()
        .stderr(predicate::str::contains("7 features from 50000 rows"));
    let out = driftwatch()
        .args(["analyze", "--reference"])
        .arg(&profile)
        .args([
            "--current",
            car_loan::ANALYSIS,
            "--chunk-size",
            "5000",
            "--format",
            "json",
            "--fail-on-drift",
        ])
        .assert()
        .code(3);
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(report["format"], "driftwatch.analysis");
    assert_eq!(report["chunks"].as_array().unwrap().len(), 10);
    let drifted = report["drifted_chunks"].as_object().unwrap();
    let mut names: Vec<&str> = drifted.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = DRIFTED.clone();
    expected.sort_unstable();
    assert_eq!(names, expected);
    assert_eq!(drifted["car_value"], serde_json::json!([5, 6, 7, 8, 9]));
}

#[test]
fn missing_file_names_the_file() {
    driftwatch()
        .args([
            "analyze",
            "--reference",
            "nope/reference.csv",
            "--current",
            car_loan::ANALYSIS,
        ])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("nope/reference.csv")
                .and(predicate::str::contains("No such file")),
        )
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn ragged_csv_row_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write(dir.path(), "ref.csv", REFERENCE);
    let current = write(dir.path(), "cur.csv", "x,c\n1.0,a\n2.0\n3.0,b\n");
    driftwatch()
        .args(["analyze", "--reference"])
        .arg(&reference)
        .arg("--current")
        .arg(&current)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cur.csv").and(predicate::str::contains("line 3")))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn unknown_feature_names_the_column_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write(dir.path(), "ref.csv", REFERENCE);
    driftwatch()
        .args(["analyze", "--reference"])
        .arg(&reference)
        .arg("--current")
        .arg(&reference)
        .args(["--features", "x,salary"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("no column `salary`").and(predicate::str::contains("ref.csv")),
        )
        .stderr(predicate::str::contains("its columns are: x, c"));
}

#[test]
fn non_numeric_value_in_a_numeric_column_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write(dir.path(), "ref.csv", REFERENCE);
    let current = write(dir.path(), "cur.csv", "x,c\n1.0,a\n2.0,b\nabc,a\n");
    driftwatch()
        .args(["analyze", "--reference"])
        .arg(&reference)
        .arg("--current")
        .arg(&current)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("cur.csv, line 4, column `x`")
                .and(predicate::str::contains("`abc` is not a number")),
        )
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn empty_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write(dir.path(), "ref.csv", REFERENCE);
    let empty = write(dir.path(), "empty.csv", "");
    let header_only = write(dir.path(), "header.csv", "x,c\n");
    for (file, message) in [
        (&empty, "is empty: no header line"),
        (&header_only, "is empty: a header but no rows"),
    ] {
        driftwatch()
            .args(["analyze", "--reference"])
            .arg(&reference)
            .arg("--current")
            .arg(file)
            .assert()
            .code(1)
            .stderr(
                predicate::str::contains(message).and(predicate::str::contains(
                    file.file_name().unwrap().to_str().unwrap(),
                )),
            )
            .stderr(predicate::str::contains("panicked").not());
    }
}

#[test]
fn ambiguous_timestamp_names_column_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(
        dir.path(),
        "log.csv",
        "timestamp,x\n01-09-2018,1.0\n13-09-2018,2.0\n",
    );
    driftwatch()
        .args(["analyze", "--reference"])
        .arg(&data)
        .arg("--current")
        .arg(&data)
        .args(["--chunk-period", "1day"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "log.csv, line 2, column `timestamp`",
        ));
    driftwatch()
        .args(["analyze", "--reference"])
        .arg(&data)
        .arg("--current")
        .arg(&data)
        .args([
            "--chunk-period",
            "1day",
            "--timestamp-format",
            "%d-%m-%Y",
            "--min-samples",
            "1",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("2018-09-13 00:00:00"));
}

/// Regression: `controller` without `--dry-run` used to demand `--input` (clap rejected the run).
#[test]
fn controller_without_dry_run_needs_no_input_file() {
    let dir = tempfile::tempdir().unwrap();
    driftwatch()
        .args(["controller", "--namespace", "ml", "--listen", "127.0.0.1:0"])
        .env("KUBECONFIG", dir.path().join("missing-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--input").not())
        .stderr(predicate::str::contains("Kubernetes client"));
}

#[test]
fn controller_dry_run_requires_input() {
    driftwatch()
        .args(["controller", "--dry-run"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--input"));
}

#[test]
fn replay_kafka_option_must_be_key_equals_value() {
    driftwatch()
        .args(["replay", "--input", car_loan::ANALYSIS, "--model", "m"])
        .args([
            "--to",
            "kafka://127.0.0.1:1/t",
            "--kafka-option",
            "security.protocol",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "expected KEY=VALUE, got `security.protocol`",
        ));
}

#[test]
fn replay_kafka_option_is_refused_for_an_http_target() {
    driftwatch()
        .args(["replay", "--input", car_loan::ANALYSIS, "--model", "m"])
        .args([
            "--to",
            "http://127.0.0.1:1",
            "--kafka-option",
            "security.protocol=ssl",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "--kafka-option applies only to a kafka:// target, not http://127.0.0.1:1",
        ));
}

/// Issue 19, item 5: secrets given with `--kafka-option` showed in `ps`. They are refused there
/// and read from `--kafka-options-file`, whose bad lines are named by file and line.
#[test]
fn replay_kafka_secrets_come_from_a_file_not_the_command_line() {
    let replay = || {
        let mut c = driftwatch();
        c.args([
            "replay",
            "--input",
            car_loan::ANALYSIS,
            "--model",
            "m",
            "--to",
            "http://127.0.0.1:1",
        ]);
        c
    };
    replay()
        .args(["--kafka-option", "sasl.password=hunter2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`sasl.password` holds a secret, which the command line shows to every user of the machine (`ps`): put it in a file given with --kafka-options-file",
        ));
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "kafka.properties",
        "# producer settings\nsasl.username=u\nsasl.password=hunter2\nnot a setting\n",
    );
    replay()
        .arg("--kafka-options-file")
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "{} line 4: expected KEY=VALUE, got `not a setting`",
            file.display()
        )));
    let good = write(dir.path(), "good.properties", "sasl.password=hunter2\n");
    replay()
        .arg("--kafka-options-file")
        .arg(&good)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "applies only to a kafka:// target, not http://127.0.0.1:1 (so does --kafka-options-file)",
        ));
}

/// `analyze` with every feature named and declared reads the reference without type inference
/// (only those columns, typed as declared): the report equals the one read with inference (one
/// feature left undeclared), and a bad value in a declared numeric reference column is named by
/// file, line and column either way.
#[test]
fn a_reference_read_by_the_declared_kinds_gives_the_inferred_reads_report() {
    let features = FEATURES.join(",");
    let categorical = CATEGORICAL.join(",");
    let report = |reference: &Path, numeric: &str| {
        driftwatch()
            .args(["analyze", "--reference"])
            .arg(reference)
            .args(["--current", car_loan::ANALYSIS, "--chunk-size", "5000"])
            .args(["--features", &features, "--categorical", &categorical])
            .args(["--numeric", numeric, "--format", "json"])
            .assert()
    };
    let reference = Path::new(car_loan::REFERENCE);
    let all = NUMERIC.join(",");
    // The last numeric feature (driver_tenure) left undeclared: its kind is inferred.
    let some = NUMERIC[..NUMERIC.len() - 1].join(",");
    let declared = report(reference, &all).success();
    let inferred = report(reference, &some).success();
    let declared: serde_json::Value =
        serde_json::from_slice(&declared.get_output().stdout).unwrap();
    let inferred: serde_json::Value =
        serde_json::from_slice(&inferred.get_output().stdout).unwrap();
    assert_eq!(declared["chunks"].as_array().unwrap().len(), 10);
    assert_eq!(declared, inferred);

    // Row 48 of the reference (line 50 of the file) with a car_value that is not a number.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(reference).unwrap();
    let bad: Vec<String> = text
        .lines()
        .take(200)
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == 50 {
                let (id, rest) = l.split_once(',').unwrap();
                let (_, rest) = rest.split_once(',').unwrap();
                format!("{id},oops,{rest}")
            } else {
                l.to_string()
            }
        })
        .collect();
    let bad = write(dir.path(), "ref.csv", &(bad.join("\n") + "\n"));
    for numeric in [all.as_str(), "car_value"] {
        report(&bad, numeric)
            .code(1)
            .stderr(predicate::str::contains(
                "ref.csv, line 50, column `car_value`: `oops` is not a number",
            ))
            .stderr(predicate::str::contains("panicked").not());
    }
}

/// Issue 21, item 6: blank lines of a one-column CSV are missing values (before, they vanished:
/// 4 rows, 0 missing), and a run where no cell has enough values says nothing could be judged
/// (before: "no feature drifted in any chunk").
#[test]
fn one_column_blank_lines_are_missing_and_nothing_judged_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let reference = write(dir.path(), "ref.csv", "f2\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");
    let current = write(dir.path(), "cur.csv", "f2\n7\n8\n\n\n9\n10\n");
    let out = driftwatch()
        .args(["analyze", "--format", "json", "--reference"])
        .arg(&reference)
        .arg("--current")
        .arg(&current)
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(report["current_rows"], 6);
    let cell = &report["chunks"][0]["features"][0];
    assert_eq!(
        (cell["count"].as_u64(), cell["missing"].as_u64()),
        (Some(4), Some(2))
    );

    let out = driftwatch()
        .args(["analyze", "--reference"])
        .arg(&reference)
        .arg("--current")
        .arg(&current)
        .assert()
        .success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.contains("insufficient data: none of the 1 (chunk, feature) cells could be judged"),
        "{stdout}"
    );
    assert!(!stdout.contains("no feature drifted"), "{stdout}");
}

/// Issue 21, item 6: gzip and zstd CSV read by their bytes; a truncated gzip names the file.
#[test]
fn compressed_csv_reads_and_a_truncated_one_is_named() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let csv = std::fs::read(car_loan::ANALYSIS).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&csv).unwrap();
    let gz = gz.finish().unwrap();
    let gz_path = dir.path().join("analysis.csv.gz");
    std::fs::write(&gz_path, &gz).unwrap();
    let zst_path = dir.path().join("analysis-zstd.csv");
    std::fs::write(&zst_path, zstd::encode_all(csv.as_slice(), 1).unwrap()).unwrap();
    for current in [&gz_path, &zst_path] {
        let out = driftwatch()
            .args(["analyze", "--reference", car_loan::REFERENCE])
            .arg("--current")
            .arg(current)
            .args(["--chunk-size", "5000"])
            .assert()
            .success();
        let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        assert!(
            stdout.contains("chunk 5 | rows 25000-29999 (5000 rows) | DRIFT in 4 of 7 features"),
            "{}: {stdout}",
            current.display()
        );
    }
    let cut = dir.path().join("cut.csv.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let mut cmd = driftwatch();
    cmd.args(["analyze", "--reference", car_loan::REFERENCE])
        .arg("--current")
        .arg(&cut);
    fails_naming(
        &mut cmd,
        "cut.csv.gz",
        "gzip stream is truncated or damaged",
    );
}

/// Issue 21, item 6: by default, identifiers (by name, or integers/text all distinct), model
/// outputs and free text are not features, and the run says which were left out and why.
#[test]
fn identifiers_model_outputs_and_free_text_are_not_default_features() {
    let dir = tempfile::tempdir().unwrap();
    // Ticket: distinct and dense integers (an identifier); Income: distinct but spread wide (a
    // feature).
    let mut csv = String::from(
        "PassengerId,Name,Sex,Age,Ticket,Income,y_pred_proba_1,predicted_probability,on_probation\n",
    );
    for i in 0..120 {
        csv.push_str(&format!(
            "{i},Person {i},{},{}.5,{},{},0.{},0.{},{}\n",
            if i % 3 == 0 { "female" } else { "male" },
            20 + i % 40,
            1000 + (i * 7) % 120,
            20_000 + i * 731,
            i % 10,
            (i + 3) % 10,
            i % 2 == 0
        ));
    }
    let data = write(dir.path(), "titanic.csv", &csv);
    let out = driftwatch()
        .args(["analyze", "--format", "json", "--reference"])
        .arg(&data)
        .arg("--current")
        .arg(&data)
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let features: Vec<&str> = report["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(features, ["Sex", "Age", "Income", "on_probation"]);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    for expected in [
        "`PassengerId` (identifier)",
        "`Name` (identifier: all 120 values distinct)",
        "`Ticket` (identifier: all 120 values distinct, from 1000 to 1119)",
        "`y_pred_proba_1` (model output)",
        "`predicted_probability` (model output)",
    ] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
    // Named, an identifier is analysed.
    driftwatch()
        .args(["analyze", "--features", "Ticket,Sex", "--reference"])
        .arg(&data)
        .arg("--current")
        .arg(&data)
        .assert()
        .success();
}

/// Issue 21, item 2: methods that do not vote report values, not drift flags (raw Wasserstein, in
/// dollars, "drifted" in every clean car_loan chunk against 0.1), and raw Wasserstein as a
/// verdict method without a threshold is refused with the fix.
#[test]
fn only_verdict_methods_flag_drift_and_raw_wasserstein_needs_a_threshold() {
    let report = car_loan_json(&["--chunk-size", "5000"]);
    let (mut verdict, mut other) = (0, 0);
    for chunk in report["chunks"].as_array().unwrap() {
        for feature in chunk["features"].as_array().unwrap() {
            for m in feature["methods"].as_array().unwrap() {
                if m["verdict_method"] == true {
                    verdict += 1;
                    assert!(m["threshold"].is_object(), "{m}");
                } else {
                    other += 1;
                    assert!(m["drift"].is_null() && m["threshold"].is_null(), "{m}");
                }
            }
        }
    }
    // 10 chunks x (4 numeric x 2 + 3 categorical x 1) verdict methods.
    assert_eq!(verdict, 10 * (NUMERIC.len() * 2 + CATEGORICAL.len()));
    assert!(other > 0);

    driftwatch()
        .args([
            "analyze",
            "--reference",
            car_loan::REFERENCE,
            "--current",
            car_loan::ANALYSIS,
            "--verdict-methods",
            "wasserstein",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "`wasserstein` is a verdict method but has no threshold",
        ));
}

/// Issue 22, item 6: `analyze --problem-type binary` with labels joined from another file gives
/// scikit-learn's realized quality per chunk (fixture: tests/fixtures/gen/car_loan_quality.py) to
/// 1e-9 relative.
#[test]
fn car_loan_realized_quality_matches_scikit_learn() {
    let report = car_loan_json(&[
        "--chunk-size",
        "5000",
        "--problem-type",
        "binary",
        "--target-column",
        &car_loan::MANIFEST.label,
        "--labels",
        car_loan::ANALYSIS_TARGET,
    ]);
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/car_loan_quality_sklearn.json")).unwrap();
    let expected = fixture["chunks"].as_array().unwrap();
    let chunks = report["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), expected.len());
    for (chunk, want) in chunks.iter().zip(expected) {
        // Issue 22, must-show: the label-free estimate (CBPE, calibrated on the labelled
        // reference) is within 0.01 of the realized ROC AUC, accuracy and F1 in every chunk.
        let estimated = &chunk["estimated_quality"];
        for metric in ["roc_auc", "accuracy", "f1"] {
            let (e, r) = (
                estimated[metric].as_f64().unwrap(),
                want[metric].as_f64().unwrap(),
            );
            assert!(
                (e - r).abs() <= 0.01,
                "chunk {}: estimated {metric} {e} vs realized {r}",
                chunk["index"]
            );
        }
        assert_eq!(estimated["count"], 5000);
        let q = &chunk["quality"];
        assert_eq!(q["problem_type"], "binary");
        assert_eq!(q["count"], want["count"]);
        for metric in [
            "accuracy",
            "precision",
            "recall",
            "f1",
            "roc_auc",
            "log_loss",
            "brier",
        ] {
            let (got, w) = (q[metric].as_f64().unwrap(), want[metric].as_f64().unwrap());
            assert!(
                (got - w).abs() <= 1e-9 * w.abs(),
                "chunk {}: {metric} {got} vs scikit-learn {w}",
                chunk["index"]
            );
        }
    }
}

/// A label that is not a binary class is an error naming the labels file and the prediction's
/// line, never a silent skip.
#[test]
fn a_label_that_is_not_a_class_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let current = write(
        dir.path(),
        "cur.csv",
        "id,x,y_pred\n1,1.0,1\n2,2.0,0\n3,3.0,1\n",
    );
    let labels = write(dir.path(), "labels.csv", "id,label\n1,1\n2,maybe\n3,0\n");
    let mut cmd = driftwatch();
    cmd.args(["analyze", "--reference"])
        .arg(&current)
        .arg("--current")
        .arg(&current)
        .args([
            "--features",
            "x",
            "--problem-type",
            "binary",
            "--target-column",
            "label",
            "--labels",
        ])
        .arg(&labels);
    fails_naming(
        &mut cmd,
        "labels.csv",
        "the label `maybe` of the prediction on line 3",
    );
}

/// Without labels for the current file, a binary model's quality is estimated only (CBPE); the
/// realized quality is omitted, not reported over zero labels.
#[test]
fn without_labels_only_the_estimate_is_reported() {
    let report = car_loan_json(&[
        "--chunk-size",
        "25000",
        "--problem-type",
        "binary",
        "--target-column",
        &car_loan::MANIFEST.label,
    ]);
    for chunk in report["chunks"].as_array().unwrap() {
        assert!(chunk.get("quality").is_none(), "{chunk}");
        assert_eq!(chunk["estimated_quality"]["count"], 25000);
        let auc = chunk["estimated_quality"]["roc_auc"].as_f64().unwrap();
        assert!((0.95..0.98).contains(&auc), "{auc}");
    }
}

/// Review finding: a NaN score made the label-free estimate panic (an index below zero in the
/// calibrator); it is an error naming the file, line and column.
#[test]
fn a_score_that_is_not_a_probability_is_named_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut reference = String::from("x,y_pred,y_pred_proba,label\n");
    for i in 0..40 {
        reference.push_str(&format!("{i}.0,{},0.{},{}\n", i % 2, 1 + i % 8, i % 2));
    }
    let reference = write(dir.path(), "ref.csv", &reference);
    let current = write(
        dir.path(),
        "cur.csv",
        "x,y_pred,y_pred_proba\n1.0,1,0.9\n2.0,0,NaN\n",
    );
    let mut cmd = driftwatch();
    cmd.args([
        "analyze",
        "--features",
        "x",
        "--problem-type",
        "binary",
        "--target-column",
        "label",
        "--reference",
    ])
    .arg(&reference)
    .arg("--current")
    .arg(&current);
    fails_naming(&mut cmd, "cur.csv", "line 3: column `y_pred_proba`");
}

/// Review L8: raw Wasserstein may vote with calibrated thresholds (calibration gives it one);
/// only without a threshold source is it refused.
#[test]
fn raw_wasserstein_votes_with_calibrated_thresholds() {
    let report = car_loan_json(&[
        "--chunk-size",
        "5000",
        "--verdict-methods",
        "wasserstein",
        "--thresholds",
        "calibrated",
    ]);
    let chunk = &report["chunks"][0]["features"][0];
    let w = chunk["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "wasserstein")
        .unwrap();
    assert_eq!(w["verdict_method"], true);
    assert_eq!(w["threshold"]["source"], "calibrated");
}
