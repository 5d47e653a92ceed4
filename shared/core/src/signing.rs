//! Callback signing as Standard Webhooks v1, with one key per task attempt.
//!
//! The per-attempt key is an HMAC of the task id and attempt under the master secret, so a runner
//! holding its key can sign for its own attempt only, and the receiver needs no key storage.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::ids::{Attempt, TaskId, WebhookId};

type HmacSha256 = Hmac<Sha256>;

/// How far a `webhook-timestamp` may be from the receiver's clock.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The master secret every per-attempt key is derived from.
#[derive(Clone)]
pub struct MasterSecret(SecretString);

impl MasterSecret {
    /// Accepts any non-trivial string; a `whsec_` value is used by its decoded key bytes.
    pub fn new(raw: SecretString) -> Result<Self, &'static str> {
        if raw.expose_secret().trim().len() < 16 {
            return Err("the webhook master secret must be at least 16 characters");
        }
        Ok(MasterSecret(raw))
    }

    /// A fresh random secret, as `pj serve` makes on first start.
    pub fn generate() -> SecretString {
        let bytes: [u8; 32] = rand::random();
        SecretString::from(format!("whsec_{}", B64.encode(bytes)))
    }

    fn key_bytes(&self) -> Vec<u8> {
        let raw = self.0.expose_secret().trim();
        raw.strip_prefix("whsec_")
            .and_then(|b| B64.decode(b).ok())
            .unwrap_or_else(|| raw.as_bytes().to_vec())
    }

    /// A 32-byte key for one purpose (HKDF-SHA256 over the master secret), so no two uses of
    /// the master secret share a key.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        let mut key = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(None, &self.key_bytes())
            .expand(purpose.as_bytes(), &mut key)
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 length"));
        key
    }

    /// The key of one attempt of one task.
    pub fn derive(&self, task: &TaskId, attempt: Attempt) -> CallbackSecret {
        let info = format!("pithy-jaunt/callback/v1/{task}/{attempt}");
        CallbackSecret(hmac_sha256(&self.key_bytes(), info.as_bytes()))
    }
}

impl fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterSecret([REDACTED])")
    }
}

/// A Standard Webhooks signing key: `whsec_` followed by the base64 of its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackSecret([u8; 32]);

impl CallbackSecret {
    /// Parses `whsec_<base64>`, as a runner receives it in `WEBHOOK_SECRET`.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let body = raw
            .trim()
            .strip_prefix("whsec_")
            .ok_or("must start with whsec_")?;
        let bytes = B64
            .decode(body)
            .map_err(|_| "must be whsec_ followed by base64")?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| "must hold a 32-byte key")?;
        Ok(CallbackSecret(key))
    }

    /// The `whsec_` form, for the runner's environment.
    pub fn expose_whsec(&self) -> SecretString {
        SecretString::from(format!("whsec_{}", B64.encode(self.0)))
    }

    /// `v1,<base64 signature>` of one delivery.
    pub fn sign(&self, id: &WebhookId, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            B64.encode(sign_raw(&self.0, id.as_str(), timestamp, body))
        )
    }

    /// Checks the three headers of a delivery against its raw body, in constant time.
    pub fn verify(
        &self,
        headers: &SignatureHeaders<'_>,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(), SignatureError> {
        verify_with_key(&self.0, headers, body, now_unix)
    }
}

impl fmt::Debug for CallbackSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackSecret([REDACTED])")
    }
}

fn sign_raw(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The raw values of `webhook-id`, `webhook-timestamp` and `webhook-signature`.
#[derive(Debug, Clone, Copy)]
pub struct SignatureHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Why a delivery was not accepted. Every variant is a `401`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("webhook-timestamp is not a Unix time")]
    BadTimestamp,
    #[error("webhook-timestamp is more than 300 seconds from the server's clock")]
    Stale,
    #[error("no signature matches")]
    NoMatch,
}

/// Verifies a Standard Webhooks delivery with a raw key.
pub fn verify_with_key(
    key: &[u8],
    headers: &SignatureHeaders<'_>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let id = headers
        .id
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::Missing("webhook-id"))?;
    let ts_raw = headers
        .timestamp
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::Missing("webhook-timestamp"))?;
    let signatures = headers
        .signature
        .filter(|s| !s.trim().is_empty())
        .ok_or(SignatureError::Missing("webhook-signature"))?;
    let timestamp: i64 = ts_raw
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    // `abs_diff` cannot overflow: a timestamp at either end of `i64` is merely stale, never a panic.
    if now_unix.abs_diff(timestamp) > TIMESTAMP_TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts_raw.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    let mut matched = false;
    for candidate in signatures.split_whitespace() {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(given) = B64.decode(encoded) else {
            continue;
        };
        // `verify_slice` compares in constant time and refuses a truncated tag.
        if mac.clone().verify_slice(&given).is_ok() {
            matched = true;
        }
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::NoMatch)
    }
}

/// Signs a delivery: the three header values for a body, as a runner sends them.
pub fn signed_headers(
    secret: &CallbackSecret,
    id: &WebhookId,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    [
        ("webhook-id", id.as_str().to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", secret.sign(id, timestamp, body)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_614_265_330;

    fn vector_raw_key() -> Vec<u8> {
        B64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> SignatureHeaders<'a> {
        SignatureHeaders {
            id: Some(id),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    const VECTOR_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_standard_webhooks_vector_signs_as_published() {
        let sig = sign_raw(&vector_raw_key(), VECTOR_ID, NOW, VECTOR_BODY);
        assert_eq!(format!("v1,{}", B64.encode(sig)), VECTOR_SIG);
    }

    #[test]
    fn the_standard_webhooks_vector_verifies() {
        let h = headers(VECTOR_ID, "1614265330", VECTOR_SIG);
        assert_eq!(
            verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW),
            Ok(())
        );
    }

    #[test]
    fn when_one_of_several_signatures_matches_should_accept() {
        let list = format!("v1,Zm9v v2,abc {VECTOR_SIG}");
        let h = headers(VECTOR_ID, "1614265330", &list);
        assert_eq!(
            verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW),
            Ok(())
        );
    }

    #[test]
    fn the_github_docs_hmac_example_matches() {
        let mac = hmac_sha256(b"It's a Secret to Everybody", b"Hello, World!");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn when_signature_is_empty_should_reject() {
        let h = headers(VECTOR_ID, "1614265330", "");
        assert_eq!(
            verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW),
            Err(SignatureError::Missing("webhook-signature"))
        );
        let h = headers(VECTOR_ID, "1614265330", "v1,");
        assert_eq!(
            verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn when_a_header_is_missing_should_reject() {
        let mut h = headers(VECTOR_ID, "1614265330", VECTOR_SIG);
        h.id = None;
        assert!(verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW).is_err());
        let mut h = headers(VECTOR_ID, "1614265330", VECTOR_SIG);
        h.timestamp = None;
        assert!(verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW).is_err());
    }

    #[test]
    fn when_signature_is_truncated_should_reject() {
        let truncated = &VECTOR_SIG[..VECTOR_SIG.len() - 8];
        let h = headers(VECTOR_ID, "1614265330", truncated);
        assert_eq!(
            verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW),
            Err(SignatureError::NoMatch)
        );
        // A tag cut to 16 bytes but still valid base64.
        let raw = sign_raw(&vector_raw_key(), VECTOR_ID, NOW, VECTOR_BODY);
        let short = format!("v1,{}", B64.encode(&raw[..16]));
        let h = headers(VECTOR_ID, "1614265330", &short);
        assert_eq!(
            verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn when_signature_is_forged_should_reject() {
        let h = headers(VECTOR_ID, "1614265330", VECTOR_SIG);
        let tampered = br#"{"test": 2432232315}"#;
        assert_eq!(
            verify_with_key(&vector_raw_key(), &h, tampered, NOW),
            Err(SignatureError::NoMatch)
        );
        let other_key = [9u8; 32];
        assert_eq!(
            verify_with_key(&other_key, &h, VECTOR_BODY, NOW),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn when_signature_is_stale_should_reject() {
        let h = headers(VECTOR_ID, "1614265330", VECTOR_SIG);
        assert_eq!(
            verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW - 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW + 300),
            Ok(())
        );
    }

    #[test]
    fn when_timestamp_is_not_a_number_should_reject() {
        let h = headers(VECTOR_ID, "yesterday", VECTOR_SIG);
        assert_eq!(
            verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW),
            Err(SignatureError::BadTimestamp)
        );
    }

    #[test]
    fn when_timestamp_is_too_large_for_an_i64_should_reject_as_not_a_unix_time() {
        let h = headers(VECTOR_ID, "99999999999999999999", VECTOR_SIG);
        assert_eq!(
            verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW),
            Err(SignatureError::BadTimestamp)
        );
    }

    #[test]
    fn when_timestamp_is_at_either_end_of_i64_should_reject_as_stale_without_overflow() {
        for extreme in [i64::MIN, i64::MAX, i64::MIN + 1] {
            let ts = extreme.to_string();
            let h = headers(VECTOR_ID, &ts, VECTOR_SIG);
            for now in [NOW, 0, -NOW] {
                assert_eq!(
                    verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, now),
                    Err(SignatureError::Stale),
                    "timestamp {ts} at clock {now}"
                );
            }
        }
        let h = headers(VECTOR_ID, "-9223372036854775808", VECTOR_SIG);
        assert_eq!(
            verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW),
            Err(SignatureError::Stale)
        );
        let h = headers(VECTOR_ID, "9223372036854775807", VECTOR_SIG);
        assert_eq!(
            verify_with_key(&vector_raw_key(), &h, VECTOR_BODY, NOW),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn a_key_signs_for_its_own_task_and_attempt_only() {
        let master =
            MasterSecret::new(SecretString::from("a-master-secret-of-some-length")).unwrap();
        let task = TaskId::parse("tsk_one").unwrap();
        let other = TaskId::parse("tsk_two").unwrap();
        let key = master.derive(&task, Attempt(1));
        assert_eq!(key, master.derive(&task, Attempt(1)));
        assert_ne!(key, master.derive(&task, Attempt(2)));
        assert_ne!(key, master.derive(&other, Attempt(1)));

        let id = WebhookId::parse("msg_1").unwrap();
        let body = br#"{"type":"task.started"}"#;
        let sig = key.sign(&id, NOW, body);
        let ts = NOW.to_string();
        let h = headers("msg_1", &ts, &sig);
        assert_eq!(key.verify(&h, body, NOW), Ok(()));
        let other_key = master.derive(&other, Attempt(1));
        assert_eq!(
            other_key.verify(&h, body, NOW),
            Err(SignatureError::NoMatch)
        );
        let next_attempt = master.derive(&task, Attempt(2));
        assert_eq!(
            next_attempt.verify(&h, body, NOW),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn a_derived_secret_round_trips_through_its_whsec_form() {
        let master = MasterSecret::new(MasterSecret::generate()).unwrap();
        let key = master.derive(&TaskId::parse("tsk_x").unwrap(), Attempt(3));
        let text = key.expose_whsec();
        assert!(text.expose_secret().starts_with("whsec_"));
        assert_eq!(CallbackSecret::parse(text.expose_secret()).unwrap(), key);
        assert!(!format!("{key:?}").contains(text.expose_secret()));
    }
}
