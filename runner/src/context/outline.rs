//! Signature outlines: the lines of a file that define something, found by per-language regular
//! expressions. An outline is cheap to read and tells a model what a file offers and where, without
//! the cost of its body. Regular expressions miss some definitions (multi-line signatures keep only
//! their first line) and that is accepted: the outline is a map, not a parser.

use std::sync::LazyLock;

use regex::Regex;

use super::lang::{Family, language_of};

/// One definition line of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// 1-based line number.
    pub line: usize,
    /// The line, trimmed, with a trailing `{` removed and long lines cut.
    pub text: String,
}

/// Longest signature text kept, in bytes; longer ones are cut at a character boundary.
const MAX_SIGNATURE_BYTES: usize = 160;

fn re(pattern: &str) -> Regex {
    // The patterns are constants of this module; the unit tests compile every one of them.
    Regex::new(pattern).unwrap_or_else(|e| panic!("outline pattern {pattern:?} is invalid: {e}"))
}

static RUST: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"^\s*(?:pub(?:\s*\([^)]*\))?\s+)?(?:(?:default|async|const|unsafe|extern(?:\s+"[^"]*")?)\s+)*(?:fn|struct|enum|trait|union|type|mod|static|const|impl|macro_rules!)[\s<!]"#,
    )
});
static PYTHON: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*(?:async\s+def|def|class)\s+\w|^[A-Z][A-Z0-9_]*\s*(?::[^=]+)?=[^=]"));
static JAVASCRIPT: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"^\s*(?:export\s+(?:default\s+)?)?(?:declare\s+)?(?:async\s+)?function\b",
        r"|^\s*(?:export\s+(?:default\s+)?)?(?:declare\s+)?(?:abstract\s+)?class\s+[\w$]",
        r"|^\s*(?:export\s+)?(?:declare\s+)?(?:interface|type|enum|namespace)\s+[\w$]+",
        r"|^(?:export\s+)?(?:const|let|var)\s+[\w$]+",
        r"|^\s*(?:module\.)?exports(?:\.[\w$]+)?\s*=",
        r"|^\s*[\w$.]+\s*=\s*(?:async\s+)?function\b",
        r"|^\s+(?:(?:public|private|protected|static|async|readonly|abstract|override|get|set)\s+)*\*?[\w$]+\s*(?:<[^>]*>)?\([^)]*\)\s*(?::\s*[^={;]+)?\{\s*$",
    ))
});
static GO: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:func|type|const|var)\b"));
static JVM_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"^\s*(?:@\w+\s+)*(?:(?:public|private|protected|internal|static|final|abstract|sealed|open|override|data|inline|suspend|virtual|async|partial|readonly|export|fileprivate|mutating)\s+)*",
        r"(?:class|interface|enum|record|struct|object|trait|fun|func|protocol|extension)\s+[\w<]",
        r"|^\s*(?:(?:public|private|protected|internal|static|final|abstract|synchronized|override|virtual|async|native)\s+)+[\w<>\[\],.?]+(?:\s+[\w<>\[\],.?]+)*\s+\w+\s*\(",
    ))
});
static RUBY: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^\s*(?:def|class|module)\s+[\w:.]|^\s*attr_(?:reader|writer|accessor)\b")
});
static PHP: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\s*(?:(?:abstract|final|public|private|protected|static|readonly)\s+)*(?:function|class|interface|trait|enum)\s+\w",
    )
});
static C_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    re(concat!(
        r"^(?:typedef|struct|union|enum|class|namespace|template)\b",
        r"|^#\s*define\s+\w+",
        r"|^[A-Za-z_][\w\s\*&:<>,~]*[\s\*&]~?[\w:]+\s*\([^;]*$",
    ))
});
static SHELL: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*(?:function\s+[\w-]+|[\w-]+\s*\(\s*\))\s*(?:\{|\(|$)"));
static ELIXIR: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^\s*(?:defmodule|defprotocol|defimpl|defmacro|defmacrop|defp|def|defstruct)\b")
});
static LUA: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*(?:local\s+)?function\b"));
static MARKDOWN: LazyLock<Regex> = LazyLock::new(|| re(r"^#{1,3}\s+\S"));
static TOML: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*\[\[?[^\]]+\]\]?\s*$"));

/// Lines that look like definitions but open a control-flow block (`if (x) {` in a class body).
fn is_control_flow(trimmed: &str) -> bool {
    let first = trimmed
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("");
    matches!(
        first,
        "if" | "else"
            | "for"
            | "while"
            | "switch"
            | "catch"
            | "return"
            | "do"
            | "try"
            | "with"
            | "new"
            | "throw"
            | "await"
            | "yield"
            | "case"
            | "match"
            | "loop"
            | "super"
            | "this"
            | "sizeof"
            | "delete"
    )
}

fn pattern_for(family: Family) -> Option<&'static Regex> {
    Some(match family {
        Family::Rust => &RUST,
        Family::Python => &PYTHON,
        Family::JavaScript => &JAVASCRIPT,
        Family::Go => &GO,
        Family::JvmLike => &JVM_LIKE,
        Family::Ruby => &RUBY,
        Family::Php => &PHP,
        Family::CLike => &C_LIKE,
        Family::Shell => &SHELL,
        Family::Elixir => &ELIXIR,
        Family::Lua => &LUA,
        Family::Markdown => &MARKDOWN,
        Family::Toml => &TOML,
        Family::Other => return None,
    })
}

/// True when `line` (untrimmed) is a definition in a file of `family`.
fn is_signature(family: Family, pattern: &Regex, line: &str) -> bool {
    let trimmed = line.trim_start();
    if trimmed.starts_with("//") || trimmed.starts_with("/*") || trimmed.starts_with('*') {
        return false;
    }
    let hash_comments = matches!(
        family,
        Family::Python | Family::Ruby | Family::Shell | Family::Elixir | Family::Toml
    );
    if hash_comments && trimmed.starts_with('#') {
        return false;
    }
    pattern.is_match(line) && !is_control_flow(trimmed)
}

/// The definition lines of `text`, judged by the language of `path`; empty for languages the
/// outline does not know. Lines inside Markdown code fences are not headings and are skipped.
pub fn outline(path: &str, text: &str) -> Vec<Signature> {
    let Some(family) = language_of(path).map(|l| l.family) else {
        return Vec::new();
    };
    let Some(pattern) = pattern_for(family) else {
        return Vec::new();
    };
    let mut in_fence = false;
    let mut signatures = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if family == Family::Markdown && line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || !is_signature(family, pattern, line) {
            continue;
        }
        signatures.push(Signature {
            line: index + 1,
            text: tidy(line),
        });
    }
    signatures
}

/// Trims a signature line, drops a trailing opening brace, and cuts it to a readable length.
fn tidy(line: &str) -> String {
    let mut text = line.trim();
    if let Some(stripped) = text.strip_suffix('{') {
        text = stripped.trim_end();
    }
    if text.len() <= MAX_SIGNATURE_BYTES {
        return text.to_string();
    }
    let mut cut = MAX_SIGNATURE_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{} …", &text[..cut])
}

/// True when some line of `text` defines `symbol`: a definition line (as the outline sees it) that
/// names `symbol` before its parameter list or body. Go methods' receivers are looked past.
pub(crate) fn defines(path: &str, text: &str, symbol: &str) -> bool {
    let Some(family) = language_of(path).map(|l| l.family) else {
        return false;
    };
    if family == Family::Markdown {
        return false;
    }
    let Some(pattern) = pattern_for(family) else {
        return false;
    };
    let mut from = 0;
    while let Some(found) = text[from..].find(symbol) {
        let at = from + found;
        from = at + symbol.len();
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        let line = &text[line_start..line_end];
        if is_signature(family, pattern, line) && names_in_head(family, line, symbol) {
            return true;
        }
        // Skip to the next line: one look per line is enough.
        from = from.max(line_end);
        if from >= text.len() {
            break;
        }
    }
    false
}

/// True when `symbol` appears as a whole word in the head of a definition line: the part before its
/// parameters, value or body.
fn names_in_head(family: Family, line: &str, symbol: &str) -> bool {
    let mut head = line.trim_start();
    if family == Family::Go
        && let Some(rest) = head.strip_prefix("func (")
    {
        head = rest.split_once(')').map_or(rest, |(_, after)| after);
    }
    let end = head.find(['(', '=', '{', ';']).unwrap_or(head.len());
    head[..end]
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .any(|word| word == symbol)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(path: &str, source: &str) -> Vec<String> {
        outline(path, source).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn every_family_pattern_compiles_and_finds_a_definition() {
        let samples = [
            (
                "A.java",
                "public class A {\n  public static int size(int x) {\n    if (x) {\n",
            ),
            ("a.rb", "module Shop\n  class Cart\n    def total\n"),
            (
                "a.php",
                "<?php\nfinal class Cart {\n  public function total() {\n",
            ),
            (
                "a.c",
                "#define MAX 3\nstatic int total(int x) {\n  return x;\n}\n",
            ),
            ("a.sh", "# setup() {\nsetup() {\nfunction teardown {\n"),
            ("a.ex", "defmodule Shop do\n  def total(cart), do: 1\n"),
            ("a.lua", "local function total()\n"),
            ("Cargo.toml", "[package]\nname = \"x\"\n[dependencies]\n"),
        ];
        let found: Vec<usize> = samples.iter().map(|(p, s)| texts(p, s).len()).collect();
        assert_eq!(found, vec![2, 3, 2, 2, 2, 2, 1, 2]);
    }

    #[test]
    fn a_definition_is_told_from_a_mention() {
        let source = "fn run(searcher: Searcher) {}\npub struct Searcher {\n";
        assert!(defines("a.rs", source, "Searcher"));
        assert!(!defines(
            "a.rs",
            "fn run(searcher: Searcher) {}\n",
            "Searcher"
        ));
        assert!(defines(
            "a.go",
            "func (s *Server) Listen() error {\n",
            "Listen"
        ));
        assert!(!defines(
            "a.go",
            "func (s *Server) Listen() error {\n",
            "Server"
        ));
    }

    #[test]
    fn long_signatures_are_cut_at_a_character_boundary() {
        let line = format!("pub fn f(é: {}) {{", "ü".repeat(200));
        let cut = tidy(&line);
        assert!(cut.len() <= MAX_SIGNATURE_BYTES + 4 && cut.ends_with('…'));
    }
}
