//! The statistics of two empirical CDFs that one merged walk over the sorted samples yields: the
//! Kolmogorov-Smirnov `D` (largest difference) and the Wasserstein-1 distance (area between them).
//!
//! Both are computed together because a window asking for KS, Wasserstein and normalised
//! Wasserstein would otherwise walk the same two samples three times; the walk is the hottest part
//! of `driftwatch analyze` after parsing (BENCHMARKS.md).

use super::kolmogorov::neumaier_add;
use crate::kernels::advance_le;

/// What one walk over two sorted samples `a` (size `n_a`) and `b` (size `n_b`) yields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EcdfDistances {
    /// `D = sup_x |F_a(x) - F_b(x)|` over the right-continuous empirical CDFs, in `[0, 1]`
    /// (`scipy.stats.ks_2samp`'s statistic, bit for bit).
    pub ks_statistic: f64,
    /// `integral |F_a(x) - F_b(x)| dx`, in the samples' unit (`scipy.stats.wasserstein_distance`).
    pub wasserstein: f64,
}

/// KS `D` and Wasserstein-1 of two samples sorted ascending and free of NaN, in one pass over the
/// merged order.
///
/// At every distinct value `x` of the merged samples, both counts advance past every copy of `x`
/// (so ties within and across samples are counted before the CDFs are compared) and the difference
/// `count_a / n_a - count_b / n_b` is formed with the same floating-point operations scipy
/// performs, so `D` agrees with `ks_2samp` bit for bit. Between consecutive values `x_k < x_{k+1}`
/// both CDFs are constant, adding `|F_a(x_k) - F_b(x_k)| (x_{k+1} - x_k)` to the Wasserstein sum,
/// which is compensated (Neumaier) and so agrees with scipy's pairwise sum to far better than 1e-12
/// relative.
///
/// Returns `None` when either sample is empty (scipy raises `ValueError`). Sortedness is the
/// caller's contract (checked in debug builds).
pub fn ecdf_distances(a: &[f64], b: &[f64]) -> Option<EcdfDistances> {
    debug_assert!(
        a.is_sorted() && b.is_sorted(),
        "ecdf_distances needs sorted input"
    );
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut walk = Walk {
        n_a: a.len() as f64,
        n_b: b.len() as f64,
        max_pos: 0.0,
        max_neg: 0.0,
        sum: 0.0,
        compensation: 0.0,
        previous: None,
    };
    let (mut i, mut j) = (0usize, 0usize);
    loop {
        // A run of one sample's values below the other's next value: the other CDF is constant
        // along it, so its steps need neither the other's advance nor its division. (A small
        // window against a large reference is mostly such runs.) The operations per value are
        // those of the general step below, so the result is the same bit for bit.
        // (An exhausted sample's next value is +inf: the run is the other's tail.)
        let next_a = a.get(i).copied().unwrap_or(f64::INFINITY);
        let next_b = b.get(j).copied().unwrap_or(f64::INFINITY);
        if next_b < next_a {
            let f_a = i as f64 / walk.n_a;
            j = walk.run(b, j, next_a, |k, n_b| f_a - k as f64 / n_b);
        } else if next_a < next_b {
            let f_b = j as f64 / walk.n_b;
            i = walk.run(a, i, next_b, |k, n_a| k as f64 / n_a - f_b);
        }
        let x = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        walk.area_to(x);
        i = advance_le(a, i, x);
        j = advance_le(b, j, x);
        walk.step(x, i as f64 / walk.n_a - j as f64 / walk.n_b);
    }
    let ks_statistic = if walk.max_neg > walk.max_pos {
        walk.max_neg.min(1.0)
    } else {
        walk.max_pos
    };
    Some(EcdfDistances {
        ks_statistic,
        wasserstein: walk.sum + walk.compensation,
    })
}

/// The state of the merged walk of [`ecdf_distances`].
struct Walk {
    n_a: f64,
    n_b: f64,
    max_pos: f64,
    max_neg: f64,
    sum: f64,
    compensation: f64,
    /// The previous distinct value and `F_a - F_b` there (constant up to the next value).
    previous: Option<(f64, f64)>,
}

impl Walk {
    /// Adds the area from the previous value to `x`.
    #[inline(always)]
    fn area_to(&mut self, x: f64) {
        if let Some((p, diff)) = self.previous {
            neumaier_add(&mut self.sum, &mut self.compensation, diff.abs() * (x - p));
        }
    }

    /// Records `F_a - F_b = diff` from `x` on.
    #[inline(always)]
    fn step(&mut self, x: f64, diff: f64) {
        self.max_pos = self.max_pos.max(diff);
        self.max_neg = self.max_neg.max(-diff);
        self.previous = Some((x, diff));
    }

    /// Walks `values` from `k` over every distinct value below `limit` (the other sample's next
    /// value), each with all its copies; `diff(count, n)` is `F_a - F_b` once `count` values of
    /// this sample (of `n`) are passed. Returns the index of the first value `>= limit`.
    #[inline(always)]
    fn run(
        &mut self,
        values: &[f64],
        mut k: usize,
        limit: f64,
        diff: impl Fn(usize, f64) -> f64,
    ) -> usize {
        let n = values.len() as f64;
        while let Some(&x) = values.get(k) {
            if x >= limit {
                break;
            }
            self.area_to(x);
            k = advance_le(values, k + 1, x);
            self.step(x, diff(k, n));
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Both statistics by definition: the CDFs evaluated at every value of the merged samples by
    /// binary search, the area summed interval by interval.
    fn by_definition(a: &[f64], b: &[f64]) -> (f64, f64) {
        let cdf = |s: &[f64], x: f64| s.partition_point(|&v| v <= x) as f64 / s.len() as f64;
        let mut xs: Vec<f64> = a.iter().chain(b).copied().collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let d = xs
            .iter()
            .map(|&x| (cdf(a, x) - cdf(b, x)).abs())
            .fold(0.0, f64::max);
        let w = xs
            .windows(2)
            .map(|w| (cdf(a, w[0]) - cdf(b, w[0])).abs() * (w[1] - w[0]))
            .sum();
        (d, w)
    }

    #[test]
    fn ties_within_and_across_samples() {
        // F_a - F_b after 1, 2, 3, 4: 0.25, 0.25, 0.5, 0. The area is 0.25 + 0.25 + 0.5.
        let r = ecdf_distances(&[1.0, 2.0, 2.0, 3.0], &[2.0, 4.0]).unwrap();
        assert_eq!(r.ks_statistic, 0.5);
        assert_eq!(r.wasserstein, 1.0);
        assert_eq!(ecdf_distances(&[], &[1.0]), None);
        assert_eq!(ecdf_distances(&[1.0], &[]), None);
    }

    /// The general step alone (the walk before runs were taken apart): the bit-for-bit reference.
    fn general_walk(a: &[f64], b: &[f64]) -> (f64, f64) {
        let (n_a, n_b) = (a.len() as f64, b.len() as f64);
        let (mut i, mut j) = (0usize, 0usize);
        let (mut max_pos, mut max_neg) = (0.0f64, 0.0f64);
        let (mut sum, mut compensation) = (0.0, 0.0);
        let mut previous: Option<(f64, f64)> = None;
        loop {
            let x = match (a.get(i), b.get(j)) {
                (Some(&x), Some(&y)) => x.min(y),
                (Some(&x), None) => x,
                (None, Some(&y)) => y,
                (None, None) => break,
            };
            if let Some((p, diff)) = previous {
                neumaier_add(&mut sum, &mut compensation, diff.abs() * (x - p));
            }
            i = crate::kernels::advance_le_scalar(a, i, x);
            j = crate::kernels::advance_le_scalar(b, j, x);
            let diff = i as f64 / n_a - j as f64 / n_b;
            max_pos = max_pos.max(diff);
            max_neg = max_neg.max(-diff);
            previous = Some((x, diff));
        }
        let d = if max_neg > max_pos {
            max_neg.min(1.0)
        } else {
            max_pos
        };
        (d, sum + compensation)
    }

    #[test]
    fn runs_of_one_sample_small_window_large_reference() {
        // A window of 5 against a reference of 1,000: long runs of the reference, and ties.
        let reference: Vec<f64> = (0..1000).map(|k| f64::from(k / 3) * 0.01).collect();
        let window = [-1.0, 0.5, 0.5, 1.2345, 20.0];
        let r = ecdf_distances(&window, &reference).unwrap();
        let (d, w) = general_walk(&window, &reference);
        assert_eq!(
            (r.ks_statistic.to_bits(), r.wasserstein.to_bits()),
            (d.to_bits(), w.to_bits())
        );
        let (d2, w2) = by_definition(&window, &reference);
        assert_eq!(r.ks_statistic, d2);
        assert!((r.wasserstein - w2).abs() <= 1e-12 * w2);
    }

    /// Finite values of every scale, signed zeros and infinities (the walk's contract excludes
    /// NaN only).
    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            6 => -1e3f64..1e3,
            2 => prop::sample::select(vec![-2.5, -0.0, 0.0, 1.0, 7.0]),
            1 => prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL,
            1 => prop::sample::select(vec![f64::NEG_INFINITY, f64::INFINITY, f64::MAX, f64::MIN]),
        ]
    }

    proptest! {
        #[test]
        fn the_walk_by_runs_equals_the_general_step_bit_for_bit_at_any_scale(
            mut a in prop::collection::vec(value(), 1..300),
            mut b in prop::collection::vec(value(), 1..300),
        ) {
            a.sort_by(f64::total_cmp);
            b.sort_by(f64::total_cmp);
            let r = ecdf_distances(&a, &b).unwrap();
            let (d, w) = general_walk(&a, &b);
            prop_assert_eq!(r.ks_statistic.to_bits(), d.to_bits());
            // NaN (an infinite value's area) compares by bits too: same operations, same NaN.
            prop_assert_eq!(r.wasserstein.to_bits(), w.to_bits());
        }

        #[test]
        fn one_walk_gives_both_definitions(
            mut a in prop::collection::vec(-50i32..50, 1..200),
            mut b in prop::collection::vec(-50i32..50, 1..2000),
            scale in prop::sample::select(vec![1.0, 0.1, 1e-3, 1e6]),
        ) {
            // Small integers (scaled) so that ties are common.
            a.sort_unstable();
            b.sort_unstable();
            let a: Vec<f64> = a.iter().map(|&v| f64::from(v) * scale).collect();
            let b: Vec<f64> = b.iter().map(|&v| f64::from(v) * scale).collect();
            let r = ecdf_distances(&a, &b).unwrap();
            let (d, w) = by_definition(&a, &b);
            prop_assert_eq!(r.ks_statistic, d);
            // Runs taken apart change no bit.
            let (gd, gw) = general_walk(&a, &b);
            prop_assert_eq!((r.ks_statistic.to_bits(), r.wasserstein.to_bits()), (gd.to_bits(), gw.to_bits()));
            prop_assert!((r.wasserstein - w).abs() <= 1e-12 * w.abs().max(scale), "{} vs {}", r.wasserstein, w);
        }
    }
}
