//! One module per `cpo` subcommand: clap `Args` and an async `run`.

use std::path::Path;

use cpo_common::store::{DynStore, StoreUrl};

pub mod analyze;
pub mod audit;
pub mod campaign;
pub mod erase;
pub mod gen;
pub mod ledger;
pub mod render;
pub mod run;
pub mod runs;
pub mod safety;
pub mod sfn;
pub mod simulate;

/// The store every command uses unless `--store` or the environment variable [`STORE_ENV`] names another.
pub const DEFAULT_STORE: &str = "file://./cpo-data";

/// The environment variable every command reads its store URL from (the Lambdas' too).
pub const STORE_ENV: &str = cpo_common::step::STORE_ENV;

pub fn open_store(url: &str) -> anyhow::Result<DynStore> {
    Ok(cpo_common::store::open(url)?)
}

/// Open a store only to read it: a `file://` store whose directory does not exist is `None` (opening would
/// create it).
pub fn open_existing_store(url: &str) -> anyhow::Result<Option<DynStore>> {
    if let StoreUrl::File { root } = StoreUrl::parse(url)? {
        if !Path::new(root).exists() {
            return Ok(None);
        }
    }
    open_store(url).map(Some)
}

/// A local file's name made safe as one key segment (`[A-Za-z0-9._-]`, no leading dot).
pub fn safe_file_name(path: &Path, default: &str) -> String {
    let name: String = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(default)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    let name = name.trim_start_matches('.');
    if name.is_empty() {
        default.to_string()
    } else {
        name.to_string()
    }
}
