//! Two-sided tabular CUSUM with the in-control mean and standard deviation estimated from the first
//! values.
//!
//! River 0.26.1 has no CUSUM detector, so this follows the textbook: Page, E. S. (1954),
//! "Continuous inspection schemes", *Biometrika* 41, 100-115, in the tabular form of Montgomery,
//! *Introduction to Statistical Quality Control* (sec. 9.1, "The cumulative sum control chart"),
//! with the reference value `K = k sigma` and the decision interval `H = h sigma` in units of the
//! standard deviation (Montgomery's recommended `k = 1/2`, `h = 5`). Its oracle is a NumPy
//! implementation in `bench/change_fixtures.py`, not River.

use serde::{Deserialize, Serialize};

use super::{ChangeDetector, ChangeSettingsError};

/// Settings of [`Cusum`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CusumSettings {
    /// Values from which the in-control mean `mu0` and standard deviation `sigma` are estimated
    /// (sample mean and sample standard deviation, `n - 1` in the denominator), after every reset
    /// (default 30, River's `PageHinkley.min_instances`). Nothing is reported during the warm-up.
    pub warmup: u64,
    /// The reference value (allowance) in units of `sigma`: `K = k sigma`, half the shift to
    /// detect quickly (default 0.5, Montgomery).
    pub k: f64,
    /// The decision interval in units of `sigma`: `H = h sigma` (default 5, Montgomery; with
    /// `k = 1/2` an in-control average run length of about 465 values for the two sides together,
    /// Montgomery's table 9.3, on normal data with known parameters; an estimated `sigma` and
    /// skewed data shorten it).
    pub h: f64,
    /// A floor for the estimated `sigma` (default 0). With the default, a warm-up of identical
    /// values gives `sigma = 0`, and then any different value is a change.
    pub min_sigma: f64,
}

impl Default for CusumSettings {
    fn default() -> Self {
        Self {
            warmup: 30,
            k: 0.5,
            h: 5.0,
            min_sigma: 0.0,
        }
    }
}

impl CusumSettings {
    /// Checks that every value is usable: `warmup >= 2`, finite `k >= 0`, finite `h > 0`, finite
    /// `min_sigma >= 0`.
    pub fn validate(&self) -> Result<(), ChangeSettingsError> {
        let bad = |key, message: &str| Err(ChangeSettingsError::new("cusum", key, message));
        if self.warmup < 2 {
            return bad(
                "warmup",
                "must be at least 2 (a standard deviation needs two values)",
            );
        }
        if !(self.k.is_finite() && self.k >= 0.0) {
            return bad("k", "must be finite and >= 0");
        }
        if !(self.h.is_finite() && self.h > 0.0) {
            return bad("h", "must be finite and > 0");
        }
        if !(self.min_sigma.is_finite() && self.min_sigma >= 0.0) {
            return bad("min_sigma", "must be finite and >= 0");
        }
        Ok(())
    }
}

/// The two-sided tabular CUSUM with its state.
///
/// The first `warmup` values (after creation or a detection) estimate `mu0` (their mean) and
/// `sigma` (their sample standard deviation, at least `min_sigma`); they are not monitored. Each
/// later value `x` updates, with `C+ = C- = 0` at the start (Montgomery sec. 9.1.2),
///
/// ```text
/// C+ = max(0, x - (mu0 + K) + C+)
/// C- = max(0, (mu0 - K) - x + C-)        K = k sigma, H = h sigma
/// ```
///
/// and a change is reported when `C+ > H` (the mean went up) or `C- > H` (down). After a
/// detection the detector starts over at the next value, estimating `mu0` and `sigma` afresh from
/// the next `warmup` values (the process is assumed to have moved to a new level), as River's
/// detectors reset.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cusum {
    settings: CusumSettings,
    drift_detected: bool,
    /// Warm-up values seen (Welford's running mean and sum of squared deviations).
    n: u64,
    warm_mean: f64,
    warm_m2: f64,
    /// `(mu0, sigma)` once the warm-up is complete.
    target: Option<(f64, f64)>,
    c_plus: f64,
    c_minus: f64,
}

impl Cusum {
    /// A fresh detector, or why the settings are invalid.
    pub fn new(settings: CusumSettings) -> Result<Self, ChangeSettingsError> {
        settings.validate()?;
        Ok(Self {
            settings,
            drift_detected: false,
            n: 0,
            warm_mean: 0.0,
            warm_m2: 0.0,
            target: None,
            c_plus: 0.0,
            c_minus: 0.0,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &CusumSettings {
        &self.settings
    }

    /// The estimated in-control mean and standard deviation, once the warm-up is complete.
    pub fn target(&self) -> Option<(f64, f64)> {
        self.target
    }

    /// The upper and lower cumulative sums `(C+, C-)` after the last value, in the values' units.
    pub fn sums(&self) -> (f64, f64) {
        (self.c_plus, self.c_minus)
    }
}

impl ChangeDetector for Cusum {
    fn update(&mut self, x: f64) -> bool {
        if !x.is_finite() {
            return false;
        }
        if self.drift_detected {
            self.reset();
        }
        let Some((mu0, sigma)) = self.target else {
            self.n += 1;
            let d = x - self.warm_mean;
            self.warm_mean += d / self.n as f64;
            self.warm_m2 += d * (x - self.warm_mean);
            if self.n >= self.settings.warmup {
                let sd = (self.warm_m2 / (self.n - 1) as f64).sqrt();
                self.target = Some((self.warm_mean, sd.max(self.settings.min_sigma)));
            }
            return false;
        };
        let k = self.settings.k * sigma;
        let h = self.settings.h * sigma;
        self.c_plus = (x - (mu0 + k) + self.c_plus).max(0.0);
        self.c_minus = ((mu0 - k) - x + self.c_minus).max(0.0);
        self.drift_detected = self.c_plus > h || self.c_minus > h;
        self.drift_detected
    }

    fn drift_detected(&self) -> bool {
        self.drift_detected
    }

    fn reset(&mut self) {
        self.drift_detected = false;
        self.n = 0;
        self.warm_mean = 0.0;
        self.warm_m2 = 0.0;
        self.target = None;
        self.c_plus = 0.0;
        self.c_minus = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        // Warm-up 1, 3, 2, 2: mu0 = 2, sample sd = sqrt(2 / 3). With k = 0.5 and h = 1 (in sd),
        // K = 0.408248..., H = 0.816496...
        let settings = CusumSettings {
            warmup: 4,
            k: 0.5,
            h: 1.0,
            min_sigma: 0.0,
        };
        let mut c = Cusum::new(settings).unwrap();
        for x in [1.0, 3.0, 2.0, 2.0] {
            assert!(!c.update(x));
        }
        let (mu0, sigma) = c.target().unwrap();
        assert!((mu0 - 2.0).abs() < 1e-15);
        assert!((sigma - (2.0f64 / 3.0).sqrt()).abs() < 1e-15);
        let big_k = 0.5 * sigma;
        // 2.5: C+ = 0.5 - K = 0.0917...; C- = 0.
        assert!(!c.update(2.5));
        assert!((c.sums().0 - (0.5 - big_k)).abs() < 1e-12);
        assert_eq!(c.sums().1, 0.0);
        // 2.6: C+ = 0.0917 + 0.6 - K = 0.2835 < H.
        assert!(!c.update(2.6));
        assert!((c.sums().0 - (1.1 - 2.0 * big_k)).abs() < 1e-12);
        // 2.9: C+ = 0.2835 + 0.9 - K = 0.775 < H = 0.8165.
        assert!(!c.update(2.9));
        // 2.5: C+ = 0.775 + 0.5 - K = 0.867 > H.
        assert!(c.update(2.5));
        // Then a new warm-up.
        assert!(!c.update(100.0));
        assert_eq!(c.target(), None);
        assert_eq!(c.sums(), (0.0, 0.0));
    }

    #[test]
    fn detects_a_fall() {
        let mut c = Cusum::new(CusumSettings::default()).unwrap();
        let stream = (0..200).map(|i| {
            let noise = ((i * 37) % 11) as f64 / 10.0;
            if i < 100 { 10.0 + noise } else { 9.0 + noise }
        });
        let fired: Vec<usize> = stream
            .enumerate()
            .filter_map(|(i, x)| c.update(x).then_some(i))
            .collect();
        assert!(!fired.is_empty() && fired[0] >= 100, "{fired:?}");
    }

    #[test]
    fn constant_warmup_and_floor() {
        let mut c = Cusum::new(CusumSettings::default()).unwrap();
        for _ in 0..30 {
            c.update(0.5);
        }
        assert_eq!(c.target(), Some((0.5, 0.0)));
        assert!(!c.update(0.5));
        assert!(c.update(0.5000001));
        let mut floored = Cusum::new(CusumSettings {
            min_sigma: 0.01,
            ..Default::default()
        })
        .unwrap();
        for _ in 0..30 {
            floored.update(0.5);
        }
        assert!(!floored.update(0.5000001));
    }

    #[test]
    fn invalid_settings() {
        for s in [
            CusumSettings {
                warmup: 1,
                ..Default::default()
            },
            CusumSettings {
                h: 0.0,
                ..Default::default()
            },
            CusumSettings {
                k: -1.0,
                ..Default::default()
            },
        ] {
            assert!(Cusum::new(s).is_err());
        }
    }
}
