//! Hot-path kernels over `f64` columns: binning into reference bins, the sums behind means and
//! variances, and counting in the ECDF walk of KS and Wasserstein.
//!
//! Each kernel has a scalar reference implementation (`*_scalar`) and a SIMD one built on `pulp`,
//! which picks the widest instruction set the CPU has at run time (AVX-512, AVX2+FMA, SSE, NEON,
//! or plain scalar code) with no `unsafe` in this crate. The SIMD paths return exactly what the
//! scalar paths return (property-tested on random inputs with NaN, infinities, values on bin
//! edges and empty input):
//!
//! - binning counts, for each value, the edges at or below it with vector comparisons against
//!   every edge (branch-free; a binary search mispredicts on random data), then scatters;
//! - sums use eight independent accumulators in a fixed order, whatever the vector width, so the
//!   rounding is identical on every CPU;
//! - the ECDF walk advances over runs of the other sample with vector comparisons.

use pulp::{Arch, Simd, WithSimd};

use crate::stats::kolmogorov::neumaier_add;

/// Shortest slice that [`sort_total`] radix-sorts; shorter ones take the comparison sort, which
/// needs no scratch buffer and wins below a few hundred values (radsort's own benchmarks).
pub const RADIX_SORT_MIN_LEN: usize = 256;

/// Sorts `values` ascending in [`f64::total_cmp`]'s order (`-NaN < -inf < ... < -0.0 < +0.0 < ...
/// < +inf < +NaN`), the order of every sorted sample here (the ECDF walks of KS and Wasserstein,
/// reference samples, quantiles).
///
/// Slices of [`RADIX_SORT_MIN_LEN`] values or more take an LSD radix sort (the `radsort` crate:
/// one counting pass per byte of the key, bytes that every key shares skipped; O(n) time and an n
/// value scratch buffer) on the key that maps `total_cmp`'s order onto unsigned integers: the bits
/// with the sign bit flipped for positive values and every bit flipped for negative ones (Herf,
/// "Radix Tricks", 2001). Shorter slices use `sort_unstable_by(f64::total_cmp)`. Both give the same
/// bits in the same order: two values are equal under `total_cmp` only when their bits are.
/// About 14% of `driftwatch analyze`'s CPU time on the synthetic benchmark was the comparison
/// sort (`perf`, BENCHMARKS.md).
pub fn sort_total(values: &mut [f64]) {
    if values.len() < RADIX_SORT_MIN_LEN {
        values.sort_unstable_by(f64::total_cmp);
    } else {
        radsort::sort(values);
    }
}

/// Bin of `value` for bin `edges` (ascending, at least two): 0 for `value < edges[0]`
/// (underflow), `edges.len()` for `value > edges[last]` (overflow), else `i` in
/// `1..edges.len()` for `edges[i-1] <= value < edges[i]`, with `value == edges[last]` in the last
/// interior bin. `-inf` is underflow and `+inf` overflow. `value` must not be NaN.
#[inline]
pub fn bin_index(edges: &[f64], value: f64) -> usize {
    let last = edges.len() - 1;
    if value < edges[0] {
        return 0;
    }
    if value > edges[last] {
        return last + 1;
    }
    edges.partition_point(|e| *e <= value).min(last)
}

/// Adds each value of `values` to its bin in `counts` (`edges.len() + 1` entries, see
/// [`bin_index`]). NaN values are skipped and their number returned. Uses the SIMD path.
///
/// # Panics
/// When `counts.len() != edges.len() + 1` or `edges.len() < 2`.
pub fn histogram(edges: &[f64], values: &[f64], counts: &mut [u64]) -> u64 {
    assert!(
        edges.len() >= 2 && counts.len() == edges.len() + 1,
        "histogram shape"
    );
    Arch::new().dispatch(Histogram {
        edges,
        values,
        counts,
    })
}

/// The scalar reference of [`histogram`].
///
/// # Panics
/// As [`histogram`].
pub fn histogram_scalar(edges: &[f64], values: &[f64], counts: &mut [u64]) -> u64 {
    assert!(
        edges.len() >= 2 && counts.len() == edges.len() + 1,
        "histogram shape"
    );
    let mut nan = 0;
    for &v in values {
        if v.is_nan() {
            nan += 1;
        } else {
            counts[bin_index(edges, v)] += 1;
        }
    }
    nan
}

struct Histogram<'a> {
    edges: &'a [f64],
    values: &'a [f64],
    counts: &'a mut [u64],
}

impl WithSimd for Histogram<'_> {
    type Output = u64;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> u64 {
        let Histogram {
            edges,
            values,
            counts,
        } = self;
        let last = edges.len() - 1;
        let top = edges[last];
        let splat: Vec<S::f64s> = edges.iter().map(|e| simd.splat_f64s(*e)).collect();
        let (head, tail) = S::as_simd_f64s(values);
        let mut nan = 0u64;
        let zero = simd.splat_u64s(0);
        let one = simd.splat_u64s(1);
        for chunk in head {
            let mut below = zero;
            for e in &splat {
                // One per edge with e <= v (masks are not integers on every backend).
                let m = simd.less_than_or_equal_f64s(*e, *chunk);
                below = simd.add_u64s(below, simd.select_u64s(m, one, zero));
            }
            let lanes: &[u64] = bytemuck::cast_slice(std::slice::from_ref(&below));
            let vals: &[f64] = bytemuck::cast_slice(std::slice::from_ref(chunk));
            for (&n, &v) in lanes.iter().zip(vals) {
                if v.is_nan() {
                    nan += 1;
                } else if v > top {
                    counts[last + 1] += 1;
                } else {
                    counts[(n as usize).min(last)] += 1;
                }
            }
        }
        for &v in tail {
            if v.is_nan() {
                nan += 1;
            } else {
                counts[bin_index(edges, v)] += 1;
            }
        }
        nan
    }
}

/// Compensated (Neumaier) sum of `values`, sequential; NaN propagates. The accurate sum used for
/// reference statistics (means of profiles).
pub fn sum(values: &[f64]) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for &v in values {
        neumaier_add(&mut s, &mut c, v);
    }
    s + c
}

/// Number of lanes of [`sum_lanes`]: every SIMD width divides it.
pub const SUM_LANES: usize = 8;

/// Sum of `values` with [`SUM_LANES`] interleaved accumulators (element `i` goes to accumulator
/// `i % 8`), reduced pairwise `((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7))`, then the tail added in order.
/// The SIMD path; bit-identical to [`sum_lanes_scalar`]. With `squares`, sums `(x - center)^2`
/// instead (for variances).
pub fn sum_lanes(values: &[f64], squares: Option<f64>) -> f64 {
    Arch::new().dispatch(SumLanes {
        values,
        center: squares,
    })
}

/// The scalar reference of [`sum_lanes`].
pub fn sum_lanes_scalar(values: &[f64], squares: Option<f64>) -> f64 {
    let f = |x: f64| match squares {
        Some(c) => (x - c) * (x - c),
        None => x,
    };
    let mut acc = [0.0f64; SUM_LANES];
    let blocks = values.len() / SUM_LANES;
    for b in 0..blocks {
        for (k, a) in acc.iter_mut().enumerate() {
            *a += f(values[b * SUM_LANES + k]);
        }
    }
    let mut total = reduce8(&acc);
    for &v in &values[blocks * SUM_LANES..] {
        total += f(v);
    }
    total
}

fn reduce8(a: &[f64; SUM_LANES]) -> f64 {
    ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

struct SumLanes<'a> {
    values: &'a [f64],
    center: Option<f64>,
}

impl WithSimd for SumLanes<'_> {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f64 {
        let width = size_of::<S::f64s>() / size_of::<f64>();
        if width == 0 || !SUM_LANES.is_multiple_of(width) || width > SUM_LANES {
            return sum_lanes_scalar(self.values, self.center);
        }
        let per_block = SUM_LANES / width;
        let blocks = self.values.len() / SUM_LANES;
        let body = &self.values[..blocks * SUM_LANES];
        let (vectors, _) = S::as_simd_f64s(body);
        let mut acc = vec![simd.splat_f64s(0.0); per_block];
        let center = simd.splat_f64s(self.center.unwrap_or(0.0));
        for (i, v) in vectors.iter().enumerate() {
            let x = match self.center {
                Some(_) => {
                    let d = simd.sub_f64s(*v, center);
                    simd.mul_f64s(d, d)
                }
                None => *v,
            };
            let slot = &mut acc[i % per_block];
            *slot = simd.add_f64s(*slot, x);
        }
        let mut lanes = [0.0f64; SUM_LANES];
        for (k, a) in acc.iter().enumerate() {
            let l: &[f64] = bytemuck::cast_slice(std::slice::from_ref(a));
            lanes[k * width..(k + 1) * width].copy_from_slice(l);
        }
        let mut total = reduce8(&lanes);
        for &v in &self.values[blocks * SUM_LANES..] {
            total += match self.center {
                Some(c) => (v - c) * (v - c),
                None => v,
            };
        }
        total
    }
}

/// The first index `>= from` of sorted `values` whose value is greater than `x` (so the number of
/// values `<= x` when `from` starts at the previous count): the step of the ECDF walk. The SIMD
/// path skips whole vectors of values `<= x`; identical to [`advance_le_scalar`].
#[inline(always)]
pub fn advance_le(values: &[f64], from: usize, x: f64) -> usize {
    // Short runs (the common case for interleaved samples) do not pay for a call or a dispatch:
    // this part is inlined into the walk, the vector loop is not.
    let mut i = from;
    for _ in 0..8 {
        match values.get(i) {
            Some(&v) if v <= x => i += 1,
            _ => return i,
        }
    }
    advance_le_simd(values, i, x)
}

#[inline(never)]
fn advance_le_simd(values: &[f64], from: usize, x: f64) -> usize {
    Arch::new().dispatch(AdvanceLe { values, from, x })
}

/// The scalar reference of [`advance_le`].
pub fn advance_le_scalar(values: &[f64], from: usize, x: f64) -> usize {
    let mut i = from;
    while i < values.len() && values[i] <= x {
        i += 1;
    }
    i
}

struct AdvanceLe<'a> {
    values: &'a [f64],
    from: usize,
    x: f64,
}

impl WithSimd for AdvanceLe<'_> {
    type Output = usize;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> usize {
        let width = size_of::<S::f64s>() / size_of::<f64>();
        let rest = &self.values[self.from..];
        let (vectors, _) = S::as_simd_f64s(rest);
        let x = simd.splat_f64s(self.x);
        let mut i = self.from;
        for v in vectors {
            let gt = simd.greater_than_f64s(*v, x);
            // `first_true_m64s` is the lane count when no lane is set (every backend).
            if simd.first_true_m64s(gt) < width {
                return advance_le_scalar(self.values, i, self.x);
            }
            i += width;
        }
        advance_le_scalar(self.values, i, self.x)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn bins_are_left_closed_last_closed() {
        let e = [0.0, 1.0, 2.0];
        assert_eq!(bin_index(&e, -0.1), 0);
        assert_eq!(bin_index(&e, 0.0), 1);
        assert_eq!(bin_index(&e, 0.999), 1);
        assert_eq!(bin_index(&e, 1.0), 2);
        assert_eq!(bin_index(&e, 2.0), 2);
        assert_eq!(bin_index(&e, 2.1), 3);
        assert_eq!(bin_index(&e, f64::NEG_INFINITY), 0);
        assert_eq!(bin_index(&e, f64::INFINITY), 3);
        let mut counts = [0u64; 4];
        assert_eq!(histogram(&e, &[0.5, f64::NAN, 3.0], &mut counts), 1);
        assert_eq!(counts, [0, 1, 0, 1]);
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            6 => -100.0f64..100.0,
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            2 => prop::sample::select(vec![-50.0, -10.0, 0.0, 10.0, 25.5, 50.0]),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn simd_histogram_equals_scalar(values in prop::collection::vec(value(), 0..300)) {
            // Edges include values that the inputs hit exactly.
            let edges = [-50.0, -10.0, 0.0, 10.0, 25.5, 50.0];
            let mut a = [0u64; 7];
            let mut b = [0u64; 7];
            let nan_a = histogram(&edges, &values, &mut a);
            let nan_b = histogram_scalar(&edges, &values, &mut b);
            prop_assert_eq!(a, b);
            prop_assert_eq!(nan_a, nan_b);
        }

        #[test]
        fn simd_sums_equal_scalar_bit_for_bit(values in prop::collection::vec(value(), 0..300), c in -5.0f64..5.0) {
            let a = sum_lanes(&values, None);
            let b = sum_lanes_scalar(&values, None);
            prop_assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{} vs {}", a, b);
            let a = sum_lanes(&values, Some(c));
            let b = sum_lanes_scalar(&values, Some(c));
            prop_assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{} vs {}", a, b);
        }

        #[test]
        fn radix_sort_equals_the_comparison_sort_bit_for_bit(
            mut values in prop::collection::vec(prop_oneof![
                8 => value(),
                1 => Just(-0.0),
                1 => Just(f64::from_bits(0xfff8_0000_0000_0000)),
                1 => any::<u64>().prop_map(f64::from_bits),
            ], 0..2000),
        ) {
            let mut expected = values.clone();
            expected.sort_unstable_by(f64::total_cmp);
            sort_total(&mut values);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&values), bits(&expected));
        }

        #[test]
        fn simd_ecdf_step_equals_scalar(mut values in prop::collection::vec(-100.0f64..100.0, 0..300), x in -120.0f64..120.0, from in 0usize..300) {
            values.sort_by(f64::total_cmp);
            let from = from.min(values.len());
            prop_assert_eq!(advance_le(&values, from, x), advance_le_scalar(&values, from, x));
        }
    }
}
