//! Counts per (segment, arm): what ingest produces as it joins outcomes to assignments and what analyze,
//! explain and holdout read.

use std::collections::BTreeMap;

use cpo_common::model::experiment::{ArmCounts, Metric};

use crate::events::Event;

/// The metrics with the event each counts, in display order (the order of [`Cell::successes`]).
pub const METRICS: [(Metric, Event); 4] = [
    (Metric::Open, Event::Open),
    (Metric::Click, Event::Click),
    (Metric::Convert, Event::Convert),
    (Metric::Unsubscribe, Event::Unsubscribe),
];

/// Counts of one (segment, arm): customers assigned, delivered, and successes per metric.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    pub n: u64,
    pub delivered: u64,
    pub successes: [u64; 4],
}

impl Cell {
    pub(crate) fn add(&mut self, o: &Cell) {
        self.n += o.n;
        self.delivered += o.delivered;
        for i in 0..4 {
            self.successes[i] += o.successes[i];
        }
    }
}

/// segment → arm → cell.
pub type Counts = BTreeMap<String, BTreeMap<String, Cell>>;

/// Add `more` into `counts`.
pub fn merge_counts(counts: &mut Counts, more: Counts) {
    for (segment, arms) in more {
        let per = counts.entry(segment).or_default();
        for (arm, c) in arms {
            per.entry(arm).or_default().add(&c);
        }
    }
}

/// The rows of `ingest/counts.json`, in (segment, arm) order.
pub fn counts_to_cells(counts: &Counts) -> Vec<ArmCounts> {
    let mut out = Vec::new();
    for (segment, arms) in counts {
        for (arm, c) in arms {
            let [open, click, convert, unsubscribe] = c.successes;
            out.push(ArmCounts {
                segment: segment.clone(),
                arm: arm.clone(),
                n: c.n,
                delivered: c.delivered,
                open,
                click,
                convert,
                unsubscribe,
            });
        }
    }
    out
}

/// Inverse of [`counts_to_cells`].
pub fn cells_to_counts(cells: &[ArmCounts]) -> Counts {
    let mut counts = Counts::new();
    for c in cells {
        let cell = Cell { n: c.n, delivered: c.delivered, successes: [c.open, c.click, c.convert, c.unsubscribe] };
        counts.entry(c.segment.clone()).or_default().entry(c.arm.clone()).or_default().add(&cell);
    }
    counts
}
