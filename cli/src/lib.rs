//! The `cpo` command as a library: the local ASL runner, the bridge from Task resources to the project's
//! functions, the emulated trigger, and one module per subcommand.

pub mod asl;
pub mod cmd;
pub mod local;
pub(crate) mod metrics;
pub mod out;
pub(crate) mod progress;
pub mod summary;
pub mod tasks;

/// Seasons `cpo simulate season` runs at once by default: one per core (each week's per-customer steps use
/// every core too, but a run also has serial stretches — config, state transitions, reports).
pub fn season_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
