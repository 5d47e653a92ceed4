//! Artifacts: files an attempt leaves beside its log (a model's replies, a browser's
//! screenshots), listed and served to the task's owner only, and kept as long as the logs.
//!
//! A name says what the file is: its extension fixes the content type, so the one rule below
//! decides what a stored file may be and how it is served. Names are unique within a task (the
//! writer puts the attempt in the name), and a name is written once: a retried upload is a
//! duplicate, never a second version.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, ValidationError};
use crate::ids::{Attempt, TaskId};

/// The largest artifact, in bytes. A runner's upload carries it in base64 inside a signed JSON
/// body, which must stay under what a Lambda function accepts (6 MB).
pub const MAX_ARTIFACT_BYTES: usize = 2 * 1024 * 1024;
/// The most artifacts one attempt may store: a bound on what a runner can make the store hold.
pub const MAX_ARTIFACTS_PER_ATTEMPT: usize = 200;
/// The largest upload body: the base64 of the largest artifact and room for the rest.
pub const MAX_UPLOAD_BYTES: usize = MAX_ARTIFACT_BYTES / 3 * 4 + 8 * 1024;
/// The most characters of a name.
const MAX_NAME_CHARS: usize = 128;

/// The kinds of file an artifact may be, by extension.
const CONTENT_TYPES: [(&str, &str); 4] = [
    ("png", "image/png"),
    ("json", "application/json"),
    ("txt", "text/plain; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
];

/// An artifact's name: 1 to 128 of letters, digits, `.`, `_` and `-`, not starting with `.`,
/// ending in one of the extensions above. Safe as a file name, an object key and a URL segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArtifactName(String);

impl ArtifactName {
    pub fn parse(raw: &str) -> Result<ArtifactName, ValidationError> {
        let invalid = |why: &str| ValidationError::new("name", why.to_owned());
        if raw.is_empty() || raw.chars().count() > MAX_NAME_CHARS {
            return Err(invalid("must be 1 to 128 characters"));
        }
        if raw.starts_with('.')
            || !raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(invalid(
                "must be letters, digits, '.', '_' and '-', not starting with '.'",
            ));
        }
        let name = ArtifactName(raw.to_owned());
        if name.content_type_of().is_none() {
            return Err(invalid("must end in .png, .json, .txt or .md"));
        }
        Ok(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn content_type_of(&self) -> Option<&'static str> {
        let (_, extension) = self.0.rsplit_once('.')?;
        CONTENT_TYPES
            .iter()
            .find(|(ext, _)| *ext == extension)
            .map(|(_, content_type)| *content_type)
    }

    /// The content type it is served with.
    pub fn content_type(&self) -> &'static str {
        self.content_type_of()
            .expect("a parsed name has a known extension")
    }

    /// Whether its content is text (and so is redacted as log lines are).
    pub fn is_text(&self) -> bool {
        self.content_type().starts_with("text/")
    }
}

impl TryFrom<String> for ArtifactName {
    type Error = ValidationError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        ArtifactName::parse(&raw)
    }
}

impl From<ArtifactName> for String {
    fn from(name: ArtifactName) -> String {
        name.0
    }
}

impl std::fmt::Display for ArtifactName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is known of a stored artifact: the contract's listing entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub name: ArtifactName,
    pub content_type: String,
    pub size: u64,
    pub attempt: Attempt,
}

impl Artifact {
    pub fn new(name: ArtifactName, attempt: Attempt, size: u64) -> Artifact {
        Artifact {
            content_type: name.content_type().to_owned(),
            name,
            size,
            attempt,
        }
    }
}

/// Whether a put stored the bytes or found the name taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Stored,
    /// The task already has an artifact of this name; nothing was written.
    Duplicate,
}

/// Where artifacts are kept.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Stores `bytes` under the task's `name` unless that name is taken.
    async fn put(
        &self,
        task: &TaskId,
        attempt: Attempt,
        name: &ArtifactName,
        bytes: Vec<u8>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<PutOutcome>;

    /// The task's unexpired artifacts, by attempt then name.
    async fn list(&self, task: &TaskId, now: DateTime<Utc>) -> anyhow::Result<Vec<Artifact>>;

    /// One unexpired artifact and its bytes.
    async fn get(
        &self,
        task: &TaskId,
        name: &ArtifactName,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<(Artifact, Vec<u8>)>>;

    /// Deletes expired artifacts where the store does not expire them itself.
    async fn purge_expired(&self, _now: DateTime<Utc>) -> anyhow::Result<u64> {
        Ok(0)
    }
}

/// The store of a deployment that was given none: every call fails (a `500`, logged), so a
/// missing store is never mistaken for a task without artifacts.
pub struct NoArtifactStore;

#[async_trait]
impl ArtifactStore for NoArtifactStore {
    async fn put(
        &self,
        _: &TaskId,
        _: Attempt,
        _: &ArtifactName,
        _: Vec<u8>,
        _: DateTime<Utc>,
    ) -> anyhow::Result<PutOutcome> {
        anyhow::bail!("this deployment has no artifact store")
    }
    async fn list(&self, _: &TaskId, _: DateTime<Utc>) -> anyhow::Result<Vec<Artifact>> {
        anyhow::bail!("this deployment has no artifact store")
    }
    async fn get(
        &self,
        _: &TaskId,
        _: &ArtifactName,
        _: DateTime<Utc>,
    ) -> anyhow::Result<Option<(Artifact, Vec<u8>)>> {
        anyhow::bail!("this deployment has no artifact store")
    }
}

/// A store shared by the parts of a deployment.
pub type SharedArtifacts = Arc<dyn ArtifactStore>;

/// `POST /webhooks/runner/artifacts`: one artifact of an attempt, its bytes in standard base64.
#[derive(Debug, Deserialize)]
struct UploadBody {
    name: String,
    content_base64: String,
}

/// A runner's upload, checked: a name of the rule, bytes within the limit, text in UTF-8.
#[derive(Debug)]
pub struct Upload {
    pub name: ArtifactName,
    pub bytes: Vec<u8>,
}

impl Upload {
    pub fn parse(body: &[u8]) -> Result<Upload, AppError> {
        let raw: UploadBody = serde_json::from_slice(body)
            .map_err(|e| AppError::validation("body", format!("not an artifact upload: {e}")))?;
        let name = ArtifactName::parse(&raw.name)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw.content_base64.as_bytes())
            .map_err(|_| AppError::validation("content_base64", "must be standard base64"))?;
        if bytes.len() > MAX_ARTIFACT_BYTES {
            return Err(AppError::PayloadTooLarge(format!(
                "an artifact may be at most {MAX_ARTIFACT_BYTES} bytes"
            )));
        }
        if name.is_text() && std::str::from_utf8(&bytes).is_err() {
            return Err(AppError::validation(
                "content_base64",
                format!("{name} is text and must be UTF-8"),
            ));
        }
        Ok(Upload { name, bytes })
    }

    /// The bytes to store: text with secret shapes replaced as in log lines, since a model's
    /// reply may repeat what it was shown.
    pub fn into_stored_bytes(self) -> (ArtifactName, Vec<u8>) {
        if self.name.is_text() {
            let text = String::from_utf8(self.bytes).expect("checked at parse");
            let redacted = crate::redact::redact(&text).into_owned();
            (self.name, redacted.into_bytes())
        } else {
            (self.name, self.bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_should_fix_the_content_type_by_its_extension() {
        let name = ArtifactName::parse("a1-reply-2.md").unwrap();
        assert_eq!(name.content_type(), "text/markdown; charset=utf-8");
        assert!(name.is_text());
        let png = ArtifactName::parse("a2-step-3.png").unwrap();
        assert_eq!(png.content_type(), "image/png");
        assert!(!png.is_text());
    }

    #[test]
    fn names_that_could_escape_a_folder_or_a_url_should_be_refused() {
        let too_long = format!("{}.json", "a".repeat(124));
        for bad in [
            "",
            ".hidden.txt",
            "../up.txt",
            "a/b.txt",
            "a b.txt",
            "x.html",
            "x.svg",
            "noext",
            "ü.txt",
            &too_long,
        ] {
            let e = ArtifactName::parse(bad).unwrap_err();
            assert_eq!(e.field, "name", "{bad:?}");
        }
    }

    #[test]
    fn an_upload_should_be_decoded_checked_and_its_text_redacted() {
        let text = "the key is ghp_0123456789abcdefghijklmnopqrstuvwxyzAB, done";
        let body = serde_json::json!({
            "task_id": "ignored here", "attempt": 1, "name": "a1-reply-1.md",
            "content_base64": base64::engine::general_purpose::STANDARD.encode(text),
        });
        let upload = Upload::parse(body.to_string().as_bytes()).unwrap();
        let (name, bytes) = upload.into_stored_bytes();
        assert_eq!(name.as_str(), "a1-reply-1.md");
        let stored = String::from_utf8(bytes).unwrap();
        assert!(!stored.contains("0123456789abcdef"), "{stored}");
        assert!(stored.contains("ghp_[REDACTED]"), "{stored}");
    }

    #[test]
    fn an_upload_should_name_what_is_wrong_with_it() {
        let field = |body: serde_json::Value| match Upload::parse(body.to_string().as_bytes()) {
            Err(AppError::Validation(e)) => e.field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(serde_json::json!({"name": "a.exe", "content_base64": ""})),
            "name"
        );
        assert_eq!(
            field(serde_json::json!({"name": "a.txt", "content_base64": "***"})),
            "content_base64"
        );
        let not_utf8 = base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe]);
        assert_eq!(
            field(serde_json::json!({"name": "a.txt", "content_base64": not_utf8})),
            "content_base64"
        );
        assert_eq!(field(serde_json::json!({"name": 3})), "body");
    }

    #[test]
    fn an_upload_over_the_limit_should_be_too_large() {
        let big =
            base64::engine::general_purpose::STANDARD.encode(vec![0u8; MAX_ARTIFACT_BYTES + 1]);
        let body = serde_json::json!({"name": "a.png", "content_base64": big});
        assert!(matches!(
            Upload::parse(body.to_string().as_bytes()),
            Err(AppError::PayloadTooLarge(_))
        ));
        assert!(body.to_string().len() < MAX_UPLOAD_BYTES + 1024);
    }
}
