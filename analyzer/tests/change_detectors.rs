//! Issue 21, item 5: the change detectors fire at exactly the indices where River's do.
//!
//! `fixtures/change_river.json` (written by `bench/change_fixtures.py`) holds the input streams
//! (stationary noise, an abrupt shift, gradual drift, a variance change, a drift statistic in
//! [0, 1], a quality metric, two streams of 10,000 values, a large offset and River's docstring
//! example), the parameter sets, and the indices where River's `PageHinkley` and `ADWIN`, and a
//! NumPy tabular CUSUM (River has none), fired. Every (stream, detector, parameter set) is
//! replayed here, including through a serde round trip of the state half-way.

use analyzer::change::{
    AdwinSettings, ChangeDetector, CusumSettings, Detector, DetectorSettings, PageHinkleySettings,
};
use serde_json::Value;

struct Fixture {
    value: Value,
}

impl Fixture {
    fn load() -> Self {
        let text = include_str!("fixtures/change_river.json");
        Self {
            value: serde_json::from_str(text).unwrap(),
        }
    }

    fn stream(&self, name: &str) -> Vec<f64> {
        let s = self.value["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no stream {name}"));
        s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    }

    fn settings(&self, detector: &str, params: &str) -> DetectorSettings {
        let mut p = self.value["params"][detector][params].clone();
        assert!(p.is_object(), "no parameter set {detector}/{params}");
        p["detector"] = Value::from(detector);
        serde_json::from_value(p).unwrap()
    }

    fn runs(&self) -> &Vec<Value> {
        self.value["detections"].as_array().unwrap()
    }
}

fn detections(detector: &mut Detector, values: &[f64]) -> Vec<usize> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, &x)| detector.update(x).then_some(i))
        .collect()
}

fn replay(fixture: &Fixture, detector: &str) -> (usize, usize) {
    let (mut runs, mut fired) = (0, 0);
    let mut mismatches = Vec::new();
    for run in fixture.runs().iter().filter(|r| r["detector"] == detector) {
        let stream = run["stream"].as_str().unwrap();
        let params = run["params"].as_str().unwrap();
        let want: Vec<usize> = run["indices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let values = fixture.stream(stream);
        let settings = fixture.settings(detector, params);
        let got = detections(&mut settings.build().unwrap(), &values);
        if got != want {
            mismatches.push(format!(
                "{stream} / {detector} {params}: got {} detections {:?}..., oracle {} {:?}...",
                got.len(),
                &got[..got.len().min(8)],
                want.len(),
                &want[..want.len().min(8)]
            ));
        }
        // The same through a checkpoint: serialize the state half-way and carry on from the copy.
        let mut first = settings.build().unwrap();
        let half = values.len() / 2;
        let mut resumed = detections(&mut first, &values[..half]);
        let text = serde_json::to_string(&first).unwrap();
        let mut copy: Detector = serde_json::from_str(&text).unwrap();
        resumed.extend(
            detections(&mut copy, &values[half..])
                .into_iter()
                .map(|i| i + half),
        );
        assert_eq!(
            resumed, got,
            "{stream} / {detector} {params} after a checkpoint"
        );
        runs += 1;
        fired += usize::from(!want.is_empty());
    }
    assert!(
        mismatches.is_empty(),
        "{} of {runs} {detector} runs differ from the oracle:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    (runs, fired)
}

#[test]
fn fixture_is_from_the_pinned_river() {
    let f = Fixture::load();
    assert_eq!(f.value["river_version"], "0.26.1");
    assert_eq!(f.value["streams"].as_array().unwrap().len(), 10);
    assert!(
        f.value["river_errors"].as_array().unwrap().is_empty(),
        "River failed on some runs: {}",
        f.value["river_errors"]
    );
    let long = f.stream("long_unit_interval");
    assert!(long.len() >= 10_000);
}

#[test]
fn defaults_are_rivers() {
    let f = Fixture::load();
    assert_eq!(
        f.settings("page_hinkley", "default"),
        DetectorSettings::PageHinkley(PageHinkleySettings::default())
    );
    assert_eq!(
        f.settings("adwin", "default"),
        DetectorSettings::Adwin(AdwinSettings::default())
    );
    assert_eq!(
        f.settings("cusum", "default"),
        DetectorSettings::Cusum(CusumSettings::default())
    );
}

#[test]
fn page_hinkley_matches_river() {
    let (runs, fired) = replay(&Fixture::load(), "page_hinkley");
    assert_eq!(runs, 50);
    assert!(fired >= 40, "{fired}");
}

#[test]
fn adwin_matches_river() {
    let (runs, fired) = replay(&Fixture::load(), "adwin");
    assert_eq!(runs, 50);
    assert!(fired >= 40, "{fired}");
}

#[test]
fn cusum_matches_the_numpy_oracle() {
    let (runs, fired) = replay(&Fixture::load(), "cusum");
    assert_eq!(runs, 40);
    assert!(fired >= 30, "{fired}");
}

#[test]
fn river_docstring_example() {
    // River's docstrings: PageHinkley "Change detected at index 1006", ADWIN at 1023.
    let f = Fixture::load();
    let values = f.stream("river_docstring");
    let mut ph = f.settings("page_hinkley", "default").build().unwrap();
    assert_eq!(detections(&mut ph, &values), vec![1006]);
    let mut adwin = f.settings("adwin", "default").build().unwrap();
    assert_eq!(detections(&mut adwin, &values), vec![1023]);
}
