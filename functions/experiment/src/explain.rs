//! Explainability: the primary metric's rate, and each arm's lift against control, by customer attribute the
//! members carry (tier, location, age band, historical engagement band, any other low-cardinality column).
//! Computed here from the customer-level parts so the report only ever sees aggregates of groups of at least
//! [`MIN_GROUP`] customers. See `docs/experiment.md` ("Explainability").

use std::collections::{BTreeMap, HashMap};

use cpo_common::config::Experiment;
use cpo_common::keys::{Key, RunKeys};
use cpo_common::model::experiment::{AttributeRow, Explain};
use cpo_common::{stats, StepError, Store};

use crate::counts::METRICS;
use crate::ingest::{outcomes_part, read_outcomes_part};
use crate::member::{AssignmentRef, JsonLines, MemberRef};
use crate::parts::list_parts;
use crate::plan::{Plan, CONTROL, HOLDOUT};

/// Smallest group shown: smaller groups are pooled into "other" (and dropped if still smaller), so no row of
/// the report describes a handful of identifiable customers, and no rate rests on a few events.
pub const MIN_GROUP: u64 = 100;
/// A column with more distinct values than this is not a grouping attribute (an id, a free-text field).
const MAX_DISTINCT: usize = 30;
/// Carried columns that hold personal data or identifiers: never grouped on.
const PERSONAL: [&str; 9] = ["name", "email", "phone", "address", "zip", "postal", "birth", "id", "ip"];
/// Number of strongest differences named in the findings.
const FINDINGS: usize = 3;

/// (customers, customers with the event).
type Tally = (u64, u64);

/// Raw counts per column: the column's raw value (or numeric bin) → arm → tally.
#[derive(Default)]
struct Column {
    values: BTreeMap<String, BTreeMap<String, Tally>>,
    too_many: bool,
}

fn personal(column: &str) -> bool {
    let c = column.to_ascii_lowercase();
    c.split(|ch: char| !ch.is_ascii_alphanumeric()).any(|w| PERSONAL.contains(&w))
}

fn age_band(v: &str) -> Option<&'static str> {
    let age: f64 = v.trim().parse().ok().filter(|a: &f64| a.is_finite() && *a >= 0.0 && *a < 130.0)?;
    Some(match age as u32 {
        0..=24 => "under 25",
        25..=34 => "25–34",
        35..=44 => "35–44",
        45..=54 => "45–54",
        55..=64 => "55–64",
        _ => "65 and over",
    })
}

/// A historical rate in [0, 1] as a bin of 0.1 percentage point (the engagement bands are cut afterwards, at
/// the terciles of the whole file).
fn rate_bin(v: &str) -> Option<u32> {
    let x: f64 = v.trim().parse().ok().filter(|x: &f64| (0.0..=1.0).contains(x))?;
    Some((x * 1000.0).round() as u32)
}

fn is_rate_column(c: &str) -> bool {
    let c = c.to_ascii_lowercase();
    c.starts_with("historical_") && c.ends_with("_rate")
}

/// The explain section of `analysis.json`, or `None` when the members carry no usable attribute (or the
/// parts do not pair up, which the analysis does not need and so does not fail on).
pub async fn explain(
    store: &dyn Store,
    keys: &RunKeys,
    cfg: &Experiment,
    plan: &Plan,
) -> Result<Option<Explain>, StepError> {
    let members = list_parts(store, &keys.members_prefix(), "members-", ".jsonl").await?;
    let assignments = list_parts(store, &keys.assignments_prefix(), "part-", ".jsonl").await?;
    if members.is_empty() || members.len() != assignments.len() {
        return Ok(None);
    }
    let Some(bit) = METRICS.iter().find(|(m, _)| *m == cfg.primary_metric).map(|(_, e)| e.bit()) else {
        return Ok(None);
    };
    // Parts are tallied on every core, a batch of parts at a time (so memory stays a few parts), and merged in
    // part order; sums and distinct counts do not depend on the order, so the result is the sequential one.
    let width = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pairs: Vec<_> = members.iter().zip(&assignments).enumerate().collect();
    let mut columns: BTreeMap<String, Column> = BTreeMap::new();
    for batch in pairs.chunks(width) {
        let mut loaded = Vec::with_capacity(batch.len());
        for &(i, (mkey, akey)) in batch {
            let (m, a) = futures::try_join!(store.get(mkey), store.get(akey))?;
            let flags = read_outcomes_part(store, &outcomes_part(keys, i)).await?;
            loaded.push((i, mkey, akey, m, a, flags));
        }
        let tallies: Vec<Result<Option<BTreeMap<String, Column>>, StepError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = loaded
                .iter()
                .map(|(i, mkey, akey, m, a, flags)| scope.spawn(move || tally_part(*i, mkey, akey, m, a, flags, bit)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|_| Err(StepError::internal("explain: a tally worker panicked"))))
                .collect()
        });
        for tally in tallies {
            match tally? {
                Some(part) => merge(&mut columns, part),
                None => return Ok(None),
            }
        }
    }
    let mut skipped = Vec::new();
    let mut groups: Vec<(String, String, BTreeMap<String, Tally>)> = Vec::new();
    for (name, col) in columns {
        if col.too_many {
            skipped.push(format!("{name}: more than {MAX_DISTINCT} distinct values"));
            continue;
        }
        let banded = if is_rate_column(&name) { tercile_bands(&name, col.values) } else { (name.clone(), col.values) };
        let (attribute, values) = banded;
        groups.extend(pool_small(values).into_iter().map(|(v, arms)| (attribute.clone(), v, arms)));
    }
    if groups.is_empty() {
        return Ok(None);
    }
    Ok(Some(build(cfg, plan, groups, skipped)))
}

/// One part's tallies by column (None when its members and assignments do not pair up).
fn tally_part(
    i: usize,
    mkey: &Key,
    akey: &Key,
    m: &[u8],
    a: &[u8],
    flags: &HashMap<String, u8>,
    bit: u8,
) -> Result<Option<BTreeMap<String, Column>>, StepError> {
    let mut columns: BTreeMap<String, Column> = BTreeMap::new();
    let (mut ml, mut al) = (JsonLines::new(mkey, m)?, JsonLines::new(akey, a)?);
    loop {
        let (member, assignment) = match (ml.next_row::<MemberRef<'_>>(), al.next_row::<AssignmentRef<'_>>()) {
            (Some(m), Some(a)) => (m?, a?),
            (None, None) => break,
            _ => {
                tracing::warn!(part = i, "members and assignments parts differ in length: no explain section");
                return Ok(None);
            }
        };
        if member.customer_id != assignment.customer_id {
            tracing::warn!(part = i, "members and assignments parts are not in the same order: no explain section");
            return Ok(None);
        }
        let arm = assignment.arm.as_str();
        if arm == HOLDOUT {
            continue;
        }
        let hit = flags.get(member.customer_id.as_str()).is_some_and(|f| f & bit != 0);
        for (name, value) in &member.fields.0 {
            let (name, value) = (name.as_str(), value.as_str().trim());
            if value.is_empty() || personal(name) {
                continue;
            }
            // Borrowed keys, allocated only the first time a column, group or arm is seen: this loop
            // runs once per customer and carried column.
            let bin: String;
            let (attribute, group): (&str, &str) = if name.eq_ignore_ascii_case("age") {
                match age_band(value) {
                    Some(b) => ("age band", b),
                    None => continue,
                }
            } else if is_rate_column(name) {
                match rate_bin(value) {
                    Some(b) => {
                        bin = format!("{b:04}");
                        (name, bin.as_str())
                    }
                    None => continue,
                }
            } else {
                (name, value)
            };
            if !columns.contains_key(attribute) {
                columns.insert(attribute.to_string(), Column::default());
            }
            let Some(col) = columns.get_mut(attribute) else { continue };
            if col.too_many {
                continue;
            }
            if !col.values.contains_key(group) {
                if col.values.len() >= MAX_DISTINCT && !is_rate_column(name) {
                    col.too_many = true;
                    col.values.clear();
                    continue;
                }
                col.values.insert(group.to_string(), BTreeMap::new());
            }
            let Some(arms) = col.values.get_mut(group) else { continue };
            if !arms.contains_key(arm) {
                arms.insert(arm.to_string(), (0, 0));
            }
            let Some(t) = arms.get_mut(arm) else { continue };
            t.0 += 1;
            t.1 += u64::from(hit);
        }
    }
    Ok(Some(columns))
}

/// Adds one part's tallies; a column with more than [`MAX_DISTINCT`] values in all is not an attribute.
fn merge(into: &mut BTreeMap<String, Column>, part: BTreeMap<String, Column>) {
    for (name, col) in part {
        let into_col = into.entry(name.clone()).or_default();
        if into_col.too_many || col.too_many {
            into_col.too_many = true;
            into_col.values.clear();
            continue;
        }
        for (group, arms) in col.values {
            let into_arms = into_col.values.entry(group).or_default();
            for (arm, (n, hits)) in arms {
                let t = into_arms.entry(arm).or_insert((0, 0));
                t.0 += n;
                t.1 += hits;
            }
        }
        if into_col.values.len() > MAX_DISTINCT && !is_rate_column(&name) {
            into_col.too_many = true;
            into_col.values.clear();
        }
    }
}

/// `historical_open_rate` bins → three bands cut at the terciles of the customers' values ("low (under 2.5%)",
/// "medium (2.5%–4%)", "high (4% and over)"); fewer bands when the values are concentrated.
fn tercile_bands(
    name: &str,
    bins: BTreeMap<String, BTreeMap<String, Tally>>,
) -> (String, BTreeMap<String, BTreeMap<String, Tally>>) {
    let attribute = format!("{} band", name.to_ascii_lowercase().replace('_', " "));
    let parsed: Vec<(u32, BTreeMap<String, Tally>)> =
        bins.into_iter().filter_map(|(b, arms)| b.parse::<u32>().ok().map(|b| (b, arms))).collect();
    let total: u64 = parsed.iter().flat_map(|(_, a)| a.values()).map(|t| t.0).sum();
    let mut cuts: Vec<u32> = Vec::new();
    let mut seen = 0u64;
    for (b, arms) in &parsed {
        let before = seen;
        seen += arms.values().map(|t| t.0).sum::<u64>();
        for q in [1u64, 2] {
            // The first bin at which a third (two thirds) of the customers are reached starts the next band.
            if before * 3 < q * total && seen * 3 >= q * total && !cuts.contains(&(b + 1)) {
                cuts.push(b + 1);
            }
        }
    }
    let max = parsed.last().map(|(b, _)| *b + 1).unwrap_or(0);
    cuts.retain(|c| *c < max);
    cuts.dedup();
    let p = |b: u32| {
        let x = f64::from(b) / 10.0;
        if x.fract() == 0.0 {
            format!("{x:.0}%")
        } else {
            format!("{x}%")
        }
    };
    let label = |b: u32| -> String {
        let i = cuts.iter().filter(|c| b >= **c).count();
        let names: &[&str] = match cuts.len() {
            0 => &["all"],
            1 => &["low", "high"],
            _ => &["low", "medium", "high"],
        };
        let range = match (i.checked_sub(1).map(|j| cuts[j]), cuts.get(i)) {
            (None, Some(hi)) => format!("under {}", p(*hi)),
            (Some(lo), Some(hi)) => format!("{}–{}", p(lo), p(*hi)),
            (Some(lo), None) => format!("{} and over", p(lo)),
            (None, None) => "any".into(),
        };
        format!("{}: {} ({range})", i + 1, names[i.min(names.len() - 1)])
    };
    let mut out: BTreeMap<String, BTreeMap<String, Tally>> = BTreeMap::new();
    for (b, arms) in parsed {
        let slot = out.entry(label(b)).or_default();
        for (arm, t) in arms {
            let s = slot.entry(arm).or_default();
            s.0 += t.0;
            s.1 += t.1;
        }
    }
    (attribute, out)
}

/// Groups below [`MIN_GROUP`] customers pooled into "other"; "other" dropped when still below it.
fn pool_small(values: BTreeMap<String, BTreeMap<String, Tally>>) -> Vec<(String, BTreeMap<String, Tally>)> {
    let size = |arms: &BTreeMap<String, Tally>| arms.values().map(|t| t.0).sum::<u64>();
    let mut out = Vec::new();
    let mut other: BTreeMap<String, Tally> = BTreeMap::new();
    for (v, arms) in values {
        if size(&arms) >= MIN_GROUP {
            out.push((v, arms));
        } else {
            for (arm, t) in arms {
                let s = other.entry(arm).or_default();
                s.0 += t.0;
                s.1 += t.1;
            }
        }
    }
    if size(&other) >= MIN_GROUP {
        out.push(("other".into(), other));
    }
    // Nothing to compare with a single group.
    if out.len() < 2 {
        out.clear();
    }
    out
}

fn build(
    cfg: &Experiment,
    plan: &Plan,
    groups: Vec<(String, String, BTreeMap<String, Tally>)>,
    skipped: Vec<String>,
) -> Explain {
    let mut rows = Vec::new();
    for (attribute, value, arms) in &groups {
        let control = arms.get(CONTROL).copied();
        let ordered = plan.arm_order.iter().filter(|a| arms.contains_key(*a));
        for arm in ordered {
            let (n, k) = arms[arm];
            let ci = stats::wilson(k, n, cfg.alpha);
            let mut row = AttributeRow {
                attribute: attribute.clone(),
                value: value.clone(),
                arm: arm.clone(),
                n,
                successes: k,
                rate: if n > 0 { k as f64 / n as f64 } else { 0.0 },
                ci_low: ci.map(|i| i.low).unwrap_or(0.0),
                ci_high: ci.map(|i| i.high).unwrap_or(0.0),
                control_rate: control.filter(|c| c.0 > 0).map(|c| c.1 as f64 / c.0 as f64),
                diff: None,
                diff_ci_low: None,
                diff_ci_high: None,
                lift: None,
                p_value: None,
                p_bh: None,
            };
            if let Some((nc, kc)) = control.filter(|_| arm != CONTROL) {
                if nc > 0 && kc + k > 0 {
                    let c = stats::compare((kc, nc), (k, n), cfg.continuity_correction, cfg.alpha);
                    row.diff = c.diff;
                    row.p_value = c.p_value;
                    row.diff_ci_low = c.diff_ci.map(|i| i.low);
                    row.diff_ci_high = c.diff_ci.map(|i| i.high);
                    row.lift = c.lift;
                }
            }
            rows.push(row);
        }
    }
    let family: Vec<usize> = rows.iter().enumerate().filter(|(_, r)| r.p_value.is_some()).map(|(i, _)| i).collect();
    let p: Vec<f64> = family.iter().filter_map(|&i| rows[i].p_value).collect();
    for (&i, b) in family.iter().zip(stats::benjamini_hochberg(&p)) {
        rows[i].p_bh = Some(b);
    }
    let findings = findings(cfg, &groups, &rows);
    Explain { metric: cfg.primary_metric, min_group: MIN_GROUP, rows, skipped, findings }
}

fn pct(x: f64) -> String {
    if x.abs() < 0.01 {
        format!("{:.2}%", x * 100.0)
    } else {
        format!("{:.1}%", x * 100.0)
    }
}

/// Plain sentences: which attribute goes with the metric most (all arms pooled), then the strongest
/// arm-vs-control differences that survive Benjamini–Hochberg.
fn findings(
    cfg: &Experiment,
    groups: &[(String, String, BTreeMap<String, Tally>)],
    rows: &[AttributeRow],
) -> Vec<String> {
    let metric = cfg.primary_metric.label();
    let mut out = Vec::new();
    // Spread of the pooled rate within each attribute: highest vs lowest group.
    let mut spreads: Vec<(f64, String)> = Vec::new();
    let mut by_attr: BTreeMap<&str, Vec<(&str, f64)>> = BTreeMap::new();
    for (attribute, value, arms) in groups {
        let (n, k) = arms.values().fold((0, 0), |a, t| (a.0 + t.0, a.1 + t.1));
        if n > 0 {
            by_attr.entry(attribute).or_default().push((value, k as f64 / n as f64));
        }
    }
    for (attribute, vals) in &by_attr {
        let hi = vals.iter().max_by(|a, b| a.1.total_cmp(&b.1));
        let lo = vals.iter().min_by(|a, b| a.1.total_cmp(&b.1));
        if let (Some(hi), Some(lo)) = (hi, lo) {
            if hi.1 > lo.1 && lo.1 > 0.0 {
                spreads.push((
                    hi.1 / lo.1,
                    format!(
                        "By {attribute}, the {metric} is highest for “{}” at {} and lowest for “{}” at {}, all messages together.",
                        hi.0,
                        pct(hi.1),
                        lo.0,
                        pct(lo.1)
                    ),
                ));
            }
        }
    }
    spreads.sort_by(|a, b| b.0.total_cmp(&a.0));
    out.extend(spreads.into_iter().take(2).map(|(_, s)| s));
    let mut significant: Vec<&AttributeRow> = rows.iter().filter(|r| r.p_bh.is_some_and(|p| p < cfg.alpha)).collect();
    significant.sort_by(|a, b| b.diff.unwrap_or(0.0).abs().total_cmp(&a.diff.unwrap_or(0.0).abs()));
    for r in significant.iter().take(FINDINGS) {
        let (d, c) = (r.diff.unwrap_or(0.0), r.control_rate.unwrap_or(0.0));
        out.push(format!(
            "For {} “{}”, {} {} the {metric} against control: {} vs {}{}, BH-adjusted p {}.",
            r.attribute,
            r.value,
            r.arm,
            if d >= 0.0 { "raised" } else { "lowered" },
            pct(r.rate),
            pct(c),
            r.lift.map(|l| format!(", {:+.0}% relative", l * 100.0)).unwrap_or_default(),
            r.p_bh.map(|p| if p < 0.0001 { "below 0.0001".to_string() } else { format!("{p:.4}") }).unwrap_or_default(),
        ));
    }
    if significant.is_empty() {
        out.push(
            "No difference between a message and control within any attribute group survives the \
             Benjamini–Hochberg correction."
                .into(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_columns_are_never_grouped() {
        for c in ["first_name", "email", "customer_id", "Phone", "postal_code", "date_of_birth", "last-name"] {
            assert!(personal(c), "{c}");
        }
        for c in ["tier", "location", "age", "historical_open_rate", "region", "video"] {
            assert!(!personal(c), "{c}");
        }
    }

    #[test]
    fn age_bands_and_rate_bins() {
        assert_eq!(age_band("29"), Some("25–34"));
        assert_eq!(age_band("70"), Some("65 and over"));
        assert_eq!(age_band("x"), None);
        assert_eq!(rate_bin("0.031"), Some(31));
        assert_eq!(rate_bin("1.5"), None);
    }

    #[test]
    fn small_groups_are_pooled_or_dropped() {
        let g = |n: u64| BTreeMap::from([(CONTROL.to_string(), (n, 1))]);
        let v = BTreeMap::from([("a".to_string(), g(500)), ("b".to_string(), g(60)), ("c".to_string(), g(50))]);
        let out = pool_small(v);
        assert_eq!(out.iter().map(|(v, _)| v.as_str()).collect::<Vec<_>>(), ["a", "other"]);
        let v = BTreeMap::from([("a".to_string(), g(500)), ("b".to_string(), g(10))]);
        assert!(pool_small(v).is_empty(), "one group left: nothing to compare");
    }

    #[test]
    fn tercile_bands_cover_every_bin_in_order() {
        let mut bins = BTreeMap::new();
        for b in 0..90u32 {
            bins.insert(format!("{b:04}"), BTreeMap::from([(CONTROL.to_string(), (10u64, 1u64))]));
        }
        let (name, bands) = tercile_bands("historical_open_rate", bins);
        assert_eq!(name, "historical open rate band");
        let labels: Vec<&String> = bands.keys().collect();
        assert_eq!(labels.len(), 3, "{labels:?}");
        assert!(labels[0].starts_with("1: low (under 3%)"), "{labels:?}");
        assert!(labels[2].contains("and over"), "{labels:?}");
        assert_eq!(bands.values().flat_map(|a| a.values()).map(|t| t.0).sum::<u64>(), 900);
    }
}
