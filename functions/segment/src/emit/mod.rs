//! The output pass: re-read the rows in order and write each one where it belongs — a member line (scores,
//! segment, carried columns) into `customers/members-NNNNN.jsonl` parts, or a rejected line with its raw
//! text. Re-reading costs one more parse but keeps memory at the table's size instead of the rows'.
//!
//! - [`encoder`]: one member line, byte for byte what serde_json writes, without its per-field cost;
//! - [`pieces`]: aggregate rows written by every core at once ([`customers`]): the members are cut into
//!   pieces (a part, or a fraction of one when there are fewer parts than cores), each piece starts reading at
//!   the scan's nearest [`Checkpoint`](crate::scan::Checkpoint) and skips to its first member, and whichever
//!   worker completes a part writes it;
//! - [`transactions`]: transaction rows (a customer's member line sits at its first order) in one pass.

mod encoder;
mod pieces;
mod transactions;

use std::borrow::Cow;

use bytes::Bytes;
use cpo_common::StepError;

use crate::layout::Layout;
use crate::rows::Bad;
use crate::scan::Checkpoint;
use crate::source::{Origin, RowMeta};
use crate::table::Duplicate;

pub use encoder::{Encoder, MemberLine};
pub use pieces::customers;
pub use transactions::{transactions, Writer};

/// One line of `rejected.jsonl`, borrowed (same JSON as `cpo_common::model::segment::Rejected`).
#[derive(serde::Serialize)]
struct RejectedRef<'a> {
    file: &'a str,
    line: u64,
    field: &'a str,
    reason: &'a str,
    raw: Cow<'a, str>,
}

pub(crate) fn reject(out: &mut Vec<u8>, file: &str, meta: &RowMeta, bad: &Bad, raw: &[u8]) -> Result<(), StepError> {
    let r = RejectedRef {
        file,
        line: meta.line,
        field: &bad.field,
        reason: &bad.reason,
        raw: String::from_utf8_lossy(raw),
    };
    serde_json::to_writer(&mut *out, &r)?;
    out.push(b'\n');
    Ok(())
}

/// What the analysis decided for the rows of this slice (indices relative to the slice's table rows).
#[derive(Debug, Clone, Default)]
pub struct Decisions {
    pub scores: Vec<[u8; 3]>,
    pub segment: Vec<u8>,
    pub names: Vec<String>,
    /// Sorted by row.
    pub duplicates: Vec<Duplicate>,
}

/// The slice of the input the output pass reads, as the scan saw it.
pub struct Input {
    pub buf: Bytes,
    pub layout: Layout,
    pub origin: Origin,
    /// The scan read the slice with the quote-free fast path.
    pub fast: bool,
    /// From the scan, sorted by row (may be empty: every piece then reads from the slice's start).
    pub checkpoints: Vec<Checkpoint>,
    /// Input file name, for rejected lines.
    pub file: String,
}

/// What the output pass wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Written {
    pub parts: Vec<String>,
    pub members: u64,
    pub rejected: Vec<u8>,
    pub rejected_rows: u64,
}
