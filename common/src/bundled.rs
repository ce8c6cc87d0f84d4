//! The bundled example (`examples/`), compiled into every binary: the defaults used when the store has no
//! campaign, corpus, policy or prompts of its own — so a fresh clone runs with no setup at all.

use include_dir::{include_dir, Dir};

static EXAMPLES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../examples");

/// A bundled file by its path under `examples/`.
pub fn file(path: &str) -> Option<&'static str> {
    EXAMPLES.get_file(path).and_then(|f| f.contents_utf8())
}

/// The bundled campaign config (`examples/campaigns/weekly.yaml`).
pub fn campaign_yaml() -> &'static str {
    file("campaigns/weekly.yaml").unwrap_or("name: weekly\n")
}

/// The bundled safety policy (`examples/policy/safety.yaml`).
pub fn policy_yaml() -> Option<&'static str> {
    file("policy/safety.yaml")
}

/// A bundled prompt template (`examples/prompts/<name>.j2`).
pub fn prompt(name: &str) -> Option<&'static str> {
    file(&format!("prompts/{name}.j2"))
}

/// Every bundled approved-content document: (file name, text), sorted by name.
pub fn content() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<_> = EXAMPLES
        .get_dir("content")
        .map(|d| {
            d.files()
                .filter_map(|f| {
                    let name = f.path().file_name()?.to_str()?;
                    Some((name, f.contents_utf8()?))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|(n, _)| *n);
    out
}
