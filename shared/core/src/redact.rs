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
        // Daytona API keys.
        r"dtn_[A-Za-z0-9]{20,}",
    ];
    let alternation = shapes.join("|");
    Regex::new(&format!(r"(?:{alternation})")).unwrap_or_else(|e| panic!("secret shapes: {e}"))
});

/// A PEM private key block, from BEGIN through END (or through the end of the text when the END
/// is not in it), across real line breaks and literal `\n` alike.
static PEM_PRIVATE_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----(?s:.*?)(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\z)",
    )
    .unwrap_or_else(|e| panic!("PEM shape: {e}"))
});

/// A value after an AWS secret access key's label: `aws_secret_access_key = ...`,
/// `AWS_SECRET_ACCESS_KEY=...`, `"SecretAccessKey": "..."` (also JSON-escaped quotes). A labelled
/// value is a secret whatever its length.
static AWS_SECRET_LABELLED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)((?:aws_?)?secret_?access_?key["'\\]*\s*[:=]\s*["'\\]*\s*)[A-Za-z0-9/+=]{16,}"#,
    )
    .unwrap_or_else(|e| panic!("AWS secret label: {e}"))
});

/// A bare 40-character AWS secret access key standing next to its key id, either way round,
/// with the character after it (kept) so a longer run of base64 is not taken for one.
static AWS_SECRET_BESIDE_ID: LazyLock<Regex> = LazyLock::new(|| {
    let id = r"(?:AKIA|ASIA)[A-Z0-9]{16}";
    let sep = r#"[\s,:;|"'=/]{1,8}"#;
    let key = r"[A-Za-z0-9/+]{40}";
    Regex::new(&format!(
        r"(?P<id1>{id})(?P<sep1>{sep})(?P<key1>{key})(?P<end1>[^A-Za-z0-9/+=]|\z)|(?P<start2>\A|[^A-Za-z0-9/+=])(?P<key2>{key})(?P<sep2>{sep})(?P<id2>{id})"
    ))
    .unwrap_or_else(|e| panic!("AWS key pair: {e}"))
});

/// `Bearer <token>`: the word stays, the token goes.
static BEARER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(bearer)(\s+)([A-Za-z0-9\-._~+/]+=*)")
        .unwrap_or_else(|e| panic!("bearer shape: {e}"))
});

/// Whether what follows `Bearer` looks like a credential rather than a word of prose
/// ("the Bearer authentication scheme"): long, or with a digit or a token's punctuation.
fn looks_like_token(t: &str) -> bool {
    t.len() >= 8
        && (t.len() >= 24
            || t.bytes()
                .any(|b| b.is_ascii_digit() || b"-._~+/=".contains(&b)))
}

/// Replaces every known secret shape (GitHub, OpenAI, Anthropic, Daytona and AWS keys, AWS
/// secret access keys, `whsec_` secrets, PEM private keys, bearer tokens) with a marker that
/// keeps the kind visible.
pub fn redact(text: &str) -> Cow<'_, str> {
    let out = PEM_PRIVATE_KEY.replace_all(text, |caps: &regex::Captures<'_>| {
        let label = &caps[1];
        format!("-----BEGIN {label}PRIVATE KEY-----{REDACTED}-----END {label}PRIVATE KEY-----")
    });
    let out = replace_in(out, &AWS_SECRET_LABELLED, |caps| {
        format!("{}{REDACTED}", &caps[1])
    });
    let out = replace_in(out, &AWS_SECRET_BESIDE_ID, |caps| {
        // The key id is redacted by the shapes below; here the secret beside it.
        if let Some(id) = caps.name("id1") {
            format!(
                "{}{}{REDACTED}{}",
                id.as_str(),
                &caps["sep1"],
                caps.name("end1").map_or("", |m| m.as_str())
            )
        } else {
            format!(
                "{}{REDACTED}{}{}",
                caps.name("start2").map_or("", |m| m.as_str()),
                &caps["sep2"],
                &caps["id2"]
            )
        }
    });
    let out = replace_in(out, &BEARER, |caps| {
        if looks_like_token(&caps[3]) {
            format!("{}{}{REDACTED}", &caps[1], &caps[2])
        } else {
            caps[0].to_owned()
        }
    });
    let out = replace_in(out, &SECRET_SHAPES, |caps| {
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
            "dtn_",
        ]
        .into_iter()
        .find(|p| found.starts_with(p))
        .unwrap_or("");
        format!("{kind}{REDACTED}")
    });
    // Text with nothing to hide comes back as it went in, without a copy.
    if out == text {
        Cow::Borrowed(text)
    } else {
        out
    }
}

/// One more replacement pass over text that may already be a copy.
fn replace_in<'a>(
    text: Cow<'a, str>,
    shape: &Regex,
    replace: impl FnMut(&regex::Captures<'_>) -> String,
) -> Cow<'a, str> {
    match text {
        Cow::Borrowed(t) => shape.replace_all(t, replace),
        Cow::Owned(t) => Cow::Owned(shape.replace_all(&t, replace).into_owned()),
    }
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

static PEM_BEGIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
        .unwrap_or_else(|e| panic!("PEM begin: {e}"))
});
static PEM_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----")
        .unwrap_or_else(|e| panic!("PEM end: {e}"))
});

/// Cleans the lines of one log in order, carrying a PEM private key across lines: a program
/// that prints a key (`cat key.pem`) sends its BEGIN, body and END as separate lines, and
/// every line from BEGIN through END is redacted, not only the BEGIN line's own text.
#[derive(Debug, Default)]
pub struct LineCleaner {
    inside_private_key: bool,
}

impl LineCleaner {
    /// [`clean_line`], knowing the lines before this one.
    pub fn clean(&mut self, text: &str) -> String {
        if self.inside_private_key {
            let Some(end) = PEM_END.find(text) else {
                return REDACTED.to_owned();
            };
            self.inside_private_key = false;
            let rest = &text[end.start()..];
            self.inside_private_key = opens_private_key(rest);
            return cut_line(&format!("{REDACTED}{}", redact(rest))).into_owned();
        }
        self.inside_private_key = opens_private_key(text);
        clean_line(text)
    }
}

/// Whether `text` has a private key's BEGIN with no END after it.
fn opens_private_key(text: &str) -> bool {
    match PEM_BEGIN.find_iter(text).last() {
        Some(begin) => !PEM_END.is_match(&text[begin.end()..]),
        None => false,
    }
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

    const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn an_aws_secret_access_key_after_its_label_is_redacted() {
        let cases = [
            format!("aws_secret_access_key = {AWS_SECRET}"),
            format!("AWS_SECRET_ACCESS_KEY={AWS_SECRET}"),
            format!("export AWS_SECRET_ACCESS_KEY=\"{AWS_SECRET}\""),
            format!(r#"{{"SecretAccessKey": "{AWS_SECRET}", "x": 1}}"#),
            format!(r#"{{\"SecretAccessKey\":\"{AWS_SECRET}\"}}"#),
            format!("secret_access_key: '{AWS_SECRET}'"),
        ];
        for input in cases {
            let out = redact(&input);
            assert!(!out.contains(AWS_SECRET), "{input} -> {out}");
            assert!(out.contains(REDACTED), "{input} -> {out}");
        }
        assert_eq!(
            redact(&format!("AWS_SECRET_ACCESS_KEY={AWS_SECRET}")),
            "AWS_SECRET_ACCESS_KEY=[REDACTED]"
        );
    }

    #[test]
    fn a_bare_aws_secret_access_key_beside_its_key_id_is_redacted() {
        let cases = [
            (
                format!("AKIAIOSFODNN7EXAMPLE {AWS_SECRET}"),
                "AKIA[REDACTED] [REDACTED]".to_owned(),
            ),
            (
                format!("creds: ASIAIOSFODNN7EXAMPLE:{AWS_SECRET}."),
                "creds: ASIA[REDACTED]:[REDACTED].".to_owned(),
            ),
            (
                format!("{AWS_SECRET},AKIAIOSFODNN7EXAMPLE"),
                "[REDACTED],AKIA[REDACTED]".to_owned(),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(&input), expected, "for {input}");
        }
        // Forty base64 characters with no key id near are not taken for a secret.
        let digest = format!("sha {AWS_SECRET}");
        assert_eq!(redact(&digest), digest);
    }

    #[test]
    fn a_pem_private_key_is_redacted_whole() {
        let block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4\nq8p0Zs2/AB==\n-----END RSA PRIVATE KEY-----";
        let text = format!("key:\n{block}\nnext line");
        assert_eq!(
            redact(&text),
            "key:\n-----BEGIN RSA PRIVATE KEY-----[REDACTED]-----END RSA PRIVATE KEY-----\nnext line"
        );
        // The same block as one line with literal \n, as a JSON string shows it.
        let escaped = r#"{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQEF\n-----END PRIVATE KEY-----\n"}"#;
        assert_eq!(
            redact(escaped),
            r#"{"private_key": "-----BEGIN PRIVATE KEY-----[REDACTED]-----END PRIVATE KEY-----\n"}"#
        );
        let openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjE\\n-----END OPENSSH PRIVATE KEY-----";
        assert!(!redact(openssh).contains("b3BlbnNzaC1rZXktdjE"));
        // A block cut before its END is redacted to the end of the text.
        let cut = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4";
        assert!(!redact(cut).contains("MHcCAQEEIBkg4"));
        // A public key or certificate is no secret.
        let public = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0C\n-----END PUBLIC KEY-----";
        assert_eq!(redact(public), public);
    }

    #[test]
    fn a_pem_private_key_printed_line_by_line_is_redacted_from_begin_through_end() {
        let printed = [
            "$ cat deploy.pem",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
            "QyNTUxOQAAACDkZXBsb3kta2V5LWJvZHktbGluZS10d28",
            "-----END OPENSSH PRIVATE KEY-----",
            "done",
        ];
        let mut cleaner = LineCleaner::default();
        let cleaned: Vec<String> = printed.iter().map(|l| cleaner.clean(l)).collect();
        assert_eq!(
            cleaned,
            [
                "$ cat deploy.pem",
                "-----BEGIN OPENSSH PRIVATE KEY-----[REDACTED]-----END OPENSSH PRIVATE KEY-----",
                "[REDACTED]",
                "[REDACTED]",
                "[REDACTED]-----END OPENSSH PRIVATE KEY-----",
                "done",
            ]
        );
        // A whole block on one line opens nothing.
        let mut cleaner = LineCleaner::default();
        cleaner.clean("-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----");
        assert_eq!(cleaner.clean("ordinary"), "ordinary");
    }

    #[test]
    fn a_bearer_token_is_redacted_and_the_word_bearer_kept() {
        let cases = [
            (
                "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln",
                "Authorization: Bearer [REDACTED]",
            ),
            (
                "curl -H 'authorization: bearer pj_dev_Zm9vYmFyYmF6cXV4' x",
                "curl -H 'authorization: bearer [REDACTED]' x",
            ),
            ("Bearer abcdefghijklmnopqrstuvwxyz", "Bearer [REDACTED]"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(input), expected, "for {input}");
        }
    }

    #[test]
    fn a_daytona_api_key_is_redacted() {
        let key = "dtn_4f6c9a0b1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7";
        assert_eq!(
            redact(&format!("DAYTONA_API_KEY={key} ok")),
            "DAYTONA_API_KEY=dtn_[REDACTED] ok"
        );
    }

    #[test]
    fn ordinary_text_with_the_new_words_is_left_alone() {
        for text in [
            "the Bearer authentication scheme; bearer of bad news; Bearer token expired",
            "Authorization: Bearer $PJ_TOKEN",
            "set aws_secret_access_key in ~/.aws/credentials",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            "dtn_ is Daytona's prefix; dtn_short",
            "commit 4f6c9a0b1e2d3c4b5a69788796a5b4c3d2e1f0a9 merged",
            "SecretAccessKey is a field of the STS answer",
        ] {
            assert!(
                matches!(redact(text), Cow::Borrowed(_)),
                "{text} -> {}",
                redact(text)
            );
        }
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
