//! What a code change's agent did on one attempt, as numbers rather than text: the runner's final
//! event carries it (`metadata`), the server keeps it on the execution, and the first round's
//! patch outcome feeds the apply-rate metric. The model's replies themselves are not kept here.
//! Also how the agent's spend is written for people.

use serde::{Deserialize, Serialize};

/// The most hunks one attempt's metadata lists; the rest are left out (a runner event is at most
/// 64 KiB).
pub const MAX_HUNKS: usize = 100;
/// The most characters of a hunk's file path that are kept.
pub const MAX_PATH_CHARS: usize = 256;
/// The most characters of a model label (`provider/name`) that are kept.
const MAX_LABEL_CHARS: usize = 160;

/// The metadata of one attempt of a code change. Every field is optional on the wire, so a
/// runner may send what it knows and later fields can be added.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AgentMetadata {
    /// Model calls of the attempt (each round of feedback is one more).
    #[serde(default)]
    pub rounds: u32,
    /// Whether the first reply's edits applied; `None` when no first reply came.
    #[serde(default)]
    pub first_round_applied: Option<bool>,
    /// Files the delivered change touches.
    #[serde(default)]
    pub files_changed: u32,
    #[serde(default)]
    pub lines_added: u64,
    #[serde(default)]
    pub lines_removed: u64,
    /// The size of the delivered change as a unified diff (`git diff`), in bytes.
    #[serde(default)]
    pub patch_bytes: u64,
    /// How the patch engine placed each hunk of the replies that applied, in order.
    #[serde(default)]
    pub hunks: Vec<HunkPlacement>,
    /// `provider/name` of the model that answered after the task's provider kept failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// Where one hunk went: its file, the round whose reply held it, the contract's status
/// (`exact`, `offset`, `fuzzy`) and the ladder step that placed it (`exact_at_line`,
/// `indentation`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HunkPlacement {
    pub file: String,
    #[serde(default)]
    pub round: u32,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

impl AgentMetadata {
    /// Bounded: at most [`MAX_HUNKS`] hunks, paths and labels cut on character boundaries.
    pub fn bounded(mut self) -> AgentMetadata {
        self.hunks.truncate(MAX_HUNKS);
        for hunk in &mut self.hunks {
            cut(&mut hunk.file, MAX_PATH_CHARS);
            cut(&mut hunk.status, 32);
            if let Some(step) = &mut hunk.step {
                cut(step, 32);
            }
        }
        if let Some(label) = &mut self.fallback {
            cut(label, MAX_LABEL_CHARS);
        }
        self
    }
}

/// An amount of US dollars as people read it: `$5.00`, `$0.0005`, `$4.89123` (whole millionths,
/// at least cents).
pub fn usd(amount: f64) -> String {
    let text = format!("{amount:.6}");
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let fraction = fraction.trim_end_matches('0');
    format!("${whole}.{fraction:0<2}")
}

fn cut(text: &mut String, max_chars: usize) {
    if let Some((at, _)) = text.char_indices().nth(max_chars) {
        text.truncate(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_object_reads_with_defaults() {
        let m: AgentMetadata = serde_json::from_str(r#"{"rounds": 2, "extra": true}"#).unwrap();
        assert_eq!(m.rounds, 2);
        assert_eq!(m.first_round_applied, None);
        assert!(m.hunks.is_empty());
    }

    #[test]
    fn dollars_show_cents_and_no_float_noise() {
        assert_eq!(usd(5.0), "$5.00");
        assert_eq!(usd(0.0005), "$0.0005");
        assert_eq!(usd(0.1 + 0.2), "$0.30");
        assert_eq!(usd(4.891234), "$4.891234");
        assert_eq!(usd(12.5), "$12.50");
    }

    #[test]
    fn bounded_metadata_keeps_at_most_its_limits() {
        let hunk = HunkPlacement {
            file: "é".repeat(MAX_PATH_CHARS + 5),
            round: 1,
            status: "exact".into(),
            step: Some("exact_at_line".into()),
        };
        let m = AgentMetadata {
            hunks: vec![hunk; MAX_HUNKS + 3],
            ..AgentMetadata::default()
        }
        .bounded();
        assert_eq!(m.hunks.len(), MAX_HUNKS);
        assert_eq!(m.hunks[0].file.chars().count(), MAX_PATH_CHARS);
    }
}
