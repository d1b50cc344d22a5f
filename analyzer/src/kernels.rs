//! Hot-path kernels over `f64` columns: binning into reference bins and sums.
//!
//! These are the scalar reference implementations; every optimised path must return exactly what
//! these return.

use crate::stats::kolmogorov::neumaier_add;

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
/// [`bin_index`]). NaN values are skipped and their number returned.
///
/// # Panics
/// When `counts.len() != edges.len() + 1` or `edges.len() < 2`.
pub fn histogram(edges: &[f64], values: &[f64], counts: &mut [u64]) -> u64 {
    assert!(edges.len() >= 2 && counts.len() == edges.len() + 1, "histogram shape");
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

/// Compensated (Neumaier) sum of `values`; NaN propagates.
pub fn sum(values: &[f64]) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for &v in values {
        neumaier_add(&mut s, &mut c, v);
    }
    s + c
}

#[cfg(test)]
mod tests {
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
}
