//! Identifiers, parsed once at the edge.

use std::fmt;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A time-ordered, lowercase Crockford base32 id body: 48 bits of milliseconds, 80 random bits.
fn sortable_id(now: DateTime<Utc>) -> String {
    let millis = now.timestamp_millis().max(0) as u128 & ((1u128 << 48) - 1);
    let random: u128 = rand::thread_rng().r#gen::<u128>() & ((1u128 << 80) - 1);
    let mut value = (millis << 80) | random;
    let mut out = [0u8; 26];
    for slot in out.iter_mut().rev() {
        *slot = CROCKFORD[(value & 31) as usize];
        value >>= 5;
    }
    out.iter().map(|&b| b as char).collect()
}

/// `tsk_` followed by a sortable id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaskId(String);

impl TaskId {
    pub fn generate(now: DateTime<Utc>) -> Self {
        TaskId(format!("tsk_{}", sortable_id(now)))
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let body = raw
            .strip_prefix("tsk_")
            .ok_or_else(|| ValidationError::new("task_id", "a task id starts with tsk_"))?;
        if body.is_empty()
            || body.len() > 64
            || !body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ValidationError::new("task_id", "not a valid task id"));
        }
        Ok(TaskId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TaskId {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        TaskId::parse(&value)
    }
}

impl From<TaskId> for String {
    fn from(value: TaskId) -> Self {
        value.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The authenticated user a task belongs to (a token's user id or a JWT's `sub`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok = !raw.is_empty()
            && raw.len() <= 256
            && !raw.chars().any(|c| c.is_control() || c == '#' || c == '|');
        if ok {
            Ok(UserId(raw.to_owned()))
        } else {
            Err(ValidationError::new("user_id", "not a valid user id"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        UserId::parse(&value)
    }
}

impl From<UserId> for String {
    fn from(value: UserId) -> Self {
        value.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The number of one execution of a task, from 1.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Attempt(pub u32);

impl Attempt {
    pub const FIRST: Attempt = Attempt(1);

    pub fn next(self) -> Attempt {
        Attempt(self.0.saturating_add(1))
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A Standard Webhooks `webhook-id`: unique per delivery, reused by its retries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WebhookId(String);

impl WebhookId {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && raw.bytes().all(|b| b.is_ascii_graphic() && b != b'.');
        if ok {
            Ok(WebhookId(raw.to_owned()))
        } else {
            Err(ValidationError::new("webhook-id", "not a valid webhook id"))
        }
    }

    pub fn generate() -> Self {
        WebhookId(format!("msg_{}", sortable_id(Utc::now())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_task_ids_parse_and_sort_by_time() {
        let early = TaskId::generate(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let late = TaskId::generate(DateTime::from_timestamp(1_700_000_001, 0).unwrap());
        assert!(early < late);
        assert_eq!(TaskId::parse(early.as_str()).unwrap(), early);
        assert_eq!(early.as_str().len(), 30);
    }

    #[test]
    fn when_task_id_has_no_prefix_should_refuse() {
        assert!(TaskId::parse("abc").is_err());
        assert!(TaskId::parse("tsk_").is_err());
        assert!(TaskId::parse("tsk_a/b").is_err());
    }

    #[test]
    fn when_user_id_has_separator_characters_should_refuse() {
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a|b").is_err());
        assert!(UserId::parse("user-1").is_ok());
    }
}
