//! The approved corpus: where it comes from and how a file becomes a [`Document`].
//!
//! Public so other crates (the CLI checking a `--content DIR` before a run, a future linter) parse documents
//! exactly as retrieval does. Sources, in order: the run's `content_prefix` (`cpo run --content DIR`), else the
//! store's `content/approved/`, else the bundled example corpus (with a one-line notice).

mod document;
mod markdown;

use std::collections::BTreeMap;
use std::fmt;

use cpo_common::model::content::Document;
use cpo_common::store::StoreExt;
use cpo_common::{bundled, keys, Key, StepError, Store};
use futures::{StreamExt, TryStreamExt};

pub use document::parse_document;

/// File extensions read as documents; anything else under a content prefix is skipped with a warning.
pub const EXTENSIONS: [&str; 3] = ["json", "md", "markdown"];

/// Where the bundled corpus lives, as named in errors and notices.
pub const BUNDLED_SOURCE: &str = "bundled:examples/content/";

/// Objects read concurrently from the store (S3 latency, not CPU, is the cost of a load).
const READ_CONCURRENCY: usize = 8;

/// A loaded, validated corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    /// Sorted by file name, which is the tie-break order everywhere downstream.
    pub documents: Vec<Document>,
    /// The prefix it was read from, or [`BUNDLED_SOURCE`].
    pub source: String,
}

/// A document that cannot be used, named precisely enough to fix it: file, line when known, field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DocumentError {
    pub file: String,
    pub line: Option<usize>,
    pub field: Option<String>,
    pub reason: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ": line {line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl From<DocumentError> for StepError {
    fn from(e: DocumentError) -> Self {
        StepError::input(e.to_string())
    }
}

/// Whether a file name is read as a document (hidden files such as `.gitkeep` never are).
pub fn is_document_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !lower.starts_with('.') && EXTENSIONS.iter().any(|ext| lower.ends_with(&format!(".{ext}")))
}

/// Parse a set of (file name, text) pairs; document ids must be unique across the set.
pub fn parse_all<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Vec<Document>, DocumentError> {
    let mut files: Vec<(&str, &str)> = files.into_iter().collect();
    files.sort_by_key(|(name, _)| *name);
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    let mut documents = Vec::with_capacity(files.len());
    for (name, text) in files {
        let doc = parse_document(name, text)?;
        if let Some(first) = seen.insert(doc.document_id.clone(), name) {
            return Err(DocumentError {
                file: name.to_string(),
                line: None,
                field: Some("document_id".into()),
                reason: format!("{:?} is already used by {first}", doc.document_id),
            });
        }
        documents.push(doc);
    }
    Ok(documents)
}

/// The bundled example corpus.
pub fn bundled() -> Result<Corpus, DocumentError> {
    let files: Vec<(String, &str)> = bundled::content()
        .into_iter()
        .filter(|(name, _)| is_document_file(name))
        .map(|(name, text)| (format!("{BUNDLED_SOURCE}{name}"), text))
        .collect();
    let documents = parse_all(files.iter().map(|(n, t)| (n.as_str(), *t)))?;
    Ok(Corpus { documents, source: BUNDLED_SOURCE.to_string() })
}

/// Every document under `prefix` in the store (empty when there are none).
pub async fn read_prefix(store: &dyn Store, prefix: &Key) -> Result<Vec<Document>, StepError> {
    let mut keys = Vec::new();
    for meta in store.list(prefix).await? {
        let key = Key::new(meta.key)?;
        if is_document_file(key.file_name()) {
            keys.push(key);
        } else if !key.file_name().starts_with('.') {
            tracing::warn!(key = %key, "skipping a file that is neither .json nor .md under the content prefix");
        }
    }
    let texts: Vec<(String, String)> = futures::stream::iter(keys)
        .map(|key| async move {
            let bytes = store.get_opt(&key).await?.ok_or_else(|| {
                StepError::internal(format!("{key}: listed under the content prefix but gone when read"))
            })?;
            let text =
                String::from_utf8(bytes.to_vec()).map_err(|_| StepError::input(format!("{key}: not UTF-8 text")))?;
            Ok::<_, StepError>((key.to_string(), text))
        })
        .buffered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(parse_all(texts.iter().map(|(k, t)| (k.as_str(), t.as_str())))?)
}

/// The corpus of a run: its `content_prefix` when set (which must then hold documents), else the store's
/// `content/approved/`, else the bundled example.
pub async fn load(store: &dyn Store, content_prefix: Option<&str>) -> Result<Corpus, StepError> {
    if let Some(prefix) = content_prefix {
        let key = Key::new(prefix)?;
        let documents = read_prefix(store, &key).await?;
        if documents.is_empty() {
            return Err(StepError::input(format!(
                "content prefix {prefix} in {} holds no .json or .md documents",
                store.url()
            )));
        }
        return Ok(Corpus { documents, source: prefix.to_string() });
    }
    let prefix = keys::content_prefix();
    let documents = read_prefix(store, &prefix).await?;
    if !documents.is_empty() {
        return Ok(Corpus { documents, source: prefix.to_string() });
    }
    let corpus = bundled()?;
    tracing::info!(
        documents = corpus.documents.len(),
        "no approved documents under {prefix} in the store; using the bundled example corpus"
    );
    Ok(corpus)
}
