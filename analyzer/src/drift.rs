//! Drift of one feature in one window against its reference profile: every configured statistic,
//! its threshold and the verdict.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::columns::FeatureKind;
use crate::profile::FeatureProfile;
use crate::state::FeatureState;
use crate::stats::divergence::as_weights;
use crate::stats::ecdf::{EcdfDistances, ecdf_distances};
use crate::stats::ks::ks_from_statistic;
use crate::stats::wasserstein::normalise_wasserstein;
use crate::stats::{
    Direction, Method, chi2_homogeneity, hellinger, jensen_shannon, kl, l_infinity, psi,
};
use crate::thresholds::{AdaptiveSettings, adaptive_threshold};
pub use types::drift::{
    DataQuality, FeatureDrift, FeatureStatus, MethodResult, NewCategory, Threshold, ThresholdSource,
};

/// Default minimum number of values a window needs before it gets a verdict.
///
/// Bin-based distances have a noise floor: with `k` bins and `n` values drawn from the reference
/// itself, the Jensen-Shannon distance is about `sqrt((k - 1) / (8 n ln 2))`, which is 0.06 for
/// the default 12 bins at `n = 500` and crosses the default 0.1 threshold below `n = 200`.
pub const DEFAULT_MIN_SAMPLES: u64 = 500;

/// Which statistics to compute, which of them vote, and their thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSettings {
    /// Methods computed and reported for every feature (KS and Wasserstein only for numeric ones).
    /// Verdict methods are always computed as well.
    pub methods: Vec<Method>,
    /// Methods whose threshold crossing makes a numeric feature drift.
    pub numeric_verdict: Vec<Method>,
    /// Methods whose threshold crossing makes a categorical feature drift.
    pub categorical_verdict: Vec<Method>,
    /// Fixed thresholds that replace the defaults (p-value methods: significance level).
    pub thresholds: BTreeMap<Method, f64>,
    /// Windows with fewer values report "insufficient data" and never drift.
    pub min_samples: u64,
    /// Adaptive thresholds of the verdict methods without a configured one
    /// ([`crate::thresholds`]).
    #[serde(default)]
    pub adaptive: AdaptiveSettings,
    /// Features judged together in one window or chunk, over which the adaptive false-alarm rate
    /// is shared (set by the caller with [`DriftSettings::for_window_of`]; not configuration).
    #[serde(skip)]
    pub window_features: usize,
}

impl Default for DriftSettings {
    fn default() -> Self {
        Self {
            methods: Method::ALL.to_vec(),
            numeric_verdict: vec![Method::WassersteinNormed, Method::JensenShannon],
            categorical_verdict: vec![Method::JensenShannon],
            thresholds: BTreeMap::new(),
            min_samples: DEFAULT_MIN_SAMPLES,
            adaptive: AdaptiveSettings::default(),
            window_features: 1,
        }
    }
}

impl DriftSettings {
    /// These settings for windows that judge `features` features together (the adaptive
    /// false-alarm rate is shared by them).
    #[must_use]
    pub fn for_window_of(&self, features: usize) -> Self {
        Self {
            window_features: features.max(1),
            ..self.clone()
        }
    }

    /// The verdict methods for a feature kind.
    pub fn verdict_methods(&self, kind: FeatureKind) -> &[Method] {
        match kind {
            FeatureKind::Numeric => &self.numeric_verdict,
            FeatureKind::Categorical => &self.categorical_verdict,
        }
    }

    /// Methods computed for a feature kind: the configured ones plus its verdict methods, in
    /// [`Method::ALL`] order, without the numeric-only ones for categorical features.
    pub fn methods_for(&self, kind: FeatureKind) -> Vec<Method> {
        Method::ALL
            .into_iter()
            .filter(|m| self.methods.contains(m) || self.verdict_methods(kind).contains(m))
            .filter(|m| kind == FeatureKind::Numeric || !m.numeric_only())
            .collect()
    }

    /// Checks that every verdict method has a threshold: raw Wasserstein has no default (it is in
    /// the feature's unit), so as a verdict method it needs a configured one.
    ///
    /// # Errors
    /// A message naming the method and how to give it a threshold.
    pub fn check_verdict_thresholds(&self) -> Result<(), String> {
        self.adaptive
            .check()
            .map_err(|e| format!("adaptive: {e}"))?;
        for m in self.numeric_verdict.iter().chain(&self.categorical_verdict) {
            if self.fixed_threshold(*m).is_none() {
                return Err(format!(
                    "`{m}` is a verdict method but has no threshold: it is in each feature's own unit, so there is no default; set one (e.g. `{m}=VALUE`) or use `wasserstein_normed`"
                ));
            }
        }
        Ok(())
    }

    /// The fixed threshold of a method (configured, else [`Method::default_threshold`]; `None` for
    /// raw Wasserstein without a configured one).
    pub fn fixed_threshold(&self, method: Method) -> Option<f64> {
        self.thresholds
            .get(&method)
            .copied()
            .or_else(|| method.default_threshold())
    }
}

/// Computes every configured statistic for a feature's window `state` against `profile`.
///
/// `calibrated` holds calibrated thresholds for this feature (they replace fixed ones for distance
/// methods; p-value methods always use their significance level).
pub fn evaluate(
    profile: &FeatureProfile,
    state: &FeatureState,
    settings: &DriftSettings,
    calibrated: Option<&BTreeMap<Method, f64>>,
) -> FeatureDrift {
    let kind = profile.kind();
    let count = state.count();
    let missing = state.missing();
    let mut report = FeatureDrift {
        feature: profile.name().to_string(),
        kind,
        status: FeatureStatus::Ok,
        count,
        missing,
        drift: None,
        methods: Vec::new(),
        new_categories: new_categories(state),
        quality: Some(data_quality(profile, state, settings)),
    };
    if profile.count() == 0 {
        report.status = FeatureStatus::NoReference {
            reason: format!("all {} reference values are missing", profile.missing()),
        };
        return report;
    }
    if count == 0 {
        report.status = FeatureStatus::NoData {
            reason: if missing > 0 {
                format!("all {missing} values in the window are missing")
            } else {
                "no values in the window".to_string()
            },
        };
        return report;
    }
    if count < settings.min_samples {
        report.status = FeatureStatus::InsufficientData {
            min_samples: settings.min_samples,
        };
    }
    let judged = report.status == FeatureStatus::Ok;
    let verdict_methods = settings.verdict_methods(kind);
    let computed = Computed::new(profile, state);
    for method in settings.methods_for(kind) {
        let (value, p_value, dof) = computed.statistic(method);
        let verdict_method = verdict_methods.contains(&method);
        // Only verdict methods and methods with a configured threshold are judged; the others
        // report their value (issue 21: non-verdict flags against thresholds meant for other
        // statistics were noise).
        let judged_method = verdict_method || settings.thresholds.contains_key(&method);
        let direction = method.direction();
        let fixed = |value| Threshold {
            value,
            direction,
            source: ThresholdSource::Fixed,
        };
        let threshold = if !judged_method {
            None
        } else if let (Direction::Above, Some(&v)) =
            (direction, calibrated.and_then(|c| c.get(&method)))
        {
            Some(Threshold {
                value: v,
                direction,
                source: ThresholdSource::Calibrated,
            })
        } else if let Some(&v) = settings.thresholds.get(&method) {
            Some(fixed(v))
        } else {
            settings
                .adaptive
                .enabled
                .then(|| {
                    adaptive_threshold(
                        method,
                        profile,
                        count,
                        settings.window_features,
                        verdict_methods.len(),
                        &settings.adaptive,
                    )
                })
                .flatten()
                .map(|value| Threshold {
                    value,
                    direction,
                    source: ThresholdSource::Adaptive,
                })
                .or_else(|| method.default_threshold().map(fixed))
        };
        let compared = match direction {
            Direction::Below => p_value,
            Direction::Above => value,
        };
        let drift = match (judged, threshold) {
            (true, Some(t)) => compared.map(|v| match t.direction {
                Direction::Above => v > t.value,
                Direction::Below => v < t.value,
            }),
            _ => None,
        };
        report.methods.push(MethodResult {
            method,
            value,
            p_value,
            dof,
            threshold,
            verdict_method,
            drift,
        });
    }
    if judged {
        let votes: Vec<Option<bool>> = report
            .methods
            .iter()
            .filter(|m| m.verdict_method)
            .map(|m| m.drift)
            .collect();
        report.drift = if votes.is_empty() || votes.iter().all(Option::is_none) {
            None
        } else {
            Some(votes.contains(&Some(true)))
        };
    }
    report
}

/// The window's [`DataQuality`] against `profile`. The missing-surge verdict is a one-sided
/// pooled two-proportion z-test of the window's missing share against the reference's (e.g.
/// Agresti, *Categorical Data Analysis*, 3rd ed., 2013, sec. 3.1.3) at the adaptive false-alarm
/// rate shared by the window's features, and needs the share to rise by at least
/// `adaptive.min_missing_increase`.
fn data_quality(
    profile: &FeatureProfile,
    state: &FeatureState,
    settings: &DriftSettings,
) -> DataQuality {
    let (count, missing) = (state.count(), state.missing());
    let total = count + missing;
    let (ref_count, ref_missing) = (profile.count(), profile.missing());
    let ref_total = ref_count + ref_missing;
    let share = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    };
    let histogram = state.histogram();
    let outside = match state {
        // Underflow and overflow bins: below the reference minimum, above its maximum.
        FeatureState::Numeric(_) if histogram.len() >= 2 => {
            histogram[0] + histogram[histogram.len() - 1]
        }
        // The last bucket holds the categories the reference never had.
        FeatureState::Categorical(_) => histogram.last().copied().unwrap_or(0),
        FeatureState::Numeric(_) => 0,
    };
    let (rate, reference_rate) = (share(missing, total), share(ref_missing, ref_total));
    let missing_surge = (total >= settings.min_samples.max(1) && ref_total > 0).then(|| {
        let pooled = share(missing + ref_missing, total + ref_total);
        let se = (pooled * (1.0 - pooled) * (1.0 / total as f64 + 1.0 / ref_total as f64)).sqrt();
        let alpha = settings.adaptive.false_alarm_rate / settings.window_features.max(1) as f64;
        let z = statrs::distribution::ContinuousCDF::inverse_cdf(
            &statrs::distribution::Normal::standard(),
            1.0 - alpha.clamp(f64::MIN_POSITIVE, 0.5),
        );
        se > 0.0
            && (rate - reference_rate) / se > z
            && rate - reference_rate >= settings.adaptive.min_missing_increase
    });
    DataQuality {
        missing_rate: rate,
        reference_missing_rate: reference_rate,
        out_of_reference_rate: share(outside, count),
        missing_surge,
    }
}

fn new_categories(state: &FeatureState) -> Vec<NewCategory> {
    let FeatureState::Categorical(s) = state else {
        return Vec::new();
    };
    let mut v: Vec<NewCategory> = s
        .unseen
        .iter()
        .map(|(k, n)| NewCategory {
            value: k.clone(),
            count: *n,
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    v.truncate(20);
    v
}

/// Inputs shared by the statistics of one window, prepared once.
struct Computed<'a> {
    reference: Vec<u64>,
    current: &'a [u64],
    reference_sample: &'a [f64],
    /// The window's values sorted by `total_cmp`: borrowed when the state holds them sorted
    /// already ([`crate::state::NumericState::sort_values`]), else a sorted copy.
    current_sorted: Cow<'a, [f64]>,
    reference_std: f64,
    /// KS `D` and Wasserstein of the two samples, from one walk made when the first of KS,
    /// Wasserstein or normalised Wasserstein asks for it (`None` when a sample is empty).
    ecdf: OnceCell<Option<EcdfDistances>>,
}

impl<'a> Computed<'a> {
    fn new(profile: &'a FeatureProfile, state: &'a FeatureState) -> Self {
        let (reference_sample, current_sorted, reference_std) = match (profile, state) {
            (FeatureProfile::Numeric(p), FeatureState::Numeric(s)) => {
                let sorted = if s.values.is_sorted_by(|a, b| a.total_cmp(b).is_le()) {
                    Cow::Borrowed(s.values.as_slice())
                } else {
                    let mut v = s.values.clone();
                    crate::kernels::sort_total(&mut v);
                    Cow::Owned(v)
                };
                (p.sample.as_slice(), sorted, p.std.unwrap_or(0.0))
            }
            _ => (&[][..], Cow::Borrowed(&[][..]), 0.0),
        };
        Self {
            reference: profile.reference_histogram(),
            current: state.histogram(),
            reference_sample,
            current_sorted,
            reference_std,
            ecdf: OnceCell::new(),
        }
    }

    fn ecdf(&self) -> Option<EcdfDistances> {
        *self
            .ecdf
            .get_or_init(|| ecdf_distances(self.reference_sample, &self.current_sorted))
    }

    /// `(value, p_value, dof)` of one statistic.
    fn statistic(&self, method: Method) -> (Option<f64>, Option<f64>, Option<u64>) {
        let weights = || (as_weights(&self.reference), as_weights(self.current));
        match method {
            Method::Psi => (psi(&self.reference, self.current), None, None),
            Method::Kl => (kl(&self.reference, self.current), None, None),
            Method::JensenShannon => {
                let (p, q) = weights();
                (jensen_shannon(&p, &q), None, None)
            }
            Method::Hellinger => {
                let (p, q) = weights();
                (hellinger(&p, &q), None, None)
            }
            Method::LInfinity => {
                let (p, q) = weights();
                (l_infinity(&p, &q), None, None)
            }
            Method::Chi2 => match chi2_homogeneity(&self.reference, self.current) {
                Some(r) => (Some(r.statistic), Some(r.p_value), Some(r.dof)),
                None => (None, None, None),
            },
            Method::Ks => match self.ecdf() {
                Some(e) => {
                    let n_current = self.current_sorted.len();
                    let r =
                        ks_from_statistic(self.reference_sample.len(), n_current, e.ks_statistic);
                    (Some(r.statistic), Some(r.p_value), None)
                }
                None => (None, None, None),
            },
            Method::Wasserstein => (self.ecdf().map(|e| e.wasserstein), None, None),
            Method::WassersteinNormed => (
                self.ecdf()
                    .map(|e| normalise_wasserstein(e.wasserstein, self.reference_std)),
                None,
                None,
            ),
        }
    }
}
