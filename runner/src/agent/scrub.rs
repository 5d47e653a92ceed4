//! Secrets out of everything the runner prints or sends.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use pj_core::redact::{redact, redact_values};

/// Removes the secrets known by value (the runner's own tokens and keys, and what is derived from
/// them) and every known secret shape.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    values: Vec<String>,
}

impl Scrubber {
    /// A scrubber for `secrets` and the forms the runner derives from them.
    pub fn new(secrets: Vec<String>) -> Self {
        let mut values = Vec::new();
        for secret in secrets {
            // The basic-auth header git sends carries the token base64-encoded.
            let mut forms = vec![format!("x-access-token:{secret}")];
            if let Some(key) = secret.strip_prefix("whsec_") {
                forms.push(key.to_owned());
            }
            forms.push(secret);
            for form in forms {
                // A secret that leaks anyway (repository code that got hold of one and printed
                // it encoded) is not readable in the usual encodings either.
                values.extend(encodings(&form));
                values.push(form);
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Scrubber { values }
    }

    /// `text` with every secret replaced by a marker.
    pub fn scrub(&self, text: &str) -> String {
        let refs: Vec<&str> = self.values.iter().map(String::as_str).collect();
        let known = redact_values(text, &refs);
        redact(&known).into_owned()
    }
}

/// The base64 (standard and URL-safe) and hex forms of `value` as they stand inside a longer
/// encoded text: for base64, at each of the three byte alignments, only the characters that
/// depend on `value` alone.
fn encodings(value: &str) -> Vec<String> {
    let bytes = value.as_bytes();
    let mut out = vec![hex::encode(bytes), hex::encode_upper(bytes)];
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for offset in 0..3usize {
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(bytes);
            let encoded = engine.encode(&shifted);
            // Characters that mix in the bytes before: none, the first two, the first three.
            let skip = [0, 2, 3][offset];
            // The last character mixes in the byte after, unless the value ends a 3-byte group.
            let trim = usize::from((offset + bytes.len()) % 3 != 0);
            if let Some(core) = encoded.get(skip..encoded.len().saturating_sub(trim)) {
                out.push(core.to_owned());
            }
        }
    }
    // Too short a form would match innocent text; `redact_values` skips those too.
    out.retain(|v| v.len() >= 8);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;

    #[test]
    fn known_values_and_their_encodings_are_removed() {
        let s = Scrubber::new(vec!["tok3n-value-1".into(), "whsec_AAAABBBBCCCC".into()]);
        let header = B64.encode("x-access-token:tok3n-value-1");
        let text = format!("a tok3n-value-1 b {header} c AAAABBBBCCCC d whsec_AAAABBBBCCCC");
        let out = s.scrub(&text);
        assert!(!out.contains("tok3n-value-1"));
        assert!(!out.contains(&header));
        assert!(!out.contains("AAAABBBBCCCC"));
    }

    #[test]
    fn a_secret_encoded_at_any_alignment_is_removed() {
        let secret = "tok3n-value-1-abcdef";
        let s = Scrubber::new(vec![secret.into()]);
        for prefix in ["", "A", "AB", "ABC=", "PATH=/bin\nTOKEN="] {
            let text = format!("{prefix}{secret}\nmore");
            for encoded in [
                B64.encode(&text),
                base64::engine::general_purpose::URL_SAFE.encode(&text),
                hex::encode(&text),
                hex::encode_upper(&text),
            ] {
                let out = s.scrub(&encoded);
                assert!(out.contains("[REDACTED]"), "{prefix:?}: {encoded} -> {out}");
                for form in encodings(secret) {
                    assert!(!out.contains(&form), "{prefix:?}: {out}");
                }
            }
        }
    }

    #[test]
    fn secret_shapes_are_removed_even_when_unknown() {
        let s = Scrubber::default();
        let out = s.scrub("key sk-ant-api03-abcdefghijklmnopqrstuvwx");
        assert_eq!(out, "key sk-ant-[REDACTED]");
    }
}
