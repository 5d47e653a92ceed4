//! Ranking files for a task: BM25 over path, identifier and word terms, then boosts for what the
//! task names outright (a path, a file, a symbol) and for what kind of change it describes.

use std::collections::{HashMap, HashSet};

use super::lang::{file_name, is_doc_path, is_manifest, is_root_readme, is_test_path, stem};
use super::outline::defines;
use super::parallel::par_map;
use super::scan::SourceFile;
use super::terms::{
    PrefixFilter, TOKENIZE_CAP, TermMap, for_each_term, for_each_wanted_term, is_stop_word, words,
};

/// BM25 term-frequency saturation.
const K1: f64 = 1.2;
/// BM25 length normalisation.
const B: f64 = 0.75;
/// A path term counts as this many occurrences in the body: a file's name says more about it than
/// any one line does.
const PATH_WEIGHT: f32 = 3.0;
/// At most this many named symbols are looked up; a task that names more is a list, not a pointer.
const MAX_SYMBOLS: usize = 12;

// Boosts are multiples of the best BM25 score of the query, so they mean the same thing for a
// three-word task and a three-paragraph one.
/// The task gives this file's path: it comes first.
const NAMED_PATH_BOOST: f64 = 10.0;
/// The task gives this file's name (`lib.rs`), shared among files of the same name.
const NAMED_FILE_BOOST: f64 = 2.0;
/// The task uses this file's stem as a word (`walk` for `walk.rs`), shared among same stems.
const NAMED_STEM_BOOST: f64 = 0.5;
/// The task names a directory that contains this file.
const NAMED_DIR_BOOST: f64 = 0.3;
/// The file defines a symbol the task names, shared (by square root) among its definers.
const SYMBOL_BOOST: f64 = 1.0;
/// Manifests when the task is about dependencies.
const MANIFEST_BOOST: f64 = 0.5;
/// Documentation when the task is about documentation.
const DOC_BOOST: f64 = 0.3;
/// Tests and fixtures, when the task does not mention tests, keep this share of their score.
const TEST_FACTOR: f64 = 0.85;

const TEST_WORDS: &[&str] = &[
    "test",
    "tests",
    "testing",
    "tested",
    "spec",
    "specs",
    "unittest",
    "unittests",
    "coverage",
    "flaky",
    "fixture",
    "fixtures",
    "e2e",
    "regression",
];
const DEPENDENCY_WORDS: &[&str] = &[
    "dependency",
    "dependencies",
    "deps",
    "dep",
    "bump",
    "upgrade",
    "downgrade",
    "crate",
    "crates",
    "package",
    "packages",
    "requirements",
    "msrv",
    "npm",
    "pip",
];
const DOC_WORDS: &[&str] = &[
    "doc",
    "docs",
    "documentation",
    "document",
    "documented",
    "readme",
    "typo",
    "typos",
    "changelog",
    "docstring",
    "docstrings",
    "wording",
    "grammar",
    "spelling",
];

/// What the ranking takes from a task's text.
#[derive(Debug, Default)]
pub(crate) struct Query {
    /// Distinct search terms, with their weights (repeated words weigh more, with diminishing
    /// returns).
    terms: Vec<(Vec<u8>, f64)>,
    lookup: TermMap<u32>,
    /// Identifiers the task names as code: in backticks, `camelCase`, `snake_case`, `Type::method`,
    /// `call()`.
    symbols: Vec<String>,
    /// Path-like tokens (`src/lib.rs`, `lib.rs`, `src/sync`), lower-cased.
    paths: Vec<String>,
    /// Lower-cased words of the task, stop words removed.
    words: HashSet<String>,
    mentions_tests: bool,
    about_dependencies: bool,
    about_docs: bool,
}

impl Query {
    /// Reads a task's text.
    pub(crate) fn parse(task: &str) -> Self {
        let mut query = Query::default();
        let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut order: Vec<Vec<u8>> = Vec::new();
        let mut buf = Vec::new();
        for word in words(task.as_bytes()) {
            let lower = String::from_utf8_lossy(word).to_ascii_lowercase();
            if is_stop_word(&lower) {
                continue;
            }
            query.mentions_tests |= TEST_WORDS.contains(&lower.as_str());
            query.about_dependencies |= DEPENDENCY_WORDS.contains(&lower.as_str());
            query.about_docs |= DOC_WORDS.contains(&lower.as_str());
            for_each_term(word, &mut buf, |term| {
                let lower_term = String::from_utf8_lossy(term);
                if is_stop_word(&lower_term) {
                    return;
                }
                let count = counts.entry(term.to_vec()).or_insert(0);
                if *count == 0 {
                    order.push(term.to_vec());
                }
                *count += 1;
            });
            query.words.insert(lower);
        }
        for term in order {
            let count = counts.get(&term).copied().unwrap_or(1);
            let weight = 1.0 + (count as f64).ln();
            query.lookup.insert(term.clone(), query.terms.len() as u32);
            query.terms.push((term, weight));
        }
        query.symbols = named_symbols(task);
        query.paths = named_paths(task);
        query
    }
}

/// Identifiers the task names as code.
fn named_symbols(task: &str) -> Vec<String> {
    let mut symbols: Vec<String> = Vec::new();
    let mut push = |word: &str| {
        let lower = word.to_ascii_lowercase();
        if word.len() >= 3 && !is_stop_word(&lower) && !symbols.iter().any(|s| s == word) {
            symbols.push(word.to_string());
        }
    };
    // Inside backticks, every identifier is meant as code.
    for (i, chunk) in task.split('`').enumerate() {
        if i % 2 == 1 {
            for word in words(chunk.as_bytes()) {
                push(&String::from_utf8_lossy(word));
            }
        }
    }
    let bytes = task.as_bytes();
    for word in words(bytes) {
        // `words` yields sub-slices of `bytes`; find this one's position to look at its neighbours.
        let start = word.as_ptr() as usize - bytes.as_ptr() as usize;
        let end = start + word.len();
        let text = String::from_utf8_lossy(word);
        let inner = text.trim_matches('_');
        let snake = inner.contains('_');
        let camel = inner
            .as_bytes()
            .windows(2)
            .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
        let called = task[end..].starts_with("()") || task[end..].starts_with('(');
        let qualified = task[end..].starts_with("::")
            || task[..start].ends_with("::")
            || (task[..start].ends_with('.') && start >= 2 && task[end..].starts_with('('));
        if snake || camel || called || qualified {
            push(&text);
        }
    }
    symbols.truncate(MAX_SYMBOLS);
    symbols
}

/// Path-like tokens of the task, lower-cased and stripped of quoting and trailing punctuation.
fn named_paths(task: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for raw in task.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '`' | '"' | '\'' | '(' | ')' | '[' | ']' | '<' | '>' | ',' | ';'
            )
    }) {
        let token = raw.trim_end_matches(['.', ':', '!', '?']);
        let token = token.trim_start_matches("./").trim_start_matches('/');
        let token = token.trim_end_matches('/');
        if token.is_empty() || token.contains("://") {
            continue;
        }
        let has_extension = file_name(token)
            .rsplit_once('.')
            .is_some_and(|(base, ext)| {
                !base.is_empty()
                    && (1..=6).contains(&ext.len())
                    && ext.bytes().all(|b| b.is_ascii_alphanumeric())
                    && ext.bytes().any(|b| b.is_ascii_alphabetic())
            });
        let path_chars = token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'));
        if path_chars && (token.contains('/') || has_extension) {
            let lower = token.to_ascii_lowercase();
            if !paths.contains(&lower) {
                paths.push(lower);
            }
        }
    }
    paths
}

/// A file's place in the ranking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ranked {
    /// Index into the snapshot's files.
    pub index: usize,
    pub score: f64,
    /// The task gives this file's path outright.
    pub named: bool,
}

/// Term statistics of one file.
struct DocStats {
    len: f32,
    tf: Vec<(u32, f32)>,
}

fn doc_stats(
    file: &SourceFile,
    query: &Query,
    filter: &PrefixFilter,
    buf: &mut Vec<u8>,
    dense: &mut [f32],
) -> DocStats {
    dense.iter_mut().for_each(|x| *x = 0.0);
    let mut len = 0.0f32;
    let mut count_words = |text: &[u8], weight: f32| {
        for word in words(text) {
            let terms = for_each_wanted_term(word, filter, buf, |term| {
                if let Some(&id) = query.lookup.get(term) {
                    dense[id as usize] += weight;
                }
            });
            len += weight * terms as f32;
        }
    };
    count_words(file.path().as_bytes(), PATH_WEIGHT);
    let text = file.text().as_bytes();
    count_words(&text[..text.len().min(TOKENIZE_CAP)], 1.0);
    let tf = dense
        .iter()
        .enumerate()
        .filter(|(_, tf)| **tf > 0.0)
        .map(|(id, tf)| (id as u32, *tf))
        .collect();
    DocStats { len, tf }
}

/// Ranks `files` for `query`, best first; ties are broken by path so the order is reproducible.
/// Every file is returned, including those with a zero score.
pub(crate) fn rank(files: &[SourceFile], query: &Query) -> Vec<Ranked> {
    let filter = PrefixFilter::new(query.terms.iter().map(|(term, _)| term.as_slice()));
    let stats = par_map(files, |file| {
        let mut buf = Vec::with_capacity(64);
        let mut dense = vec![0.0f32; query.terms.len()];
        doc_stats(file, query, &filter, &mut buf, &mut dense)
    });
    let n = files.len().max(1) as f64;
    let avg_len = (stats.iter().map(|s| f64::from(s.len)).sum::<f64>() / n).max(1.0);
    let mut df = vec![0usize; query.terms.len()];
    for s in &stats {
        for &(id, _) in &s.tf {
            df[id as usize] += 1;
        }
    }
    let idf: Vec<f64> = df
        .iter()
        .map(|&d| (1.0 + (n - d as f64 + 0.5) / (d as f64 + 0.5)).ln())
        .collect();
    let bm25: Vec<f64> = stats
        .iter()
        .map(|s| {
            let norm = K1 * (1.0 - B + B * f64::from(s.len) / avg_len);
            s.tf.iter()
                .map(|&(id, tf)| {
                    let tf = f64::from(tf);
                    query.terms[id as usize].1 * idf[id as usize] * tf * (K1 + 1.0) / (tf + norm)
                })
                .sum()
        })
        .collect();
    let best = bm25.iter().copied().fold(1.0f64, f64::max);

    let mut ranked: Vec<Ranked> = bm25
        .iter()
        .enumerate()
        .map(|(index, &score)| Ranked {
            index,
            score,
            named: false,
        })
        .collect();
    apply_name_boosts(files, query, best, &mut ranked);
    apply_symbol_boosts(files, query, best, &mut ranked);
    for r in &mut ranked {
        let path = files[r.index].path();
        if query.about_dependencies && is_manifest(path) {
            r.score += MANIFEST_BOOST * best;
        }
        if query.about_docs && is_doc_path(path) {
            r.score += DOC_BOOST * best;
            if is_root_readme(path) {
                r.score += DOC_BOOST * best;
            }
        }
        if !query.mentions_tests && !r.named && is_test_path(path) {
            r.score *= TEST_FACTOR;
        }
    }
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| files[a.index].path().cmp(files[b.index].path()))
    });
    ranked
}

/// Boosts for paths, file names, stems and directories the task names.
fn apply_name_boosts(files: &[SourceFile], query: &Query, best: f64, ranked: &mut [Ranked]) {
    let lower_paths: Vec<String> = files
        .iter()
        .map(|f| f.path().to_ascii_lowercase())
        .collect();
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    let mut by_stem: HashMap<&str, usize> = HashMap::new();
    // Files under each directory name, wherever that name occurs.
    let mut dir_sizes: HashMap<&str, usize> = HashMap::new();
    for path in &lower_paths {
        if let Some((dir, _)) = path.rsplit_once('/') {
            let mut seen = HashSet::new();
            for part in dir.split('/') {
                if seen.insert(part) {
                    *dir_sizes.entry(part).or_default() += 1;
                }
            }
        }
    }
    for path in &lower_paths {
        let name = file_name(path);
        *by_name.entry(name).or_default() += 1;
        *by_stem.entry(stem(name)).or_default() += 1;
    }
    for (r, path) in ranked.iter_mut().zip(&lower_paths) {
        let name = file_name(path);
        for mention in &query.paths {
            if mention.contains('/') {
                if path == mention || path.ends_with(&format!("/{mention}")) {
                    r.named = true;
                    r.score += NAMED_PATH_BOOST * best;
                } else if path.starts_with(&format!("{mention}/"))
                    || path.contains(&format!("/{mention}/"))
                {
                    r.score += NAMED_DIR_BOOST * best;
                }
            } else if name == mention {
                let shared = by_name.get(name).copied().unwrap_or(1) as f64;
                r.score += NAMED_FILE_BOOST * best / shared;
                if shared == 1.0 {
                    r.named = true;
                }
            }
        }
        // A word of the task that is the name of a directory (`sync: fix ...`, "in the codec
        // module") points at the files under it; a directory holding much of the repository
        // says little.
        if let Some((dir, _)) = path.rsplit_once('/') {
            let named_dir = dir
                .split('/')
                .filter(|d| d.len() >= 3 && query.words.contains(*d))
                .filter_map(|d| dir_sizes.get(d))
                .min();
            if let Some(&size) = named_dir
                && size * 4 <= lower_paths.len()
            {
                r.score += NAMED_DIR_BOOST * best;
            }
        }
        let file_stem = stem(name);
        if file_stem.len() >= 3 && !is_stop_word(file_stem) && query.words.contains(file_stem) {
            let shared = by_stem.get(file_stem).copied().unwrap_or(1) as f64;
            r.score += NAMED_STEM_BOOST * best / shared;
        }
    }
}

/// Boosts for files that define a symbol the task names.
fn apply_symbol_boosts(files: &[SourceFile], query: &Query, best: f64, ranked: &mut [Ranked]) {
    if query.symbols.is_empty() {
        return;
    }
    let definers: Vec<Vec<usize>> = par_map(files, |file| {
        query
            .symbols
            .iter()
            .enumerate()
            .filter(|(_, symbol)| {
                file.text().contains(symbol.as_str()) && defines(file.path(), file.text(), symbol)
            })
            .map(|(i, _)| i)
            .collect()
    });
    let mut per_symbol = vec![0usize; query.symbols.len()];
    for found in &definers {
        for &i in found {
            per_symbol[i] += 1;
        }
    }
    for (r, found) in ranked.iter_mut().zip(&definers) {
        for &i in found {
            r.score += SYMBOL_BOOST * best / (per_symbol[i] as f64).sqrt();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_found_in_prose_with_quotes_and_punctuation() {
        let query = Query::parse(
            "Fix `src/lib.rs`, then ./docs/guide.md and README.md. See https://x.io/a.html",
        );
        assert_eq!(
            query.paths,
            vec!["src/lib.rs", "docs/guide.md", "readme.md"]
        );
    }

    #[test]
    fn symbols_are_backticked_cased_called_or_qualified_identifiers() {
        let query = Query::parse(
            "The `retry` loop in parseConfig calls load_file() and Notify::notified too often",
        );
        assert_eq!(
            query.symbols,
            vec!["retry", "parseConfig", "load_file", "Notify", "notified"]
        );
    }

    #[test]
    fn stop_words_and_request_verbs_are_not_terms() {
        let query = Query::parse("Please fix the parser so that it handles tests");
        let terms: Vec<String> = query
            .terms
            .iter()
            .map(|(t, _)| String::from_utf8_lossy(t).into_owned())
            .collect();
        assert_eq!(terms, vec!["parser", "handl", "test"]);
        assert!(query.mentions_tests);
    }
}
