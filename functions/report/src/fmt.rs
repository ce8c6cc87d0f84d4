//! How figures are written, once for the HTML, the Markdown and the summary sentence, so the same number
//! reads the same everywhere (the tests compare them across the three outputs).

/// Shown for a figure that does not apply (e.g. the lift of the control).
pub const NA: &str = "–";

/// `0.1234` → `12.3%`.
pub fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}%", x * 100.0)
    } else {
        NA.into()
    }
}

/// Relative change with a sign: `0.052` → `+5.2%`.
pub fn signed_pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:+.1}%", x * 100.0)
    } else {
        NA.into()
    }
}

/// Absolute difference of two rates in percentage points: `0.012` → `+1.2 pp`.
pub fn pp(x: f64) -> String {
    if x.is_finite() {
        format!("{:+.1} pp", x * 100.0)
    } else {
        NA.into()
    }
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

/// A human name for a metric value of the analysis.
pub fn metric_name(metric: &str) -> String {
    match metric {
        "open" => "open rate".into(),
        "click" => "click rate".into(),
        "convert" | "conversion" => "conversion rate".into(),
        "unsubscribe" => "unsubscribe rate".into(),
        other => format!("{other} rate"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(pct(0.1234), "12.3%");
        assert_eq!(signed_pct(0.052), "+5.2%");
        assert_eq!(signed_pct(-0.05), "-5.0%");
        assert_eq!(pp(0.012), "+1.2 pp");
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
