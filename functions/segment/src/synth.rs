//! Synthetic customers in the old system's CSV schema plus `first_name` and `email`: skewed like real retail
//! data (a few frequent, big spenders; a long tail of one-off buyers; recency tied to frequency), unique
//! ids, deterministic per seed, and streamed row by row so ten million rows need no memory beyond a buffer.
//!
//! The log-normal and exponential draws are written here (Box–Muller, inverse CDF) rather than pulling in
//! `rand_distr` for two one-line formulas.

use std::io::{self, Write};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const HEADER: &str = "customer_id,age,location,tier,purchase_frequency,avg_order_value,last_engagement_days,\
historical_open_rate,historical_click_rate,first_name,email";

const CITIES: [(&str, u32); 12] = [
    ("New York", 16),
    ("Los Angeles", 12),
    ("Chicago", 10),
    ("Houston", 9),
    ("Phoenix", 7),
    ("Philadelphia", 7),
    ("San Antonio", 6),
    ("San Diego", 6),
    ("Dallas", 7),
    ("Seattle", 8),
    ("Denver", 6),
    ("Boston", 6),
];

const NAMES: [&str; 48] = [
    "Ava",
    "Ben",
    "Chloe",
    "Daniel",
    "Ella",
    "Finn",
    "Grace",
    "Henry",
    "Isla",
    "Jack",
    "Kai",
    "Leah",
    "Mason",
    "Nora",
    "Owen",
    "Priya",
    "Quinn",
    "Ruby",
    "Sam",
    "Tara",
    "Uma",
    "Victor",
    "Willow",
    "Xavier",
    "Yara",
    "Zane",
    "Amir",
    "Bianca",
    "Carlos",
    "Dara",
    "Emeka",
    "Fatima",
    "Goran",
    "Hana",
    "Ines",
    "Jonas",
    "Kenji",
    "Lucia",
    "Mateo",
    "Nadia",
    "Oskar",
    "Paula",
    "Rosa",
    "Sofia",
    "Tomas",
    "Valentina",
    "Wei",
    "Yusuf",
];

/// Generator state: one RNG stream, so the same seed gives the same file.
pub struct Synth {
    rng: StdRng,
    next: u64,
    city_total: u32,
}

impl Synth {
    pub fn new(seed: u64) -> Self {
        Synth { rng: StdRng::seed_from_u64(seed), next: 1, city_total: CITIES.iter().map(|c| c.1).sum() }
    }

    fn normal(&mut self) -> f64 {
        let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Append the next customer's CSV row (with a final newline) to `out`.
    pub fn row(&mut self, out: &mut Vec<u8>) {
        let n = self.next;
        self.next += 1;
        // Engagement propensity drives frequency, recency and email behaviour together.
        let z = self.normal();
        let frequency = ((0.9 * z + 1.6).exp()).round().clamp(1.0, 150.0) as u64;
        let aov_cents = ((0.55 * self.normal() + 4.3).exp() * 100.0).round().clamp(500.0, 500_000.0) as u64;
        let mean_gap = 240.0 / (frequency as f64).sqrt();
        let u: f64 = self.rng.random::<f64>().max(1e-12);
        let recency = (-mean_gap * u.ln()).round().min(730.0) as u64;
        let spend = frequency * aov_cents;
        let tier = match spend + self.rng.random_range(0..40_000) {
            s if s > 250_000 => "Gold",
            s if s > 80_000 => "Silver",
            _ => "Bronze",
        };
        let mut pick = self.rng.random_range(0..self.city_total);
        let city = CITIES
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map(|c| c.0)
            .unwrap_or(CITIES[0].0);
        let age = (38.0 + 12.0 * self.normal()).round().clamp(18.0, 90.0) as u64;
        let open = (0.28 + 0.08 * z - recency as f64 / 2000.0 + 0.05 * self.normal()).clamp(0.02, 0.9);
        let click = (open * (0.22 + 0.06 * self.normal())).clamp(0.0, open);
        let name = NAMES[self.rng.random_range(0..NAMES.len())];
        let domain = ["example.com", "example.net", "example.org"][(n % 3) as usize];
        let _ = writeln!(
            out,
            "C{n:08},{age},{city},{tier},{frequency},{}.{:02},{recency},{:.2},{:.3},{name},{}.{n}@{domain}",
            aov_cents / 100,
            aov_cents % 100,
            open,
            click,
            name.to_ascii_lowercase(),
        );
    }
}

/// Write the header and `n` customers to `w`, in chunks.
pub fn write_customers<W: Write>(n: u64, seed: u64, mut w: W) -> io::Result<()> {
    let mut s = Synth::new(seed);
    let mut buf = Vec::with_capacity(1 << 20);
    buf.extend_from_slice(HEADER.as_bytes());
    buf.push(b'\n');
    for _ in 0..n {
        s.row(&mut buf);
        if buf.len() >= (1 << 20) - 256 {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)?;
    w.flush()
}

/// `n` customers as one CSV in memory (tests and benches).
pub fn customers_csv(n: u64, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_customers(n, seed, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_unique_and_skewed() {
        let a = customers_csv(5000, 7);
        assert_eq!(a, customers_csv(5000, 7));
        assert_ne!(a, customers_csv(5000, 8));
        let text = String::from_utf8(a).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(HEADER));
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 5000);
        let ids: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[0]).collect();
        assert_eq!(ids.len(), 5000);
        let mut spend: Vec<f64> =
            rows.iter().map(|r| r[4].parse::<f64>().unwrap() * r[5].parse::<f64>().unwrap()).collect();
        spend.sort_by(f64::total_cmp);
        let total: f64 = spend.iter().sum();
        let top: f64 = spend[4000..].iter().sum();
        assert!(top / total > 0.5, "top 20% hold {:.2} of spend", top / total);
        assert!(rows.iter().all(|r| r.len() == 11 && r[10].contains('@')));
    }
}
