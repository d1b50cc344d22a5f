//! Per-window, per-feature state that feeds the drift statistics.
//!
//! The state is a histogram over the reference bins (or categories plus an unseen bucket), the
//! missing counts, and for numeric features the window's values (for KS and Wasserstein). It is
//! mergeable: `merge(a, b)` equals the state of the concatenated input, so partial states from
//! several batches, partitions or threads combine into the window's state, and the drift computed
//! from a merged state equals the single-pass one (tested in `tests/merge.rs`).

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::array::{Array, ArrayRef};
use serde::{Deserialize, Serialize};

use crate::columns::{NotANumber, to_f64, to_text};
use crate::error::AnalyzerError;
use crate::kernels;
use crate::profile::FeatureProfile;

/// Most distinct unseen categories tracked by name per window; further ones are only counted.
pub const MAX_TRACKED_UNSEEN: usize = 100;

/// Window state of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureState {
    /// A numeric feature's state.
    Numeric(NumericState),
    /// A categorical feature's state.
    Categorical(CategoricalState),
}

/// Window state of a numeric feature.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NumericState {
    /// Count per reference bin (underflow, bins, overflow); empty when the reference has no data.
    pub counts: Vec<u64>,
    /// The window's finite values, in arrival order, or sorted once
    /// [`NumericState::sort_values`] ran.
    pub values: Vec<f64>,
    /// Null or NaN values.
    pub missing: u64,
    /// Infinite values (dropped, counted apart).
    pub infinite: u64,
}

impl NumericState {
    /// Sorts [`NumericState::values`] in place by `total_cmp` ([`crate::kernels::sort_total`]).
    /// Evaluating a sorted state walks its values where they are instead of sorting a copy; the
    /// statistics are the same either way. For a state that is evaluated once and dropped (a
    /// chunk of `driftwatch analyze`).
    pub fn sort_values(&mut self) {
        crate::kernels::sort_total(&mut self.values);
    }
}

/// Window state of a categorical feature.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CategoricalState {
    /// Count per reference category, then the unseen bucket (last entry).
    pub counts: Vec<u64>,
    /// Unseen categories by name (at most [`MAX_TRACKED_UNSEEN`]).
    pub unseen: BTreeMap<String, u64>,
    /// Null values.
    pub missing: u64,
}

impl FeatureState {
    /// Usable values in the window.
    pub fn count(&self) -> u64 {
        match self {
            FeatureState::Numeric(s) => s.values.len() as u64,
            FeatureState::Categorical(s) => s.counts.iter().sum(),
        }
    }

    /// Missing values (null, NaN, and for numeric features infinities).
    pub fn missing(&self) -> u64 {
        match self {
            FeatureState::Numeric(s) => s.missing + s.infinite,
            FeatureState::Categorical(s) => s.missing,
        }
    }

    /// The window histogram, aligned with [`FeatureProfile::reference_histogram`].
    pub fn histogram(&self) -> &[u64] {
        match self {
            FeatureState::Numeric(s) => &s.counts,
            FeatureState::Categorical(s) => &s.counts,
        }
    }

    /// Adds `other` into `self`. The result is the state of both inputs together.
    ///
    /// # Errors
    /// [`AnalyzerError::Merge`] when the states belong to different kinds or bin layouts.
    pub fn merge(&mut self, other: &FeatureState) -> Result<(), AnalyzerError> {
        match (self, other) {
            (FeatureState::Numeric(a), FeatureState::Numeric(b))
                if a.counts.len() == b.counts.len() =>
            {
                add_counts(&mut a.counts, &b.counts);
                a.values.extend_from_slice(&b.values);
                a.missing += b.missing;
                a.infinite += b.infinite;
                Ok(())
            }
            (FeatureState::Categorical(a), FeatureState::Categorical(b))
                if a.counts.len() == b.counts.len() =>
            {
                add_counts(&mut a.counts, &b.counts);
                for (k, v) in &b.unseen {
                    if let Some(n) = a.unseen.get_mut(k) {
                        *n += v;
                    } else if a.unseen.len() < MAX_TRACKED_UNSEEN {
                        a.unseen.insert(k.clone(), *v);
                    }
                }
                a.missing += b.missing;
                Ok(())
            }
            _ => Err(AnalyzerError::Merge(
                "window states of different kinds or bin layouts".into(),
            )),
        }
    }
}

fn add_counts(into: &mut [u64], from: &[u64]) {
    into.iter_mut().zip(from).for_each(|(a, b)| *a += b);
}

/// A feature's reference profile prepared for counting windows: it creates empty states and
/// updates them from Arrow columns or plain values.
#[derive(Debug, Clone)]
pub struct FeatureModel {
    profile: FeatureProfile,
    /// Category name to its position in the profile. foldhash, not std's SipHash: hashing was
    /// 3% of `driftwatch analyze`'s instructions on the synthetic benchmark (callgrind); the seed
    /// is random per process, and the map is never written after it is built.
    index: HashMap<String, usize, foldhash::fast::RandomState>,
}

impl FeatureModel {
    /// Prepares `profile` (builds the category index of a categorical feature).
    pub fn new(profile: FeatureProfile) -> Self {
        let index = match &profile {
            FeatureProfile::Categorical(p) => p
                .categories
                .iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), i))
                .collect(),
            FeatureProfile::Numeric(_) => HashMap::default(),
        };
        Self { profile, index }
    }

    /// The reference profile.
    pub fn profile(&self) -> &FeatureProfile {
        &self.profile
    }

    /// An empty window state for this feature.
    pub fn new_state(&self) -> FeatureState {
        let counts = vec![0; self.profile.histogram_len()];
        match self.profile {
            FeatureProfile::Numeric(_) => FeatureState::Numeric(NumericState {
                counts,
                ..Default::default()
            }),
            FeatureProfile::Categorical(_) => FeatureState::Categorical(CategoricalState {
                counts,
                ..Default::default()
            }),
        }
    }

    /// Adds numeric values (NaN counts as missing, infinities apart).
    ///
    /// # Panics
    /// When `state` is not numeric (a programming error).
    pub fn add_values(&self, state: &mut FeatureState, values: &[f64]) {
        let (FeatureProfile::Numeric(p), FeatureState::Numeric(s)) = (&self.profile, state) else {
            panic!("add_values on a categorical feature");
        };
        let before = s.values.len();
        for &v in values {
            if v.is_nan() {
                s.missing += 1;
            } else if v.is_infinite() {
                s.infinite += 1;
            } else {
                s.values.push(v);
            }
        }
        if !p.edges.is_empty() {
            kernels::histogram(&p.edges, &s.values[before..], &mut s.counts);
        }
    }

    /// Adds one categorical value (`None` is missing).
    ///
    /// # Panics
    /// When `state` is not categorical (a programming error).
    pub fn add_category(&self, state: &mut FeatureState, value: Option<&str>) {
        let FeatureState::Categorical(s) = state else {
            panic!("add_category on a numeric feature");
        };
        match value {
            None => s.missing += 1,
            Some(v) => match self.index.get(v) {
                Some(&i) => s.counts[i] += 1,
                None => {
                    let unseen = s.counts.len() - 1;
                    s.counts[unseen] += 1;
                    if let Some(n) = s.unseen.get_mut(v) {
                        *n += 1;
                    } else if s.unseen.len() < MAX_TRACKED_UNSEEN {
                        s.unseen.insert(v.to_string(), 1);
                    }
                }
            },
        }
    }

    /// Adds a whole Arrow column (any numeric, text, bool or dictionary type).
    ///
    /// # Errors
    /// [`NotANumber`] for text in a numeric feature (with its index in `array`).
    pub fn add_array(&self, state: &mut FeatureState, array: &ArrayRef) -> Result<(), NotANumber> {
        match self.profile {
            FeatureProfile::Numeric(_) => {
                let floats = to_f64(array)?;
                if let FeatureState::Numeric(s) = state {
                    s.missing += floats.null_count() as u64;
                }
                if floats.null_count() == 0 {
                    self.add_values(state, floats.values());
                } else {
                    let present: Vec<f64> = floats.iter().flatten().collect();
                    self.add_values(state, &present);
                }
                Ok(())
            }
            FeatureProfile::Categorical(_) => {
                let text = to_text(array).map_err(|value| NotANumber { index: 0, value })?;
                for v in text.iter() {
                    self.add_category(state, v);
                }
                Ok(())
            }
        }
    }
}
