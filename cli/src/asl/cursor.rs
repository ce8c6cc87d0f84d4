//! The character cursor the hand-written path and intrinsic parsers share: where parsing stands in the text,
//! and errors that point at the character.

/// `chars` of `text`, with the position of the next one to read.
pub(super) struct Cursor<'t> {
    pub chars: Vec<char>,
    pub pos: usize,
    text: &'t str,
    /// What is being parsed, for messages ("path", "intrinsic").
    what: &'static str,
}

impl<'t> Cursor<'t> {
    pub fn new(what: &'static str, text: &'t str, from: &str) -> Self {
        Self { chars: from.chars().collect(), pos: 0, text, what }
    }

    pub fn err(&self, msg: &str) -> String {
        format!("{} {:?}: {msg} at character {}", self.what, self.text, self.pos + 1)
    }

    pub fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
}
