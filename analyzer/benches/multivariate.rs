//! Cost of the multivariate pass (PCA reconstruction error, `analyzer::multivariate`) on car_loan:
//! fit on the 50,000 reference rows, score them in chunks of 5,000 for the band, score the 50,000
//! analysis rows; beside it, the univariate `analyze` of the same files for scale.
//!
//! `cargo bench -p driftwatch-analyzer --bench multivariate`

use analyzer::batch::{AnalysisSettings, Chunking, NoProgress, analyze, attach_multivariate};
use analyzer::multivariate::DEFAULT_VARIANCE_KEPT;
use analyzer::{ProfileOptions, ReadOptions, ReferenceProfile, read_table};
use criterion::{Criterion, criterion_group, criterion_main};

const FEATURES: [&str; 7] = [
    "car_value",
    "salary_range",
    "debt_to_income_ratio",
    "loan_length",
    "repaid_loan_on_prev_car",
    "size_of_downpayment",
    "driver_tenure",
];

fn bench(c: &mut Criterion) {
    let features: Vec<String> = FEATURES.iter().map(ToString::to_string).collect();
    let options = ReadOptions::default();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/car_loan");
    let reference = read_table(&root.join("reference.csv"), &options).unwrap();
    let current = read_table(&root.join("analysis.csv"), &options).unwrap();
    let profile = ReferenceProfile::fit(&reference, &features, &ProfileOptions::default()).unwrap();
    let settings = AnalysisSettings {
        chunking: Chunking::Size { rows: 5000 },
        ..AnalysisSettings::default()
    };
    let report = analyze(&profile, &features, &current, &settings, None, &NoProgress).unwrap();
    let mut group = c.benchmark_group("car_loan_100k_rows");
    group.sample_size(20);
    group.bench_function("univariate_analyze", |b| {
        b.iter(|| analyze(&profile, &features, &current, &settings, None, &NoProgress).unwrap());
    });
    group.bench_function("multivariate_pass", |b| {
        b.iter(|| {
            let mut r = report.clone();
            attach_multivariate(&mut r, &reference, &current, DEFAULT_VARIANCE_KEPT).unwrap();
            r
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
