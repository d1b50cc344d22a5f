//! Divergences between a reference and a current histogram: PSI, KL, Jensen-Shannon, Hellinger and
//! L-infinity.
//!
//! PSI and KL take counts and smooth them (they are infinite as soon as one side has an empty bin);
//! the bounded distances take raw proportions.

/// Additive smoothing used by [`psi`] and [`kl`]: each bin gets half an observation (Jeffreys'
/// prior), `p_i = (count_i + 0.5) / (n + 0.5 k)`. A fixed floor such as 1e-4 would exceed real
/// rare-bin shares in large windows (edge case E2); half a count scales with the window.
pub const SMOOTHING_ALPHA: f64 = 0.5;

fn smoothed(counts: &[u64]) -> Option<Vec<f64>> {
    let n: f64 = counts.iter().map(|&c| c as f64).sum();
    if n == 0.0 {
        return None;
    }
    let denom = n + SMOOTHING_ALPHA * counts.len() as f64;
    Some(
        counts
            .iter()
            .map(|&c| (c as f64 + SMOOTHING_ALPHA) / denom)
            .collect(),
    )
}

/// Population Stability Index `sum (q - p) ln(q / p)` between reference counts `p` and current
/// counts `q`, both smoothed with [`SMOOTHING_ALPHA`]. Natural log; 0 for identical histograms.
///
/// Returns `None` when either side has no observation or the lengths differ.
pub fn psi(reference: &[u64], current: &[u64]) -> Option<f64> {
    if reference.len() != current.len() {
        return None;
    }
    let p = smoothed(reference)?;
    let q = smoothed(current)?;
    Some(p.iter().zip(&q).map(|(p, q)| (q - p) * (q / p).ln()).sum())
}

/// Kullback-Leibler divergence `KL(current || reference) = sum q ln(q / p)`, natural log, on the
/// same smoothed proportions as [`psi`]. Returns `None` when either side is empty or the lengths
/// differ.
pub fn kl(reference: &[u64], current: &[u64]) -> Option<f64> {
    if reference.len() != current.len() {
        return None;
    }
    let p = smoothed(reference)?;
    let q = smoothed(current)?;
    Some(
        p.iter()
            .zip(&q)
            .map(|(p, q)| q * (q / p).ln())
            .sum::<f64>()
            .max(0.0),
    )
}

fn normalised(weights: &[f64]) -> Option<Vec<f64>> {
    let total: f64 = weights.iter().sum();
    // NaN totals fail `total > 0.0` too.
    if total.is_nan() || total <= 0.0 || !total.is_finite() {
        return None;
    }
    Some(weights.iter().map(|w| w / total).collect())
}

/// `x ln(x / m)` with `m = (x + y) / 2`, written as `x ln(2 x / (x + y))` so that a denormal `x`
/// whose half underflows to zero still gives a finite term (edge case E3).
fn rel_entr_to_mid(x: f64, y: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x * (2.0 * (x / (x + y))).ln()
    }
}

/// Jensen-Shannon distance with base-2 logarithms, in `[0, 1]`, between raw proportions (weights
/// are normalised to sum to one first), as `scipy.spatial.distance.jensenshannon(p, q, base=2)`.
///
/// The divergence is clamped at 0 before the square root, so rounding never yields NaN for almost
/// identical inputs (edge case E4), and a denormal weight never yields infinity (edge case E3).
/// Returns `None` when either side sums to zero or the lengths differ.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> Option<f64> {
    if p.len() != q.len() {
        return None;
    }
    let p = normalised(p)?;
    let q = normalised(q)?;
    let divergence: f64 = p
        .iter()
        .zip(&q)
        .map(|(&a, &b)| rel_entr_to_mid(a, b) + rel_entr_to_mid(b, a))
        .sum::<f64>()
        / 2.0;
    Some(
        (divergence / std::f64::consts::LN_2)
            .max(0.0)
            .sqrt()
            .min(1.0),
    )
}

/// Hellinger distance `sqrt(1 - sum sqrt(p q))` between raw proportions, in `[0, 1]`.
///
/// Evaluated as `sqrt(sum (sqrt p - sqrt q)^2 / 2)`, which equals it when both sides sum to one
/// but is exactly 0 for identical inputs (the first form leaves `1 - 0.9999999999999999`, a
/// distance of 1e-8). Returns `None` when either side sums to zero or the lengths differ.
pub fn hellinger(p: &[f64], q: &[f64]) -> Option<f64> {
    if p.len() != q.len() {
        return None;
    }
    let p = normalised(p)?;
    let q = normalised(q)?;
    let squared: f64 = p
        .iter()
        .zip(&q)
        .map(|(a, b)| (a.sqrt() - b.sqrt()).powi(2))
        .sum();
    Some((squared / 2.0).sqrt().min(1.0))
}

/// L-infinity distance `max |p - q|` between raw proportions, in `[0, 1]`. Returns `None` when
/// either side sums to zero or the lengths differ.
pub fn l_infinity(p: &[f64], q: &[f64]) -> Option<f64> {
    if p.len() != q.len() {
        return None;
    }
    let p = normalised(p)?;
    let q = normalised(q)?;
    Some(
        p.iter()
            .zip(&q)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max),
    )
}

/// Converts counts to `f64` weights for the proportion-based distances.
pub fn as_weights(counts: &[u64]) -> Vec<f64> {
    counts.iter().map(|&c| c as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e2_rare_bin_vanishing_keeps_psi_tiny() {
        // Edge case E2: 10 of 1,000,000 reference values in a bin the current window never hits.
        let v = psi(&[10, 999_990], &[0, 1_000_000]).unwrap();
        assert!((v - 3.04452939323903e-05).abs() < 1e-15, "{v}");
    }

    #[test]
    fn e3_denormal_weight_gives_zero() {
        let v = jensen_shannon(&[0.0, 1.0], &[5e-324, 1.0]).unwrap();
        assert!(v.is_finite() && (0.0..1e-12).contains(&v), "{v}");
    }

    #[test]
    fn hellinger_of_identical_histograms_is_exactly_zero() {
        // Regression: 1 - sum sqrt(p q) left 1.1e-16 for these shares, a distance of 1.05e-8.
        let p = [0.1, 0.2, 0.3, 0.15, 0.25, 1.0 / 3.0];
        assert_eq!(hellinger(&p, &p), Some(0.0));
    }

    #[test]
    fn e4_almost_identical_vectors_never_nan() {
        let x = 0.5f64.next_down();
        let v = jensen_shannon(&[x, 1.0 - x], &[1.0 - x, x]).unwrap();
        assert!(v.is_finite() && v < 1e-7, "{v}");
    }
}
