//! BERT tokenizer: basic tokenizer (clean, CJK split, accent strip, lower-case, whitespace and
//! punctuation split) followed by WordPiece, as Hugging Face's `BertNormalizer` +
//! `BertPreTokenizer` + `WordPiece` + `BertProcessing` with `do_lower_case` and
//! `strip_accents` unset (which means: strip when lower-casing).
//!
//! The pipeline is one streaming pass over the characters and stops as soon as the
//! truncation limit is reached, so a megabyte of input costs no more than its first words.
//! Every input `&str` (any UTF-8) yields `[CLS] ... [SEP]`; nothing panics.
//!
//! Unicode categories come from the `unicode-general-category` tables, which may be a newer
//! Unicode version than the tables Hugging Face's tokenizer was built with; characters
//! assigned in between could be classified differently (unassigned = "control" = dropped).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use unicode_general_category::{GeneralCategory as Gc, get_general_category};
use unicode_normalization::UnicodeNormalization;

use crate::error::Error;

/// Words longer than this (in chars) become a single `[UNK]`.
pub const MAX_CHARS_PER_WORD: usize = 100;

/// A WordPiece vocabulary plus the special token ids.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    vocab: BTreeMap<String, u32>,
    cls: u32,
    sep: u32,
    unk: u32,
    max_len: usize,
}

impl Tokenizer {
    /// Builds from `vocab.txt` (one token per line, id = line number). `max_len` counts
    /// `[CLS]` and `[SEP]` (sentence-transformers uses 256 for all-MiniLM-L6-v2).
    pub fn from_vocab_txt(vocab: &[u8], max_len: usize) -> Result<Self, Error> {
        let text = core::str::from_utf8(vocab).map_err(|_| Error::BadVocab("not UTF-8"))?;
        let mut map = BTreeMap::new();
        for (id, line) in text.split('\n').enumerate() {
            let tok = line.strip_suffix('\r').unwrap_or(line);
            if tok.is_empty() {
                continue;
            }
            let id = u32::try_from(id).map_err(|_| Error::BadVocab("too many tokens"))?;
            map.insert(String::from(tok), id);
        }
        let get = |t: &str| map.get(t).copied();
        let (cls, sep, unk) = match (get("[CLS]"), get("[SEP]"), get("[UNK]")) {
            (Some(c), Some(s), Some(u)) => (c, s, u),
            _ => return Err(Error::BadVocab("[CLS], [SEP] or [UNK] missing")),
        };
        if max_len < 2 {
            return Err(Error::BadVocab("max_len must leave room for [CLS] and [SEP]"));
        }
        Ok(Tokenizer { vocab: map, cls, sep, unk, max_len })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.values().map(|&v| v as usize + 1).max().unwrap_or(0)
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// `[CLS] pieces... [SEP]`, at most `max_len` ids.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.max_len.min(text.len() + 2));
        ids.push(self.cls);
        self.pieces(text, self.max_len - 2, &mut ids);
        ids.push(self.sep);
        ids
    }

    /// Appends at most `limit` WordPiece ids of `text` to `out`.
    fn pieces(&self, text: &str, limit: usize, out: &mut Vec<u32>) {
        let limit = out.len() + limit;
        let mut word = String::new();
        let mut chars = 0usize;
        let mut buf = String::new();
        for c in normalize(text) {
            if out.len() >= limit {
                break;
            }
            if c.is_whitespace() || is_punctuation(c) {
                self.flush(&mut word, &mut chars, &mut buf, out);
                if !c.is_whitespace() {
                    word.push(c);
                    chars = 1;
                    self.flush(&mut word, &mut chars, &mut buf, out);
                }
            } else {
                // Past the limit the word is [UNK] anyway: count, do not store.
                if chars <= MAX_CHARS_PER_WORD {
                    word.push(c);
                }
                chars = chars.saturating_add(1);
            }
        }
        self.flush(&mut word, &mut chars, &mut buf, out);
        out.truncate(limit);
    }

    fn flush(&self, word: &mut String, chars: &mut usize, buf: &mut String, out: &mut Vec<u32>) {
        if *chars > 0 {
            if *chars > MAX_CHARS_PER_WORD {
                out.push(self.unk);
            } else {
                self.wordpiece(word, buf, out);
            }
        }
        word.clear();
        *chars = 0;
    }

    /// Greedy longest-match-first WordPiece; a word with an unmatchable rest is one `[UNK]`.
    fn wordpiece(&self, word: &str, buf: &mut String, out: &mut Vec<u32>) {
        let first = out.len();
        let mut start = 0;
        while start < word.len() {
            let rest = word.get(start..).unwrap_or("");
            let mut found = None;
            // Candidate ends, longest first, at char boundaries.
            let ends = rest.char_indices().map(|(i, c)| i + c.len_utf8()).rev();
            for end in ends {
                buf.clear();
                if start > 0 {
                    buf.push_str("##");
                }
                buf.push_str(rest.get(..end).unwrap_or(""));
                if let Some(&id) = self.vocab.get(buf.as_str()) {
                    found = Some((id, end));
                    break;
                }
            }
            match found {
                Some((id, end)) => {
                    out.push(id);
                    start += end;
                }
                None => {
                    out.truncate(first);
                    out.push(self.unk);
                    return;
                }
            }
        }
    }
}

/// The BERT normaliser as a character stream: drop NUL, U+FFFD and controls; whitespace to
/// space; spaces around CJK ideographs; NFD and drop non-spacing marks; lower-case.
fn normalize(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars()
        .filter(|&c| !(c == '\0' || c == '\u{FFFD}' || is_control(c)))
        .flat_map(|c| {
            let ws = matches!(c, '\t' | '\n' | '\r') || c.is_whitespace();
            let c = if ws { ' ' } else { c };
            let cjk = is_cjk(c);
            [cjk.then_some(' '), Some(c), cjk.then_some(' ')].into_iter().flatten()
        })
        .nfd()
        .filter(|&c| get_general_category(c) != Gc::NonspacingMark)
        .flat_map(char::to_lowercase)
}

/// Unicode "Other" (Cc, Cf, Cs, Co, Cn), except tab, newline and carriage return.
fn is_control(c: char) -> bool {
    if matches!(c, '\t' | '\n' | '\r') {
        return false;
    }
    matches!(
        get_general_category(c),
        Gc::Control | Gc::Format | Gc::Surrogate | Gc::PrivateUse | Gc::Unassigned
    )
}

/// ASCII punctuation (which includes symbols like `$` and `^`) or any Unicode P* character.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            get_general_category(c),
            Gc::ConnectorPunctuation
                | Gc::DashPunctuation
                | Gc::OpenPunctuation
                | Gc::ClosePunctuation
                | Gc::InitialPunctuation
                | Gc::FinalPunctuation
                | Gc::OtherPunctuation
        )
}

/// The CJK Unified Ideographs blocks BERT splits on (not Hiragana, Katakana or Hangul).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> Tokenizer {
        let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n##s\nworld\n,\n!\ncafe\n東\n京\na\n##b\n";
        Tokenizer::from_vocab_txt(vocab.as_bytes(), 8).unwrap()
    }

    fn check(text: &str, want: &[u32]) {
        assert_eq!(tok().encode(text), want, "{text:?}");
    }

    #[test]
    fn basic_and_wordpiece() {
        check("", &[2, 3]);
        check("Hello, WORLD!", &[2, 4, 7, 6, 8, 3]);
        check("hellos", &[2, 4, 5, 3]);
        check("Café\u{0}\u{7}", &[2, 9, 3]);
        check("東京", &[2, 10, 11, 3]);
        check("abab", &[2, 1, 3]); // "a", "##b", then "##a" is missing: whole word [UNK]
        check("xyz hello", &[2, 1, 4, 3]);
        check(&"a".repeat(101), &[2, 1, 3]);
        check("a a a a a a a a a", &[2, 12, 12, 12, 12, 12, 12, 3]); // truncated to 8
    }

    #[test]
    fn rejects_bad_vocab() {
        assert_eq!(
            Tokenizer::from_vocab_txt(b"a\nb\n", 8).err(),
            Some(Error::BadVocab("[CLS], [SEP] or [UNK] missing"))
        );
        assert_eq!(Tokenizer::from_vocab_txt(&[0xff], 8).err(), Some(Error::BadVocab("not UTF-8")));
    }
}
