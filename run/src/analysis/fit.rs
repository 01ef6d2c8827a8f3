//! The statistics the verdict rests on: least squares, and a noise level
//! that a sawtooth's evictions do not inflate.

/// y = intercept + slope * x, and how much of y's variance it explains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LinearFit {
    pub(crate) slope: f64,
    pub(crate) intercept: f64,
    /// 0 when y does not vary at all (nothing to explain).
    pub(crate) r_squared: f64,
}

/// Ordinary least squares; None for fewer than 2 points or no spread in x.
pub(crate) fn least_squares(points: &[(f64, f64)]) -> Option<LinearFit> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r_squared = if syy > 0.0 {
        (sxy * sxy / (sxx * syy)).clamp(0.0, 1.0)
    } else {
        0.0
    };
    Some(LinearFit {
        slope,
        intercept: mean_y - slope * mean_x,
        r_squared,
    })
}

/// Sample-to-sample noise as a standard deviation: the median absolute
/// deviation of successive differences around their median. A steady trend
/// shifts every difference alike and a sawtooth's evictions are rare big
/// drops, so neither counts as noise; only jitter does.
pub(crate) fn noise_sigma(values: &[f64]) -> f64 {
    let mut diffs: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
    if diffs.is_empty() {
        return 0.0;
    }
    let centre = median(&mut diffs);
    let mut deviations: Vec<f64> = diffs.iter().map(|d| (d - centre).abs()).collect();
    // For a difference of two N(mu, s^2) samples, MAD = 0.6745 * sqrt(2) * s.
    median(&mut deviations) / (0.6745 * std::f64::consts::SQRT_2)
}

pub(crate) fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

pub(crate) fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

pub(crate) fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

pub(crate) fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_line_has_r_squared_one() {
        let points: Vec<_> = (0..10).map(|i| (i as f64, 3.0 + 2.0 * i as f64)).collect();
        let fit = least_squares(&points).unwrap();
        assert!((fit.slope - 2.0).abs() < 1e-9 && (fit.intercept - 3.0).abs() < 1e-9);
        assert!((fit.r_squared - 1.0).abs() < 1e-9);
    }

    #[test]
    fn degenerate_inputs() {
        assert!(least_squares(&[(1.0, 1.0)]).is_none());
        assert!(least_squares(&[(1.0, 1.0), (1.0, 2.0)]).is_none());
        let flat = least_squares(&[(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)]).unwrap();
        assert_eq!((flat.slope, flat.r_squared), (0.0, 0.0));
    }

    #[test]
    fn noise_ignores_trend_and_rare_drops() {
        // Fill by 1 per sample, drop by 9 every 10th: no jitter at all.
        let values: Vec<f64> = (0..100).map(|i| (i % 10) as f64).collect();
        assert_eq!(noise_sigma(&values), 0.0);
        let ramp: Vec<f64> = (0..100).map(|i| 5.0 * i as f64).collect();
        assert_eq!(noise_sigma(&ramp), 0.0);
        // Alternating +-1 around a ramp: differences are 5 +- 2.
        let jitter: Vec<f64> = (0..101)
            .map(|i| 5.0 * i as f64 + if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        assert!(noise_sigma(&jitter) > 1.0, "{}", noise_sigma(&jitter));
        assert_eq!(median(&mut [3.0, 1.0, 2.0, 10.0]), 2.5);
    }
}
