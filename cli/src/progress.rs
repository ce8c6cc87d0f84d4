//! What `cpo run` shows on a terminal while the machines run: a line per state (Map iterations named by their
//! item, e.g. the segment), a spinner with elapsed time while it runs, rows and rows/s inside long steps
//! (the steps count rows with `cpo_common::progress`), and "reused" for a Task answered from its stored
//! step record. Nothing is shown when standard error is not a terminal (the caller decides). No colours.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::asl::{Event, EventSink};

/// One running state's line.
struct Running {
    bar: ProgressBar,
    started: Instant,
    task: bool,
}

/// Rows counted in the current phase of a long step.
struct Rows {
    bar: ProgressBar,
    phase: &'static str,
    rows: u64,
    started: Instant,
}

/// The progress display of one `cpo` process.
pub struct Display {
    multi: MultiProgress,
    running: Mutex<HashMap<(String, Option<String>), Running>>,
    rows: Mutex<Option<Rows>>,
    /// Every finished line, in order (what the terminal keeps; tests read it).
    lines: Mutex<Vec<String>>,
}

/// The display that rows reported by the steps go to (the process has one sink; displays come and go).
static CURRENT: Mutex<Option<Weak<Display>>> = Mutex::new(None);
static SINK_INSTALLED: OnceLock<bool> = OnceLock::new();

fn spinner() -> ProgressStyle {
    ProgressStyle::with_template("  {spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `Segment`, or `GenerateSegment [Champions]` inside a Map iteration.
fn title(name: &str, item: &Option<String>) -> String {
    match item {
        Some(i) => format!("{name} [{i}]"),
        None => name.to_string(),
    }
}

impl Display {
    /// A display drawing to standard error (call only when it is a terminal).
    pub fn stderr() -> Arc<Self> {
        Self::with_target(ProgressDrawTarget::stderr())
    }

    /// A display drawing to `target` (`ProgressDrawTarget::hidden()` in tests).
    pub fn with_target(target: ProgressDrawTarget) -> Arc<Self> {
        let d = Arc::new(Self {
            multi: MultiProgress::with_draw_target(target),
            running: Mutex::default(),
            rows: Mutex::default(),
            lines: Mutex::default(),
        });
        if let Ok(mut c) = CURRENT.lock() {
            *c = Some(Arc::downgrade(&d));
        }
        SINK_INSTALLED.get_or_init(|| {
            cpo_common::progress::install(Box::new(|phase, n| {
                let current = CURRENT.lock().ok().and_then(|c| c.as_ref().and_then(Weak::upgrade));
                if let Some(d) = current {
                    d.rows(phase, n);
                }
            }))
        });
        d
    }

    /// The event sink to give the state machine runner.
    pub fn sink(self: &Arc<Self>) -> EventSink {
        let d = self.clone();
        Arc::new(move |e: &Event| d.on_event(e))
    }

    /// A line above the running states (and kept in [`Self::lines`]).
    pub fn println(&self, line: &str) {
        let _ = self.multi.println(line);
        if let Ok(mut l) = self.lines.lock() {
            l.push(line.to_string());
        }
    }

    /// The finished lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn on_event(&self, e: &Event) {
        match e {
            Event::StateEntered { name, kind, item } if kind != "Choice" && kind != "Succeed" && kind != "Pass" => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(spinner());
                bar.set_message(title(name, item));
                bar.enable_steady_tick(Duration::from_millis(120));
                let running = Running { bar, started: Instant::now(), task: kind == "Task" };
                if let Ok(mut r) = self.running.lock() {
                    r.insert((name.clone(), item.clone()), running);
                }
            }
            Event::StateExited { name, item, notes } => {
                let Some(done) = self.take(name, item) else { return };
                let how = if notes.iter().any(|n| n == crate::tasks::REUSED) {
                    "reused".to_string()
                } else {
                    format!("{:.2}s", done.started.elapsed().as_secs_f64())
                };
                self.finish(done, format!("  ✓ {} ({how})", title(name, item)));
            }
            Event::StateFailed { name, item, error } => {
                if let Some(done) = self.take(name, item) {
                    self.finish(done, format!("  ✗ {}: {error}", title(name, item)));
                }
            }
            Event::Retry { state, attempt, error } => {
                self.println(&format!("  ↻ {state}: retry {attempt} after {error}"))
            }
            _ => {}
        }
    }

    fn take(&self, name: &str, item: &Option<String>) -> Option<Running> {
        self.running.lock().ok()?.remove(&(name.to_string(), item.clone()))
    }

    fn finish(&self, done: Running, line: String) {
        done.bar.finish_and_clear();
        self.multi.remove(&done.bar);
        self.println(&line);
        // The rows line belongs to the Task that counted them: gone once no Task runs.
        let tasks_left = self.running.lock().map(|r| r.values().any(|x| x.task)).unwrap_or(false);
        if done.task && !tasks_left {
            if let Some(rows) = self.rows.lock().ok().and_then(|mut r| r.take()) {
                rows.bar.finish_and_clear();
                self.multi.remove(&rows.bar);
            }
        }
    }

    /// `n` more rows done in `phase`; a new phase starts counting (and timing) from zero.
    pub fn rows(&self, phase: &'static str, n: u64) {
        let Ok(mut slot) = self.rows.lock() else { return };
        let rows = match slot.as_mut() {
            Some(r) if r.phase == phase => r,
            _ => {
                if let Some(old) = slot.take() {
                    old.bar.finish_and_clear();
                    self.multi.remove(&old.bar);
                }
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("      {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                slot.insert(Rows { bar, phase, rows: 0, started: Instant::now() })
            }
        };
        rows.rows += n;
        rows.bar.set_message(rows_message(phase, rows.rows, rows.started.elapsed()));
    }

    /// The rows line as it reads now (`None` when no step is counting rows).
    pub fn rows_line(&self) -> Option<String> {
        self.rows.lock().ok()?.as_ref().map(|r| r.bar.message())
    }
}

/// `segment: read 1,200,000 rows · 850,000 rows/s`.
pub fn rows_message(phase: &str, rows: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs < 0.05 {
        return format!("{phase} {} rows", thousands(rows));
    }
    format!("{phase} {} rows · {} rows/s", thousands(rows), thousands((rows as f64 / secs) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(name: &str, item: Option<&str>, notes: &[&str]) -> Event {
        Event::StateExited {
            name: name.into(),
            item: item.map(Into::into),
            notes: notes.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn entered(name: &str, kind: &str, item: Option<&str>) -> Event {
        Event::StateEntered { name: name.into(), kind: kind.into(), item: item.map(Into::into) }
    }

    #[test]
    fn map_iterations_are_named_and_reused_tasks_say_so() {
        let d = Display::with_target(ProgressDrawTarget::hidden());
        let sink = d.sink();
        sink(&entered("Generate", "Map", None));
        // Two iterations of the same state at once: both shown, each finished on its own.
        sink(&entered("GenerateSegment", "Task", Some("Champions")));
        sink(&entered("GenerateSegment", "Task", Some("Loyal")));
        sink(&exited("GenerateSegment", Some("Loyal"), &[]));
        sink(&exited("GenerateSegment", Some("Champions"), &["reused"]));
        sink(&exited("Generate", None, &[]));
        let lines = d.lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("  ✓ GenerateSegment [Loyal] (") && lines[0].ends_with("s)"), "{lines:?}");
        assert_eq!(lines[1], "  ✓ GenerateSegment [Champions] (reused)");
        assert!(lines[2].starts_with("  ✓ Generate ("), "{lines:?}");
    }

    #[test]
    fn rows_are_counted_per_phase_and_cleared_with_their_task() {
        let d = Display::with_target(ProgressDrawTarget::hidden());
        let sink = d.sink();
        sink(&entered("Segment", "Task", None));
        d.rows("segment: read", 16_384);
        d.rows("segment: read", 16_384);
        assert!(d.rows_line().unwrap().starts_with("segment: read 32,768 rows"), "{:?}", d.rows_line());
        d.rows("segment: write", 100);
        assert!(d.rows_line().unwrap().starts_with("segment: write 100 rows"), "{:?}", d.rows_line());
        sink(&exited("Segment", None, &[]));
        assert_eq!(d.rows_line(), None);
    }

    #[test]
    fn rows_per_second_and_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(rows_message("assign", 500_000, Duration::from_secs(2)), "assign 500,000 rows · 250,000 rows/s");
    }
}
