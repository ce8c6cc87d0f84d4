//! Fully rendered messages from a run's send list and templates (`cpo render`, `experiment.render`).

use std::collections::BTreeMap;
use std::io::Write;

use cpo_common::keys::RunKeys;
use cpo_common::model::experiment::TemplatesDoc;
use cpo_common::store::StoreExt;
use cpo_common::{Key, StepError, Store};

use crate::parts::list_parts;
use crate::send::{self, FIXED_COLUMNS};

/// Which customers to render.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    Customer(String),
    All,
}

/// Write one JSON line per rendered message to `out`; returns how many were written. A customer who is not
/// on the send list (unknown, or in the holdout) is an input error.
pub async fn render_run(
    store: &dyn Store,
    run_id: &str,
    which: &Selection,
    out: &mut dyn Write,
) -> Result<u64, StepError> {
    let keys = RunKeys::new(run_id)?;
    let templates: TemplatesDoc = store.get_json_opt(&keys.templates()).await?.ok_or_else(|| {
        StepError::input(format!("{}: not found in {}; has the run's assign step run?", keys.templates(), store.url()))
    })?;
    let send_prefix: Key = keys.prefix().join("send/")?;
    let mut written = 0u64;
    for key in list_parts(store, &send_prefix, "part-", ".csv").await? {
        let body = store.get(&key).await?;
        let mut rdr = csv::Reader::from_reader(body.as_ref());
        let headers = rdr.headers().map_err(|e| StepError::input(format!("{key}: {e}")))?.clone();
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| StepError::input(format!("{key}: line {}: {e}", i + 2)))?;
            let row: BTreeMap<&str, &str> = headers.iter().zip(rec.iter()).collect();
            let id = row.get("customer_id").copied().unwrap_or("");
            if let Selection::Customer(want) = which {
                if id != send::neutralise(want) {
                    continue;
                }
            }
            let variant_id = row.get("variant_id").copied().unwrap_or("");
            let template = templates.templates.get(variant_id).ok_or_else(|| {
                StepError::input(format!("{key}: line {}: field `variant_id`: {variant_id:?} has no template", i + 2))
            })?;
            let field = |name: &str| {
                (!FIXED_COLUMNS.contains(&name) || name == "segment")
                    .then(|| row.get(name).map(|v| v.to_string()))
                    .flatten()
            };
            let msg = send::render(template, id, row.get("email").copied(), &field);
            serde_json::to_writer(&mut *out, &msg)?;
            out.write_all(b"\n").map_err(|e| StepError::internal(format!("writing rendered messages: {e}")))?;
            written += 1;
            if matches!(which, Selection::Customer(_)) {
                return Ok(written);
            }
        }
    }
    if let Selection::Customer(want) = which {
        return Err(StepError::input(format!(
            "run {run_id}: customer {} is not on the send list (unknown, or in the holdout)",
            cpo_common::pii::hash_id(want)
        )));
    }
    Ok(written)
}
