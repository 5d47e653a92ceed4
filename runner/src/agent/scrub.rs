//! Secrets out of everything the runner prints or sends.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
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
            values.push(B64.encode(format!("x-access-token:{secret}")));
            if let Some(key) = secret.strip_prefix("whsec_") {
                values.push(key.to_owned());
            }
            values.push(secret);
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn secret_shapes_are_removed_even_when_unknown() {
        let s = Scrubber::default();
        let out = s.scrub("key sk-ant-api03-abcdefghijklmnopqrstuvwx");
        assert_eq!(out, "key sk-ant-[REDACTED]");
    }
}
