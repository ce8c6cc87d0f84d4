//! Fully rendered messages of a run (`cpo render`), identical to what the assign step writes with
//! `experiment.render`: merge fields are filled from the members' own fields, not from the send list, whose
//! cells are neutralised for spreadsheets.

use std::io::Write;

use cpo_common::keys::RunKeys;
use cpo_common::model::experiment::{Assignment, TemplatesDoc};
use cpo_common::model::safety::SafetyDoc;
use cpo_common::model::segment::Member;
use cpo_common::store::StoreExt;
use cpo_common::{StepError, Store};

use crate::parts::{list_parts, JsonlParts};
use crate::plan::HOLDOUT;
use crate::send;

/// Which customers to render.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    Customer(String),
    All,
}

/// Write one JSON line per rendered message to `out`; returns how many were written. A customer who gets no
/// message (unknown, or in the holdout) is an input error that names them only by their keyed hash.
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
    // Render only what safety approved byte for byte: an edited or stale template fails here.
    let safety: SafetyDoc = store.get_json_opt(&keys.safety()).await?.ok_or_else(|| {
        StepError::safety_unavailable(format!("{}: not found; nothing is rendered without verdicts", keys.safety()))
    })?;
    for (id, t) in &templates.templates {
        if !safety.approves(id, &t.message())? {
            return Err(StepError::safety_unavailable(format!(
                "{}: template {id:?} is not approved by safety; nothing is rendered",
                keys.templates()
            )));
        }
    }
    let mut assignments =
        JsonlParts::<Assignment>::new(list_parts(store, &keys.assignments_prefix(), "part-", ".jsonl").await?);
    let mut members = JsonlParts::<Member>::new(list_parts(store, &keys.members_prefix(), "members-", ".jsonl").await?);
    let mut written = 0u64;
    // Assignments are written in member order: walk both together.
    while let Some(a) = assignments.next(store).await? {
        let m = members.next(store).await?.filter(|m| m.customer_id == a.customer_id).ok_or_else(|| {
            StepError::internal(format!("run {run_id}: assignments are not in member order; re-run the assign step"))
        })?;
        if let Selection::Customer(want) = which {
            if &a.customer_id != want {
                continue;
            }
        }
        if a.arm == HOLDOUT {
            // The holdout gets no message: skip it (the selected customer falls through to the error below).
            if matches!(which, Selection::Customer(_)) {
                break;
            }
            continue;
        }
        let template = templates.templates.get(&a.variant_id).ok_or_else(|| {
            StepError::input(format!("{}: variant {:?} has no template", keys.templates(), a.variant_id))
        })?;
        let field = |name: &str| m.fields.get(name).cloned();
        let email = m.fields.get("email").map(String::as_str);
        let msg = send::render(template, &templates.merge_defaults, &a.customer_id, email, &field);
        serde_json::to_writer(&mut *out, &msg)?;
        out.write_all(b"\n").map_err(|e| StepError::internal(format!("writing rendered messages: {e}")))?;
        written += 1;
        if matches!(which, Selection::Customer(_)) {
            return Ok(written);
        }
    }
    if let Selection::Customer(want) = which {
        return Err(StepError::input(format!(
            "run {run_id}: customer {} gets no message (not assigned in this run, or in the holdout)",
            cpo_common::pii::hash_id(want)
        )));
    }
    Ok(written)
}
