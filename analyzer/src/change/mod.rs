//! Change detectors on a series of window values (issue 21, item 5): two-sided Page-Hinkley,
//! tabular CUSUM and ADWIN over one stream of `f64`, for gradual drift that no single window's
//! verdict shows (each feature's drift value per window, each quality metric per window).
//!
//! Every detector has the same shape: `update(x) -> bool` says whether a change was detected at
//! this value, the state is plain data (`Clone`, serde) so that a checkpoint can carry it, and a
//! settings struct whose `Default` is the reference implementation's defaults.
//!
//! - [`PageHinkley`] is River's `river.drift.PageHinkley` (River 0.26.1,
//!   `river/drift/page_hinkley.py`; Page 1954), `mode = "both"` by default.
//! - [`Adwin`] is River's `river.drift.ADWIN` (River 0.26.1, `river/drift/adwin.py` over the Rust
//!   core `rust_src/adwin.rs`; Bifet and Gavaldà 2007): the same exponential-histogram buckets
//!   and the same floating-point operations in the same order, so that detections match River's
//!   index for index.
//! - [`Cusum`]: River 0.26.1 has no CUSUM detector (`river.drift` has ADWIN, KSWIN, PageHinkley,
//!   and `river.drift.binary` DDM, EDDM, FHDDM, HDDM_A and HDDM_W for 0/1 streams), so this is the
//!   standard two-sided tabular CUSUM of Page (1954) as given by Montgomery, *Introduction to
//!   Statistical Quality Control*, sec. 9.1, with the in-control mean and standard deviation
//!   estimated from the first values.
//!
//! `analyzer/tests/change_detectors.rs` replays the streams of
//! `analyzer/tests/fixtures/change_river.json` (written by `bench/change_fixtures.py` with River)
//! and asserts identical detection indices; the CUSUM is checked there against a NumPy oracle.
//!
//! The detectors are **off by default** ([`ChangeSettings::default`]) and not yet wired into the
//! streaming windows: `BENCHMARKS.md` ("Change detectors on the window series") has the harness's
//! detection delays and false alarms with the default parameters.
//!
//! Non-finite inputs (a window without a verdict yields NaN) are ignored by every detector: they
//! return `false` and leave the state untouched. River would carry a NaN into its sums; this is
//! the only place where the detectors knowingly differ from River.

mod adwin;
mod cusum;
mod page_hinkley;

use serde::{Deserialize, Serialize};

pub use adwin::{Adwin, AdwinSettings};
pub use cusum::{Cusum, CusumSettings};
pub use page_hinkley::{PageHinkley, PageHinkleyMode, PageHinkleySettings};

/// A settings value that a detector cannot run with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid {detector} setting `{key}`: {message}")]
pub struct ChangeSettingsError {
    /// The detector (`page_hinkley`, `cusum`, `adwin`).
    pub detector: &'static str,
    /// The setting's name.
    pub key: &'static str,
    /// What is wrong with its value.
    pub message: String,
}

impl ChangeSettingsError {
    fn new(detector: &'static str, key: &'static str, message: impl Into<String>) -> Self {
        Self {
            detector,
            key,
            message: message.into(),
        }
    }
}

/// A change detector over a stream of values.
pub trait ChangeDetector {
    /// Feeds one value; returns whether a change is detected at this value. A detection resets
    /// the detector (lazily, at the next value, as River does), so the next detection needs fresh
    /// evidence. Non-finite values are ignored and return `false`.
    fn update(&mut self, x: f64) -> bool;
    /// Whether the last value fed (the last finite one) raised a detection.
    fn drift_detected(&self) -> bool;
    /// Forgets everything seen so far (the settings stay).
    fn reset(&mut self);
}

/// Which detector, with its settings; serialized with a `detector` tag
/// (`{"detector": "adwin", "delta": 0.002, ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "detector", rename_all = "snake_case")]
pub enum DetectorSettings {
    /// [`PageHinkley`].
    PageHinkley(PageHinkleySettings),
    /// [`Cusum`].
    Cusum(CusumSettings),
    /// [`Adwin`].
    Adwin(AdwinSettings),
}

impl DetectorSettings {
    /// A fresh detector with these settings, or why the settings are invalid.
    pub fn build(&self) -> Result<Detector, ChangeSettingsError> {
        Ok(match self {
            Self::PageHinkley(s) => Detector::PageHinkley(PageHinkley::new(s.clone())?),
            Self::Cusum(s) => Detector::Cusum(Cusum::new(s.clone())?),
            Self::Adwin(s) => Detector::Adwin(Adwin::new(s.clone())?),
        })
    }
}

/// Any of the detectors, with its state (what a checkpoint stores per series).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// [`PageHinkley`].
    PageHinkley(PageHinkley),
    /// [`Cusum`].
    Cusum(Cusum),
    /// [`Adwin`].
    Adwin(Adwin),
}

impl ChangeDetector for Detector {
    fn update(&mut self, x: f64) -> bool {
        match self {
            Self::PageHinkley(d) => d.update(x),
            Self::Cusum(d) => d.update(x),
            Self::Adwin(d) => d.update(x),
        }
    }

    fn drift_detected(&self) -> bool {
        match self {
            Self::PageHinkley(d) => d.drift_detected(),
            Self::Cusum(d) => d.drift_detected(),
            Self::Adwin(d) => d.drift_detected(),
        }
    }

    fn reset(&mut self) {
        match self {
            Self::PageHinkley(d) => d.reset(),
            Self::Cusum(d) => d.reset(),
            Self::Adwin(d) => d.reset(),
        }
    }
}

/// Whether change detection runs on the window series, and with which detectors.
///
/// Off by default: the harness (`bench/change_eval.py`, numbers in `BENCHMARKS.md`) decides
/// whether they are worth turning on. Not read by any configuration yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChangeSettings {
    /// Run the detectors (default `false`).
    pub enabled: bool,
    /// The detectors to run on each series (default: the three, each with its defaults).
    pub detectors: Vec<DetectorSettings>,
}

impl Default for ChangeSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            detectors: vec![
                DetectorSettings::PageHinkley(PageHinkleySettings::default()),
                DetectorSettings::Cusum(CusumSettings::default()),
                DetectorSettings::Adwin(AdwinSettings::default()),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_with_all_three() {
        let s = ChangeSettings::default();
        assert!(!s.enabled);
        assert_eq!(s.detectors.len(), 3);
        for d in &s.detectors {
            d.build().unwrap();
        }
    }

    #[test]
    fn settings_round_trip_with_a_tag() {
        let s = DetectorSettings::Adwin(AdwinSettings::default());
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains("\"detector\":\"adwin\""), "{text}");
        let back: DetectorSettings = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        let partial: DetectorSettings =
            serde_json::from_str(r#"{"detector": "page_hinkley", "threshold": 5.0}"#).unwrap();
        match partial {
            DetectorSettings::PageHinkley(p) => {
                assert_eq!(p.threshold, 5.0);
                assert_eq!(p.min_instances, 30);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn checkpointed_detectors_continue_identically() {
        // A shift at 300: every detector fires at some point; a copy restored from JSON mid-way
        // must give the same answers as the original from then on.
        let stream: Vec<f64> = (0..900)
            .map(|i| {
                let noise = ((i * 7919) % 101) as f64 / 100.0 - 0.5;
                if i < 300 { noise } else { 3.0 + noise }
            })
            .collect();
        let settings = [
            DetectorSettings::PageHinkley(PageHinkleySettings::default()),
            DetectorSettings::Cusum(CusumSettings::default()),
            DetectorSettings::Adwin(AdwinSettings::default()),
        ];
        for s in settings {
            let mut a = s.build().unwrap();
            let mut fired = Vec::new();
            for (i, &x) in stream[..450].iter().enumerate() {
                if a.update(x) {
                    fired.push(i);
                }
            }
            let text = serde_json::to_string(&a).unwrap();
            let mut b: Detector = serde_json::from_str(&text).unwrap();
            for &x in &stream[450..] {
                assert_eq!(a.update(x), b.update(x), "{s:?}");
            }
            assert!(!fired.is_empty(), "{s:?} never fired");
            assert!(fired[0] >= 300, "{s:?} fired before the shift: {fired:?}");
        }
    }

    #[test]
    fn non_finite_values_are_ignored() {
        for s in ChangeSettings::default().detectors {
            let mut a = s.build().unwrap();
            let mut b = s.build().unwrap();
            for i in 0..200 {
                let x = (i % 5) as f64;
                assert!(!a.update(f64::NAN));
                assert!(!a.update(f64::INFINITY));
                assert_eq!(a.update(x), b.update(x));
            }
            assert_eq!(
                serde_json::to_string(&a).unwrap(),
                serde_json::to_string(&b).unwrap()
            );
        }
    }
}
