//! Streaming windows, the DataFusion drift UDAFs and checkpoints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use analyzer::columns::FeatureKind;
use analyzer::drift::{DriftSettings, evaluate};
use analyzer::event_schema::event_schema;
use analyzer::profile::{FeatureProfile, ProfileOptions};
use analyzer::sql::{self, ProfileSet};
use analyzer::stream::{Checkpointer, WindowSettings, Windows};
use analyzer::{FeatureModel, ReferenceProfile, Table};
use datafusion::arrow::array::{
    ArrayRef, Float64Array, RecordBatch, StringArray, StringDictionaryBuilder,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::Int32Type;

const MINUTE: i64 = 60_000;

fn features() -> Vec<(String, FeatureKind)> {
    vec![
        ("x".into(), FeatureKind::Numeric),
        ("c".into(), FeatureKind::Categorical),
    ]
}

/// Events at `times` (ms), x = f(i), c = one of a/b, variant stable, version v1.
fn batch(
    times: &[i64],
    x: impl Fn(usize) -> f64,
    c: impl Fn(usize) -> &'static str,
) -> RecordBatch {
    let n = times.len();
    let mut cat = StringDictionaryBuilder::<Int32Type>::new();
    for i in 0..n {
        cat.append_value(c(i));
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(times.to_vec()).with_timezone("UTC")),
        Arc::new(StringArray::from(vec!["m"; n])),
        Arc::new(StringArray::from(vec![Some("v1"); n])),
        Arc::new(StringArray::from(vec!["stable"; n])),
        Arc::new(StringArray::from(vec![None::<&str>; n])),
        Arc::new(StringArray::from(vec![Some("1"); n])),
        Arc::new(Float64Array::from(
            (0..n)
                .map(|i| 0.5 + (i % 5) as f64 / 10.0)
                .collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from(
            (0..n).map(|i| 10.0 + i as f64).collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from((0..n).map(&x).collect::<Vec<_>>())),
        Arc::new(cat.finish()),
    ];
    RecordBatch::try_new(event_schema(&features()), cols).unwrap()
}

/// Drift settings of these tests: the defaults, with verdicts from 10 values on (the windows here
/// are small).
fn drift_settings() -> DriftSettings {
    DriftSettings {
        min_samples: 10,
        ..DriftSettings::default()
    }
}

fn reference() -> Arc<ReferenceProfile> {
    let b = batch(
        &vec![0; 1000],
        |i| (i % 100) as f64,
        |i| if i % 2 == 0 { "a" } else { "b" },
    );
    let table = Table::from_batches("ref", b.schema(), vec![b]);
    Arc::new(
        ReferenceProfile::fit(
            &table,
            &["x".into(), "c".into()],
            &ProfileOptions::default(),
        )
        .unwrap(),
    )
}

fn settings() -> WindowSettings {
    WindowSettings {
        size: Duration::from_secs(60),
        allowed_lateness: Duration::from_secs(5),
        idle_close_after: Duration::from_secs(3600),
        drift: drift_settings(),
        ..WindowSettings::default()
    }
}

fn windows() -> Windows {
    Windows::new(settings(), HashMap::from([("m".to_string(), reference())]))
}

fn times(start: i64, n: usize, step: i64) -> Vec<i64> {
    (0..n).map(|i| start + i as i64 * step).collect()
}

#[tokio::test]
async fn windows_close_at_the_watermark_and_late_events_are_counted() {
    let mut w = windows();
    // 100 events in [0, 1m), then 50 in [1m, 2m).
    let a = w
        .absorb(
            "m",
            &batch(&times(0, 100, 500), |i| (i % 100) as f64, |_| "a"),
        )
        .unwrap();
    assert_eq!((a.accepted, a.late), (100, 0));
    w.absorb("m", &batch(&times(MINUTE, 50, 100), |i| i as f64, |_| "b"))
        .unwrap();
    // Watermark = 1m + 4.9s - 5s < 1m: nothing closes yet.
    assert!(w.due(Instant::now()).is_empty());
    w.absorb("m", &batch(&[MINUTE + 6_000], |_| 1.0, |_| "a"))
        .unwrap();
    let due = w.due(Instant::now());
    assert_eq!(due.len(), 1);
    let (key, start, open) = due.into_iter().next().unwrap();
    assert_eq!(
        (
            key.model.as_str(),
            key.version.as_str(),
            key.variant.as_str(),
            start
        ),
        ("m", "v1", "stable", 0)
    );
    let closed = w.finish(key, start, open).await.unwrap();
    let r = &closed.report;
    assert_eq!(r.requests, 100);
    assert_eq!(r.latency_seconds.count, 100);
    // Latencies 10..109 ms: numpy.quantile(numpy.arange(10, 110) / 1000, 0.95) = 0.10405 s.
    assert!(
        (r.latency_seconds.p95.unwrap() - 0.10405).abs() < 1e-12,
        "{:?}",
        r.latency_seconds
    );
    assert_eq!(r.confidence.p50, Some(0.7));
    assert_eq!(r.drift.len(), 2);
    assert_eq!(closed.latencies_s.len(), 100);
    // An event for the closed window is late, not added.
    let late = w
        .absorb("m", &batch(&[30_000, MINUTE + 10], |_| 1.0, |_| "a"))
        .unwrap();
    assert_eq!((late.accepted, late.late), (1, 1));
    assert_eq!(w.late_events()["m"], 1);
}

/// A window's report comes from one typed pass over its batches: over two batches with missing
/// latencies and features, the latency quantiles are in seconds over the present values, the
/// histogram's observations are those same values, the missing ratio counts nulls, and each
/// feature's drift equals the single-pass state judged directly.
#[tokio::test]
async fn window_statistics_are_one_typed_pass_over_the_batches() {
    let mut w = windows();
    let with_nulls = |b: RecordBatch, every: usize| {
        let mut cols = b.columns().to_vec();
        let n = b.num_rows();
        // Column 7 is latency_ms, 8 is x.
        cols[7] = Arc::new(Float64Array::from(
            (0..n)
                .map(|i| (i % every != 0).then_some(10.0 + i as f64))
                .collect::<Vec<_>>(),
        ));
        cols[8] = Arc::new(Float64Array::from(
            (0..n)
                .map(|i| (i % every != 0).then_some((i % 90) as f64))
                .collect::<Vec<_>>(),
        ));
        RecordBatch::try_new(b.schema(), cols).unwrap()
    };
    let b1 = with_nulls(batch(&times(0, 60, 100), |_| 0.0, |_| "a"), 4);
    let b2 = with_nulls(batch(&times(6_000, 40, 100), |_| 0.0, |_| "b"), 5);
    w.absorb("m", &b1).unwrap();
    w.absorb("m", &b2).unwrap();
    w.absorb("m", &batch(&[10 * MINUTE], |_| 1.0, |_| "a"))
        .unwrap();
    let (k, s, o) = w.due(Instant::now()).into_iter().next().unwrap();
    let closed = w.finish(k, s, o).await.unwrap();
    let r = &closed.report;
    // 60 rows with every 4th latency missing (15), 40 with every 5th (8): 77 present.
    assert_eq!(r.requests, 100);
    assert_eq!(r.latency_seconds.count, 77);
    let mut expected: Vec<f64> = (0..60)
        .filter(|i| i % 4 != 0)
        .chain((0..40).filter(|i| i % 5 != 0))
        .map(|i| (10.0 + i as f64) / 1000.0)
        .collect();
    expected.sort_by(f64::total_cmp);
    assert_eq!(closed.latencies_s, expected);
    // numpy.quantile(expected, 0.5): 77 values, the 39th smallest.
    assert_eq!(r.latency_seconds.p50, Some(expected[38]));
    // 1 - present / rows, as the report computes it (1 - 0.77, not 0.23 exactly).
    assert_eq!(r.missing_ratio["x"], 1.0 - 77.0 / 100.0);
    assert_eq!(r.missing_ratio["c"], 0.0);
    let profile = reference();
    let window = drift_settings().for_window_of(profile.features.len());
    for (name, drift) in ["x", "c"].iter().zip(&r.drift) {
        let model = FeatureModel::new(profile.feature(name).unwrap().clone());
        let mut state = model.new_state();
        for b in [&b1, &b2] {
            model
                .add_array(&mut state, b.column_by_name(name).unwrap())
                .unwrap();
        }
        assert_eq!(
            *drift,
            evaluate(model.profile(), &state, &window, None),
            "{name}"
        );
    }
    assert_eq!(r.drift[0].missing, 23);
}

#[tokio::test]
async fn idle_models_close_their_windows() {
    let mut s = settings();
    s.idle_close_after = Duration::from_millis(0);
    let mut w = Windows::new(s, HashMap::new());
    w.absorb("other", &batch(&times(0, 10, 10), |i| i as f64, |_| "a"))
        .unwrap();
    let due = w.due(Instant::now() + Duration::from_millis(1));
    assert_eq!(due.len(), 1);
    let (k, s, o) = due.into_iter().next().unwrap();
    let closed = w.finish(k, s, o).await.unwrap();
    assert_eq!(closed.report.requests, 10);
    assert!(closed.report.drift.is_empty(), "no profile, no drift");
}

/// Regression (E21 against the real broker): a window restored from a checkpoint closed on
/// idleness while the restarted consumer waited for its partitions, and its remaining events
/// became late. Time held by `hold_idle` does not count as idle.
#[test]
fn held_idle_time_does_not_close_windows() {
    let mut s = settings();
    s.idle_close_after = Duration::from_secs(3);
    let mut w = Windows::new(s, HashMap::new());
    w.absorb("m", &batch(&times(0, 10, 10), |i| i as f64, |_| "a"))
        .unwrap();
    let t = Instant::now();
    w.hold_idle(t + Duration::from_secs(10));
    assert!(w.due(t + Duration::from_secs(12)).is_empty());
    assert_eq!(w.due(t + Duration::from_secs(13)).len(), 1);
}

#[tokio::test]
async fn e17_window_without_latencies_has_no_quantile() {
    let mut w = windows();
    let mut b = batch(&times(0, 20, 10), |i| i as f64, |_| "a");
    let mut cols = b.columns().to_vec();
    cols[7] = Arc::new(Float64Array::from(vec![None::<f64>; 20]));
    b = RecordBatch::try_new(b.schema(), cols).unwrap();
    w.absorb("m", &b).unwrap();
    w.absorb("m", &batch(&[10 * MINUTE], |_| 1.0, |_| "a"))
        .unwrap();
    let (k, s, o) = w.due(Instant::now()).into_iter().next().unwrap();
    let r = w.finish(k, s, o).await.unwrap().report;
    assert_eq!(r.latency_seconds.count, 0);
    assert_eq!(
        (
            r.latency_seconds.p50,
            r.latency_seconds.p95,
            r.latency_seconds.p99
        ),
        (None, None, None)
    );
}

/// Regression: the window session planned a round-robin repartition into one partial aggregate
/// per core, so every window close serialised each feature's state to JSON and merged it back.
#[tokio::test]
async fn window_queries_aggregate_in_one_pass_without_repartitioning() {
    let profile = reference();
    let ctx = sql::session(Arc::new(ProfileSet::new(
        &profile,
        DriftSettings::default(),
    )));
    let b = batch(&times(0, 300, 1), |i| i as f64, |_| "a");
    let mem = datafusion::datasource::MemTable::try_new(b.schema(), vec![vec![b]]).unwrap();
    ctx.register_table("w", Arc::new(mem)).unwrap();
    let plan = ctx
        .sql("SELECT count(*) AS n, psi(x, 'x') AS dx, quantile(x, 0.5) AS q FROM w")
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let text = datafusion::physical_plan::displayable(plan.as_ref())
        .indent(false)
        .to_string();
    assert!(text.contains("AggregateExec: mode=Single"), "{text}");
    assert!(!text.contains("RepartitionExec"), "{text}");
}

/// A window query planned once gives, over other batches, exactly what planning it again over
/// them gives: counts, quantiles and the drift report of each window's own rows, none of the
/// batches it was planned over.
#[tokio::test]
async fn a_prepared_window_query_run_over_new_batches_equals_a_fresh_query() {
    let profile = reference();
    let settings = drift_settings();
    let ctx = sql::session(Arc::new(ProfileSet::new(&profile, settings)));
    let text = "SELECT count(*) AS n, count(x) AS xn, quantile(x, 0.5) AS q, \
                ks_pvalue(x, 'x') AS dx, chi2_pvalue(c, 'c') AS dc FROM t";
    let first = batch(&times(0, 300, 1), |i| i as f64, |_| "a");
    let second = [
        batch(&times(0, 120, 1), |i| (i % 40) as f64 + 5.0, |_| "b"),
        batch(
            &times(120, 80, 1),
            |i| (i % 7) as f64,
            |i| if i % 2 == 0 { "a" } else { "new" },
        ),
    ];
    let prepared = sql::PreparedQuery::new(&ctx, "t", vec![first.clone()], text)
        .await
        .unwrap();
    assert!(prepared.is_for(std::slice::from_ref(&first), text));
    assert!(prepared.is_for(&second, text));
    assert!(!prepared.is_for(std::slice::from_ref(&first), "SELECT 1"));
    for batches in [second.to_vec(), vec![first.clone()], second.to_vec()] {
        let rows = prepared.run(&ctx, batches.clone()).await.unwrap();
        let fresh = sql::query(&ctx, "t", batches.clone(), text).await.unwrap();
        let n: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(sql::scalar_f64(&rows, "n"), Some(n as f64));
        assert_eq!(sql::scalar_f64(&rows, "xn"), Some(n as f64));
        for column in ["n", "xn", "q"] {
            assert_eq!(
                sql::scalar_f64(&rows, column),
                sql::scalar_f64(&fresh, column),
                "{column}"
            );
        }
        for column in ["dx", "dc"] {
            let p_value = sql::scalar_f64(&rows, column);
            assert!(
                p_value.is_some_and(|p| (0.0..=1.0).contains(&p)),
                "{column}"
            );
            assert_eq!(p_value, sql::scalar_f64(&fresh, column), "{column}");
        }
    }
    // 200 rows of the second window: 120 + 80.
    let rows = prepared.run(&ctx, second.to_vec()).await.unwrap();
    assert_eq!(sql::scalar_f64(&rows, "n"), Some(200.0));
    // Batches of another schema are refused, not misread.
    let other = RecordBatch::try_from_iter(vec![(
        "x",
        Arc::new(Float64Array::from(vec![1.0])) as ArrayRef,
    )])
    .unwrap();
    assert!(!prepared.is_for(&[first.clone(), other.clone()], text));
    let err = prepared.run(&ctx, vec![other]).await.unwrap_err();
    assert!(err.to_string().contains("schema"), "{err}");
}

#[tokio::test]
async fn drift_udafs_merge_partial_states_to_the_single_pass_result() {
    let profile = reference();
    let settings = drift_settings();
    let set = Arc::new(ProfileSet::new(&profile, settings.clone()));
    let ctx = sql::session(set);
    // Two batches in two partitions: DataFusion aggregates each and merges the states.
    let b1 = batch(
        &times(0, 300, 1),
        |i| (i % 70) as f64 + 20.0,
        |i| if i % 3 == 0 { "a" } else { "b" },
    );
    let b2 = batch(&times(300, 200, 1), |i| (i % 40) as f64, |_| "new");
    let mem = datafusion::datasource::MemTable::try_new(
        b1.schema(),
        vec![vec![b1.clone()], vec![b2.clone()]],
    )
    .unwrap();
    ctx.register_table("events", Arc::new(mem)).unwrap();
    let rows = ctx
        .sql(
            "SELECT psi(x, 'x') AS px, kl(x, 'x') AS kx, jensen_shannon(x, 'x') AS jx, \
              hellinger(x, 'x') AS hx, ks(x, 'x') AS dx, ks_pvalue(x, 'x') AS kp, \
              wasserstein(x, 'x') AS wx, wasserstein_normed(x, 'x') AS nx, \
              l_infinity(x, 'x') AS lx, jensen_shannon(c, 'c') AS jc FROM events",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    // Single pass without DataFusion.
    let FeatureProfile::Numeric(_) = profile.feature("x").unwrap() else {
        panic!()
    };
    let model = FeatureModel::new(profile.feature("x").unwrap().clone());
    let mut state = model.new_state();
    model
        .add_array(&mut state, b1.column_by_name("x").unwrap())
        .unwrap();
    model
        .add_array(&mut state, b2.column_by_name("x").unwrap())
        .unwrap();
    // The window judges every feature of the profile together (the adaptive false-alarm rate
    // is shared by them).
    let window = settings.for_window_of(profile.features.len());
    let single = evaluate(model.profile(), &state, &window, None);
    // Every statistic of the merged partial states equals the single pass's, bit for bit.
    for (column, method) in [
        ("px", analyzer::Method::Psi),
        ("kx", analyzer::Method::Kl),
        ("jx", analyzer::Method::JensenShannon),
        ("hx", analyzer::Method::Hellinger),
        ("dx", analyzer::Method::Ks),
        ("wx", analyzer::Method::Wasserstein),
        ("nx", analyzer::Method::WassersteinNormed),
        ("lx", analyzer::Method::LInfinity),
    ] {
        let expected = single.method(method).unwrap().value;
        assert!(expected.is_some(), "{column}");
        assert_eq!(sql::scalar_f64(&rows, column), expected, "{column}");
    }
    assert_eq!(
        sql::scalar_f64(&rows, "px"),
        single.method(analyzer::Method::Psi).unwrap().value
    );
    assert_eq!(
        sql::scalar_f64(&rows, "kp"),
        single.method(analyzer::Method::Ks).unwrap().p_value
    );
    let cmodel = FeatureModel::new(profile.feature("c").unwrap().clone());
    let mut cstate = cmodel.new_state();
    cmodel
        .add_array(&mut cstate, b1.column_by_name("c").unwrap())
        .unwrap();
    cmodel
        .add_array(&mut cstate, b2.column_by_name("c").unwrap())
        .unwrap();
    let cdrift = evaluate(cmodel.profile(), &cstate, &settings, None);
    assert_eq!(
        sql::scalar_f64(&rows, "jc"),
        cdrift
            .method(analyzer::Method::JensenShannon)
            .unwrap()
            .value
    );
    assert_eq!(cdrift.new_categories[0].value, "new");
}

#[tokio::test]
async fn custom_sql_metric_runs_over_the_window() {
    let mut s = settings();
    s.custom_metrics = vec![analyzer::stream::CustomMetric {
        name: "share_b".into(),
        sql: "SELECT avg(CASE WHEN c = 'b' THEN 1.0 ELSE 0.0 END) FROM events WHERE x >= 0".into(),
    }];
    let mut w = Windows::new(s, HashMap::from([("m".to_string(), reference())]));
    w.absorb(
        "m",
        &batch(
            &times(0, 40, 10),
            |i| i as f64,
            |i| if i < 10 { "b" } else { "a" },
        ),
    )
    .unwrap();
    w.absorb("m", &batch(&[5 * MINUTE], |_| 1.0, |_| "a"))
        .unwrap();
    let (k, st, o) = w.due(Instant::now()).into_iter().next().unwrap();
    let r = w.finish(k, st, o).await.unwrap().report;
    assert_eq!(r.custom["share_b"], Some(0.25));
}

#[tokio::test]
async fn restart_from_checkpoint_gives_the_uninterrupted_reports() {
    let dir = tempfile::tempdir().unwrap();
    let parts: Vec<RecordBatch> = (0..6)
        .map(|p| {
            batch(
                &times(p * 25_000, 50, 400),
                |i| ((i * 7 + p as usize) % 100) as f64,
                |i| if i % 2 == 0 { "a" } else { "b" },
            )
        })
        .collect();
    let closing = batch(&[10 * MINUTE], |_| 1.0, |_| "a");

    async fn close_all(w: &mut Windows) -> Vec<analyzer::stream::WindowReport> {
        let mut out = Vec::new();
        for (k, s, o) in w.due(Instant::now()) {
            out.push(w.finish(k, s, o).await.unwrap().report);
        }
        out
    }

    // Uninterrupted.
    let mut plain = windows();
    let mut expected = Vec::new();
    for p in &parts {
        plain.absorb("m", p).unwrap();
        expected.extend(close_all(&mut plain).await);
    }
    plain.absorb("m", &closing).unwrap();
    expected.extend(close_all(&mut plain).await);

    // Interrupted: checkpoint after part 2 (windows may have closed before), crash after part 3.
    let mut first = windows();
    let mut ckpt = Checkpointer::new(dir.path()).unwrap();
    let mut reports = Vec::new();
    for p in &parts[..3] {
        first.absorb("m", p).unwrap();
        reports.extend(close_all(&mut first).await);
    }
    let mut resume_at = types::offsets::SourceOffsets::default();
    resume_at.partitions.insert(
        "predictions/0".into(),
        types::offsets::PartitionPosition {
            watermark: 3,
            absorbed_above: Vec::new(),
        },
    );
    ckpt.write(&mut first, resume_at, &reports).unwrap();
    first.absorb("m", &parts[3]).unwrap();
    drop(first); // killed: part 3 was absorbed but never checkpointed.

    let restored = Checkpointer::restore(dir.path()).unwrap().unwrap();
    assert_eq!(restored.offsets.partitions["predictions/0"].watermark, 3);
    let mut second = windows();
    second.restore(restored.clocks, restored.windows);
    let mut after = restored.history;
    for p in &parts[3..] {
        second.absorb("m", p).unwrap();
        after.extend(close_all(&mut second).await);
    }
    second.absorb("m", &closing).unwrap();
    after.extend(close_all(&mut second).await);
    let counts = |r: &[analyzer::stream::WindowReport]| {
        r.iter().map(|w| (w.start, w.requests)).collect::<Vec<_>>()
    };
    assert_eq!(counts(&after), counts(&expected));
    assert_eq!(after, expected);
}

/// Issue "One spine", item 7: the manifest's source offsets are typed. Garbled offsets were
/// restored with `unwrap_or_default()` (every partition silently resumed from the committed
/// offset); now restore fails naming the manifest, and `discard` sets the checkpoint aside.
#[test]
fn garbled_checkpoint_offsets_are_an_error_naming_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = windows();
    w.absorb("m", &batch(&times(0, 10, 10), |i| i as f64, |_| "a"))
        .unwrap();
    let mut ckpt = Checkpointer::new(dir.path()).unwrap();
    let mut offsets = types::offsets::SourceOffsets::default();
    offsets.partitions.insert(
        "predictions/0".into(),
        types::offsets::PartitionPosition {
            watermark: 10,
            absorbed_above: vec![12],
        },
    );
    ckpt.write(&mut w, offsets.clone(), &[]).unwrap();
    let restored = Checkpointer::restore(dir.path()).unwrap().unwrap();
    assert_eq!(restored.offsets, offsets);
    assert_eq!(restored.windows.len(), 1);
    assert_eq!(restored.windows[0].2.rows, 10);

    let manifest = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    // Garbled with a valid checksum, as a manifest written by a buggy build would be.
    let inner = text
        .split_once("\"manifest\":")
        .unwrap()
        .1
        .strip_suffix('}')
        .unwrap()
        .replace("\"predictions/0\"", "\"predictions-0\"");
    let garbled = format!(
        "{{\"crc32\":{},\"manifest\":{inner}}}",
        crc32fast::hash(inner.as_bytes())
    );
    assert_ne!(garbled, text);
    std::fs::write(&manifest, garbled).unwrap();
    let err = Checkpointer::restore(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&manifest.display().to_string()), "{err}");
    assert!(
        err.contains("`predictions-0` is not `topic/partition`"),
        "{err}"
    );

    let aside = Checkpointer::discard(dir.path()).unwrap().unwrap();
    assert!(
        aside
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("manifest.json.discarded-")
    );
    assert!(aside.exists());
    assert!(Checkpointer::restore(dir.path()).unwrap().is_none());
    assert!(Checkpointer::discard(dir.path()).unwrap().is_none());
}

/// Issue 19, finding 2: one event from a bad clock (year 3000) moved the watermark so that every
/// later event was late, and one at i64::MAX wrapped a window end and opened a window at 1970.
/// Events outside `[now - max_event_age, now + max_future_skew]` are now refused and counted, and
/// never move the watermark.
#[tokio::test]
async fn events_from_a_bad_clock_are_refused_and_never_move_the_watermark() {
    let now = 1_800_000_000_000_i64; // 2027-01-15
    let year_3000 = 32_503_680_000_000_i64;
    let mut w = windows();
    let bad = w
        .absorb_at(
            "m",
            &batch(&[year_3000, i64::MAX], |i| i as f64, |_| "a"),
            now,
        )
        .unwrap();
    assert_eq!(
        (bad.accepted, bad.future, bad.too_old, bad.late),
        (0, 2, 0, 0)
    );
    assert_eq!(w.open_count(), 0, "no window opened for a refused event");
    let good = w
        .absorb_at(
            "m",
            &batch(&times(now, 3000, 10), |i| i as f64, |_| "a"),
            now,
        )
        .unwrap();
    assert_eq!((good.accepted, good.future, good.late), (3000, 0, 0));
    assert_eq!(w.clocks()["m"].max_event_ms, Some(now + 29_990));
    assert_eq!(w.late_events()["m"], 0);

    // One hour ahead is the default limit: at it accepted, a millisecond past it refused.
    let hour = 3_600_000;
    let edge = w
        .absorb_at(
            "m",
            &batch(&[now + hour, now + hour + 1], |i| i as f64, |_| "a"),
            now,
        )
        .unwrap();
    assert_eq!((edge.accepted, edge.future), (1, 1));

    // The ends of time: a window starting below i64::MIN or ending above i64::MAX is refused
    // even when the limits allow it (review found an overflow at i64::MIN).
    let mut unlimited = Windows::new(
        WindowSettings {
            max_future_skew: Duration::MAX,
            ..settings()
        },
        HashMap::from([("m".to_string(), reference())]),
    );
    let ends = unlimited
        .absorb_at(
            "m",
            &batch(&[i64::MIN, i64::MAX, now], |i| i as f64, |_| "a"),
            now,
        )
        .unwrap();
    assert_eq!((ends.accepted, ends.too_old, ends.future), (1, 1, 1));

    // A maximum age, when set, refuses events older than it.
    let mut aged = Windows::new(
        WindowSettings {
            max_event_age: Some(Duration::from_secs(7 * 24 * 3600)),
            ..settings()
        },
        HashMap::from([("m".to_string(), reference())]),
    );
    let week = 7 * 24 * hour;
    let a = aged
        .absorb_at(
            "m",
            &batch(&[0, now - week - 1, now - week, now], |i| i as f64, |_| "a"),
            now,
        )
        .unwrap();
    assert_eq!((a.accepted, a.too_old, a.future), (2, 2, 0));
}

/// Issue 19, finding 7: 256 flipped bytes in a window's Arrow file were restored silently, and a
/// manifest whose `rows` was multiplied by 1000 reported 1000 times the stored events. Both are
/// now errors naming the file.
#[test]
fn damaged_checkpoint_files_and_edited_manifests_are_errors_naming_the_file() {
    let write = || {
        let dir = tempfile::tempdir().unwrap();
        let mut w = windows();
        // One checkpointer appends to the window's file: the checksum covers every append.
        let mut ckpt = Checkpointer::new(dir.path()).unwrap();
        for part in 0..3 {
            w.absorb(
                "m",
                &batch(&times(part * 1000, 100, 1), |i| i as f64, |_| "a"),
            )
            .unwrap();
            ckpt.write(&mut w, types::offsets::SourceOffsets::default(), &[])
                .unwrap();
        }
        let restored = Checkpointer::restore(dir.path()).unwrap().unwrap();
        assert_eq!(restored.windows.len(), 1);
        assert_eq!(restored.windows[0].2.rows, 300);
        assert_eq!(restored.windows[0].2.batches.len(), 3);
        dir
    };

    let window_file = |dir: &tempfile::TempDir| {
        std::fs::read_dir(dir.path().join("windows"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    };

    // Flipped bytes inside a window file.
    let dir = write();
    let file = window_file(&dir);
    let mut data = std::fs::read(&file).unwrap();
    let middle = data.len() / 2;
    for b in &mut data[middle..middle + 16] {
        *b ^= 0xff;
    }
    std::fs::write(&file, &data).unwrap();
    let err = Checkpointer::restore(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("the file is damaged"), "{err}");

    // A truncated window file.
    let dir = write();
    let file = window_file(&dir);
    let data = std::fs::read(&file).unwrap();
    std::fs::write(&file, &data[..data.len() - 10]).unwrap();
    let err = Checkpointer::restore(dir.path()).unwrap_err().to_string();
    assert!(err.contains("the manifest counts"), "{err}");

    // An edited manifest: `rows` multiplied by 1000.
    let dir = write();
    let manifest = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let edited = text.replace("\"rows\":300", "\"rows\":300000");
    assert_ne!(edited, text);
    std::fs::write(&manifest, &edited).unwrap();
    let err = Checkpointer::restore(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&manifest.display().to_string()), "{err}");
    assert!(
        err.contains("the manifest is damaged or was edited"),
        "{err}"
    );

    // The same edit without the checksum envelope.
    let inner = edited
        .split_once("\"manifest\":")
        .unwrap()
        .1
        .strip_suffix('}')
        .unwrap()
        .to_string();
    std::fs::write(&manifest, inner).unwrap();
    let err = Checkpointer::restore(dir.path()).unwrap_err().to_string();
    assert!(err.contains("without its checksum envelope"), "{err}");
}

/// Issue 19, item 2: the watermark follows the slowest active source, so one producer ahead of
/// the others (a clock 50 minutes fast, within `max_future_skew`) cannot make their events late;
/// a source more than `max_source_lag` behind, or silent for `idle_close_after`, stops holding
/// windows open. Before, one source's newest event time moved the model's watermark for all.
#[tokio::test]
async fn the_watermark_follows_the_slowest_active_source_within_the_lag_bound() {
    let now_ms = 100 * MINUTE;
    let mut w = Windows::new(
        WindowSettings {
            idle_close_after: Duration::from_millis(300),
            max_source_lag: Duration::from_secs(3600),
            ..settings()
        },
        HashMap::from([("m".to_string(), reference())]),
    );
    // Source a runs 50 minutes ahead; source b is on time at 10 minutes in.
    w.absorb_from(
        "m",
        "kafka:p/0",
        &batch(&[now_ms + 50 * MINUTE], |_| 1.0, |_| "a"),
        now_ms,
    )
    .unwrap();
    let b = w
        .absorb_from(
            "m",
            "kafka:p/1",
            &batch(&times(now_ms, 10, 1000), |i| i as f64, |_| "a"),
            now_ms,
        )
        .unwrap();
    assert_eq!((b.accepted, b.late), (10, 0));
    // b's window stays open: the watermark is b's newest time, not a's.
    assert!(
        w.due(Instant::now())
            .iter()
            .all(|(_, start, _)| *start != now_ms)
    );
    let more = w
        .absorb_from(
            "m",
            "kafka:p/1",
            &batch(&[now_ms + 30_000], |_| 1.0, |_| "b"),
            now_ms,
        )
        .unwrap();
    assert_eq!((more.accepted, more.late), (1, 0), "b is not late");

    // The same events through one source: a's time moves the watermark, b's window closes at
    // once with its first ten events, and b's next event is late.
    let mut single = windows();
    single
        .absorb_at(
            "m",
            &batch(&[now_ms + 50 * MINUTE], |_| 1.0, |_| "a"),
            now_ms,
        )
        .unwrap();
    single
        .absorb_at(
            "m",
            &batch(&times(now_ms, 10, 1000), |i| i as f64, |_| "a"),
            now_ms,
        )
        .unwrap();
    let closed: Vec<i64> = single
        .due(Instant::now())
        .into_iter()
        .map(|(_, s, _)| s)
        .collect();
    assert!(closed.contains(&now_ms), "{closed:?}");
    let late = single
        .absorb_at("m", &batch(&[now_ms + 30_000], |_| 1.0, |_| "b"), now_ms)
        .unwrap();
    assert_eq!(
        late.late, 1,
        "one shared watermark: the slower producer is blinded"
    );

    // b goes silent: after idle_close_after only a (still delivering) holds the watermark, and
    // b's window closes.
    std::thread::sleep(Duration::from_millis(400));
    w.absorb_from(
        "m",
        "kafka:p/0",
        &batch(&[now_ms + 50 * MINUTE + 1], |_| 1.0, |_| "a"),
        now_ms,
    )
    .unwrap();
    let closed: Vec<i64> = w
        .due(Instant::now())
        .into_iter()
        .map(|(_, s, _)| s)
        .collect();
    assert!(closed.contains(&now_ms), "{closed:?}");

    // A source beyond max_source_lag does not hold windows open either.
    let mut lagging = Windows::new(
        WindowSettings {
            max_source_lag: Duration::from_secs(600),
            ..settings()
        },
        HashMap::from([("m".to_string(), reference())]),
    );
    lagging
        .absorb_from("m", "http", &batch(&[now_ms], |_| 1.0, |_| "a"), now_ms)
        .unwrap();
    lagging
        .absorb_from(
            "m",
            "kafka:p/0",
            &batch(&[now_ms + 20 * MINUTE], |_| 1.0, |_| "a"),
            now_ms,
        )
        .unwrap();
    let closed: Vec<i64> = lagging
        .due(Instant::now())
        .into_iter()
        .map(|(_, s, _)| s)
        .collect();
    assert!(
        closed.contains(&now_ms),
        "the 20-minute laggard is ignored: {closed:?}"
    );
}
