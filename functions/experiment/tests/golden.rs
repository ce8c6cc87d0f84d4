//! `common/src/stats.rs` against values computed independently by scipy, statsmodels and mpmath
//! (`tests/golden/make_stats_golden.py` → `tests/golden/stats.json`), to 1e-6.

use cpo_common::stats;
use serde_json::Value;

const TOL: f64 = 1e-6;

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden/stats.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(what: &str, case: &Value, got: f64, want: &Value) {
    let want = f(want);
    assert!((got - want).abs() <= TOL, "{what}: got {got}, scipy/statsmodels {want} (case {case})");
}

#[test]
fn two_proportion_statistics_match() {
    let g = golden();
    let alpha = f(&g["alpha"]);
    let power = f(&g["power"]);
    close("z(0.975)", &g["z_0975"], stats::z_two_sided(alpha), &g["z_0975"]);
    let pairs = g["pairs"].as_array().unwrap();
    assert!(pairs.len() >= 8);
    for c in pairs {
        let u = |k: &str| c[k].as_u64().unwrap();
        let (kc, nc, k, n) = (u("kc"), u("nc"), u("k"), u("n"));
        let w = stats::wilson(k, n, alpha).unwrap();
        close("wilson low", c, w.low, &c["wilson_arm"][0]);
        close("wilson high", c, w.high, &c["wilson_arm"][1]);
        let w = stats::wilson(kc, nc, alpha).unwrap();
        close("wilson control low", c, w.low, &c["wilson_control"][0]);
        close("wilson control high", c, w.high, &c["wilson_control"][1]);
        let t = stats::two_proportion_test(kc, nc, k, n, false).unwrap();
        close("diff", c, t.diff, &c["diff"]);
        close("p_value", c, t.p_value, &c["p_value"]);
        let y = stats::two_proportion_test(kc, nc, k, n, true).unwrap();
        close("p_value yates", c, y.p_value, &c["p_value_yates"]);
        let d = stats::newcombe_diff(kc, nc, k, n, alpha).unwrap();
        close("newcombe low", c, d.low, &c["newcombe"][0]);
        close("newcombe high", c, d.high, &c["newcombe"][1]);
        match c.get("lift") {
            Some(l) => close("lift", c, stats::lift(kc, nc, k, n).unwrap(), l),
            None => assert!(stats::lift(kc, nc, k, n).is_none()),
        }
        match c.get("lift_ci") {
            Some(l) => {
                let i = stats::lift_ci(kc, nc, k, n, alpha).unwrap();
                close("lift ci low", c, i.low, &l[0]);
                close("lift ci high", c, i.high, &l[1]);
            }
            None => assert!(stats::lift_ci(kc, nc, k, n, alpha).is_none()),
        }
        let b = stats::beta_compare(kc, nc, k, n).unwrap();
        close("prob_beat_control", c, b.prob_beat_control, &c["prob_beat_control"]);
        close("expected_loss", c, b.expected_loss, &c["expected_loss"]);
        let base = kc as f64 / nc as f64;
        if base > 0.0 && base < 1.0 {
            close("mde", c, stats::mde(base, nc, n, alpha, power).unwrap(), &c["mde"]);
        } else {
            // No variance at a baseline of 0 or 1: the MDE is undefined rather than 0.
            assert_eq!(stats::mde(base, nc, n, alpha, power), None, "{c}");
        }
        if let Some(p) = c.get("power") {
            close("power", c, stats::power(base, f(&c["diff"]), nc, n, alpha).unwrap(), p);
        }
    }
}

#[test]
fn multiple_testing_corrections_match() {
    let g = golden();
    for fam in g["families"].as_array().unwrap() {
        let p: Vec<f64> = fam["p"].as_array().unwrap().iter().map(f).collect();
        for (i, (h, b)) in stats::holm(&p).into_iter().zip(stats::benjamini_hochberg(&p)).enumerate() {
            close("holm", fam, h, &fam["holm"][i]);
            close("bh", fam, b, &fam["bh"][i]);
        }
    }
}

#[test]
fn srm_goodness_of_fit_matches() {
    let g = golden();
    for c in g["srm"].as_array().unwrap() {
        let obs: Vec<u64> = c["observed"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        let share: Vec<f64> = c["share"].as_array().unwrap().iter().map(f).collect();
        let (stat, p) = stats::chi2_goodness_of_fit(&obs, &share).unwrap();
        close("srm statistic", c, stat, &c["statistic"]);
        close("srm p", c, p, &c["p_value"]);
        // One stratum of the stratified test is the plain test.
        let (s2, p2) = stats::chi2_stratified(&[(obs, share)]).unwrap();
        assert!((s2 - stat).abs() < 1e-12 && (p2 - p).abs() < 1e-12);
    }
}
