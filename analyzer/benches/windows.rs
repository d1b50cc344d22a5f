//! Window close cost (every method, the 7 car_loan features, a 5,000-event window) and analyzer
//! throughput (events absorbed per second, one core).
//!
//! `cargo bench -p driftwatch-analyzer --bench windows`

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use analyzer::columns::FeatureKind;
use analyzer::event_schema::event_schema;
use analyzer::stream::{WindowSettings, Windows};
use analyzer::{ProfileOptions, ReadOptions, ReferenceProfile, read_table};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, StringDictionaryBuilder,
    TimestampMillisecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int32Type};
use test_support::car_loan::{self, FEATURES};

/// car_loan analysis rows as event batches of 5,000 (one window each), plus the profile.
fn setup() -> (Arc<ReferenceProfile>, Vec<RecordBatch>) {
    let features: Vec<String> = FEATURES.iter().map(ToString::to_string).collect();
    let reference = read_table(
        &car_loan::path(car_loan::REFERENCE),
        &ReadOptions::default(),
    )
    .unwrap();
    let profile =
        Arc::new(ReferenceProfile::fit(&reference, &features, &ProfileOptions::default()).unwrap());
    let current = read_table(&car_loan::path(car_loan::ANALYSIS), &ReadOptions::default()).unwrap();
    let kinds: Vec<(String, FeatureKind)> = profile
        .features
        .iter()
        .map(|f| (f.name().to_string(), f.kind()))
        .collect();
    let schema = event_schema(&kinds);
    let mut batches = Vec::new();
    let mut offset = 0i64;
    for b in &current.batches {
        let n = b.num_rows();
        let mut cols: Vec<ArrayRef> = vec![
            // 5,000 events per 60 s window.
            Arc::new(
                TimestampMillisecondArray::from(
                    (0..n as i64).map(|i| (offset + i) * 12).collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec!["car-loan"; n])),
            Arc::new(StringArray::from(vec![Some("v1"); n])),
            Arc::new(StringArray::from(vec!["stable"; n])),
            Arc::new(StringArray::from(vec![None::<&str>; n])),
            Arc::new(StringArray::from(vec![Some("1"); n])),
            Arc::new(Float64Array::from(vec![0.9; n])),
            Arc::new(Float64Array::from(vec![40.0; n])),
        ];
        for (name, kind) in &kinds {
            let col = b.column_by_name(name).unwrap();
            cols.push(match kind {
                FeatureKind::Numeric => cast(col, &DataType::Float64).unwrap(),
                FeatureKind::Categorical => {
                    let text = analyzer::columns::to_text(col).unwrap();
                    let mut d = StringDictionaryBuilder::<Int32Type>::new();
                    for v in text.iter() {
                        d.append_option(v);
                    }
                    Arc::new(d.finish())
                }
            });
        }
        batches.push(RecordBatch::try_new(schema.clone(), cols).unwrap());
        offset += n as i64;
    }
    (profile, batches)
}

fn windows(c: &mut Criterion) {
    let (profile, batches) = setup();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let settings = WindowSettings {
        idle_close_after: Duration::from_secs(3600),
        allowed_lateness: Duration::ZERO,
        ..WindowSettings::default()
    };
    let profiles = HashMap::from([("car-loan".to_string(), profile)]);
    let first = batches[0].slice(0, 5000);

    let mut group = c.benchmark_group("windows");
    group.throughput(Throughput::Elements(5000));
    group.bench_function("close_5000_events_7_features_all_methods", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut w = Windows::new(settings.clone(), profiles.clone());
                w.absorb("car-loan", &first).unwrap();
                let due = w.due(Instant::now() + Duration::from_secs(7200));
                let started = Instant::now();
                for (k, s, o) in due {
                    std::hint::black_box(runtime.block_on(w.finish(k, s, o)).unwrap());
                }
                total += started.elapsed();
            }
            total
        })
    });
    let events: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    group.throughput(Throughput::Elements(events));
    group.bench_function("absorb_and_close_car_loan_50000_events", |b| {
        b.iter(|| {
            let mut w = Windows::new(settings.clone(), profiles.clone());
            for batch in &batches {
                w.absorb("car-loan", batch).unwrap();
            }
            for (k, s, o) in w.due(Instant::now() + Duration::from_secs(7200)) {
                std::hint::black_box(runtime.block_on(w.finish(k, s, o)).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = windows
}
criterion_main!(benches);
