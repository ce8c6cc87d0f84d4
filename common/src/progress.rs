//! Rows processed inside a long step, for a caller that shows progress (the `cpo` command on a terminal).
//! Steps count rows with a [`Rows`] counter; nothing is reported until a process installs a sink, so a Lambda
//! pays one relaxed load per batch of rows. See docs/architecture.md, "The cpo command".

use std::sync::OnceLock;

/// Receives `(phase, rows)`: `rows` more rows done in `phase` (e.g. `"segment: scan"`).
pub type Sink = Box<dyn Fn(&'static str, u64) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();

/// Rows are handed to the sink in batches of this many (and the rest when the counter is dropped).
pub const BATCH: u64 = 16_384;

/// Install the process's sink; returns false when one was already installed (the first one stays).
pub fn install(sink: Sink) -> bool {
    SINK.set(sink).is_ok()
}

/// Report `rows` rows done in `phase` (a no-op without a sink).
pub fn rows(phase: &'static str, rows: u64) {
    if rows > 0 {
        if let Some(s) = SINK.get() {
            s(phase, rows);
        }
    }
}

/// Counts rows of one pass and reports them in batches of [`BATCH`]; the remainder when dropped.
#[derive(Debug)]
pub struct Rows {
    phase: &'static str,
    pending: u64,
}

impl Rows {
    pub fn new(phase: &'static str) -> Self {
        Self { phase, pending: 0 }
    }

    /// One more row.
    #[inline]
    pub fn tick(&mut self) {
        self.pending += 1;
        if self.pending >= BATCH {
            rows(self.phase, std::mem::take(&mut self.pending));
        }
    }
}

impl Drop for Rows {
    fn drop(&mut self) {
        rows(self.phase, self.pending);
    }
}
