//! Turning code and task text into search terms.
//!
//! Code and plain words meet half-way: identifiers are split into their parts (`parseConfig`,
//! `parse_config` and `ParseConfig` all give `pars` and `config`) and kept whole as well, so a task
//! that says "parse the config" and one that names `parse_config` both find the file. Words are
//! reduced by a light suffix stripper so that "redirects", "redirected" and "redirecting" meet.

use std::collections::HashSet;
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

/// True when `word` splits into more than one part, without allocating.
fn is_compound(word: &[u8]) -> bool {
    let trimmed = trim_underscores(word);
    trimmed.contains(&b'_')
        || trimmed
            .windows(2)
            .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
        || trimmed.windows(3).any(|w| {
            w[0].is_ascii_uppercase() && w[1].is_ascii_uppercase() && w[2].is_ascii_lowercase()
        })
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
