//! Printing that survives its reader. `cpo run | head -1` closes the pipe after one line; the next write then
//! fails with EPIPE (Rust ignores SIGPIPE), which `println!` turns into a panic. Everything `cpo` prints goes
//! through [`Stdout`] or [`outln!`](crate::outln) instead: a closed standard output is remembered and the
//! write fails with an ordinary error, which ends the command; `main` then exits quietly ([`closed`]).
//! Diagnostics go through [`errln!`](crate::errln), which never fails.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether a write found standard output closed by its reader.
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

fn note(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        CLOSED.store(true, Ordering::Relaxed);
    }
    e
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "standard output was closed by its reader")
}

/// Standard output as a writer that records a closed pipe (and writes nothing more once it is closed).
#[derive(Debug, Default, Clone, Copy)]
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if closed() {
            return Err(gone());
        }
        io::stdout().lock().write(buf).map_err(note)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if closed() {
            return Err(gone());
        }
        io::stdout().lock().write_all(buf).map_err(note)
    }

    fn flush(&mut self) -> io::Result<()> {
        if closed() {
            return Err(gone());
        }
        io::stdout().lock().flush().map_err(note)
    }
}

/// Write formatted text to standard output, flushed (a pipe's reader sees each line as it is printed).
pub fn print(args: std::fmt::Arguments<'_>) -> io::Result<()> {
    let mut out = Stdout;
    out.write_fmt(args)?;
    out.flush()
}

/// Write formatted text to standard error; a closed standard error is no reason to fail.
pub fn eprint(args: std::fmt::Arguments<'_>) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// `println!` that returns `io::Result<()>` instead of panicking when the reader has gone.
#[macro_export]
macro_rules! outln {
    () => { $crate::out::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::out::eprint(format_args!("{}\n", format_args!($($arg)*))) };
}
