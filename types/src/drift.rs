//! Drift results: the statistics driftwatch computes ([`Method`]), how each is compared with its
//! threshold, and what one feature's drift in one window reports ([`FeatureDrift`]).
//!
//! The statistics themselves (and their sources: scipy functions, papers) live in the analyzer's
//! `stats` module; these are the plain values that cross crates (exporter, rule engine, status page,
//! controller).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::event::FeatureKind;

/// A drift statistic driftwatch computes per feature and window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Population Stability Index on smoothed bin shares.
    Psi,
    /// Kullback-Leibler divergence of current from reference, smoothed.
    Kl,
    /// Jensen-Shannon distance, base 2, raw shares.
    JensenShannon,
    /// Hellinger distance, raw shares.
    Hellinger,
    /// Two-sample Kolmogorov-Smirnov D and p-value (numeric features only).
    Ks,
    /// Wasserstein-1 distance in the feature's unit (numeric features only).
    Wasserstein,
    /// Wasserstein-1 distance over the reference standard deviation (numeric features only).
    WassersteinNormed,
    /// Chi-square homogeneity test: statistic, degrees of freedom, p-value.
    Chi2,
    /// Largest absolute difference between bin or category shares.
    LInfinity,
}

/// How a method's value is compared with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A distance: drift when the value is above the threshold.
    Above,
    /// A test: drift when the p-value is below the threshold (the significance level).
    Below,
}

impl Method {
    /// Every method, in report order.
    pub const ALL: [Method; 9] = [
        Method::Psi,
        Method::Kl,
        Method::JensenShannon,
        Method::Hellinger,
        Method::Ks,
        Method::Wasserstein,
        Method::WassersteinNormed,
        Method::Chi2,
        Method::LInfinity,
    ];

    /// The method's name in configs, reports and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Method::Psi => "psi",
            Method::Kl => "kl",
            Method::JensenShannon => "jensen_shannon",
            Method::Hellinger => "hellinger",
            Method::Ks => "ks",
            Method::Wasserstein => "wasserstein",
            Method::WassersteinNormed => "wasserstein_normed",
            Method::Chi2 => "chi2",
            Method::LInfinity => "l_infinity",
        }
    }

    /// Whether the method needs the raw sample (KS, Wasserstein) and so applies to numeric
    /// features only.
    pub fn numeric_only(self) -> bool {
        matches!(
            self,
            Method::Ks | Method::Wasserstein | Method::WassersteinNormed
        )
    }

    /// Whether the verdict compares a p-value (`Below`) or a distance (`Above`).
    pub fn direction(self) -> Direction {
        match self {
            Method::Ks | Method::Chi2 => Direction::Below,
            _ => Direction::Above,
        }
    }

    /// The fixed default threshold: 0.05 for p-values, 0.1 for distances (DESIGN.md). PSI keeps
    /// 0.1 too, the conventional "moderate shift" level. Raw Wasserstein has none (`None`): it is
    /// in the feature's own unit, so 0.1 flagged every clean chunk of a feature measured in
    /// thousands (issue 21); use `wasserstein_normed` or configure a threshold.
    pub fn default_threshold(self) -> Option<f64> {
        match (self, self.direction()) {
            // In the feature's own unit: no value suits every feature.
            (Method::Wasserstein, _) => None,
            (_, Direction::Below) => Some(0.05),
            (_, Direction::Above) => Some(0.1),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for an unknown method name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMethod(pub String);

impl fmt::Display for UnknownMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown drift method `{}` (expected one of: psi, kl, jensen_shannon, hellinger, ks, wasserstein, wasserstein_normed, chi2, l_infinity)",
            self.0
        )
    }
}

impl std::error::Error for UnknownMethod {}

impl FromStr for Method {
    type Err = UnknownMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.trim().to_ascii_lowercase().replace('-', "_");
        let method = match key.as_str() {
            "psi" => Method::Psi,
            "kl" | "kl_divergence" => Method::Kl,
            "jensen_shannon" | "js" | "jensenshannon" => Method::JensenShannon,
            "hellinger" => Method::Hellinger,
            "ks" | "kolmogorov_smirnov" => Method::Ks,
            "wasserstein" => Method::Wasserstein,
            "wasserstein_normed" => Method::WassersteinNormed,
            "chi2" | "chi_square" | "chisquare" => Method::Chi2,
            "l_infinity" | "linf" => Method::LInfinity,
            _ => return Err(UnknownMethod(s.to_string())),
        };
        Ok(method)
    }
}

/// Where a threshold came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdSource {
    /// A fixed value (default or configured).
    Fixed,
    /// `mean + 3 std` over reference chunks of the same size.
    Calibrated,
    /// From the statistic's distribution under no drift at the window's size, with the window's
    /// false-alarm rate shared by its features, and an effect-size floor (analyzer `thresholds`).
    Adaptive,
}

/// A threshold as applied.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// The value compared with the statistic (`Above`) or the p-value (`Below`).
    pub value: f64,
    /// How the comparison goes.
    pub direction: Direction,
    /// Where the value came from.
    pub source: ThresholdSource,
}

/// Whether a window could be judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FeatureStatus {
    /// Statistics computed and judged.
    Ok,
    /// Fewer values than the minimum sample size: statistics are shown, no verdict (edge case E9).
    InsufficientData {
        /// The minimum that was not reached.
        min_samples: u64,
    },
    /// The window has no usable value for this feature (edge case E6).
    NoData {
        /// Why.
        reason: String,
    },
    /// The reference has no usable value for this feature (edge case E5).
    NoReference {
        /// Why.
        reason: String,
    },
}

/// One statistic of one feature in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    /// The statistic.
    pub method: Method,
    /// The distance, or the test statistic (KS `D`, chi-square). `None` when undefined.
    pub value: Option<f64>,
    /// The p-value of a test (KS, chi-square).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// Degrees of freedom (chi-square).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dof: Option<u64>,
    /// The threshold applied: for verdict methods, and for other methods only when one is
    /// configured for them (else they report a value and no drift flag). Raw Wasserstein, in the
    /// feature's unit, has no default.
    pub threshold: Option<Threshold>,
    /// Whether this method votes on the feature's verdict.
    pub verdict_method: bool,
    /// Whether the value crosses its threshold; `None` without a value or a verdict.
    pub drift: Option<bool>,
}

impl MethodResult {
    /// The number compared with the threshold: the p-value for tests, else the value.
    pub fn compared_value(&self) -> Option<f64> {
        match self.method.direction() {
            Direction::Below => self.p_value,
            Direction::Above => self.value,
        }
    }
}

/// A category seen in the window but not in the reference (edge case E8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCategory {
    /// The category.
    pub value: String,
    /// How often it appeared in the window.
    pub count: u64,
}

/// Drift of one feature in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    /// Feature name.
    pub feature: String,
    /// Numeric or categorical.
    pub kind: FeatureKind,
    /// Whether it could be judged.
    #[serde(flatten)]
    pub status: FeatureStatus,
    /// Usable values in the window.
    pub count: u64,
    /// Missing values in the window (null, NaN, infinities).
    pub missing: u64,
    /// The verdict: any verdict method crossed its threshold. `None` when not judged.
    pub drift: Option<bool>,
    /// Every computed statistic.
    pub methods: Vec<MethodResult>,
    /// Categories the reference never had, most frequent first (categorical features).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub new_categories: Vec<NewCategory>,
    /// Data quality against the reference: missing and out-of-reference shares, and whether the
    /// missing rate surged. `None` for results written before it existed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub quality: Option<DataQuality>,
}

/// Data quality of one feature in one window, against its reference (issue 21, item 3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DataQuality {
    /// Missing values over all values of the window, in `[0, 1]` (0 for an empty window).
    pub missing_rate: f64,
    /// The same share in the reference.
    pub reference_missing_rate: f64,
    /// Share of the window's usable values outside the reference: below its minimum or above its
    /// maximum (numeric), or in a category it never had (categorical).
    pub out_of_reference_rate: f64,
    /// Whether the missing rate rose above the reference's by more than its sampling noise (a
    /// one-sided two-proportion z-test at the window's shared false-alarm rate) and by at least
    /// the configured minimum. `None` when the window has fewer values than `min_samples`.
    pub missing_surge: Option<bool>,
}

impl FeatureDrift {
    /// The result of `method`, if computed.
    pub fn method(&self, method: Method) -> Option<&MethodResult> {
        self.methods.iter().find(|m| m.method == method)
    }
}
