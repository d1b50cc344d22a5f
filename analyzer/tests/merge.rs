//! Mergeability: partial window states merged equal the single pass, and so do the statistics
//! computed from them; profiles fitted on two halves and merged equal the profile of the whole.

use std::sync::Arc;

use analyzer::drift::{DriftSettings, evaluate};
use analyzer::profile::{CategoricalProfile, FeatureProfile, NumericProfile, ProfileOptions};
use analyzer::{FeatureModel, ReferenceProfile, Table};
use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{Field, Schema};
use proptest::prelude::*;

fn numeric_model(reference: &[f64]) -> FeatureModel {
    FeatureModel::new(FeatureProfile::Numeric(NumericProfile::fit(
        "x",
        reference,
        0,
        &ProfileOptions::default(),
    )))
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -50.0f64..50.0,
        1 => Just(f64::NAN),
        1 => prop::sample::select(vec![0.0, 1.0, 2.5, -3.0]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn numeric_state_merge_equals_single_pass(
        reference in prop::collection::vec(-40.0f64..40.0, 20..200),
        current in prop::collection::vec(value(), 0..300),
        split in 0usize..300,
    ) {
        let model = numeric_model(&reference);
        let split = split.min(current.len());
        let mut whole = model.new_state();
        model.add_values(&mut whole, &current);
        let mut left = model.new_state();
        model.add_values(&mut left, &current[..split]);
        let mut right = model.new_state();
        model.add_values(&mut right, &current[split..]);
        left.merge(&right).unwrap();
        prop_assert_eq!(left.histogram(), whole.histogram());
        prop_assert_eq!((left.count(), left.missing()), (whole.count(), whole.missing()));
        let settings = DriftSettings { min_samples: 1, ..DriftSettings::default() };
        let a = evaluate(model.profile(), &left, &settings, None);
        let b = evaluate(model.profile(), &whole, &settings, None);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn categorical_state_merge_equals_single_pass(
        current in prop::collection::vec(prop::option::of(prop::sample::select(vec!["a", "b", "c", "new", "other"])), 0..300),
        split in 0usize..300,
    ) {
        let model = FeatureModel::new(FeatureProfile::Categorical(CategoricalProfile::fit("c", ["a", "a", "b", "c"].map(Some))));
        let split = split.min(current.len());
        let mut whole = model.new_state();
        current.iter().for_each(|v| model.add_category(&mut whole, *v));
        let mut left = model.new_state();
        current[..split].iter().for_each(|v| model.add_category(&mut left, *v));
        let mut right = model.new_state();
        current[split..].iter().for_each(|v| model.add_category(&mut right, *v));
        left.merge(&right).unwrap();
        prop_assert_eq!(&left, &whole);
        let settings = DriftSettings { min_samples: 1, ..DriftSettings::default() };
        prop_assert_eq!(evaluate(model.profile(), &left, &settings, None), evaluate(model.profile(), &whole, &settings, None));
    }
}

#[test]
fn states_of_different_kinds_do_not_merge() {
    let n = numeric_model(&[1.0, 2.0]);
    let c = FeatureModel::new(FeatureProfile::Categorical(CategoricalProfile::fit(
        "c",
        [Some("a")],
    )));
    let mut s = n.new_state();
    assert!(s.merge(&c.new_state()).is_err());
}

fn table(x: Vec<f64>, c: Vec<&str>) -> Table {
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", datafusion::arrow::datatypes::DataType::Float64, true),
        Field::new("c", datafusion::arrow::datatypes::DataType::Utf8, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(x)),
        Arc::new(StringArray::from(c)),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    Table::from_batches("part.csv", schema, vec![batch])
}

#[test]
fn merged_profiles_equal_the_profile_of_the_union() {
    let xs: Vec<f64> = (0..400)
        .map(|i| (f64::from(i) * 7.31).sin() * 10.0)
        .collect();
    let cs: Vec<&str> = (0..400).map(|i| ["a", "b", "c"][i % 3]).collect();
    let features = vec!["x".to_string(), "c".to_string()];
    let options = ProfileOptions::default();
    let a = ReferenceProfile::fit(
        &table(xs[..150].to_vec(), cs[..150].to_vec()),
        &features,
        &options,
    )
    .unwrap();
    let b = ReferenceProfile::fit(
        &table(xs[150..].to_vec(), cs[150..].to_vec()),
        &features,
        &options,
    )
    .unwrap();
    let whole = ReferenceProfile::fit(&table(xs.clone(), cs.clone()), &features, &options).unwrap();
    let merged = a.merge(&b).unwrap();
    assert_eq!(merged.rows, 400);
    let (FeatureProfile::Numeric(m), FeatureProfile::Numeric(w)) =
        (&merged.features[0], &whole.features[0])
    else {
        panic!("numeric");
    };
    assert_eq!(m.edges, w.edges);
    assert_eq!(m.counts, w.counts);
    assert_eq!(m.sample, w.sample);
    assert!((m.mean.unwrap() - w.mean.unwrap()).abs() < 1e-12);
    assert!((m.std.unwrap() - w.std.unwrap()).abs() < 1e-12);
    assert_eq!(merged.features[1], whole.features[1]);
}

#[test]
fn inexact_profiles_merge_counts_and_moments_exactly() {
    let options = ProfileOptions {
        sample_size: 50,
        ..ProfileOptions::default()
    };
    let xs: Vec<f64> = (0..200).map(|i| f64::from(i % 20)).collect();
    let a = NumericProfile::fit("x", &xs[..100], 0, &options);
    let b = NumericProfile::fit("x", &xs[100..], 0, &options);
    let whole = NumericProfile::fit("x", &xs, 0, &options);
    let pa = profile_of(a);
    let pb = profile_of(b);
    let merged = pa.merge(&pb).unwrap();
    let FeatureProfile::Numeric(m) = &merged.features[0] else {
        panic!()
    };
    assert_eq!(m.counts, whole.counts);
    assert_eq!(m.count, 200);
    assert!((m.mean.unwrap() - whole.mean.unwrap()).abs() < 1e-12);
    assert!((m.std.unwrap() - whole.std.unwrap()).abs() < 1e-12);
    assert_eq!(m.sample.len(), 50);
    assert!(!m.sample_exact);
}

fn profile_of(p: NumericProfile) -> ReferenceProfile {
    ReferenceProfile {
        format: analyzer::profile::PROFILE_FORMAT.into(),
        version: analyzer::profile::PROFILE_VERSION,
        created_at: chrono::Utc::now(),
        sources: vec![],
        rows: p.count,
        options: ProfileOptions {
            sample_size: 50,
            ..ProfileOptions::default()
        },
        features: vec![FeatureProfile::Numeric(p)],
        calibrations: Vec::new(),
    }
}

#[test]
fn profile_round_trips_through_its_file() {
    let xs: Vec<f64> = (0..300).map(|i| f64::from(i).sqrt()).collect();
    let cs: Vec<&str> = (0..300).map(|i| ["x", "y"][i % 2]).collect();
    let p = ReferenceProfile::fit(
        &table(xs, cs),
        &["x".into(), "c".into()],
        &ProfileOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    p.save(&path).unwrap();
    let back = ReferenceProfile::load(&path).unwrap();
    assert_eq!(back, p);
}
