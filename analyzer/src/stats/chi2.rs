//! Pearson's chi-square test of homogeneity on a 2 x k contingency table (reference counts and
//! current counts per category or bin), as `scipy.stats.chi2_contingency(table, correction=False)`.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Result of a chi-square homogeneity test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chi2Result {
    /// Pearson's statistic `sum (O - E)^2 / E` over the cells of the table.
    pub statistic: f64,
    /// Degrees of freedom: the number of categories with a non-zero total, minus one.
    pub dof: u64,
    /// `P(X >= statistic)` for `X ~ chi2(dof)`; 1 when `dof == 0`.
    pub p_value: f64,
}

/// Chi-square homogeneity test of `reference` against `current` counts (same length, one entry per
/// category). Categories whose total over both rows is zero are dropped, which is what keeps an
/// unseen-category bucket that is empty on both sides out of the degrees of freedom.
///
/// Counts are `u64` and every product is formed in `f64`, so totals beyond 32 bits are fine
/// (edge case E14). Returns `None` when either row sums to zero (the expected counts are undefined).
///
/// # Panics
/// Panics when the two slices differ in length (a programming error).
pub fn chi2_homogeneity(reference: &[u64], current: &[u64]) -> Option<Chi2Result> {
    assert_eq!(
        reference.len(),
        current.len(),
        "contingency rows must have equal length"
    );
    let r_total: f64 = reference.iter().map(|&c| c as f64).sum();
    let c_total: f64 = current.iter().map(|&c| c as f64).sum();
    if r_total == 0.0 || c_total == 0.0 {
        return None;
    }
    let total = r_total + c_total;
    let mut statistic = 0.0;
    let mut categories = 0u64;
    for (&r, &c) in reference.iter().zip(current) {
        let col = r as f64 + c as f64;
        if col == 0.0 {
            continue;
        }
        categories += 1;
        let e_r = r_total * col / total;
        let e_c = c_total * col / total;
        statistic += (r as f64 - e_r).powi(2) / e_r + (c as f64 - e_c).powi(2) / e_c;
    }
    let dof = categories.saturating_sub(1);
    if dof == 0 {
        return Some(Chi2Result {
            statistic: 0.0,
            dof: 0,
            p_value: 1.0,
        });
    }
    let p_value = chi2_sf(statistic, dof);
    Some(Chi2Result {
        statistic,
        dof,
        p_value,
    })
}

/// Survival function of the chi-square distribution with `dof` degrees of freedom (statrs).
pub fn chi2_sf(x: f64, dof: u64) -> f64 {
    match ChiSquared::new(dof as f64) {
        Ok(dist) => dist.sf(x).clamp(0.0, 1.0),
        Err(_) => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e14_counts_beyond_32_bits() {
        // Edge case E14: reference [3e9, 1000] vs current [2e9, 3000].
        let r = chi2_homogeneity(&[3_000_000_000, 1000], &[2_000_000_000, 3000]).unwrap();
        assert!((r.statistic - 2041.66).abs() < 0.01, "{}", r.statistic);
        assert_eq!(r.dof, 1);
        assert!(r.p_value < 1e-300);
        let r = chi2_homogeneity(&[1_000_000, 1], &[2, 1]).unwrap();
        assert!((r.statistic - 166_666.17).abs() < 0.01, "{}", r.statistic);
    }

    #[test]
    fn empty_row_is_undefined() {
        assert!(chi2_homogeneity(&[0, 0], &[1, 2]).is_none());
    }
}
