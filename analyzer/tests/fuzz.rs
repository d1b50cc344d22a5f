//! Fuzzing of the analyzer's decoders (issue 19, item 9): reference profiles and checkpoint
//! manifests, valid files mutated by byte flips, insertions, deletions and truncation. Loading
//! may fail, with an error naming the file, but never panic, and a checkpoint that loads must be
//! consistent (every window's stored rows equal its retained count).
//!
//! Cases per property: `DRIFTWATCH_FUZZ_CASES` (default 4,000 for profiles, a tenth for
//! checkpoints, which write files).

use std::collections::HashMap;
use std::sync::Arc;

use analyzer::profile::ProfileOptions;
use analyzer::stream::{Checkpointer, WindowSettings, Windows};
use analyzer::{ReferenceProfile, Table};
use datafusion::arrow::array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use proptest::prelude::*;
use test_support::fuzz::mutate;
use types::FeatureKind;
use types::event::event_schema;

fn cases() -> u32 {
    test_support::fuzz::cases(4_000)
}

fn edits() -> impl Strategy<Value = Vec<test_support::fuzz::Edit>> {
    test_support::fuzz::edits(1)
}

fn profile() -> ReferenceProfile {
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float64, true),
        Field::new("c", DataType::Utf8, true),
    ]));
    let x: ArrayRef = Arc::new(Float64Array::from(
        (0..200)
            .map(|i| Some(f64::from(i % 37)))
            .collect::<Vec<_>>(),
    ));
    let c: ArrayRef = Arc::new(StringArray::from(
        (0..200)
            .map(|i| Some(["a", "b", "c"][i % 3]))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), vec![x, c]).unwrap();
    let table = Table::from_batches("reference", schema, vec![batch]);
    ReferenceProfile::fit(
        &table,
        &["x".into(), "c".into()],
        &ProfileOptions::default(),
    )
    .unwrap()
}

fn event_batch(n: usize) -> RecordBatch {
    let features = vec![("x".to_string(), FeatureKind::Numeric)];
    let cols: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from((0..n as i64).collect::<Vec<_>>()).with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(vec!["m"; n])),
        Arc::new(StringArray::from(vec![Some("v1"); n])),
        Arc::new(StringArray::from(vec!["stable"; n])),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(StringArray::from(vec![Some("1"); n])),
        Arc::new(Float64Array::from(vec![0.9; n])),
        Arc::new(Float64Array::from(vec![10.0; n])),
        Arc::new(Float64Array::from(
            (0..n).map(|i| i as f64).collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(event_schema(&features), cols).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_profiles_load_or_fail_naming_the_file(edits in edits()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        profile().save(&path).unwrap();
        let seed = std::fs::read(&path).unwrap();
        std::fs::write(&path, mutate(&seed, &edits)).unwrap();
        if let Err(e) = ReferenceProfile::load(&path) {
            prop_assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: (cases() / 10).max(1), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_checkpoints_restore_consistently_or_fail(manifest_edits in edits(), window_edits in edits(), which in 0u8..3) {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Windows::new(WindowSettings::default(), HashMap::from([("m".to_string(), Arc::new(profile()))]));
        let mut ckpt = Checkpointer::new(dir.path()).unwrap();
        w.absorb("m", &event_batch(50)).unwrap();
        ckpt.write(&mut w, types::offsets::SourceOffsets::default(), &[]).unwrap();
        w.absorb("m", &event_batch(30)).unwrap();
        ckpt.write(&mut w, types::offsets::SourceOffsets::default(), &[]).unwrap();
        let manifest = dir.path().join("manifest.json");
        let window = std::fs::read_dir(dir.path().join("windows")).unwrap().next().unwrap().unwrap().path();
        if which != 1 {
            let seed = std::fs::read(&manifest).unwrap();
            std::fs::write(&manifest, mutate(&seed, &manifest_edits)).unwrap();
        }
        if which != 0 {
            let seed = std::fs::read(&window).unwrap();
            std::fs::write(&window, mutate(&seed, &window_edits)).unwrap();
        }
        match Checkpointer::restore(dir.path()) {
            Ok(Some(restored)) => {
                for (_, _, open) in &restored.windows {
                    let stored: u64 = open.batches.iter().map(|b| b.num_rows() as u64).sum();
                    prop_assert_eq!(stored, open.retained);
                    prop_assert!(open.rows >= open.retained);
                }
            }
            Ok(None) => prop_assert!(false, "the manifest exists"),
            Err(e) => {
                let text = e.to_string();
                prop_assert!(
                    text.contains(&manifest.display().to_string()) || text.contains(&window.display().to_string()),
                    "{text}"
                );
            }
        }
    }
}
