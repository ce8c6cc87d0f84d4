//! The one text analyzer used to index documents, to turn a query into terms and to score sentences for
//! passages: the same words must mean the same terms in all three places.

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};

/// Name under which the analyzer is registered in the index.
pub const ANALYZER: &str = "cpo_en";

/// Lower-cased English words, stop words removed, Porter-stemmed ("jackets" and "jacket" are one term).
pub fn analyzer() -> TextAnalyzer {
    // English has a bundled stop-word list; the fallback (no stop words) only guards against a feature change.
    let stop_words = StopWordFilter::new(Language::English).unwrap_or_else(|| StopWordFilter::remove(Vec::new()));
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(stop_words)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The terms of `text`, in order, duplicates kept.
pub fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// The distinct terms of `text`, in first-seen order.
pub fn distinct_terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in terms(analyzer, text) {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_and_drops_stop_words() {
        let mut a = analyzer();
        assert_eq!(terms(&mut a, "The Jackets and the BOOTS"), vec!["jacket", "boot"]);
        assert_eq!(distinct_terms(&mut a, "layer layers layering"), vec!["layer"]);
    }
}
