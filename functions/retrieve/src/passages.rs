//! Passages: the parts of a retrieved document the generator may quote. A passage is a run of WHOLE sentences
//! (at most [`SENTENCES_PER_PASSAGE`]), copied exactly from `content`, with character offsets into it, so a
//! quote taken from a passage is a substring of the approved text and can be verified.

use std::collections::{HashMap, HashSet};

use cpo_common::model::retrieval::Passage;
use tantivy::tokenizer::TextAnalyzer;
use unicode_segmentation::UnicodeSegmentation;

use crate::analysis;

/// Sentences per passage: one to quote, one of context.
pub const SENTENCES_PER_PASSAGE: usize = 2;

/// A sentence of `content`, surrounding whitespace excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sentence {
    /// Character offsets (what `Passage` records).
    pub start: usize,
    pub end: usize,
    /// Byte offsets (for slicing).
    pub byte_start: usize,
    pub byte_end: usize,
}

/// Sentences by the Unicode sentence-boundary rules (UAX #29, via unicode-segmentation), which handle
/// decimals ("$6.95"), closing quotes and line breaks between Markdown blocks.
pub fn sentences(content: &str) -> Vec<Sentence> {
    let mut out = Vec::new();
    // Running (byte, char) position so that char offsets cost one pass over the text.
    let (mut byte_pos, mut char_pos) = (0usize, 0usize);
    let mut char_at = |target: usize| {
        char_pos += content[byte_pos..target].chars().count();
        byte_pos = target;
        char_pos
    };
    for (byte_idx, raw) in content.split_sentence_bound_indices() {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            continue;
        }
        let byte_start = byte_idx + (raw.len() - raw.trim_start().len());
        let byte_end = byte_start + trimmed.len();
        let start = char_at(byte_start);
        let end = char_at(byte_end);
        out.push(Sentence { start, end, byte_start, byte_end });
    }
    out
}

/// Up to `per_doc` non-overlapping passages, best first. A passage scores the sum of its sentences' scores
/// (summed weights of the distinct query terms in each); ties go to the earlier passage, so a document that
/// matched only on its title or keywords yields its opening sentences.
pub fn select(
    content: &str,
    query_terms: &HashMap<String, f32>,
    analyzer: &mut TextAnalyzer,
    per_doc: usize,
) -> Vec<Passage> {
    let sents = sentences(content);
    // Each sentence scores the summed weight of the distinct query terms it contains.
    let sentence_scores: Vec<f32> = sents
        .iter()
        .map(|s| {
            let terms: HashSet<String> =
                analysis::terms(analyzer, &content[s.byte_start..s.byte_end]).into_iter().collect();
            terms.iter().filter_map(|t| query_terms.get(t)).sum()
        })
        .collect();
    // (window score, score of its first sentence, first sentence, end): a window is better when both of its
    // sentences are relevant, and among equals when it opens with the relevant one.
    let mut windows: Vec<(f32, f32, usize, usize)> = (0..sents.len())
        .map(|i| {
            let j = (i + SENTENCES_PER_PASSAGE).min(sents.len());
            (sentence_scores[i..j].iter().sum(), sentence_scores[i], i, j)
        })
        .collect();
    windows.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)).then(a.2.cmp(&b.2)));
    let mut taken = vec![false; sents.len()];
    let mut out = Vec::new();
    for (_, _, i, j) in windows {
        if out.len() >= per_doc {
            break;
        }
        if taken[i..j].iter().any(|t| *t) {
            continue;
        }
        taken[i..j].iter_mut().for_each(|t| *t = true);
        let (first, last) = (sents[i], sents[j - 1]);
        out.push(Passage {
            start: first.start,
            end: last.end,
            text: content[first.byte_start..last.byte_end].to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str, start: usize, end: usize) -> String {
        s.chars().skip(start).take(end - start).collect()
    }

    #[test]
    fn sentences_are_whole_and_offsets_count_chars() {
        let content = "  Café au lait costs $4.50 today.  Our “winter” range has arrived!\nFree returns within 60 days";
        let s = sentences(content);
        let texts: Vec<String> = s.iter().map(|s| chars(content, s.start, s.end)).collect();
        assert_eq!(
            texts,
            vec!["Café au lait costs $4.50 today.", "Our “winter” range has arrived!", "Free returns within 60 days"]
        );
        for x in &s {
            assert_eq!(&content[x.byte_start..x.byte_end], chars(content, x.start, x.end));
        }
    }

    #[test]
    fn best_window_first_and_no_overlap() {
        let content = "Boots keep feet dry. Socks matter too. Jackets block wind. Parkas are warm jackets. Hats help.";
        let mut a = analysis::analyzer();
        let weights: HashMap<String, f32> = [("jacket".to_string(), 2.0), ("boot".to_string(), 1.0)].into();
        let p = select(content, &weights, &mut a, 2);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].text, "Jackets block wind. Parkas are warm jackets.");
        assert_eq!(p[1].text, "Boots keep feet dry. Socks matter too.");
        for x in &p {
            assert_eq!(chars(content, x.start, x.end), x.text);
        }
    }

    #[test]
    fn no_matching_term_gives_the_opening() {
        let content = "First line here. Second line here. Third line here.";
        let p = select(content, &HashMap::new(), &mut analysis::analyzer(), 1);
        assert_eq!(p[0].text, "First line here. Second line here.");
        assert_eq!((p[0].start, p[0].end), (0, 34));
    }
}
