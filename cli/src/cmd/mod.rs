//! One module per `cpo` subcommand: clap `Args` and an async `run`.

pub mod audit;
pub mod gen;
pub mod render;
pub mod safety;
pub mod sfn;
