//! Turning code and task text into search terms.
//!
//! Code and plain words meet half-way: identifiers are split into their parts (`parseConfig`,
//! `parse_config` and `ParseConfig` all give `pars` and `config`) and kept whole as well, so a task
//! that says "parse the config" and one that names `parse_config` both find the file. Words are
//! reduced by a light suffix stripper so that "redirects", "redirected" and "redirecting" meet.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

/// At most this many bytes of a file are tokenized: the head of a file says what it is about, and
/// the cap keeps ranking time linear in the number of files rather than in their size.
pub(crate) const TOKENIZE_CAP: usize = 64 * 1024;

/// Identifier-like words of `text`: runs of ASCII letters, digits and `_` that do not start with a
/// digit. Everything else (punctuation, whitespace, non-ASCII) separates words.
pub(crate) fn words(text: &[u8]) -> Words<'_> {
    Words {
        bytes: text,
        pos: 0,
    }
}

/// Iterator returned by [`words`].
pub(crate) struct Words<'a> {
    bytes: &'a [u8],
    pos: usize,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let bytes = self.bytes;
        loop {
            while self.pos < bytes.len() && !is_word_byte(bytes[self.pos]) {
                self.pos += 1;
            }
            if self.pos >= bytes.len() {
                return None;
            }
            let start = self.pos;
            while self.pos < bytes.len() && is_word_byte(bytes[self.pos]) {
                self.pos += 1;
            }
            // Numbers (and hex literals, version strings) carry no meaning for ranking.
            if !bytes[start].is_ascii_digit() {
                return Some(&bytes[start..self.pos]);
            }
        }
    }
}

/// Calls `part` with each part of an identifier: split at `_`, at a lower-to-upper change
/// (`parseConfig`), and before the last capital of a capital run followed by a lower-case letter
/// (`HTTPServer` gives `HTTP` and `Server`). Returns how many parts there were.
pub(crate) fn split_parts(word: &[u8], mut part: impl FnMut(&[u8])) -> usize {
    let mut count = 0;
    let mut start = None::<usize>;
    let mut emit = |from: usize, to: usize, count: &mut usize| {
        if to > from {
            part(&word[from..to]);
            *count += 1;
        }
    };
    for i in 0..word.len() {
        let b = word[i];
        if b == b'_' {
            if let Some(s) = start.take() {
                emit(s, i, &mut count);
            }
            continue;
        }
        match start {
            None => start = Some(i),
            Some(s) => {
                let prev = word[i - 1];
                let next = word.get(i + 1).copied();
                let hump = prev.is_ascii_lowercase() && b.is_ascii_uppercase();
                let acronym_end = prev.is_ascii_uppercase()
                    && b.is_ascii_uppercase()
                    && next.is_some_and(|n| n.is_ascii_lowercase());
                if hump || acronym_end {
                    emit(s, i, &mut count);
                    start = Some(i);
                }
            }
        }
    }
    if let Some(s) = start {
        emit(s, word.len(), &mut count);
    }
    count
}

/// True when `word` splits into more than one part, without allocating: one pass that looks for
/// the same boundaries as [`split_parts`].
fn is_compound(word: &[u8]) -> bool {
    let trimmed = trim_underscores(word);
    let mut before = 0u8;
    let mut prev = 0u8;
    for &b in trimmed {
        if b == b'_'
            || (prev.is_ascii_lowercase() && b.is_ascii_uppercase())
            || (before.is_ascii_uppercase() && prev.is_ascii_uppercase() && b.is_ascii_lowercase())
        {
            return true;
        }
        before = prev;
        prev = b;
    }
    false
}

fn trim_underscores(word: &[u8]) -> &[u8] {
    let start = word.iter().position(|&b| b != b'_').unwrap_or(word.len());
    let end = word
        .iter()
        .rposition(|&b| b != b'_')
        .map_or(start, |e| e + 1);
    &word[start..end]
}

/// Strips common English inflections in place so that a task's words meet the code's: plural `s`,
/// `ies`, `ing`, `ed`, and a final `e` (so "parse", "parsed", "parsing" and "parses" all become
/// "pars"). Deliberately crude: it only has to be consistent, both sides go through it.
pub(crate) fn stem(word: &mut Vec<u8>) {
    let ends = |w: &[u8], s: &[u8]| w.ends_with(s);
    let len = word.len();
    if len > 4 && ends(word, b"ies") {
        word.truncate(len - 3);
        word.push(b'y');
    } else if len > 4 && ends(word, b"sses") {
        word.truncate(len - 2);
    } else if len > 3
        && ends(word, b"s")
        && !ends(word, b"ss")
        && !ends(word, b"us")
        && !ends(word, b"is")
    {
        word.truncate(len - 1);
    }
    let len = word.len();
    if len >= 7 && ends(word, b"ing") {
        word.truncate(len - 3);
    } else if len >= 5 && ends(word, b"ed") && !ends(word, b"eed") {
        word.truncate(len - 2);
    }
    let len = word.len();
    if len > 4 && ends(word, b"e") {
        word.truncate(len - 1);
    }
}

/// Calls `term` with every search term of one identifier-like `word`: for a compound identifier
/// its whole lower-cased form and each stemmed part, for a plain word its stemmed form. Terms of
/// one letter are dropped. `buf` is scratch space, reused to avoid allocating per word.
pub(crate) fn for_each_term(word: &[u8], buf: &mut Vec<u8>, mut term: impl FnMut(&[u8])) {
    if is_compound(word) {
        buf.clear();
        buf.extend(trim_underscores(word).iter().map(u8::to_ascii_lowercase));
        term(buf);
        split_parts(word, |part| {
            if part.len() > 1 {
                buf.clear();
                buf.extend(part.iter().map(u8::to_ascii_lowercase));
                stem(buf);
                term(buf);
            }
        });
    } else {
        let word = trim_underscores(word);
        if word.len() > 1 {
            buf.clear();
            buf.extend(word.iter().map(u8::to_ascii_lowercase));
            stem(buf);
            term(buf);
        }
    }
}

/// The first two bytes of a set of terms, as a 65,536-bit table: most words of a file start with
/// two letters no query term starts with, and this rejects them before any lower-casing, stemming
/// or hashing.
pub(crate) struct PrefixFilter(Box<[u64; 1024]>);

impl PrefixFilter {
    /// A filter that passes terms starting like one of `terms` (lower-case, two bytes or more).
    pub(crate) fn new<'a>(terms: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut bits = Box::new([0u64; 1024]);
        for term in terms {
            if let [a, b, ..] = term {
                let i = (usize::from(*a) << 8) | usize::from(*b);
                bits[i / 64] |= 1 << (i % 64);
            }
        }
        Self(bits)
    }

    /// True when a term starting with `a`, `b` (any case) may be in the set.
    fn passes(&self, a: u8, b: u8) -> bool {
        let i = (usize::from(a.to_ascii_lowercase()) << 8) | usize::from(b.to_ascii_lowercase());
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
}

/// [`for_each_term`] for the ranking's inner loop: counts every term of `word` but builds only
/// those that `filter` passes. Returns the number of terms.
pub(crate) fn for_each_wanted_term(
    word: &[u8],
    filter: &PrefixFilter,
    buf: &mut Vec<u8>,
    mut term: impl FnMut(&[u8]),
) -> usize {
    if is_compound(word) {
        let mut count = 0;
        for_each_term(word, buf, |t| {
            count += 1;
            if filter.passes(t[0], t[1]) {
                term(t);
            }
        });
        return count;
    }
    let word = trim_underscores(word);
    if word.len() < 2 {
        return 0;
    }
    if filter.passes(word[0], word[1]) {
        buf.clear();
        buf.extend(word.iter().map(u8::to_ascii_lowercase));
        stem(buf);
        term(buf);
    }
    1
}

/// Words that say nothing about where in a repository a change belongs: English function words
/// and the verbs every change request uses ("fix", "add", "update", "please").
static STOP_WORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "done",
        "down",
        "during",
        "each",
        "either",
        "etc",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "let",
        "lets",
        "like",
        "make",
        "makes",
        "me",
        "might",
        "more",
        "most",
        "must",
        "my",
        "need",
        "needs",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "one",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "please",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "us",
        "very",
        "via",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "within",
        "without",
        "would",
        "you",
        "your",
        "yours",
        "fix",
        "fixes",
        "fixed",
        "fixing",
        "add",
        "adds",
        "added",
        "adding",
        "update",
        "updates",
        "updated",
        "updating",
        "change",
        "changes",
        "changed",
        "changing",
        "instead",
        "ensure",
        "allow",
        "allows",
        "able",
        "want",
        "wants",
        "using",
        "use",
        "used",
        "uses",
        "new",
        "now",
        "currently",
        "correctly",
        "properly",
        "issue",
        "issues",
        "pr",
        "thing",
        "things",
        "way",
    ]
    .into_iter()
    .collect()
});

/// True for words that carry no information about where a change belongs.
pub(crate) fn is_stop_word(lower: &str) -> bool {
    STOP_WORDS.contains(lower)
}

/// A multiply-rotate hasher for the term lookup, which runs once per word of every file. The
/// standard SipHash resists hash flooding, which a map keyed by the task's own terms does not
/// need, and costs several times more on short keys.
#[derive(Default, Clone, Copy)]
pub(crate) struct TermHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl TermHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for TermHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map from search terms, hashed with [`TermHasher`].
pub(crate) type TermMap<V> = HashMap<Vec<u8>, V, BuildHasherDefault<TermHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(word: &str) -> Vec<String> {
        let mut out = Vec::new();
        split_parts(word.as_bytes(), |p| {
            out.push(String::from_utf8_lossy(p).into_owned())
        });
        out
    }

    fn terms(word: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for_each_term(word.as_bytes(), &mut buf, |t| {
            out.push(String::from_utf8_lossy(t).into_owned())
        });
        out
    }

    #[test]
    fn identifiers_split_at_underscores_humps_and_acronyms() {
        assert_eq!(parts("parse_config"), vec!["parse", "config"]);
        assert_eq!(parts("parseConfig"), vec!["parse", "Config"]);
        assert_eq!(parts("HTTPServer"), vec!["HTTP", "Server"]);
        assert_eq!(parts("__init__"), vec!["init"]);
        assert_eq!(parts("utf8"), vec!["utf8"]);
    }

    #[test]
    fn compound_identifiers_give_the_whole_and_stemmed_parts() {
        assert_eq!(terms("parseConfig"), vec!["parseconfig", "pars", "config"]);
        assert_eq!(terms("redirects"), vec!["redirect"]);
        assert!(is_compound(b"HTTPServer"));
        assert!(!is_compound(b"_private"));
    }

    #[test]
    fn inflections_meet_at_one_stem() {
        let stemmed = |w: &str| {
            let mut buf = w.as_bytes().to_vec();
            stem(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        };
        for word in ["parse", "parses", "parsed", "parsing"] {
            assert_eq!(stemmed(word), "pars", "{word}");
        }
        assert_eq!(stemmed("entries"), "entry");
        assert_eq!(stemmed("string"), "string");
        assert_eq!(stemmed("process"), "process");
    }

    #[test]
    fn numbers_are_not_words() {
        let found: Vec<&[u8]> = words(b"v2 42 0xff x_1").collect();
        assert_eq!(found, vec![&b"v2"[..], b"x_1"]);
    }

    #[test]
    fn the_prefix_filter_passes_only_known_beginnings_in_any_case() {
        let filter = PrefixFilter::new([&b"config"[..]]);
        assert!(filter.passes(b'C', b'o'));
        assert!(!filter.passes(b'x', b'o'));
    }
}
