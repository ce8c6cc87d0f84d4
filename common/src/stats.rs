//! Statistics shared by the experiment analysis and the report: proportions, their comparison, multiple-testing
//! corrections, sample-ratio mismatch, Beta–Binomial posteriors and power. Distributions come from `statrs`;
//! the golden tests (`tests/golden/`) check every function here against scipy/statsmodels/mpmath to 1e-6.
//!
//! Conventions: a proportion is `successes` out of `n`; "arm" is the treatment, "control" the baseline, and a
//! difference is always `arm − control`. Functions return `None` where a statistic is undefined (no
//! customers, a zero count under a log) rather than a NaN that would leak into JSON.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};
use statrs::function::beta::ln_beta;
use statrs::function::erf::erfc;

/// A two-sided interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// The standard-normal quantile `z` with `P(Z > z) = alpha / 2` (1.959964 for α = 0.05).
pub fn z_two_sided(alpha: f64) -> f64 {
    normal().inverse_cdf(1.0 - alpha / 2.0)
}

fn normal() -> Normal {
    // Mean 0, sd 1 are valid parameters; `Normal::standard` cannot fail.
    Normal::standard()
}

/// Two-sided p-value of a standard-normal statistic, via `erfc` so tiny p-values keep their precision.
pub fn normal_two_sided_p(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0)
}

/// Wilson score interval (statsmodels `proportion_confint(method="wilson")`): unlike the Wald interval the old
/// system used, it stays inside [0, 1] and keeps its coverage at small counts and extreme rates.
pub fn wilson(successes: u64, n: u64, alpha: f64) -> Option<Interval> {
    if n == 0 || successes > n {
        return None;
    }
    let z = z_two_sided(alpha);
    let (k, n) = (successes as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    // At k = 0 (k = n) the bound is exactly 0 (1); computing it would leave a rounding residue.
    let low = if successes == 0 { 0.0 } else { (centre - half).max(0.0) };
    let high = if successes as f64 == n { 1.0 } else { (centre + half).min(1.0) };
    Some(Interval { low, high })
}

/// Result of comparing an arm with control on one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwoProportionTest {
    /// `p_arm − p_control`.
    pub diff: f64,
    /// Pooled z statistic (signed like `diff`).
    pub z: f64,
    /// Pearson chi-square of the 2×2 table (= z² without continuity correction).
    pub chi2: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Pooled two-proportion z-test, identical to the 2×2 Pearson chi-square test (scipy `chi2_contingency`):
/// without correction `chi2 = z²` and the p-values agree exactly; with `yates` the chi-square uses the
/// continuity correction (|O − E| reduced by ½, never below 0), as scipy does for one degree of freedom.
/// When both arms have all or no successes there is no evidence of a difference: p = 1.
pub fn two_proportion_test(
    k_control: u64,
    n_control: u64,
    k_arm: u64,
    n_arm: u64,
    yates: bool,
) -> Option<TwoProportionTest> {
    if n_control == 0 || n_arm == 0 || k_control > n_control || k_arm > n_arm {
        return None;
    }
    let (k1, n1, k2, n2) = (k_control as f64, n_control as f64, k_arm as f64, n_arm as f64);
    let diff = k2 / n2 - k1 / n1;
    let pooled = (k1 + k2) / (n1 + n2);
    let var = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2);
    if var <= 0.0 {
        return Some(TwoProportionTest { diff, z: 0.0, chi2: 0.0, p_value: 1.0 });
    }
    let z = diff / var.sqrt();
    if !yates {
        return Some(TwoProportionTest { diff, z, chi2: z * z, p_value: normal_two_sided_p(z) });
    }
    // Yates: in a 2×2 table every cell deviates from its expectation by the same |O − E|.
    let total = n1 + n2;
    let expected = n1 * (k1 + k2) / total;
    let dev = ((k1 - expected).abs() - 0.5).max(0.0);
    let chi2 = chi2_2x2(dev, n1, n2, k1 + k2, total - k1 - k2);
    let p_value = chi2_sf(chi2, 1.0).unwrap_or(1.0);
    Some(TwoProportionTest { diff, z, chi2, p_value })
}

/// Σ (O − E)² / E over the four cells when every cell deviates by `dev` from its expectation (the caller has
/// ruled out empty margins, so every expectation is positive).
fn chi2_2x2(dev: f64, n1: f64, n2: f64, successes: f64, failures: f64) -> f64 {
    let total = n1 + n2;
    [n1 * successes, n1 * failures, n2 * successes, n2 * failures].iter().map(|e| dev * dev * total / e).sum()
}

/// Survival function of the chi-square distribution.
pub fn chi2_sf(x: f64, df: f64) -> Option<f64> {
    if df <= 0.0 || !x.is_finite() {
        return None;
    }
    if x <= 0.0 {
        return Some(1.0);
    }
    Some(ChiSquared::new(df).ok()?.sf(x))
}

/// Newcombe's hybrid score interval for `p_arm − p_control` (method 10; statsmodels
/// `confint_proportions_2indep(method="newcomb")`), built from the two Wilson intervals.
pub fn newcombe_diff(k_control: u64, n_control: u64, k_arm: u64, n_arm: u64, alpha: f64) -> Option<Interval> {
    let c = wilson(k_control, n_control, alpha)?;
    let a = wilson(k_arm, n_arm, alpha)?;
    let p1 = k_control as f64 / n_control as f64;
    let p2 = k_arm as f64 / n_arm as f64;
    let d = p2 - p1;
    Some(Interval {
        low: d - ((p2 - a.low).powi(2) + (c.high - p1).powi(2)).sqrt(),
        high: d + ((a.high - p2).powi(2) + (p1 - c.low).powi(2)).sqrt(),
    })
}

/// Relative lift `p_arm / p_control − 1`.
pub fn lift(k_control: u64, n_control: u64, k_arm: u64, n_arm: u64) -> Option<f64> {
    if n_control == 0 || n_arm == 0 || k_control == 0 {
        return None;
    }
    Some((k_arm as f64 / n_arm as f64) / (k_control as f64 / n_control as f64) - 1.0)
}

/// CI of the relative lift from the Katz log risk-ratio interval (statsmodels
/// `confint_proportions_2indep(method="log", compare="ratio")`), minus 1. Undefined with a zero count.
pub fn lift_ci(k_control: u64, n_control: u64, k_arm: u64, n_arm: u64, alpha: f64) -> Option<Interval> {
    if k_control == 0 || k_arm == 0 || k_control > n_control || k_arm > n_arm {
        return None;
    }
    let (k1, n1, k2, n2) = (k_control as f64, n_control as f64, k_arm as f64, n_arm as f64);
    let log_rr = ((k2 / n2) / (k1 / n1)).ln();
    let se = (1.0 / k2 - 1.0 / n2 + 1.0 / k1 - 1.0 / n1).max(0.0).sqrt();
    let z = z_two_sided(alpha);
    Some(Interval { low: (log_rr - z * se).exp() - 1.0, high: (log_rr + z * se).exp() - 1.0 })
}

/// An arm against its baseline as the result tables show it: difference (Newcombe CI), relative lift (Katz
/// CI) and the two-proportion test's p-value. One place, so the experiment's results, the holdout lift and the
/// explainability groups cannot drift apart in how they compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub diff: Option<f64>,
    pub diff_ci: Option<Interval>,
    pub lift: Option<f64>,
    pub lift_ci: Option<Interval>,
    pub p_value: Option<f64>,
}

/// [`Comparison`] of `arm` against `baseline` (each `(successes, n)`).
pub fn compare(baseline: (u64, u64), arm: (u64, u64), continuity_correction: bool, alpha: f64) -> Comparison {
    let ((kc, nc), (k, n)) = (baseline, arm);
    let test = two_proportion_test(kc, nc, k, n, continuity_correction);
    Comparison {
        diff: test.map(|t| t.diff),
        diff_ci: newcombe_diff(kc, nc, k, n, alpha),
        lift: lift(kc, nc, k, n),
        lift_ci: lift_ci(kc, nc, k, n, alpha),
        p_value: test.map(|t| t.p_value),
    }
}

/// Holm step-down adjusted p-values (statsmodels `multipletests(method="holm")`), in input order.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running = 0.0_f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// Benjamini–Hochberg adjusted p-values (statsmodels `multipletests(method="fdr_bh")`), in input order.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running = 1.0_f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min((m as f64 / (rank + 1) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// One goodness-of-fit table: the statistic and the number of cells in force (non-zero expected share).
enum Table {
    /// No observations, no shares, or mismatched lengths.
    Empty,
    /// A cell with zero expected share holds observations: the mismatch is certain.
    Impossible,
    Fit {
        stat: f64,
        cells: usize,
    },
}

fn gof_table(observed: &[u64], expected_share: &[f64]) -> Table {
    let total: f64 = observed.iter().map(|&o| o as f64).sum();
    let share_sum: f64 = expected_share.iter().sum();
    if total <= 0.0 || share_sum <= 0.0 || observed.len() != expected_share.len() {
        return Table::Empty;
    }
    let (mut stat, mut cells) = (0.0, 0usize);
    for (&o, &w) in observed.iter().zip(expected_share) {
        let e = total * w / share_sum;
        if e <= 0.0 {
            if o > 0 {
                return Table::Impossible;
            }
            continue;
        }
        stat += (o as f64 - e).powi(2) / e;
        cells += 1;
    }
    Table::Fit { stat, cells }
}

/// Chi-square goodness of fit (scipy `chisquare`): observed counts against expected *shares*, scaled to the
/// observed total. Cells with a zero expected share must be empty; one that is not makes the mismatch certain
/// (p = 0). Returns (statistic, p-value); `None` without at least two cells in force or without observations.
pub fn chi2_goodness_of_fit(observed: &[u64], expected_share: &[f64]) -> Option<(f64, f64)> {
    match gof_table(observed, expected_share) {
        Table::Empty => None,
        Table::Impossible => Some((f64::INFINITY, 0.0)),
        Table::Fit { cells, .. } if cells < 2 => None,
        Table::Fit { stat, cells } => Some((stat, chi2_sf(stat, (cells - 1) as f64)?)),
    }
}

/// Chi-square test of several independent goodness-of-fit tables at once (one per stratum, e.g. segment):
/// the statistics and degrees of freedom add up. Used for SRM when weights differ per segment.
pub fn chi2_stratified(strata: &[(Vec<u64>, Vec<f64>)]) -> Option<(f64, f64)> {
    let (mut stat, mut df) = (0.0, 0usize);
    for (observed, share) in strata {
        match gof_table(observed, share) {
            Table::Empty => {}
            Table::Impossible => return Some((f64::INFINITY, 0.0)),
            Table::Fit { stat: s, cells } => {
                stat += s;
                df += cells.saturating_sub(1);
            }
        }
    }
    if df == 0 {
        return None;
    }
    Some((stat, chi2_sf(stat, df as f64)?))
}

/// Bayesian comparison of an arm with control under uniform priors: posteriors Beta(1 + k, 1 + n − k).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BetaComparison {
    /// P(p_arm > p_control).
    pub prob_beat_control: f64,
    /// E[max(p_control − p_arm, 0)]: the rate lost, in expectation, by shipping the arm.
    pub expected_loss: f64,
}

/// P(arm beats control) and the expected loss, by numeric integration of the Beta posteriors (accurate to
/// within 1e-9 of mpmath's exact sum in the golden tests; never Monte Carlo).
///
/// P(B > A) = ∫ f_B(x) F_A(x) dx and E[(A − B)⁺] = ∫ f_B(x) ∫ₓ¹ (t − x) f_A(t) dt dx. Hand-written because
/// statrs' regularized incomplete beta stops after 140 continued-fraction terms, which is not accurate for
/// the large counts of a real campaign; instead F_A and ∫ t f_A are accumulated by Gauss–Legendre over panels
/// half a standard deviation wide of either posterior, so both narrow and wide posteriors are resolved.
pub fn beta_compare(k_control: u64, n_control: u64, k_arm: u64, n_arm: u64) -> Option<BetaComparison> {
    if k_control > n_control || k_arm > n_arm {
        return None;
    }
    let a = BetaPosterior::new(k_control, n_control);
    let b = BetaPosterior::new(k_arm, n_arm);
    let grid = panel_grid(&a, &b);
    let (mut fa, mut ta) = (0.0, 0.0); // F_A and ∫ t f_A up to the panel start
    let (mut prob, mut loss) = (0.0, 0.0);
    for w in grid.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        let half = (hi - lo) / 2.0;
        for (&node, &weight) in GL_NODES.iter().zip(GL_WEIGHTS.iter()) {
            let x = lo + half * (node + 1.0);
            let fb = b.pdf(x);
            if fb == 0.0 {
                continue;
            }
            // F_A(x) and ∫_0^x t f_A(t) dt: the panel start's totals plus Gauss–Legendre on [lo, x].
            let h2 = (x - lo) / 2.0;
            let (mut fa_x, mut ta_x) = (0.0, 0.0);
            for (&n2, &w2) in GL_NODES.iter().zip(GL_WEIGHTS.iter()) {
                let t = lo + h2 * (n2 + 1.0);
                let d = a.pdf(t) * w2 * h2;
                fa_x += d;
                ta_x += t * d;
            }
            let cdf_a = (fa + fa_x).min(1.0);
            let upper_partial = (a.mean - (ta + ta_x)).max(0.0) - x * (1.0 - cdf_a);
            prob += weight * half * fb * cdf_a;
            loss += weight * half * fb * upper_partial.max(0.0);
        }
        for (&node, &weight) in GL_NODES.iter().zip(GL_WEIGHTS.iter()) {
            let t = lo + half * (node + 1.0);
            let d = a.pdf(t) * weight * half;
            fa += d;
            ta += t * d;
        }
    }
    Some(BetaComparison { prob_beat_control: prob.clamp(0.0, 1.0), expected_loss: loss.max(0.0) })
}

struct BetaPosterior {
    a: f64,
    b: f64,
    ln_norm: f64,
    mean: f64,
    sd: f64,
}

impl BetaPosterior {
    fn new(k: u64, n: u64) -> Self {
        let a = 1.0 + k as f64;
        let b = 1.0 + (n - k) as f64;
        let s = a + b;
        Self { a, b, ln_norm: ln_beta(a, b), mean: a / s, sd: (a * b / (s * s * (s + 1.0))).sqrt() }
    }
    fn pdf(&self, x: f64) -> f64 {
        if x <= 0.0 || x >= 1.0 {
            return 0.0;
        }
        ((self.a - 1.0) * x.ln() + (self.b - 1.0) * (-x).ln_1p() - self.ln_norm).exp()
    }
}

/// Panel edges: every half standard deviation of each posterior within 40 sd of its mean, clipped to [0, 1].
fn panel_grid(a: &BetaPosterior, b: &BetaPosterior) -> Vec<f64> {
    let mut grid = vec![0.0, 1.0];
    for p in [a, b] {
        for i in -80..=80 {
            let x = p.mean + f64::from(i) * 0.5 * p.sd;
            if x > 0.0 && x < 1.0 {
                grid.push(x);
            }
        }
    }
    grid.sort_by(f64::total_cmp);
    grid.dedup_by(|x, y| (*x - *y).abs() < 1e-300);
    grid
}

/// 16-point Gauss–Legendre nodes and weights on [−1, 1].
const GL_NODES: [f64; 16] = [
    -0.989_400_934_991_649_9,
    -0.944_575_023_073_232_6,
    -0.865_631_202_387_831_7,
    -0.755_404_408_355_003,
    -0.617_876_244_402_643_8,
    -0.458_016_777_657_227_4,
    -0.281_603_550_779_258_9,
    -0.095_012_509_837_637_44,
    0.095_012_509_837_637_44,
    0.281_603_550_779_258_9,
    0.458_016_777_657_227_4,
    0.617_876_244_402_643_8,
    0.755_404_408_355_003,
    0.865_631_202_387_831_7,
    0.944_575_023_073_232_6,
    0.989_400_934_991_649_9,
];
const GL_WEIGHTS: [f64; 16] = [
    0.027_152_459_411_754_09,
    0.062_253_523_938_647_89,
    0.095_158_511_682_492_78,
    0.124_628_971_255_533_9,
    0.149_595_988_816_576_7,
    0.169_156_519_395_002_5,
    0.182_603_415_044_923_6,
    0.189_450_610_455_068_5,
    0.189_450_610_455_068_5,
    0.182_603_415_044_923_6,
    0.169_156_519_395_002_5,
    0.149_595_988_816_576_7,
    0.124_628_971_255_533_9,
    0.095_158_511_682_492_78,
    0.062_253_523_938_647_89,
    0.027_152_459_411_754_09,
];

/// Minimum detectable absolute difference for two groups of `n_control` and `n_arm` at a baseline rate, with
/// the given power and two-sided α, pooled variance at the baseline:
/// MDE = (z₁₋α/₂ + z_power) · √(p(1 − p)(1/n₁ + 1/n₂)).
///
/// `None` at a baseline of 0 or 1: the pooled variance is zero there, and an MDE of 0 would read as "any
/// effect is detectable" when nothing can be said at all.
pub fn mde(baseline: f64, n_control: u64, n_arm: u64, alpha: f64, power: f64) -> Option<f64> {
    if n_control == 0 || n_arm == 0 || !(baseline > 0.0 && baseline < 1.0) || !(0.0..1.0).contains(&power) {
        return None;
    }
    let se = (baseline * (1.0 - baseline) * (1.0 / n_control as f64 + 1.0 / n_arm as f64)).sqrt();
    Some((z_two_sided(alpha) + normal().inverse_cdf(power)) * se)
}

/// Power of the two-sided pooled z-test to detect an absolute difference `diff` at a baseline rate
/// (both tails counted).
pub fn power(baseline: f64, diff: f64, n_control: u64, n_arm: u64, alpha: f64) -> Option<f64> {
    if n_control == 0 || n_arm == 0 || !(0.0..=1.0).contains(&baseline) {
        return None;
    }
    let se = (baseline * (1.0 - baseline) * (1.0 / n_control as f64 + 1.0 / n_arm as f64)).sqrt();
    if se <= 0.0 {
        return None;
    }
    let z = z_two_sided(alpha);
    let shift = diff.abs() / se;
    let nd = normal();
    Some(nd.cdf(shift - z) + nd.cdf(-shift - z))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi2_equals_z_squared_without_correction() {
        let t = two_proportion_test(120, 1000, 150, 1000, false).unwrap();
        assert!((t.chi2 - t.z * t.z).abs() < 1e-12);
        let y = two_proportion_test(120, 1000, 150, 1000, true).unwrap();
        assert!(y.p_value > t.p_value, "continuity correction is conservative");
    }

    #[test]
    fn wilson_stays_in_unit_interval() {
        let i = wilson(0, 10, 0.05).unwrap();
        assert_eq!(i.low, 0.0);
        assert!(i.high > 0.2 && i.high < 0.35);
        assert!(wilson(0, 0, 0.05).is_none());
    }

    #[test]
    fn identical_arms_are_a_coin_flip() {
        let c = beta_compare(50, 1000, 50, 1000).unwrap();
        assert!((c.prob_beat_control - 0.5).abs() < 1e-9, "{c:?}");
        let big = beta_compare(100_000, 1_000_000, 101_000, 1_000_000).unwrap();
        assert!(big.prob_beat_control > 0.99, "{big:?}");
    }

    #[test]
    fn corrections_are_monotone_and_bounded() {
        let p = [0.01, 0.04, 0.03, 0.5];
        let h = holm(&p);
        let b = benjamini_hochberg(&p);
        for i in 0..p.len() {
            assert!(h[i] >= p[i] && h[i] <= 1.0 && b[i] >= p[i] && b[i] <= h[i] + 1e-15);
        }
        assert!((h[0] - 0.04).abs() < 1e-15);
    }

    #[test]
    fn mde_is_undefined_without_events() {
        assert_eq!(mde(0.0, 1000, 1000, 0.05, 0.8), None);
        assert_eq!(mde(1.0, 1000, 1000, 0.05, 0.8), None);
        assert!(mde(0.01, 1000, 1000, 0.05, 0.8).is_some_and(|m| m > 0.0));
    }
}

/// One stratum (a week) of an arm-vs-control comparison: `(successes, n)` of the control, then of the arm.
pub type Stratum = ((u64, u64), (u64, u64));

/// Mantel–Haenszel risk difference `arm − control` over strata (weeks), with a 1−α Wald interval.
///
/// Each stratum's difference is weighted by `n_control · n_arm / (n_control + n_arm)`, so a week counts by its
/// size and its balance and the comparison is only ever made *within* a week. When the split between arms
/// changes from week to week and the base rate changes too, pooling the weeks' counts first compares a
/// mostly-one-week control with a mostly-other-week arm and can reverse the sign (Simpson's paradox;
/// docs/experiment.md, "Pooling weeks"). Variance: Σ wₖ² vₖ / (Σ wₖ)² with vₖ the stratum's unpooled
/// binomial variance of the difference. Strata with an empty arm or control carry no information and are
/// skipped; `None` when none is left.
pub fn mantel_haenszel_diff(strata: &[Stratum], alpha: f64) -> Option<(f64, Interval)> {
    let (mut sw, mut swd, mut swwv) = (0.0, 0.0, 0.0);
    for &((kc, nc), (ka, na)) in strata {
        if nc == 0 || na == 0 || kc > nc || ka > na {
            continue;
        }
        let (pc, pa) = (kc as f64 / nc as f64, ka as f64 / na as f64);
        let w = (nc as f64 * na as f64) / (nc + na) as f64;
        let v = pc * (1.0 - pc) / nc as f64 + pa * (1.0 - pa) / na as f64;
        sw += w;
        swd += w * (pa - pc);
        swwv += w * w * v;
    }
    if sw <= 0.0 {
        return None;
    }
    let d = swd / sw;
    let half = z_two_sided(alpha) * swwv.sqrt() / sw;
    Some((d, Interval { low: d - half, high: d + half }))
}

/// The naive difference of pooled counts (all strata summed first): shown only to warn against it.
pub fn pooled_diff(strata: &[Stratum]) -> Option<f64> {
    let (mut kc, mut nc, mut ka, mut na) = (0u64, 0u64, 0u64, 0u64);
    for &((a, b), (c, d)) in strata {
        kc += a;
        nc += b;
        ka += c;
        na += d;
    }
    (nc > 0 && na > 0).then(|| ka as f64 / na as f64 - kc as f64 / nc as f64)
}

#[cfg(test)]
mod stratified_tests {
    use super::*;

    /// docs/experiment.md, "Pooling weeks": the tone beats control in each week, yet the pooled counts say
    /// it loses, because it got most of its customers in the low-rate week.
    #[test]
    fn stratified_pooling_survives_simpsons_paradox_and_naive_pooling_does_not() {
        let weeks: [Stratum; 2] = [((500, 5000), (550, 5000)), ((50, 2500), (180, 7500))];
        let naive = pooled_diff(&weeks).unwrap();
        assert!((naive - (730.0 / 12500.0 - 550.0 / 7500.0)).abs() < 1e-12);
        assert!(naive < -0.014, "naive pooling says the tone loses: {naive}");
        let (d, ci) = mantel_haenszel_diff(&weeks, 0.05).unwrap();
        // (2500 × 0.01 + 1875 × 0.004) / 4375
        assert!((d - 32.5 / 4375.0).abs() < 1e-12, "{d}");
        assert!(d > 0.0 && ci.low < d && d < ci.high);
        // One stratum: the plain difference.
        let (d1, _) = mantel_haenszel_diff(&weeks[..1], 0.05).unwrap();
        assert!((d1 - 0.01).abs() < 1e-12);
        assert_eq!(mantel_haenszel_diff(&[((0, 0), (3, 10))], 0.05), None);
    }
}
