//! The laws of drift statistics under no drift that a reference profile caches: the fits
//! themselves and the shared cache slot. How they are estimated is in [`crate::thresholds`].

use std::sync::{Arc, OnceLock};

/// A Satterthwaite fit of the Jensen-Shannon divergence (nats) under no drift at one size: `JSD
/// ~ scale * chi2(dof)`, matched to the simulated mean and variance (Satterthwaite, *Biometrics
/// Bull.* 2, 1946).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JsLaw {
    /// `scale` of `scale * chi2(dof)`, in nats.
    pub(crate) scale: f64,
    /// Degrees of freedom.
    pub(crate) dof: f64,
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

/// A cache slot for a profile's [`NullLaw`]: not serialised, equal to any other, and shared by
/// the profile's clones (the window queries clone a feature's profile per accumulator, so a
/// per-clone cache would estimate the law again for every window).
#[derive(Debug, Clone, Default)]
pub struct NullLawCache(Arc<NullLaws>);

#[derive(Debug, Default)]
struct NullLaws {
    wasserstein: OnceLock<Option<NullLaw>>,
    /// Jensen-Shannon laws by size bucket.
    js: std::sync::Mutex<std::collections::HashMap<i32, Option<JsLaw>>>,
}

impl NullLawCache {
    pub(crate) fn get_or_init(&self, f: impl FnOnce() -> Option<NullLaw>) -> &Option<NullLaw> {
        self.0.wasserstein.get_or_init(f)
    }

    pub(crate) fn js_law(&self, bucket: i32, f: impl FnOnce() -> Option<JsLaw>) -> Option<JsLaw> {
        let mut laws = self
            .0
            .js
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *laws.entry(bucket).or_insert_with(f)
    }
}

impl PartialEq for NullLawCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
