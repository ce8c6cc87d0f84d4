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
