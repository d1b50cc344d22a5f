//! The two-sample Kolmogorov-Smirnov test, matching `scipy.stats.ks_2samp(method="auto")`.
//!
//! `D = sup_x |F_a(x) - F_b(x)|` over the right-continuous empirical CDFs, so ties (within and
//! across samples) are handled by evaluating the difference only after every copy of a value has
//! been counted. The two-sided p-value is exact when both samples hold at most
//! [`MAX_EXACT_N`] values (Hodges 1958, with Viehmann's 2021 recursion for `1 - p`) and otherwise
//! the one-sample Kolmogorov distribution at `n = round(n_a n_b / (n_a + n_b))`
//! ([`super::kolmogorov::kolmogorov_sf`]). When the exact recursion fails numerically it falls
//! back to the asymptotic value, as scipy does; it never returns a p-value of 1 for a large `D`
//! (edge case E11).

use super::ecdf::ecdf_distances;
use super::kolmogorov::kolmogorov_sf;

/// scipy's `MAX_AUTO_N`: `method="auto"` is exact when `max(n_a, n_b)` is at most this.
pub const MAX_EXACT_N: usize = 10_000;

/// Which computation produced a p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KsMethod {
    /// Exact lattice-path count.
    Exact,
    /// Kolmogorov distribution at the effective sample size.
    Asymptotic,
}

/// Result of a two-sample Kolmogorov-Smirnov test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// `D`, in `[0, 1]`.
    pub statistic: f64,
    /// Two-sided p-value, in `[0, 1]`.
    pub p_value: f64,
    /// How the p-value was computed.
    pub method: KsMethod,
}

/// Two-sample KS test on two samples sorted ascending and free of NaN.
///
/// Returns `None` when either sample is empty (scipy raises `ValueError`). Sortedness is the
/// caller's contract (checked in debug builds); use [`ks_2samp`] for raw data.
pub fn ks_2samp_sorted(a: &[f64], b: &[f64]) -> Option<KsResult> {
    ecdf_distances(a, b).map(|e| ks_from_statistic(a.len(), b.len(), e.ks_statistic))
}

/// The KS test of two samples of sizes `n_a` and `n_b` (both at least 1) whose `D` is already known
/// ([`ecdf_distances`]): the exact or asymptotic two-sided p-value as [`ks_2samp_sorted`] chooses
/// it, with `D` snapped to the lattice `h / lcm(n_a, n_b)` when the exact method is used.
pub fn ks_from_statistic(n_a: usize, n_b: usize, d: f64) -> KsResult {
    let g = gcd(n_a as u64, n_b as u64);
    if n_a.max(n_b) <= MAX_EXACT_N
        && let Some((d_exact, p)) = exact_two_sided(n_a as u64, n_b as u64, g, d)
    {
        return KsResult {
            statistic: d_exact,
            p_value: p,
            method: KsMethod::Exact,
        };
    }
    let (m, n) = (n_a.max(n_b) as f64, n_a.min(n_b) as f64);
    let en = (m * n / (m + n)).round_ties_even();
    let p = kolmogorov_sf(en as u64, d).clamp(0.0, 1.0);
    KsResult {
        statistic: d,
        p_value: p,
        method: KsMethod::Asymptotic,
    }
}

/// Two-sample KS test on raw samples: NaN values are dropped (callers count them as missing,
/// edge case E7), the rest are sorted. Returns `None` when either sample has no non-NaN value.
pub fn ks_2samp(a: &[f64], b: &[f64]) -> Option<KsResult> {
    let a = sorted_without_nan(a);
    let b = sorted_without_nan(b);
    ks_2samp_sorted(&a, &b)
}

/// Copies `values` without NaN and sorts them ascending (total order).
pub fn sorted_without_nan(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    crate::kernels::sort_total(&mut v);
    v
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The exact two-sided p-value, or `None` when the computation leaves `[0, 1]` or overflows (the
/// caller then uses the asymptotic distribution). Returns `D` rounded to the lattice `h / lcm`.
fn exact_two_sided(n1: u64, n2: u64, g: u64, d: f64) -> Option<(f64, f64)> {
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even() as u64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return Some((d, 1.0));
    }
    let p = if n1 == n2 {
        prob_outside_square(n1, h)
    } else {
        prob_outside_band(n1, n2, g, h)
    };
    (p.is_finite() && (0.0..=1.0).contains(&p)).then_some((d, p))
}

/// `P(D_{n,n} >= h/n)` for equal sample sizes: `2 sum_k (-1)^(k+1) C(2n, n - kh) / C(2n, n)`,
/// evaluated with every term divided by `C(2n, n)` and nested Horner-style so the alternating sum
/// does not cancel (Hodges 1958, eq. 2.3).
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (nf, hf) = (n as f64, h as f64);
    let mut p = 0.0;
    let mut k = n / h;
    loop {
        let kf = k as f64;
        let mut term = 1.0;
        for j in 0..h {
            let jf = j as f64;
            term = (nf - kf * hf - jf) * term / (nf + kf * hf + jf + 1.0);
        }
        p = term * (1.0 - p);
        if k == 0 {
            break;
        }
        k -= 1;
    }
    2.0 * p
}

/// The share of monotone lattice paths from `(0, 0)` to `(m, n)` that leave the band
/// `|x/m - y/n| < h/lcm(m, n)`: the exact two-sided p-value for unequal sizes.
///
/// Hodges' (1958) inside method, with the recursion changed to carry `1 - p` directly as
/// described by Viehmann (arXiv:2102.08037, 2021), so small p-values keep their relative accuracy.
/// One sliding column of the path-count table is kept, normalised so that entries stay in `[0, 1]`.
fn prob_outside_band(m: u64, n: u64, g: u64, h: u64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let mg = m / g;
    let ng = n / g;
    let ceil_div = |a: i64, b: i64| -> i64 { -((-a).div_euclid(b)) };

    let mut minj: i64 = 0;
    let mut maxj: i64 = ceil_div(h, mg).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut col = vec![1.0f64; len_a];
    for v in col.iter_mut().take(maxj as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = ((ng * i - h).div_euclid(mg) + 1).max(0).min(n);
        maxj = ceil_div(ng * i + h, mg).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        let fi = i as f64;
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            let prev = col[(jj + minj - lastminj) as usize];
            val = (prev * fi + val * j as f64) / (fi + j as f64);
            col[jj as usize] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let from = (maxj - minj) as usize;
            let to = (from + (lastlen - curlen) as usize).min(len_a);
            col[from..to].iter_mut().for_each(|v| *v = 1.0);
        }
    }
    col[(maxj - minj - 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_give_zero_and_one() {
        let a = [1.0, 2.0, 3.0];
        let r = ks_2samp(&a, &a).unwrap();
        assert_eq!(r.statistic, 0.0);
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn empty_sample_is_none() {
        assert!(ks_2samp(&[], &[1.0]).is_none());
        assert!(ks_2samp(&[f64::NAN], &[1.0]).is_none());
    }

    #[test]
    fn disjoint_small_samples_exact() {
        // scipy: ks_2samp([1, 2], [3, 4, 5, 6]) -> D = 1, p = 0.13333333333333333
        let r = ks_2samp(&[1.0, 2.0], &[3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(r.statistic, 1.0);
        assert!((r.p_value - 0.13333333333333333).abs() < 1e-15);
        assert_eq!(r.method, KsMethod::Exact);
    }
}
