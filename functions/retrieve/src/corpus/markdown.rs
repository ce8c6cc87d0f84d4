//! Markdown documents: YAML front matter between `---` lines, then a body whose markup is removed so that
//! `content` is the plain text a customer reads and a generator can quote sentence by sentence.

use pulldown_cmark::{Event, Parser, Tag, TagEnd};

pub struct Parts<'a> {
    pub front_matter: &'a str,
    pub body: &'a str,
}

/// Split `---\n<yaml>\n---\n<body>` (the closing line may also be `...`); `None` when there is no front matter.
pub fn split_front_matter(text: &str) -> Option<Parts<'_>> {
    let mut lines = text.split_inclusive('\n');
    let first = lines.next()?;
    if first.trim_end() != "---" {
        return None;
    }
    let start = first.len();
    let mut pos = start;
    for line in lines {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed == "..." {
            return Some(Parts { front_matter: &text[start..pos], body: &text[pos + line.len()..] });
        }
        pos += line.len();
    }
    None
}

/// The text of a Markdown body: one line per block (heading, paragraph, list item, code block), inline markup
/// and link targets dropped, raw HTML dropped (it is never shown to a customer as written).
pub fn to_plain_text(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    for event in Parser::new(body) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            Event::Start(
                Tag::Paragraph
                | Tag::Heading { .. }
                | Tag::Item
                | Tag::List(_)
                | Tag::CodeBlock(_)
                | Tag::BlockQuote(_),
            ) => out.push('\n'),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::List(_)
                | TagEnd::CodeBlock
                | TagEnd::BlockQuote(_)
                | TagEnd::TableRow
                | TagEnd::TableHead,
            ) => out.push('\n'),
            _ => {}
        }
    }
    out.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_is_split() {
        let p = split_front_matter("---\r\ntitle: x\r\n---\r\nBody.\n").unwrap();
        assert_eq!(p.front_matter, "title: x\r\n");
        assert_eq!(p.body, "Body.\n");
        assert!(split_front_matter("title: x\n---\nBody").is_none());
        assert!(split_front_matter("---\ntitle: x\nBody without a closing line").is_none());
    }

    #[test]
    fn markup_is_removed() {
        let md = "# Heading\n\nA **bold** claim with a [link](https://x.example) and\na soft break.\n\n- one\n- two\n\n<div>raw</div>\n";
        assert_eq!(to_plain_text(md), "Heading\nA bold claim with a link and a soft break.\none\ntwo");
    }
}
