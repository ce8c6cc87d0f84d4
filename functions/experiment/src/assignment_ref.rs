//! Reading `assignments/part-NNNNN.jsonl` without an allocation per row: the fields the analysis needs,
//! borrowed from the part's bytes (owned only where the JSON escapes a character).

use std::borrow::Cow;

use cpo_common::{Key, StepError};
use serde::Deserialize;

/// One assignment line; `variant_id` is skipped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AssignmentRef<'a> {
    #[serde(borrow)]
    pub customer_id: Cow<'a, str>,
    #[serde(borrow)]
    pub segment: Cow<'a, str>,
    #[serde(borrow)]
    pub arm: Cow<'a, str>,
}

/// Every assignment of one part, in order; stops at the first row that does not parse, with an input error
/// naming the part, line, column and field.
pub fn for_each<'a>(
    key: &Key,
    body: &'a [u8],
    mut f: impl FnMut(AssignmentRef<'a>) -> Result<(), StepError>,
) -> Result<u64, StepError> {
    let mut rows = 0u64;
    for row in serde_json::Deserializer::from_slice(body).into_iter::<AssignmentRef<'a>>() {
        f(row.map_err(|e| StepError::input(format!("{key}: {e}")))?)?;
        rows += 1;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_unless_escaped_and_names_the_line() {
        let key = Key::new("runs/r/assignments/part-00000.jsonl").unwrap();
        let body =
            b"{\"customer_id\":\"C1\",\"segment\":\"Can't Lose\",\"arm\":\"control\",\"variant_id\":\"control\"}\n\
                     \n{\"customer_id\":\"C\\\"2\",\"segment\":\"At Risk\",\"arm\":\"urgent\",\"variant_id\":\"x\"}\n";
        let mut seen = Vec::new();
        let n = for_each(&key, body, |a| {
            seen.push((matches!(a.customer_id, Cow::Borrowed(_)), a.customer_id.into_owned(), a.segment.into_owned()));
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(seen, vec![(true, "C1".into(), "Can't Lose".into()), (false, "C\"2".into(), "At Risk".into())]);
        let bad = b"{\"customer_id\":\"C1\",\"segment\":\"A\",\"arm\":\"control\"}\n{\"customer_id\":\"C2\",\"segment\":\"A\"}\n";
        let e = for_each(&key, bad, |_| Ok(())).unwrap_err();
        assert!(e.message.contains("part-00000.jsonl") && e.message.contains("line 2"), "{e}");
        assert!(e.message.contains("arm"), "{e}");
    }
}
