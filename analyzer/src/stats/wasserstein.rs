//! The first Wasserstein (earth mover's) distance between two empirical distributions, as
//! `scipy.stats.wasserstein_distance(u, v)`: `integral |F_u(x) - F_v(x)| dx`.

use super::ecdf::ecdf_distances;

/// Wasserstein-1 distance between two samples sorted ascending without NaN, in the samples' unit.
///
/// The area part of [`ecdf_distances`] (one walk of the merged order; between consecutive values
/// `x_k < x_{k+1}` both empirical CDFs are constant, contributing
/// `|F_u(x_k) - F_v(x_k)| (x_{k+1} - x_k)` to a compensated sum that agrees with scipy's pairwise sum
/// to far better than 1e-12 relative). Returns `None` when either sample is empty.
pub fn wasserstein_sorted(u: &[f64], v: &[f64]) -> Option<f64> {
    ecdf_distances(u, v).map(|e| e.wasserstein)
}

/// Wasserstein distance divided by `max(reference_std, 0.001)`, the population standard deviation
/// of the reference, so values are comparable across features (DESIGN.md, `wasserstein_normed`).
pub fn normalise_wasserstein(distance: f64, reference_std: f64) -> f64 {
    distance / reference_std.max(0.001)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_point_masses() {
        assert_eq!(wasserstein_sorted(&[0.0], &[2.0]), Some(2.0));
        assert_eq!(wasserstein_sorted(&[0.0, 1.0], &[0.0, 1.0]), Some(0.0));
        assert_eq!(wasserstein_sorted(&[], &[1.0]), None);
    }
}
