//! Rank-based trend statistics: the Mann–Kendall test and the Theil–Sen
//! slope with its distribution-free confidence interval.
//!
//! Why rank-based: a server's memory does not grow in a straight line. A
//! hash table that doubles sits flat for tens of seconds between steps, a
//! bounded cache saws between fill and evict, and the allocator adds
//! jitter. Least squares over such a series gives a slope whose R² says
//! more about the shape than about growth. Mann–Kendall asks only "do later
//! values tend to exceed earlier ones?" (a monotone trend of any shape), and
//! Theil–Sen's slope (the median of all pairwise slopes) is unmoved by up
//! to 29% of wild points. Both come with a confidence that can be stated in
//! the evidence.
//!
//! Both tests assume independent observations; memory samples taken every
//! 250 ms are not. [`blocks`] aggregates them into windows first, which is
//! the usual remedy (and what the live verdict does).

/// The outcome of [`mann_kendall`] on one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Points tested.
    pub n: usize,
    /// Kendall's S: concordant minus discordant pairs.
    pub s: i64,
    /// S's variance under "no trend", corrected for ties.
    pub var_s: f64,
    /// S standardised with a continuity correction.
    pub z: f64,
    /// One-sided p-value of "increasing": the chance of an S at least this
    /// large from a series with no trend.
    pub p_increasing: f64,
    /// Kendall's tau-a, S over the number of pairs, in [-1, 1].
    pub tau: f64,
    /// Theil–Sen slope: the median pairwise slope (y units per x unit).
    pub slope: f64,
    /// Lower and upper bounds of the slope's confidence interval at the
    /// confidence passed in (Sen 1968, from S's variance).
    pub slope_low: f64,
    pub slope_high: f64,
}

/// Mann–Kendall on `(x, y)` points in x order, with a Theil–Sen slope and
/// its two-sided `confidence` interval (e.g. 0.99). None for fewer than 4
/// points or no spread in x.
///
/// O(n²) pairs: meant for tens to a few hundred aggregated points, not raw
/// samples of a long run (see [`blocks`]).
pub fn mann_kendall(points: &[(f64, f64)], confidence: f64) -> Option<Trend> {
    let n = points.len();
    if n < 4 || points.iter().any(|p| !p.0.is_finite() || !p.1.is_finite()) {
        return None;
    }
    let mut s: i64 = 0;
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            s += sign(b.1 - a.1);
            let dx = b.0 - a.0;
            if dx != 0.0 {
                slopes.push((b.1 - a.1) / dx);
            }
        }
    }
    if slopes.is_empty() {
        return None;
    }
    let var_s = variance_of_s(points);
    let z = if var_s <= 0.0 {
        0.0
    } else if s > 0 {
        (s as f64 - 1.0) / var_s.sqrt()
    } else if s < 0 {
        (s as f64 + 1.0) / var_s.sqrt()
    } else {
        0.0
    };
    slopes.sort_by(f64::total_cmp);
    let m = slopes.len();
    let slope = median_sorted(&slopes);
    // Sen's interval: ranks (N - C)/2 and (N + C)/2 + 1 of the sorted
    // slopes, where C = z(1 - α/2) · sqrt(Var S).
    let c = normal_quantile(0.5 + confidence / 2.0) * var_s.sqrt();
    let low_rank = ((m as f64 - c) / 2.0).floor();
    let high_rank = ((m as f64 + c) / 2.0).ceil() + 1.0;
    let at = |rank: f64| slopes[(rank.max(1.0) as usize - 1).min(m - 1)];
    Some(Trend {
        n,
        s,
        var_s,
        z,
        p_increasing: upper_tail(z),
        tau: s as f64 / (n * (n - 1) / 2) as f64,
        slope,
        slope_low: if low_rank < 1.0 {
            f64::NEG_INFINITY
        } else {
            at(low_rank)
        },
        slope_high: if high_rank > m as f64 {
            f64::INFINITY
        } else {
            at(high_rank)
        },
    })
}

/// Aggregates `(t, y)` samples into consecutive windows of `width` (in t
/// units) starting at the first sample: one `(window midpoint, max y)` per
/// window that holds a sample. The maximum, not the mean: a sawtooth's
/// peaks are what a limit sees, and they repeat for a bounded cache.
pub fn blocks(points: &[(f64, f64)], width: f64) -> Vec<(f64, f64)> {
    let Some(&(t0, _)) = points.first() else {
        return Vec::new();
    };
    if width <= 0.0 {
        return points.to_vec();
    }
    let mut out: Vec<(f64, f64)> = Vec::new();
    let mut current: Option<(u64, f64)> = None;
    for &(t, y) in points {
        let k = ((t - t0) / width).floor().max(0.0) as u64;
        current = match current {
            Some((ck, m)) if ck == k => Some((ck, m.max(y))),
            Some((ck, m)) => {
                out.push((t0 + (ck as f64 + 0.5) * width, m));
                Some((k, y))
            }
            None => Some((k, y)),
        };
    }
    if let Some((ck, m)) = current {
        out.push((t0 + (ck as f64 + 0.5) * width, m));
    }
    out
}

/// Like [`blocks`], but each window gives the sample where its maximum is,
/// not the window's midpoint. For a slope against a count (bytes per login)
/// the midpoint would move each peak by up to half a window along x, and
/// logins arrive unevenly, so the slope would be off by a few percent even
/// for an exactly linear leak; the peak's own x keeps it exact.
pub fn peak_points(points: &[(f64, f64)], width: f64) -> Vec<(f64, f64)> {
    let Some(&(x0, _)) = points.first() else {
        return Vec::new();
    };
    if width <= 0.0 {
        return points.to_vec();
    }
    let mut out: Vec<(u64, (f64, f64))> = Vec::new();
    for &(x, y) in points {
        let k = ((x - x0) / width).floor().max(0.0) as u64;
        match out.last_mut() {
            Some((ck, peak)) if *ck == k => {
                if y >= peak.1 {
                    *peak = (x, y);
                }
            }
            _ => out.push((k, (x, y))),
        }
    }
    out.into_iter().map(|(_, p)| p).collect()
}

fn sign(d: f64) -> i64 {
    if d > 0.0 {
        1
    } else if d < 0.0 {
        -1
    } else {
        0
    }
}

/// Var(S) = [n(n−1)(2n+5) − Σ t(t−1)(2t+5)] / 18 over groups of t tied y.
fn variance_of_s(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mut ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    ys.sort_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut run = 1.0;
    for w in ys.windows(2) {
        if w[0] == w[1] {
            run += 1.0;
        } else {
            ties += run * (run - 1.0) * (2.0 * run + 5.0);
            run = 1.0;
        }
    }
    ties += run * (run - 1.0) * (2.0 * run + 5.0);
    (n * (n - 1.0) * (2.0 * n + 5.0) - ties) / 18.0
}

fn median_sorted(v: &[f64]) -> f64 {
    let m = v.len();
    if m % 2 == 1 {
        v[m / 2]
    } else {
        (v[m / 2 - 1] + v[m / 2]) / 2.0
    }
}

/// P(Z > z) for a standard normal Z.
fn upper_tail(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// The standard normal quantile, by bisection on [`upper_tail`]: exact to
/// 1e-12 and only ever called once per test, so no rational approximation.
fn normal_quantile(p: f64) -> f64 {
    let p = p.clamp(1e-15, 1.0 - 1e-15);
    let (mut lo, mut hi) = (-40.0_f64, 40.0_f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if 1.0 - upper_tail(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..n).map(|i| (i as f64, f(i as f64))).collect()
    }

    /// A deterministic noise source (xorshift) so the tests are repeatable.
    fn noise(seed: u64) -> impl FnMut() -> f64 {
        let mut x = seed.max(1);
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2_000_001) as f64 / 1_000_000.0 - 1.0
        }
    }

    #[test]
    fn quantiles_match_tables() {
        assert!((normal_quantile(0.975) - 1.959964).abs() < 1e-5);
        assert!((normal_quantile(0.995) - 2.575829).abs() < 1e-5);
        assert!((upper_tail(1.644854) - 0.05).abs() < 1e-6);
    }

    #[test]
    fn a_straight_line_is_a_certain_trend_with_its_exact_slope() {
        let t = mann_kendall(&series(20, |x| 3.0 * x + 7.0), 0.99).unwrap();
        assert_eq!(t.s, 190);
        assert_eq!(t.tau, 1.0);
        assert_eq!(t.slope, 3.0);
        assert_eq!((t.slope_low, t.slope_high), (3.0, 3.0));
        assert!(t.p_increasing < 1e-8, "{t:?}");
    }

    #[test]
    fn textbook_example() {
        // Hand-checked: 10 values, S = 1+... computed by pairs below.
        let y = [1.0, 2.3, 3.1, 4.5, 5.2, 6.8, 7.1, 8.9, 9.5, 10.2];
        let pts: Vec<_> = y.iter().enumerate().map(|(i, v)| (i as f64, *v)).collect();
        let t = mann_kendall(&pts, 0.95).unwrap();
        assert_eq!(t.s, 45);
        assert!((t.var_s - 125.0).abs() < 1e-9);
        assert!((t.z - 44.0 / 125f64.sqrt()).abs() < 1e-12);
        assert!(t.p_increasing < 0.001);
    }

    #[test]
    fn ties_shrink_the_variance() {
        let flat_steps = series(12, |x| (x / 4.0).floor());
        let t = mann_kendall(&flat_steps, 0.95).unwrap();
        // Three groups of four ties: 3 · 4·3·13 = 468 off 12·11·29 = 3828.
        assert!((t.var_s - (3828.0 - 468.0) / 18.0).abs() < 1e-9);
        assert_eq!(t.s, 48, "16 pairs per step pair, 3 step pairs");
    }

    #[test]
    fn pure_noise_shows_no_trend() {
        let mut r = noise(42);
        let pts = series(60, |_| 0.0)
            .into_iter()
            .map(|(x, _)| (x, r()))
            .collect::<Vec<_>>();
        let t = mann_kendall(&pts, 0.99).unwrap();
        assert!(t.p_increasing > 0.01, "{t:?}");
        assert!(t.slope_low <= 0.0 && t.slope_high >= 0.0, "{t:?}");
    }

    #[test]
    fn a_slow_rise_under_noise_is_found_and_bracketed() {
        let mut r = noise(7);
        let pts: Vec<_> = (0..80).map(|i| (i as f64, 0.05 * i as f64 + r())).collect();
        let t = mann_kendall(&pts, 0.99).unwrap();
        assert!(t.p_increasing < 1e-4, "{t:?}");
        assert!(
            t.slope_low > 0.0 && t.slope_low <= 0.05 && t.slope_high >= 0.05,
            "{t:?}"
        );
    }

    #[test]
    fn a_falling_series_is_not_increasing() {
        let t = mann_kendall(&series(10, |x| -x), 0.95).unwrap();
        assert!(t.p_increasing > 0.999);
        assert_eq!(t.slope, -1.0);
    }

    #[test]
    fn outliers_do_not_move_the_slope() {
        let mut pts = series(30, |x| 2.0 * x);
        pts[5].1 = 1e9;
        pts[20].1 = -1e9;
        let t = mann_kendall(&pts, 0.95).unwrap();
        assert_eq!(t.slope, 2.0);
    }

    #[test]
    fn too_few_or_degenerate_points_give_none() {
        assert!(mann_kendall(&series(3, |x| x), 0.95).is_none());
        assert!(mann_kendall(&[(1.0, 1.0); 6], 0.95).is_none());
        assert!(
            mann_kendall(&[(0.0, f64::NAN), (1.0, 1.0), (2.0, 2.0), (3.0, 3.0)], 0.95).is_none()
        );
    }

    #[test]
    fn blocks_keep_each_windows_peak() {
        let pts: Vec<_> = (0..10).map(|i| (i as f64 * 0.25, i as f64)).collect();
        assert_eq!(blocks(&pts, 1.0), vec![(0.5, 3.0), (1.5, 7.0), (2.5, 9.0)]);
        assert!(blocks(&[], 1.0).is_empty());
        // Uneven x, exactly linear y: the peaks keep their own x.
        let uneven = [
            (0.0, 0.0),
            (0.2, 0.4),
            (0.9, 1.8),
            (1.1, 2.2),
            (1.3, 2.6),
            (2.95, 5.9),
        ];
        assert_eq!(
            peak_points(&uneven, 1.0),
            vec![(0.9, 1.8), (1.3, 2.6), (2.95, 5.9)]
        );
        // A 64 KiB-per-login leak sampled at uneven login counts.
        let logins: Vec<f64> = (0..40)
            .map(|i| (i * i % 37) as f64 + 40.0 * i as f64)
            .collect();
        let pairs: Vec<(f64, f64)> = logins.iter().map(|&l| (l, 2e7 + l * 65536.0)).collect();
        let exact = mann_kendall(&peak_points(&pairs, 160.0), 0.99).unwrap();
        assert!((exact.slope - 65536.0).abs() < 1e-6, "{}", exact.slope);
        let midpoints = mann_kendall(&blocks(&pairs, 160.0), 0.99).unwrap();
        assert!(
            (midpoints.slope - 65536.0).abs() > 30.0,
            "{}",
            midpoints.slope
        );
        assert!(peak_points(&[], 1.0).is_empty());
    }

    #[test]
    fn a_sawtooth_in_blocks_longer_than_its_period_is_flat() {
        // Fill over 2 s, evict to half, repeat: peaks repeat.
        let pts: Vec<_> = (0..400)
            .map(|i| {
                let t = i as f64 * 0.25;
                (t, 100.0 + 50.0 * ((t % 2.0) / 2.0))
            })
            .collect();
        let t = mann_kendall(&blocks(&pts, 4.0), 0.99).unwrap();
        assert!(t.p_increasing > 0.01, "{t:?}");
    }
}
