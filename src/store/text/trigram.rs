//! The user-part trigram tokenizer: substring search on `from_user`, `to_user` and `ruri_user`
//! as a lookup of consecutive trigrams, not a scan of the term dictionary.
//!
//! Substring search on user parts (`--from 2323` finds `+4923231234`) must stay a lookup, not a
//! scan of a term dictionary holding a million numbers. Each of `from_user`, `to_user` and
//! `ruri_user` is also indexed into a `*_tri` field by [`UserTrigramTokenizer`]: every window of
//! three characters, lowercased, with its character offset as the token position. A query of
//! n ≥ 3 characters becomes a phrase of its n−2 trigrams at consecutive positions, which matches
//! exactly the values holding the substring (no false positives to re-check). Cost: a user part of
//! L characters adds L−2 postings with positions per field — about 30 postings per message for
//! typical E.164 numbers, a few per cent of what the message text itself adds — while the term
//! dictionary stays tiny (at most 1000 distinct digit trigrams). Posting lists of digit trigrams
//! are long (about 1 % of messages each), so a 4–8 digit query intersects a few lists of ~10k
//! documents per million messages. Queries of one or two characters fall back to a regex over
//! the lowercased raw field's dictionary, which is slower but such queries match most calls anyway.
//! All suffixes (prefix query on a suffix field) was rejected: it multiplies the term dictionary
//! by the value length (~12 M terms for 1 M distinct numbers). tantivy's own `NgramTokenizer`
//! gives every gram position 0, so a phrase could not require adjacency; hence our tokenizer.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Name under which [`UserTrigramTokenizer`] is registered.
pub const USER_TRIGRAM: &str = "user_trigram";
/// Raw (whole value) tokenizer followed by lowercasing.
pub const RAW_LC: &str = "raw_lc";
const GRAM: usize = 3;

/// Emits every window of three characters of a value, lowercased, at position = char offset.
#[derive(Clone, Default)]
pub struct UserTrigramTokenizer {
    token: Token,
}

pub struct UserTrigramStream<'a> {
    text: &'a str,
    /// Byte offset of every char, plus the end.
    bounds: Vec<usize>,
    next: usize,
    token: &'a mut Token,
}

impl Tokenizer for UserTrigramTokenizer {
    type TokenStream<'a> = UserTrigramStream<'a>;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> UserTrigramStream<'a> {
        self.token.reset();
        let mut bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        bounds.push(text.len());
        UserTrigramStream {
            text,
            bounds,
            next: 0,
            token: &mut self.token,
        }
    }
}

impl TokenStream for UserTrigramStream<'_> {
    fn advance(&mut self) -> bool {
        if self.next + GRAM >= self.bounds.len() {
            return false;
        }
        let (from, to) = (self.bounds[self.next], self.bounds[self.next + GRAM]);
        self.token.text.clear();
        for c in self.text[from..to].chars() {
            self.token.text.extend(c.to_lowercase());
        }
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.position = self.next;
        self.token.position_length = 1;
        self.next += 1;
        true
    }
    fn token(&self) -> &Token {
        self.token
    }
    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// The trigrams of `s` in order, exactly as [`UserTrigramTokenizer`] indexes them.
pub fn user_trigrams(s: &str) -> Vec<String> {
    let mut tok = UserTrigramTokenizer::default();
    let mut stream = tok.token_stream(s);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigrams_carry_char_positions() {
        assert_eq!(user_trigrams("+49Ab"), ["+49", "49a", "9ab"]);
        assert_eq!(user_trigrams("ab"), Vec::<String>::new());
        assert_eq!(user_trigrams("ÄÖÜx"), ["äöü", "öüx"]);
        let mut t = UserTrigramTokenizer::default();
        let mut s = t.token_stream("12345");
        let mut pos = Vec::new();
        while s.advance() {
            pos.push((
                s.token().position,
                s.token().offset_from,
                s.token().offset_to,
            ));
        }
        assert_eq!(pos, [(0, 0, 3), (1, 1, 4), (2, 2, 5)]);
    }
}
