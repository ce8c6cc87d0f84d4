//! Which file we were given: CSV or JSON lines, aggregate customer rows or transactions, and where each
//! column we need sits. Decided once from the header (or the first JSON object) so every later pass, and
//! every shard, reads rows the same way.

use cpo_common::config::Segmentation;
use cpo_common::{pii, StepError};

/// Aggregate rows (the old system's schema) or one row per order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Customers,
    Transactions,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Customers => "customers",
            Format::Transactions => "transactions",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Csv,
    Jsonl,
}

/// Canonical columns of the aggregate format.
pub const CUSTOMER_COLUMNS: [&str; 4] =
    ["customer_id", "purchase_frequency", "avg_order_value", "last_engagement_days"];
/// Canonical columns of the transactions format (`currency` is optional).
pub const TRANSACTION_COLUMNS: [&str; 3] = ["customer_id", "order_date", "amount"];
const OPTIONAL_COLUMNS: [&str; 1] = ["currency"];
/// Carried columns summarised as the "typical" value of a segment (categorical, not identifying).
pub const TYPICAL_COLUMNS: [&str; 5] = ["tier", "location", "region", "country", "channel"];

/// Column positions of the required fields.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Fields {
    Customers { frequency: usize, aov: usize, recency: usize },
    Transactions { date: usize, amount: usize, currency: Option<usize> },
}

/// Everything needed to read a row of this file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layout {
    pub encoding: Encoding,
    /// Header names as written in the file (trimmed).
    pub header: Vec<String>,
    pub id: usize,
    pub fields: Fields,
    /// Columns copied to `Member.fields` (everything not consumed above).
    pub carried: Vec<usize>,
    /// Carried columns whose most common value a profile reports.
    pub typical: Vec<usize>,
}

/// The error for a header without the columns a format needs: its names when every cell looks like a column
/// name (at most [`pii::MAX_INPUT_CHARS`] characters of them); when some cell does not, the line is likely the
/// first customer of a file without a header, and no message may quote it.
fn header_error(file: &str, problem: String, header: &[String]) -> StepError {
    match pii::column_list(header) {
        Some(names) => StepError::input(format!(
            "{file}: line 1: {problem}; header is [{names}] — rename the columns or map them with \
             segmentation.columns"
        )),
        None => StepError::input(format!(
            "{file}: line 1 does not look like a header: some of its {} cells look like customer data (not quoted \
             here); the file needs a header line naming its columns ({problem}; other names can be mapped with \
             segmentation.columns)",
            header.len()
        )),
    }
}

impl Layout {
    pub fn format(&self) -> Format {
        match self.fields {
            Fields::Customers { .. } => Format::Customers,
            Fields::Transactions { .. } => Format::Transactions,
        }
    }

    /// Resolve the header against the config (`columns` mapping, `format`); `file` names the input in errors.
    pub fn resolve(
        file: &str,
        encoding: Encoding,
        header: Vec<String>,
        cfg: &Segmentation,
    ) -> Result<Layout, StepError> {
        let known: Vec<&str> =
            CUSTOMER_COLUMNS.iter().chain(&TRANSACTION_COLUMNS).chain(&OPTIONAL_COLUMNS).copied().collect();
        for canonical in cfg.columns.keys() {
            if !known.contains(&canonical.as_str()) {
                return Err(StepError::input(format!(
                    "segmentation.columns: unknown column {canonical:?} (known: {})",
                    known.join(", ")
                )));
            }
        }
        let find = |canonical: &str| -> Option<usize> {
            let wanted = cfg.columns.get(canonical).map(String::as_str).unwrap_or(canonical);
            header.iter().position(|h| h.trim().eq_ignore_ascii_case(wanted.trim()))
        };
        let missing = |cols: &[&str]| -> Vec<String> {
            cols.iter()
                .filter(|c| find(c).is_none())
                .map(|c| match cfg.columns.get(*c) {
                    Some(h) => format!("{c} (mapped to {h:?})"),
                    None => c.to_string(),
                })
                .collect()
        };
        let format = match cfg.format.as_str() {
            "customers" => Format::Customers,
            "transactions" => Format::Transactions,
            "auto" | "" => {
                if missing(&CUSTOMER_COLUMNS).is_empty() {
                    Format::Customers
                } else if missing(&TRANSACTION_COLUMNS).is_empty() {
                    Format::Transactions
                } else {
                    let problem = format!(
                        "the header has neither the customers columns (missing: {}) nor the transactions columns \
                         (missing: {})",
                        missing(&CUSTOMER_COLUMNS).join(", "),
                        missing(&TRANSACTION_COLUMNS).join(", "),
                    );
                    return Err(header_error(file, problem, &header));
                }
            }
            other => {
                return Err(StepError::input(format!(
                    "segmentation.format: {other:?} is not one of auto, customers, transactions"
                )))
            }
        };
        let required: &[&str] = match format {
            Format::Customers => &CUSTOMER_COLUMNS,
            Format::Transactions => &TRANSACTION_COLUMNS,
        };
        let absent = missing(required);
        if !absent.is_empty() {
            let problem = format!("header is missing required {} column(s): {}", format.name(), absent.join(", "));
            return Err(header_error(file, problem, &header));
        }
        // `find` succeeded for every required column just above.
        let at = |c: &str| find(c).unwrap_or(usize::MAX);
        let id = at("customer_id");
        let fields = match format {
            Format::Customers => Fields::Customers {
                frequency: at("purchase_frequency"),
                aov: at("avg_order_value"),
                recency: at("last_engagement_days"),
            },
            Format::Transactions => {
                Fields::Transactions { date: at("order_date"), amount: at("amount"), currency: find("currency") }
            }
        };
        let used: Vec<usize> = match &fields {
            Fields::Customers { frequency, aov, recency } => vec![id, *frequency, *aov, *recency],
            Fields::Transactions { date, amount, currency } => {
                let mut v = vec![id, *date, *amount];
                v.extend(currency);
                v
            }
        };
        let mut seen = std::collections::BTreeSet::new();
        for (i, h) in header.iter().enumerate() {
            if !h.trim().is_empty() && !seen.insert(h.trim().to_ascii_lowercase()) && used.contains(&i) {
                let h = pii::excerpt(h.trim(), 40);
                return Err(StepError::input(format!("{file}: line 1: column {h:?} appears more than once")));
            }
        }
        let carried: Vec<usize> =
            (0..header.len()).filter(|i| !used.contains(i) && !header[*i].trim().is_empty()).collect();
        let typical = carried
            .iter()
            .copied()
            .filter(|i| TYPICAL_COLUMNS.iter().any(|t| header[*i].trim().eq_ignore_ascii_case(t)))
            .collect();
        let header = header.into_iter().map(|h| h.trim().to_string()).collect();
        Ok(Layout { encoding, header, id, fields, carried, typical })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<String> {
        s.split(',').map(String::from).collect()
    }

    #[test]
    fn detects_formats_and_carried_columns() {
        let cfg = Segmentation::default();
        let l = Layout::resolve(
            "f",
            Encoding::Csv,
            h("customer_id,age,location,tier,purchase_frequency,avg_order_value,last_engagement_days"),
            &cfg,
        )
        .unwrap();
        assert_eq!(l.format(), Format::Customers);
        assert_eq!(l.carried, vec![1, 2, 3]);
        assert_eq!(l.typical, vec![2, 3]);
        let t = Layout::resolve("f", Encoding::Csv, h("Customer_ID,order_date,amount,currency,email"), &cfg).unwrap();
        assert_eq!(t.format(), Format::Transactions);
        assert_eq!(t.carried, vec![4]);
    }

    #[test]
    fn mapping_and_missing_columns_are_named() {
        let mut cfg = Segmentation::default();
        cfg.columns.insert("customer_id".into(), "CustNo".into());
        cfg.columns.insert("amount".into(), "Total".into());
        let t = Layout::resolve("f", Encoding::Csv, h("CustNo,order_date,Total"), &cfg).unwrap();
        assert_eq!(t.id, 0);
        let e = Layout::resolve("in.csv", Encoding::Csv, h("CustNo,order_date"), &cfg).unwrap_err();
        assert!(e.message.contains("in.csv: line 1") && e.message.contains("amount (mapped to \"Total\")"), "{e}");
        cfg.format = "customers".into();
        let e = Layout::resolve("in.csv", Encoding::Csv, h("CustNo,order_date,Total"), &cfg).unwrap_err();
        assert!(e.message.contains("purchase_frequency"), "{e}");
        cfg.columns.insert("nope".into(), "x".into());
        assert!(Layout::resolve("f", Encoding::Csv, h("a"), &cfg).unwrap_err().message.contains("nope"));
    }
}
