//! ADWIN (adaptive windowing), as River's `river.drift.ADWIN` (River 0.26.1: the Python wrapper
//! `river/drift/adwin.py` over the Rust core `rust_src/adwin.rs` of the sdist; earlier versions
//! had this core in Cython, `river/drift/adwin_c.pyx`).
//!
//! Bifet, A. and Gavaldà, R. (2007), "Learning from time-changing data with adaptive windowing",
//! *Proc. SIAM International Conference on Data Mining*, 443-448 (ADWIN2: the window kept as an
//! exponential histogram of bucket summaries); the variance of merged buckets is Babcock, Datar,
//! Motwani and O'Callaghan (2003), "Maintaining variance and k-medians over data stream windows".
//! The floating-point operations are River's, in River's order, so that detections match River's
//! index for index (`analyzer/tests/change_detectors.rs`).

use serde::{Deserialize, Serialize};

use super::{ChangeDetector, ChangeSettingsError};

/// Settings of [`Adwin`]; the defaults are River 0.26.1's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdwinSettings {
    /// Confidence of the cut test, in `(0, 1)` (River default 0.002): smaller detects less often.
    pub delta: f64,
    /// The window is checked for a cut every `clock` values (River default 32): on a series of
    /// windows, a detection can wait up to `clock - 1` windows.
    pub clock: u64,
    /// Buckets of each size kept before two are merged into one of the next size (River
    /// default 5): more is finer cut points and more memory.
    pub max_buckets: usize,
    /// Neither side of a cut may hold fewer values (River default 5).
    pub min_window_length: u64,
    /// No check before the window holds more than this many values (River default 10).
    pub grace_period: u64,
}

impl Default for AdwinSettings {
    fn default() -> Self {
        Self {
            delta: 0.002,
            clock: 32,
            max_buckets: 5,
            min_window_length: 5,
            grace_period: 10,
        }
    }
}

impl AdwinSettings {
    /// Checks that every value is usable: `delta` in `(0, 1)`, `clock >= 1`, `max_buckets >= 1`
    /// (River panics on 0).
    pub fn validate(&self) -> Result<(), ChangeSettingsError> {
        let bad = |key, message: &str| Err(ChangeSettingsError::new("adwin", key, message));
        if !(self.delta > 0.0 && self.delta < 1.0) {
            return bad("delta", "must be in (0, 1)");
        }
        if self.clock == 0 {
            return bad("clock", "must be at least 1");
        }
        if self.max_buckets == 0 {
            return bad("max_buckets", "must be at least 1");
        }
        Ok(())
    }
}

/// One bucket: the sum of its `2^level` values and the sum of their squared deviations from their
/// mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Bucket {
    total: f64,
    variance: f64,
}

/// The ADWIN detector with its window.
///
/// The window is a list of levels; level `i` holds up to `max_buckets` buckets (transiently one
/// more) of `2^i` values each, oldest first, and older levels hold older values. Each value enters
/// level 0 as a bucket of one; a level that reaches `max_buckets + 1` buckets merges its two
/// oldest into one bucket of the next level (totals added, variances combined as Babcock et al.:
/// `v = v1 + v2 + n/2 (mu1 - mu2)^2`). The window's width `W`, total and variance
/// (`sum (x - mean)^2`, updated per value by `(W - 1) (x - mean_before)^2 / W`) are kept alongside.
///
/// Every `clock` values, once `W > grace_period`, every cut between buckets is tested, from the
/// oldest: `W0` (older, `n0` values) against `W1` (newer, `n1`), skipping cuts with `n0` or `n1`
/// below `min_window_length` and the cut after the newest value. A cut is significant when
/// (River's `_evaluate_cut`, Bifet and Gavaldà's bound with `m' = 1 / (1/(n0 - mwl + 1) +
/// 1/(n1 - mwl + 1))`)
///
/// ```text
/// |mean(W0) - mean(W1)| > sqrt(2 / m' * var(W) * d') + 2 / 3 * d' / m',
/// d' = ln(2 ln(W) / delta),   var(W) = variance / W
/// ```
///
/// and then the oldest bucket is dropped and the scan starts over, until no cut is significant;
/// the value reports a change when any cut was. After a change the next value starts a fresh,
/// empty window (River's wrapper resets at the start of the following `update`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Adwin {
    settings: AdwinSettings,
    drift_detected: bool,
    /// `levels[i]`: buckets of `2^i` values, oldest first.
    levels: Vec<Vec<Bucket>>,
    width: f64,
    total: f64,
    variance: f64,
    tick: u64,
}

/// `2^level` as a float (exact).
fn bucket_size(level: usize) -> f64 {
    let exponent = i32::try_from(level).unwrap_or(i32::MAX);
    2f64.powi(exponent)
}

impl Adwin {
    /// A fresh detector, or why the settings are invalid.
    pub fn new(settings: AdwinSettings) -> Result<Self, ChangeSettingsError> {
        settings.validate()?;
        Ok(Self {
            settings,
            drift_detected: false,
            levels: vec![Vec::new()],
            width: 0.0,
            total: 0.0,
            variance: 0.0,
            tick: 0,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &AdwinSettings {
        &self.settings
    }

    /// The number of values in the window (River's `width`).
    pub fn width(&self) -> u64 {
        self.width as u64
    }

    /// The sum of the values in the window (River's `total`).
    pub fn total(&self) -> f64 {
        self.total
    }

    /// The mean of the window, 0 when it is empty (River's `estimation`).
    pub fn estimation(&self) -> f64 {
        if self.width == 0.0 {
            0.0
        } else {
            self.total / self.width
        }
    }

    /// The sum of squared deviations from the window's mean (River's `variance`, which despite
    /// its name and docstring is not divided by the width).
    pub fn variance(&self) -> f64 {
        self.variance
    }

    fn insert(&mut self, value: f64) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(Bucket {
            total: value,
            variance: 0.0,
        });
        self.width += 1.0;
        let mut increment = 0.0;
        if self.width > 1.0 {
            let deviation = value - self.total / (self.width - 1.0);
            increment = (self.width - 1.0) * deviation * deviation / self.width;
        }
        self.variance += increment;
        self.total += value;
        self.merge_full_levels();
    }

    fn merge_full_levels(&mut self) {
        let full = self.settings.max_buckets.max(1) + 1;
        let mut level = 0;
        while level < self.levels.len() && self.levels[level].len() >= full {
            let (a, b) = (self.levels[level][0], self.levels[level][1]);
            let size = bucket_size(level);
            let mean_a = a.total / size;
            let mean_b = b.total / size;
            let merged = Bucket {
                total: a.total + b.total,
                variance: a.variance
                    + b.variance
                    + size * 0.5 * (mean_a - mean_b) * (mean_a - mean_b),
            };
            if level + 1 == self.levels.len() {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(merged);
            self.levels[level].drain(..2);
            level += 1;
        }
    }

    /// Drops the oldest bucket (River's `_delete_element`).
    fn drop_oldest(&mut self) {
        // River leaves an emptied level below the top in place; such levels hold nothing, so
        // skipping them changes no result (River would panic on them instead).
        while self.levels.len() > 1 && self.levels.last().is_some_and(Vec::is_empty) {
            self.levels.pop();
        }
        let top = self.levels.len().saturating_sub(1);
        let Some(oldest) = self.levels.get(top).and_then(|l| l.first()).copied() else {
            return;
        };
        let size = bucket_size(top);
        let mean = oldest.total / size;
        self.width -= size;
        self.total -= oldest.total;
        let window_mean = self.total / self.width;
        self.variance -= oldest.variance
            + size * self.width * (mean - window_mean) * (mean - window_mean) / (size + self.width);
        self.levels[top].remove(0);
        if self.levels[top].is_empty() && top > 0 {
            self.levels.pop();
        }
    }

    /// River's `_evaluate_cut`.
    fn significant(&self, n0: f64, n1: f64, mean_difference: f64) -> bool {
        let min_length = self.settings.min_window_length as f64;
        let d_prime = (2.0 * self.width.ln() / self.settings.delta).ln();
        let m_recip = 1.0 / (n0 - min_length + 1.0) + 1.0 / (n1 - min_length + 1.0);
        let epsilon = (2.0 * m_recip * (self.variance / self.width) * d_prime).sqrt()
            + 2.0 / 3.0 * d_prime * m_recip;
        mean_difference.abs() > epsilon
    }

    /// One scan of the cuts, oldest first; drops the oldest bucket and returns `true` at the first
    /// significant cut.
    fn cut_once(&mut self) -> bool {
        let min_length = self.settings.min_window_length as f64;
        let (mut n0, mut n1) = (0.0, self.width);
        let (mut u0, mut u1) = (0.0, self.total);
        for level in (0..self.levels.len()).rev() {
            let size = bucket_size(level);
            let count = self.levels[level].len();
            for k in 0..count {
                let t = self.levels[level][k].total;
                n0 += size;
                n1 -= size;
                u0 += t;
                u1 -= t;
                if level == 0 && k + 1 == count {
                    // The cut after the newest value: nothing on the right.
                    return false;
                }
                let mean_difference = (u0 / n0) - (u1 / n1);
                if n1 >= min_length
                    && n0 >= min_length
                    && self.significant(n0, n1, mean_difference)
                    && self.width > 0.0
                {
                    self.drop_oldest();
                    return true;
                }
            }
        }
        false
    }

    fn detect(&mut self) -> bool {
        self.tick += 1;
        let mut change = false;
        if self.tick.is_multiple_of(self.settings.clock.max(1))
            && self.width > self.settings.grace_period as f64
        {
            while self.cut_once() {
                change = true;
            }
        }
        change
    }
}

impl ChangeDetector for Adwin {
    fn update(&mut self, x: f64) -> bool {
        if !x.is_finite() {
            return false;
        }
        if self.drift_detected {
            self.reset();
        }
        self.insert(x);
        self.drift_detected = self.detect();
        self.drift_detected
    }

    fn drift_detected(&self) -> bool {
        self.drift_detected
    }

    fn reset(&mut self) {
        self.drift_detected = false;
        self.levels = vec![Vec::new()];
        self.width = 0.0;
        self.total = 0.0;
        self.variance = 0.0;
        self.tick = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_statistics_are_exact_for_small_inputs() {
        let mut a = Adwin::new(AdwinSettings::default()).unwrap();
        for x in [1.0, 2.0, 3.0, 4.0, 5.0] {
            assert!(!a.update(x));
        }
        assert_eq!(a.width(), 5);
        assert_eq!(a.total(), 15.0);
        assert!((a.variance() - 10.0).abs() < 1e-12);
        assert_eq!(a.estimation(), 3.0);
    }

    #[test]
    fn buckets_form_an_exponential_histogram() {
        let mut a = Adwin::new(AdwinSettings::default()).unwrap();
        for _ in 0..1000 {
            assert!(!a.update(1.0));
        }
        let held: f64 = a
            .levels
            .iter()
            .enumerate()
            .map(|(i, l)| l.len() as f64 * bucket_size(i))
            .sum();
        assert_eq!(held, 1000.0);
        assert!(a.levels.iter().all(|l| l.len() <= 5));
        assert_eq!(a.total(), 1000.0);
        assert_eq!(a.variance(), 0.0);
    }

    #[test]
    fn detects_a_large_shift_and_restarts() {
        let mut a = Adwin::new(AdwinSettings {
            delta: 0.01,
            ..Default::default()
        })
        .unwrap();
        let mut first = None;
        for i in 0..400 {
            let x = if i < 200 { 0.0 } else { 100.0 };
            if a.update(x) && first.is_none() {
                first = Some(i);
                // River's wrapper shows the shrunk window until the next value.
                assert!(a.width() < 200 + (i - 200) + 1);
                a.update(x);
                assert_eq!(a.width(), 1);
            }
        }
        let first = first.unwrap();
        assert!((200..232).contains(&first), "{first}");
    }

    #[test]
    fn invalid_settings() {
        for s in [
            AdwinSettings {
                clock: 0,
                ..Default::default()
            },
            AdwinSettings {
                max_buckets: 0,
                ..Default::default()
            },
            AdwinSettings {
                delta: 1.0,
                ..Default::default()
            },
        ] {
            assert!(Adwin::new(s).is_err());
        }
    }
}
