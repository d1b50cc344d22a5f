//! Page-Hinkley test, as River's `river.drift.PageHinkley` (River 0.26.1,
//! `river/drift/page_hinkley.py`).
//!
//! Page, E. S. (1954), "Continuous inspection schemes", *Biometrika* 41, 100-115; the fading
//! factor `alpha` and the two-sided form are River's (after Sebastião and Fernandes 2017).

use serde::{Deserialize, Serialize};

use super::{ChangeDetector, ChangeSettingsError};

/// Which direction of change [`PageHinkley`] reports, River's `mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageHinkleyMode {
    /// Increases of the mean only (`mode="up"`).
    Up,
    /// Decreases of the mean only (`mode="down"`).
    Down,
    /// Both (`mode="both"`, the default): the two-sided test.
    #[default]
    Both,
}

/// Settings of [`PageHinkley`]; the defaults are River 0.26.1's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PageHinkleySettings {
    /// Values seen (since the last reset) before a change can be reported (River default 30).
    pub min_instances: u64,
    /// The magnitude of change tolerated, subtracted from (added to) every deviation
    /// (River default 0.005).
    pub delta: f64,
    /// The detection threshold `lambda` on the cumulative deviation (River default 50). In the
    /// units of the values: River's default suits values of order 1 to 10 with shifts of order 1,
    /// not distances of order 0.01.
    pub threshold: f64,
    /// Fading factor applied to the cumulative sums at each value (River default `1 - 0.0001`).
    pub alpha: f64,
    /// Which direction to report (River default `"both"`).
    pub mode: PageHinkleyMode,
}

impl Default for PageHinkleySettings {
    fn default() -> Self {
        Self {
            min_instances: 30,
            delta: 0.005,
            threshold: 50.0,
            alpha: 1.0 - 0.0001,
            mode: PageHinkleyMode::Both,
        }
    }
}

impl PageHinkleySettings {
    /// Checks that every value is usable: finite `delta` and `threshold`, `alpha` in `(0, 1]`.
    pub fn validate(&self) -> Result<(), ChangeSettingsError> {
        let bad = |key, message: &str| Err(ChangeSettingsError::new("page_hinkley", key, message));
        if !self.delta.is_finite() {
            return bad("delta", "must be finite");
        }
        if !self.threshold.is_finite() {
            return bad("threshold", "must be finite");
        }
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return bad("alpha", "must be in (0, 1]");
        }
        Ok(())
    }
}

/// The Page-Hinkley change detector with its state, River 0.26.1's `PageHinkley` step for step.
///
/// For each value `x` (River's `update`): the running mean `m` is updated first
/// (`n += 1; m += (1 / n) (x - m)`, River's `stats.Mean`), then with `d = x - m`
///
/// ```text
/// S+ = alpha S+ + d - delta      min+ = min(min+, S+)     (min+ starts at +inf)
/// S- = alpha S- + d + delta      max- = max(max-, S-)     (max- starts at -1, as in River)
/// ```
///
/// and once `n >= min_instances` a change is reported when `S+ - min+ > threshold` (an
/// increase, modes `up` and `both`) or `max- - S- > threshold` (a decrease, modes `down` and
/// `both`). After a detection the next value starts from a fresh state (River resets at the start
/// of the following `update`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageHinkley {
    settings: PageHinkleySettings,
    drift_detected: bool,
    n: u64,
    mean: f64,
    sum_increase: f64,
    sum_decrease: f64,
    /// River's `_min_increase`; `None` stands for its initial `+inf` (JSON has no infinity).
    min_increase: Option<f64>,
    max_decrease: f64,
}

impl PageHinkley {
    /// A fresh detector, or why the settings are invalid.
    pub fn new(settings: PageHinkleySettings) -> Result<Self, ChangeSettingsError> {
        settings.validate()?;
        Ok(Self {
            settings,
            drift_detected: false,
            n: 0,
            mean: 0.0,
            sum_increase: 0.0,
            sum_decrease: 0.0,
            min_increase: None,
            max_decrease: -1.0,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &PageHinkleySettings {
        &self.settings
    }

    /// Values seen since the last reset.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The running mean since the last reset.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// The two test statistics after the last value, `(S+ - min+, max- - S-)`: an increase and a
    /// decrease of the mean, each compared with `threshold`.
    pub fn statistics(&self) -> (f64, f64) {
        let increase = match self.min_increase {
            Some(min) => self.sum_increase - min,
            None => 0.0,
        };
        (increase, self.max_decrease - self.sum_decrease)
    }
}

impl ChangeDetector for PageHinkley {
    fn update(&mut self, x: f64) -> bool {
        if !x.is_finite() {
            return false;
        }
        if self.drift_detected {
            self.reset();
        }
        let s = &self.settings;
        self.n += 1;
        self.mean += (1.0 / self.n as f64) * (x - self.mean);
        let dev = x - self.mean;
        self.sum_increase = s.alpha * self.sum_increase + dev - s.delta;
        self.sum_decrease = s.alpha * self.sum_decrease + dev + s.delta;
        let min_increase = match self.min_increase {
            Some(min) if min <= self.sum_increase => min,
            _ => self.sum_increase,
        };
        self.min_increase = Some(min_increase);
        if self.sum_decrease > self.max_decrease {
            self.max_decrease = self.sum_decrease;
        }
        if self.n >= s.min_instances {
            let increase = self.sum_increase - min_increase > s.threshold;
            let decrease = self.max_decrease - self.sum_decrease > s.threshold;
            self.drift_detected = match s.mode {
                PageHinkleyMode::Up => increase,
                PageHinkleyMode::Down => decrease,
                PageHinkleyMode::Both => increase || decrease,
            };
        }
        self.drift_detected
    }

    fn drift_detected(&self) -> bool {
        self.drift_detected
    }

    fn reset(&mut self) {
        self.drift_detected = false;
        self.n = 0;
        self.mean = 0.0;
        self.sum_increase = 0.0;
        self.sum_decrease = 0.0;
        self.min_increase = None;
        self.max_decrease = -1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_first_steps() {
        let settings = PageHinkleySettings {
            min_instances: 2,
            delta: 0.5,
            threshold: 1.0,
            alpha: 1.0,
            mode: PageHinkleyMode::Both,
        };
        let mut ph = PageHinkley::new(settings).unwrap();
        // x = 0: m = 0, d = 0, S+ = -0.5 (min+ -0.5), S- = 0.5 (max- 0.5). n < 2.
        assert!(!ph.update(0.0));
        assert_eq!(ph.statistics(), (0.0, 0.0));
        // x = 4: m = 2, d = 2, S+ = 1.0, S- = 3.0 (max- 3.0): increase 1.5 > 1.
        assert!(ph.update(4.0));
        assert_eq!(ph.statistics(), (1.5, 0.0));
        // The next value starts afresh.
        assert!(!ph.update(10.0));
        assert_eq!(ph.count(), 1);
        assert_eq!(ph.mean(), 10.0);
    }

    #[test]
    fn one_sided_modes() {
        let up = PageHinkleySettings {
            min_instances: 5,
            threshold: 5.0,
            mode: PageHinkleyMode::Up,
            ..PageHinkleySettings::default()
        };
        let down = PageHinkleySettings {
            mode: PageHinkleyMode::Down,
            ..up.clone()
        };
        let falling: Vec<f64> = (0..100).map(|i| if i < 50 { 5.0 } else { 0.0 }).collect();
        let fires = |s: &PageHinkleySettings| {
            let mut ph = PageHinkley::new(s.clone()).unwrap();
            falling.iter().any(|&x| ph.update(x))
        };
        assert!(!fires(&up));
        assert!(fires(&down));
    }

    #[test]
    fn invalid_settings() {
        for s in [
            PageHinkleySettings {
                alpha: 0.0,
                ..Default::default()
            },
            PageHinkleySettings {
                threshold: f64::NAN,
                ..Default::default()
            },
        ] {
            assert!(PageHinkley::new(s).is_err());
        }
    }
}
