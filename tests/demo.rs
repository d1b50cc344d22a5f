//! `driftwatch demo`, the README's first command, end to end (debug build, `--fast`): the
//! built-in car_loan logs through the whole service on a free port; the drifted features, the
//! alert, the retraining Job and a canary decision are printed, and it exits 0.

use assert_cmd::Command;
use test_support::car_loan::{DRIFTED, STABLE};

#[test]
fn demo_prints_the_drifted_features_the_job_and_a_canary_decision() {
    let out = Command::cargo_bin("driftwatch")
        .unwrap()
        .args(["demo", "--listen", "127.0.0.1:0", "--fast"])
        .timeout(std::time::Duration::from_secs(240))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Every prediction in its chunk's window: 10 reference and 10 analysis windows of 5,000.
    assert!(
        stdout.contains("summary: 20 windows, 100000 predictions"),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("window ") && l.contains(": 5000 predictions"))
            .count(),
        20,
        "{stdout}"
    );
    for f in DRIFTED.iter() {
        let line = format!("{f:<24} drifted in analysis chunks [5, 6, 7, 8, 9]");
        assert!(stdout.contains(&line), "missing `{line}`\n{stdout}");
        assert!(
            stdout.contains(&format!("ALERT ModelDataDrift firing: feature {f} ")),
            "no alert for {f}\n{stdout}"
        );
    }
    for f in STABLE.iter() {
        assert!(
            stdout.contains(&format!("{f:<24} no drift")),
            "{f}\n{stdout}"
        );
    }
    assert!(
        stdout.contains("drift begins at analysis chunk 5; ModelDataDrift fired for: car_value, loan_length, repaid_loan_on_prev_car, salary_range"),
        "{stdout}"
    );
    // Exactly one retraining Job, printed as a batch/v1 Job, and the canary's first step.
    assert_eq!(
        stdout
            .matches("CONTROLLER retrain: create Job ml/retrain-car-loan-")
            .count(),
        1,
        "{stdout}"
    );
    assert!(stdout.contains("kind: Job"), "{stdout}");
    assert!(stdout.contains("SetCanaryWeight(10)"), "{stdout}");
}
