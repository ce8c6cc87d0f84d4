//! Segment profiles for `segments.json`: sizes, shares, means and medians, the typical tier/location, and a
//! plain-language description the generator and the report can use. Aggregates only — no customer appears.

use std::collections::BTreeMap;

use cpo_common::model::segment::SegmentProfile;

use crate::table::{Table, NO_CAT};

/// A typical value is only reported when at least this many customers of the segment share it.
const MIN_TYPICAL_COUNT: u64 = 5;

/// `segment[i]` = final segment of row i (`u8::MAX` = rejected); `scores[i]` = [R, F, M].
pub fn profiles(
    t: &Table,
    typical_names: &[String],
    segment: &[u8],
    scores: &[[u8; 3]],
    names: &[String],
    merged_from: &[Vec<String>],
    bins: u8,
) -> Vec<SegmentProfile> {
    let k = names.len();
    let mut size = vec![0u64; k];
    for &s in segment {
        if (s as usize) < k {
            size[s as usize] += 1;
        }
    }
    // Rows grouped by segment (counting sort), for exact medians per segment.
    let mut start = vec![0usize; k + 1];
    for i in 0..k {
        start[i + 1] = start[i] + size[i] as usize;
    }
    let mut fill = start.clone();
    let mut order = vec![0u32; start[k]];
    for (i, &s) in segment.iter().enumerate() {
        if (s as usize) < k {
            order[fill[s as usize]] = i as u32;
            fill[s as usize] += 1;
        }
    }
    let total: u64 = size.iter().sum();
    let spend_total: f64 = order.iter().map(|&i| t.values[i as usize][2]).sum();
    // Segments are independent: one per thread while cores are free.
    let one = |s: usize| -> Option<SegmentProfile> {
        if size[s] == 0 {
            return None;
        }
        let mut scratch: Vec<f64> = Vec::new();
        let rows = &order[start[s]..start[s + 1]];
        let n = rows.len() as f64;
        let mut score_mean = [0.0; 3];
        let mut score_median = [0.0; 3];
        let mut value_median = [0.0; 3];
        for d in 0..3 {
            scratch.clear();
            scratch.extend(rows.iter().map(|&i| scores[i as usize][d] as f64));
            score_mean[d] = scratch.iter().sum::<f64>() / n;
            score_median[d] = median(&mut scratch);
            scratch.clear();
            scratch.extend(rows.iter().map(|&i| t.values[i as usize][d]));
            value_median[d] = median(&mut scratch);
        }
        let spend: f64 = rows.iter().map(|&i| t.values[i as usize][2]).sum();
        let mut typical = BTreeMap::new();
        for (c, col) in typical_names.iter().enumerate() {
            let mut counts = vec![0u64; t.dicts[c].len()];
            for &i in rows {
                let code = t.cats[c][i as usize];
                if code != NO_CAT {
                    counts[code as usize] += 1;
                }
            }
            // Most common value; ties go to the value seen first in the file.
            if let Some((code, &cnt)) = counts.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0))) {
                if cnt >= MIN_TYPICAL_COUNT {
                    typical.insert(col.to_ascii_lowercase(), t.dicts[c][code].clone());
                }
            }
        }
        let share = size[s] as f64 / total as f64;
        let spend_share = if spend_total > 0.0 { spend / spend_total } else { 0.0 };
        let mut p = SegmentProfile {
            name: names[s].clone(),
            slug: cpo_common::keys::slug(&names[s]),
            size: size[s],
            share,
            r_mean: score_mean[0],
            f_mean: score_mean[1],
            m_mean: score_mean[2],
            r_median: score_median[0],
            f_median: score_median[1],
            m_median: score_median[2],
            recency_median_days: value_median[0],
            frequency_median: value_median[1],
            monetary_median: value_median[2],
            spend_share,
            typical,
            description: String::new(),
            merged_from: merged_from[s].clone(),
        };
        p.description = describe(&p, bins);
        Some(p)
    };
    crate::par::map(k, one).into_iter().flatten().collect()
}

/// Median as pandas computes it (mean of the two middle values for an even count).
fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    let (_, hi, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let hi = *hi;
    if n % 2 == 1 {
        return hi;
    }
    let lo = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo + hi) / 2.0
}

fn level(score: f64, bins: u8, words: [&'static str; 5]) -> &'static str {
    let x = (score - 1.0) / (bins as f64 - 1.0).max(1.0);
    words[((x * 5.0).floor() as usize).min(4)]
}

fn num(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.2}")
    }
}

/// One paragraph in plain words: who they are, how they buy, what to do.
pub fn describe(p: &SegmentProfile, bins: u8) -> String {
    let recency =
        level(p.r_mean, bins, ["a long time ago", "some time ago", "a while ago", "recently", "very recently"]);
    let frequency = level(p.f_mean, bins, ["rarely", "occasionally", "now and then", "often", "very often"]);
    let spend = level(p.m_mean, bins, ["the least", "below average", "about average", "above average", "the most"]);
    let intent = match p.name.as_str() {
        "Champions" => "Our best customers: reward them, ask for reviews, offer early access.",
        "Loyal" => "Steady, valuable buyers: recommend more of what they like and keep them close.",
        "Potential Loyalist" => "Recent buyers with a few orders: invite them into the membership and build the habit.",
        "New" => "Just made a first purchase: welcome them and help them get started.",
        "Promising" => "Recent but infrequent: give them a reason to come back soon.",
        "Need Attention" => "Middle of the road and drifting: a timely, relevant offer can lift them.",
        "About to Sleep" => "Fading interest: remind them what they liked before it is too late.",
        "At Risk" => "Used to buy often but have not come back: win them back with something personal.",
        "Can't Lose" => "Once among the most frequent buyers, now gone quiet: reach out before they are lost.",
        "Hibernating" => "Long inactive, low engagement: a light-touch reminder, no pressure.",
        _ => "",
    };
    let mut s = format!(
        "{} customers ({:.1}% of customers, {:.1}% of spend). They last engaged {recency} (median {} days), buy \
         {frequency} (median {} purchases) and spend {spend} (median {} in total).",
        p.size,
        100.0 * p.share,
        100.0 * p.spend_share,
        num(p.recency_median_days),
        num(p.frequency_median),
        num(p.monetary_median)
    );
    let typical: Vec<String> = p.typical.iter().map(|(k, v)| format!("{k} {v}")).collect();
    if !typical.is_empty() {
        s.push_str(&format!(" Typically {}.", typical.join(", ")));
    }
    if !intent.is_empty() {
        s.push(' ');
        s.push_str(intent);
    }
    if !p.merged_from.is_empty() {
        s.push_str(&format!(" Includes the small segment(s) {} merged in.", p.merged_from.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_like_pandas() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn profile_of_a_small_table() {
        let mut t = Table::new(1);
        for i in 0..10 {
            t.push(i + 2, &format!("C{i}"), [i as f64, 1.0, 10.0], 0, &[if i < 7 { "Gold" } else { "Silver" }]);
        }
        let seg = vec![0u8; 10];
        let scores = vec![[5u8, 4, 3]; 10];
        let p = profiles(&t, &["Tier".into()], &seg, &scores, &["Champions".into()], &[vec![]], 5);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].size, 10);
        assert_eq!(p[0].recency_median_days, 4.5);
        assert_eq!(p[0].typical["tier"], "Gold");
        assert!(p[0].description.contains("very recently") && p[0].description.contains("100.0% of spend"));
        assert!(!p[0].description.contains("C1"));
    }
}
