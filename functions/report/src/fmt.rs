//! How figures are written, once for the HTML, the Markdown and the summary sentence, so the same number
//! reads the same everywhere (the tests compare them across the three outputs).

use cpo_common::model::experiment::Metric;

/// Shown for a figure that does not apply (e.g. the lift of the control).
pub const NA: &str = "–";

/// Decimals for a figure in percent: one from 1% up, else two significant digits (at most four decimals), so
/// small rates stay apart (`0.31%` vs `0.27%`, never `0.3%` vs `0.3%`).
fn decimals(percent: f64) -> usize {
    let a = percent.abs();
    if a >= 1.0 || a == 0.0 {
        1
    } else {
        ((1.0 - a.log10().floor()) as usize).min(4)
    }
}

/// `0.1234` → `12.3%`, `0.0031` → `0.31%`.
pub fn pct(x: f64) -> String {
    if x.is_finite() {
        let v = x * 100.0;
        format!("{v:.d$}%", d = decimals(v))
    } else {
        NA.into()
    }
}

/// Relative change with a sign: `0.052` → `+5.2%`.
pub fn signed_pct(x: f64) -> String {
    if x.is_finite() {
        let v = x * 100.0;
        format!("{v:+.d$}%", d = decimals(v))
    } else {
        NA.into()
    }
}

/// Absolute difference of two rates in percentage points: `0.012` → `+1.2 pp`, `0.00034` → `+0.034 pp`.
pub fn pp(x: f64) -> String {
    if x.is_finite() {
        let v = x * 100.0;
        format!("{v:+.d$} pp", d = decimals(v))
    } else {
        NA.into()
    }
}

/// A p-value for a sentence: no `<` (a Markdown reader would see it escaped), `p below 0.0001`.
pub fn pvalue_words(p: f64) -> String {
    if p.is_finite() && p < 0.0001 {
        "p below 0.0001".into()
    } else {
        format!("p = {}", pvalue(p))
    }
}

/// A probability for a sentence: `more than 99.9%`, `less than 0.1%`.
pub fn prob_words(p: f64) -> String {
    if !p.is_finite() {
        NA.into()
    } else if p > 0.999 {
        "more than 99.9%".into()
    } else if p < 0.001 {
        "less than 0.1%".into()
    } else {
        format!("{:.1}%", p * 100.0)
    }
}

/// A timestamp to the second (`2026-11-25 09:00:03 UTC`), not to the nanosecond.
pub fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Axis ticks at round numbers covering `[lo, hi]`: a step of 1, 2, 2.5 or 5 × 10ⁿ giving about `target`
/// intervals, and the domain widened to whole steps. Returns (ticks, step).
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let span = if hi > lo && (hi - lo).is_finite() { hi - lo } else { 1.0 };
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().map(|m| m * mag).find(|s| *s >= raw * 0.8).unwrap_or(10.0 * mag);
    let start = (lo / step + 1e-9).floor();
    let end = (hi / step - 1e-9).ceil();
    let ticks = (0..=((end - start) as i64).max(1))
        .map(|i| (start + i as f64) * step)
        .map(|v| if v.abs() < step * 1e-9 { 0.0 } else { v })
        .collect();
    (ticks, step)
}

/// A tick label in percent with just the decimals `step` needs (`2%`, `0.5%`, `0.25%`).
pub fn tick_pct(v: f64, step: f64) -> String {
    let d = tick_decimals(step * 100.0);
    format!("{:.d$}%", v * 100.0)
}

/// A tick label in percentage points (`+1 pp`, `-0.5 pp`, `0 pp`).
pub fn tick_pp(v: f64, step: f64) -> String {
    let d = tick_decimals(step * 100.0);
    if v == 0.0 {
        "0 pp".into()
    } else {
        format!("{:+.d$} pp", v * 100.0)
    }
}

fn tick_decimals(step: f64) -> usize {
    (0..6).find(|d| ((step * 10f64.powi(*d as i32)).round() - step * 10f64.powi(*d as i32)).abs() < 1e-6).unwrap_or(6)
}

/// A p-value with the precision a reader can act on.
pub fn pvalue(p: f64) -> String {
    if !p.is_finite() {
        NA.into()
    } else if p < 0.0001 {
        "< 0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

/// A probability as a percentage, never claiming certainty it does not have.
pub fn prob(p: f64) -> String {
    if !p.is_finite() {
        NA.into()
    } else if p > 0.999 {
        "> 99.9%".into()
    } else if p < 0.001 {
        "< 0.1%".into()
    } else {
        format!("{:.1}%", p * 100.0)
    }
}

/// Integer with thousands separators: `1234567` → `1,234,567`.
pub fn int(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A plain decimal with `digits` places.
pub fn fixed(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        NA.into()
    }
}

/// US dollars: cents for large amounts, more places for the fractions of a cent LLM calls cost.
pub fn usd(x: f64) -> String {
    if !x.is_finite() {
        NA.into()
    } else if x == 0.0 || x >= 1.0 {
        format!("${x:.2}")
    } else {
        format!("${x:.4}")
    }
}

/// A duration: `850` → `850 ms`, `12_345` → `12.3 s`, `125_000` → `2 min 5 s`.
pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A figure of unknown meaning: numbers with at most four decimals, text as is, null as [`NA`].
pub fn figure(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => NA.into(),
        serde_json::Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if x != 0.0 && x.abs() < 0.0001 {
                format!("{x:.3e}")
            } else {
                let s = format!("{x:.4}");
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            }
        }
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A human name for a metric value of the analysis (one definition: [`Metric::label`]).
pub fn metric_name(metric: &str) -> String {
    Metric::parse(metric).map(|m| m.label().to_string()).unwrap_or_else(|| format!("{metric} rate"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        // The old axis of 0..11.5% in quarters: 2.9%, 5.8%, 8.6%.
        let (t, step) = nice_ticks(0.0, 0.115, 4);
        assert_eq!(step, 0.025);
        assert_eq!(
            t.iter().map(|v| tick_pct(*v, step)).collect::<Vec<_>>(),
            ["0.0%", "2.5%", "5.0%", "7.5%", "10.0%", "12.5%"]
        );
        let (t, step) = nice_ticks(-0.013, 0.013, 4);
        assert_eq!(
            t.iter().map(|v| tick_pp(*v, step)).collect::<Vec<_>>(),
            ["-2 pp", "-1 pp", "0 pp", "+1 pp", "+2 pp"]
        );
        let (t, step) = nice_ticks(0.0, 0.0036, 4);
        assert_eq!(t.iter().map(|v| tick_pct(*v, step)).collect::<Vec<_>>(), ["0.0%", "0.1%", "0.2%", "0.3%", "0.4%"]);
        let (t, _) = nice_ticks(0.0, 1234.0, 4);
        assert_eq!(t, [0.0, 250.0, 500.0, 750.0, 1000.0, 1250.0]);
    }

    #[test]
    fn formats() {
        assert_eq!(pct(0.1234), "12.3%");
        assert_eq!(signed_pct(0.052), "+5.2%");
        assert_eq!(signed_pct(-0.05), "-5.0%");
        assert_eq!(pp(0.012), "+1.2 pp");
        // Small rates keep two significant digits.
        assert_eq!(pct(0.0031), "0.31%");
        assert_eq!(pct(0.0027), "0.27%");
        assert_eq!(pct(0.0), "0.0%");
        assert_eq!(pp(0.00034), "+0.034 pp");
        assert_eq!(pp(-0.0012), "-0.12 pp");
        assert_eq!(signed_pct(0.113), "+11.3%");
        assert_eq!(pvalue_words(0.00001), "p below 0.0001");
        assert_eq!(prob_words(0.9999), "more than 99.9%");
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T09:00:03.123456789Z").unwrap().to_utc();
        assert_eq!(time(&t), "2026-11-25 09:00:03 UTC");
        assert_eq!(pvalue(0.00001), "< 0.0001");
        assert_eq!(pvalue(0.04321), "0.0432");
        assert_eq!(prob(0.9999), "> 99.9%");
        assert_eq!(prob(0.5), "50.0%");
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(1234567), "1,234,567");
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(0.01234), "$0.0123");
        assert_eq!(usd(12.5), "$12.50");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(12_345), "12.3 s");
        assert_eq!(duration_ms(125_000), "2 min 5 s");
        assert_eq!(pct(f64::NAN), NA);
        assert_eq!(figure(&serde_json::json!(0.123456)), "0.1235");
        assert_eq!(figure(&serde_json::json!(0.5)), "0.5");
        assert_eq!(figure(&serde_json::json!(0.00001234)), "1.234e-5");
        assert_eq!(figure(&serde_json::json!(7)), "7");
        assert_eq!(figure(&serde_json::json!("a<b")), "a<b");
        assert_eq!(figure(&serde_json::Value::Null), NA);
    }
}
