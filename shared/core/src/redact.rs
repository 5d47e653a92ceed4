//! Secrets out of stored text, and long lines cut.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// The longest line stored, in bytes.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

static SECRET_SHAPES: LazyLock<Regex> = LazyLock::new(|| {
    // Ordered so the longer prefixes win: `sk-ant-` before `sk-`, `github_pat_` before words.
    let shapes = [
        r"github_pat_[A-Za-z0-9_]{20,}",
        r"gh[pousr]_[A-Za-z0-9]{20,}",
        r"sk-ant-[A-Za-z0-9_\-]{16,}",
        r"sk-[A-Za-z0-9_\-]{16,}",
        r"(?:AKIA|ASIA)[A-Z0-9]{16}",
        r"whsec_[A-Za-z0-9+/=_\-]{8,}",
    ];
    let alternation = shapes.join("|");
    Regex::new(&format!(r"(?:{alternation})")).unwrap_or_else(|e| panic!("secret shapes: {e}"))
});

/// Replaces every known secret shape (GitHub, OpenAI, Anthropic and AWS keys, `whsec_`
/// secrets) with a marker that keeps the kind visible.
pub fn redact(text: &str) -> Cow<'_, str> {
    SECRET_SHAPES.replace_all(text, |caps: &regex::Captures<'_>| {
        let found = &caps[0];
        let kind = [
            "github_pat_",
            "sk-ant-",
            "whsec_",
            "ghp_",
            "gho_",
            "ghu_",
            "ghs_",
            "ghr_",
            "sk-",
            "AKIA",
            "ASIA",
        ]
        .into_iter()
        .find(|p| found.starts_with(p))
        .unwrap_or("");
        format!("{kind}{REDACTED}")
    })
}

/// Replaces each of `values` (secrets known by value) wherever it appears.
pub fn redact_values<'a>(text: &'a str, values: &[&str]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for v in values.iter().filter(|v| v.len() >= 6) {
        if out.contains(v) {
            out = Cow::Owned(out.replace(v, REDACTED));
        }
    }
    out
}

/// Cuts a line to [`MAX_LINE_BYTES`] on a character boundary and says how much was cut.
pub fn cut_line(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_LINE_BYTES {
        return Cow::Borrowed(text);
    }
    let marker_room = 64;
    let mut end = MAX_LINE_BYTES - marker_room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    Cow::Owned(format!("{} …[line cut: {cut} more bytes]", &text[..end]))
}

/// What is stored of a line a runner sent: secrets out, then cut.
pub fn clean_line(text: &str) -> String {
    cut_line(&redact(text)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_shape_is_redacted() {
        let cases = [
            (
                "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "token ghp_[REDACTED]",
            ),
            ("gho_abcdefghijklmnopqrstuvwxyz0123456789", "gho_[REDACTED]"),
            ("ghu_abcdefghijklmnopqrstuvwxyz0123456789", "ghu_[REDACTED]"),
            ("ghs_abcdefghijklmnopqrstuvwxyz0123456789", "ghs_[REDACTED]"),
            ("ghr_abcdefghijklmnopqrstuvwxyz0123456789", "ghr_[REDACTED]"),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
                "github_pat_[REDACTED]",
            ),
            ("key=sk-proj-abcdefghijklmnopqrstuvwx", "key=sk-[REDACTED]"),
            ("sk-ant-api03-abcdefghijklmnopqrstuvwx", "sk-ant-[REDACTED]"),
            ("AKIAIOSFODNN7EXAMPLE rest", "AKIA[REDACTED] rest"),
            ("ASIAIOSFODNN7EXAMPLE", "ASIA[REDACTED]"),
            (
                "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw.",
                "secret whsec_[REDACTED].",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(input), expected, "for {input}");
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        let text = "task-runner: sk- is a prefix; ghp is a word; AKIA alone";
        assert!(matches!(redact(text), Cow::Borrowed(_)));
    }

    #[test]
    fn known_values_are_redacted_wherever_they_stand() {
        assert_eq!(
            redact_values("auth: hunter2hunter2!", &["hunter2hunter2"]),
            "auth: [REDACTED]!"
        );
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary_with_a_marker() {
        let line = "é".repeat(MAX_LINE_BYTES);
        let cut = cut_line(&line);
        assert!(cut.len() <= MAX_LINE_BYTES);
        assert!(cut.contains("line cut"));
        let short = "x".repeat(MAX_LINE_BYTES);
        assert_eq!(cut_line(&short).len(), MAX_LINE_BYTES);
    }
}
