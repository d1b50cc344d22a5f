//! Adaptive thresholds: the default verdict thresholds of the Jensen-Shannon distance and the
//! normalised Wasserstein distance, set from each statistic's distribution under "no drift" at the
//! window's own size, with the false alarms of a window's features controlled together and an
//! effect-size floor (issue 21, item 2).
//!
//! A fixed 0.1 is too lax for large windows (it missed a third of real drift) and too strict for
//! small ones (the noise floor of a binned distance grows as `1/sqrt(n)`). Both statistics compare
//! a window of `n` values with a reference of `N`; with no drift their sampling noise scales with
//! the effective size `n_eff = n N / (n + N)` (the two-sample form of the usual asymptotics), so:
//!
//! - **Jensen-Shannon** over `k` reference bins (or categories) with positive mass: `JSD` is an
//!   f-divergence with `f''(1) = 1/4`, so `8 n_eff JSD` (in nats) tends to `chi2(k - 1)`
//!   (Pardo, *Statistical Inference Based on Divergence Measures*, 2006, thm. 3.1). The
//!   threshold on the base-2 distance is `sqrt(chi2_{k-1}^{-1}(1 - a) / (8 n_eff ln 2))`.
//! - **Normalised Wasserstein** `W1 / std`: `sqrt(n_eff) W1` tends to `integral |B(F(x))| dx` for
//!   a Brownian bridge `B` (del Barrio, Giné and Matrán, *Ann. Probab.* 27, 1999), whose law
//!   depends on the feature's distribution. It is estimated once per feature by drawing
//!   [`BOOTSTRAP_DRAWS`] samples of [`BOOTSTRAP_SIZE`] values from the reference sample; its upper
//!   tail is taken from a log-normal fit of those draws (the law is right-skewed and positive).
//!   The threshold is that quantile over `sqrt(n_eff)`.
//!
//! `a` is the per-test false-alarm rate: the window's rate `alpha` (default 0.01) split evenly
//! (Bonferroni) over the window's features and each feature's verdict methods, so a window of
//! clean features raises a false alarm with probability at most about `alpha`. Each threshold is
//! at least its floor (default 0.02 for both), so that huge windows do not flag shifts too small
//! to matter.

use std::sync::{Arc, OnceLock};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

use crate::profile::{FeatureProfile, NumericProfile};
use crate::stats::Method;
use crate::stats::ecdf::ecdf_distances;
use crate::stats::wasserstein::normalise_wasserstein;

/// Samples drawn to estimate the normalised Wasserstein distance's null law.
pub const BOOTSTRAP_DRAWS: usize = 400;
/// Values per bootstrap sample (fewer when the reference sample is smaller).
pub const BOOTSTRAP_SIZE: usize = 1000;
/// Most reference values the bootstrap draws from (a stride subsample of the sorted sample).
pub const BOOTSTRAP_POPULATION: usize = 5000;

/// How adaptive thresholds are set (`[windows.drift.adaptive]`, `analyze --false-alarm-rate`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveSettings {
    /// Whether verdict methods without a configured threshold get adaptive thresholds (default
    /// `true`); `false` uses the fixed defaults (0.1 for distances).
    pub enabled: bool,
    /// Probability that a window of clean features is flagged, shared by its features and
    /// verdict methods (default 0.01).
    pub false_alarm_rate: f64,
    /// Smallest Jensen-Shannon distance that counts as drift, whatever the window size (default
    /// 0.02).
    pub min_jensen_shannon: f64,
    /// Smallest normalised Wasserstein distance (in reference standard deviations) that counts as
    /// drift (default 0.02).
    pub min_wasserstein_normed: f64,
    /// Smallest rise of a feature's missing share over the reference's that counts as a missing
    /// surge (default 0.02, two percentage points).
    pub min_missing_increase: f64,
}

impl Default for AdaptiveSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            false_alarm_rate: 0.01,
            min_jensen_shannon: 0.02,
            min_wasserstein_normed: 0.02,
            min_missing_increase: 0.02,
        }
    }
}

impl AdaptiveSettings {
    /// Checks the ranges.
    ///
    /// # Errors
    /// A message naming the key.
    pub fn check(&self) -> Result<(), String> {
        if !(self.false_alarm_rate > 0.0 && self.false_alarm_rate < 1.0) {
            return Err(format!(
                "`false_alarm_rate` = {} must be in (0, 1)",
                self.false_alarm_rate
            ));
        }
        for (key, v) in [
            ("min_jensen_shannon", self.min_jensen_shannon),
            ("min_wasserstein_normed", self.min_wasserstein_normed),
            ("min_missing_increase", self.min_missing_increase),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("`{key}` = {v} must be a non-negative number"));
            }
        }
        Ok(())
    }
}

/// The adaptive threshold of `method` for a window of `n` values of `profile`'s feature, in a
/// window of `features` features where each has `verdict_methods` verdict methods. `None` for a
/// method without an adaptive rule (only Jensen-Shannon and normalised Wasserstein have one), an
/// empty reference or an empty window.
pub fn adaptive_threshold(
    method: Method,
    profile: &FeatureProfile,
    n: u64,
    features: usize,
    verdict_methods: usize,
    settings: &AdaptiveSettings,
) -> Option<f64> {
    let tests = (features.max(1) * verdict_methods.max(1)) as f64;
    let per_test = (settings.false_alarm_rate / tests).clamp(f64::MIN_POSITIVE, 0.5);
    match method {
        Method::JensenShannon => {
            let reference = profile.reference_histogram();
            let k = reference.iter().filter(|&&c| c > 0).count();
            let n_eff = effective_size(n, reference.iter().sum())?;
            let null = if k < 2 {
                0.0
            } else {
                let chi2 = ChiSquared::new((k - 1) as f64).ok()?;
                (chi2.inverse_cdf(1.0 - per_test) / (8.0 * n_eff * std::f64::consts::LN_2)).sqrt()
            };
            Some(null.max(settings.min_jensen_shannon))
        }
        Method::WassersteinNormed => {
            let FeatureProfile::Numeric(p) = profile else {
                return None;
            };
            let n_eff = effective_size(n, p.sample.len() as u64)?;
            let law = wasserstein_null_law(p)?;
            let z = Normal::standard().inverse_cdf(1.0 - per_test);
            let null = (law.log_mean + z * law.log_sd).exp() / n_eff.sqrt();
            Some(null.max(settings.min_wasserstein_normed))
        }
        _ => None,
    }
}

/// `n N / (n + N)`; `None` when either is zero.
fn effective_size(n: u64, reference: u64) -> Option<f64> {
    if n == 0 || reference == 0 {
        return None;
    }
    let (n, r) = (n as f64, reference as f64);
    Some(n * r / (n + r))
}

/// The log-normal fit of `sqrt(m) W1 / std` under no drift: mean and standard deviation of its
/// logarithm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NullLaw {
    /// Mean of `ln(sqrt(m) W1 / std)`.
    pub log_mean: f64,
    /// Standard deviation of `ln(sqrt(m) W1 / std)`.
    pub log_sd: f64,
}

/// The null law of a numeric feature's normalised Wasserstein distance, estimated once per
/// profile (cached in it) from [`BOOTSTRAP_DRAWS`] samples of its reference sample, with a seed
/// taken from the feature name so that runs agree. `None` for a sample of fewer than two values
/// or no spread.
pub fn wasserstein_null_law(p: &NumericProfile) -> Option<NullLaw> {
    *p.null_law
        .get_or_init(|| estimate_wasserstein_null_law(&p.sample, p.std.unwrap_or(0.0), &p.name))
}

fn estimate_wasserstein_null_law(sample: &[f64], std: f64, name: &str) -> Option<NullLaw> {
    if sample.len() < 2 || std.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    // The law depends on the distribution's shape only: a stride subsample of the sorted
    // reference sample stands for it (and keeps each draw's walk short).
    let step = sample.len().div_ceil(BOOTSTRAP_POPULATION);
    let population: Vec<f64> = sample.iter().step_by(step.max(1)).copied().collect();
    let sample = population.as_slice();
    let m = BOOTSTRAP_SIZE.min(sample.len());
    let seed = types::hash::fnv1a_64(name.bytes());
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut draw = vec![0.0; m];
    let mut logs = Vec::with_capacity(BOOTSTRAP_DRAWS);
    for _ in 0..BOOTSTRAP_DRAWS {
        for v in &mut draw {
            *v = sample[rng.random_range(0..sample.len())];
        }
        draw.sort_unstable_by(f64::total_cmp);
        let w = ecdf_distances(sample, &draw)?.wasserstein;
        let t = normalise_wasserstein(w, std) * (m as f64).sqrt();
        if t > 0.0 {
            logs.push(t.ln());
        }
    }
    if logs.len() < 2 {
        return None;
    }
    let k = logs.len() as f64;
    let log_mean = logs.iter().sum::<f64>() / k;
    let log_sd = (logs.iter().map(|x| (x - log_mean).powi(2)).sum::<f64>() / (k - 1.0)).sqrt();
    Some(NullLaw { log_mean, log_sd })
}

/// A cache slot for a profile's [`NullLaw`]: not serialised, equal to any other, and shared by
/// the profile's clones (the window queries clone a feature's profile per accumulator, so a
/// per-clone cache would estimate the law again for every window).
#[derive(Debug, Clone, Default)]
pub struct NullLawCache(Arc<OnceLock<Option<NullLaw>>>);

impl NullLawCache {
    fn get_or_init(&self, f: impl FnOnce() -> Option<NullLaw>) -> &Option<NullLaw> {
        self.0.get_or_init(f)
    }
}

impl PartialEq for NullLawCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::ProfileOptions;

    fn normal_profile(n: usize, seed: u64) -> FeatureProfile {
        let mut rng = SmallRng::seed_from_u64(seed);
        let normal = Normal::standard();
        let values: Vec<f64> = (0..n)
            .map(|_| normal.inverse_cdf(rng.random_range(1e-12..1.0 - 1e-12)))
            .collect();
        FeatureProfile::Numeric(NumericProfile::fit(
            "x",
            &values,
            0,
            &ProfileOptions::default(),
        ))
    }

    /// The Jensen-Shannon threshold follows its closed form, and both thresholds shrink as
    /// `1/sqrt(n_eff)` down to their floors.
    #[test]
    fn thresholds_follow_the_null_asymptotics_and_stop_at_the_floor() {
        let profile = normal_profile(50_000, 1);
        let s = AdaptiveSettings::default();
        let js = |n| adaptive_threshold(Method::JensenShannon, &profile, n, 1, 1, &s).unwrap();
        // 10 deciles: chi2 with 9 dof at 1 - 0.01 is 21.666 (scipy.stats.chi2.ppf(0.99, 9)).
        let n_eff = 5000.0 * 50_000.0 / 55_000.0;
        let expected = (21.665_994 / (8.0 * n_eff * std::f64::consts::LN_2)).sqrt();
        assert!(
            (js(5000) - expected).abs() < 1e-6,
            "{} vs {expected}",
            js(5000)
        );
        assert!(js(500) > js(5000));
        assert_eq!(js(10_000_000), 0.02, "the floor");
        let w = |n| adaptive_threshold(Method::WassersteinNormed, &profile, n, 1, 1, &s).unwrap();
        let ratio = w(2000) / w(8000);
        let expected_ratio =
            (8000.0 * 50_000.0 / 58_000.0_f64 / (2000.0 * 50_000.0 / 52_000.0)).sqrt();
        assert!((ratio - expected_ratio).abs() < 1e-9);
        // Splitting the rate over 10 features raises the threshold.
        assert!(
            adaptive_threshold(Method::JensenShannon, &profile, 5000, 10, 1, &s).unwrap()
                > js(5000)
        );
        assert_eq!(
            adaptive_threshold(Method::Psi, &profile, 5000, 1, 1, &s),
            None
        );
    }

    /// Clean windows drawn from the reference's own distribution cross the normalised Wasserstein
    /// threshold at about its nominal rate: with a per-test rate of 0.05, between 2% and 9% of
    /// 400 windows of 2,000 values (a binomial 99.9% band around 5%).
    #[test]
    fn the_wasserstein_threshold_has_its_nominal_false_alarm_rate() {
        let profile = normal_profile(50_000, 2);
        let FeatureProfile::Numeric(p) = &profile else {
            unreachable!()
        };
        let s = AdaptiveSettings {
            false_alarm_rate: 0.05,
            min_wasserstein_normed: 0.0,
            ..AdaptiveSettings::default()
        };
        let threshold =
            adaptive_threshold(Method::WassersteinNormed, &profile, 2000, 1, 1, &s).unwrap();
        let mut rng = SmallRng::seed_from_u64(3);
        let normal = Normal::standard();
        let mut alarms = 0;
        for _ in 0..400 {
            let mut window: Vec<f64> = (0..2000)
                .map(|_| normal.inverse_cdf(rng.random_range(1e-12..1.0 - 1e-12)))
                .collect();
            window.sort_unstable_by(f64::total_cmp);
            let w = ecdf_distances(&p.sample, &window).unwrap().wasserstein;
            if normalise_wasserstein(w, p.std.unwrap()) > threshold {
                alarms += 1;
            }
        }
        assert!((8..=36).contains(&alarms), "{alarms} of 400");
    }
}
