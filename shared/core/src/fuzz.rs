//! Fuzzing harnesses: each runs one parser that takes untrusted bytes, exactly as the server
//! runs it but without I/O, and checks what must hold of any answer. The cargo-fuzz targets in
//! `fuzz/` and the bounded generated-input tests in `tests/fuzz_inputs.rs` call the same
//! functions, so a crash found by one is a test case for the other.
//!
//! Every harness must return normally for every input: a panic is the bug.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use crate::api::{MAX_LOG_BATCH_LINES, parse_event_body, parse_log_batch};
use crate::create::{MAX_PROMPT_CHARS, NewTask, RepoPolicy};
use crate::ids::WebhookId;
use crate::redact::MAX_LINE_BYTES;
use crate::signing::{CallbackSecret, SignatureHeaders, TIMESTAMP_TOLERANCE_SECS, verify_with_key};

/// Callback signature verification over arbitrary headers, body, key and clock.
///
/// Input layout: 8 bytes of clock (big-endian `i64`), 1 byte of which headers are present,
/// then key, `webhook-id`, `webhook-timestamp`, `webhook-signature` and body separated by
/// `0xff` (missing parts are empty). Header values go through lossy UTF-8, as only text reaches
/// the verifier.
pub fn signature(data: &[u8]) {
    let (clock, rest) = data.split_at(data.len().min(8));
    let mut now = [0u8; 8];
    now[..clock.len()].copy_from_slice(clock);
    let now = i64::from_be_bytes(now);
    let (present, rest) = rest.split_first().map_or((0xff, &[][..]), |(p, r)| (*p, r));
    let mut parts = rest.splitn(5, |b| *b == 0xff);
    let key = parts.next().unwrap_or_default();
    let id = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let ts = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let sig = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();
    let headers = SignatureHeaders {
        id: (present & 1 != 0).then_some(id.as_str()),
        timestamp: (present & 2 != 0).then_some(ts.as_str()),
        signature: (present & 4 != 0).then_some(sig.as_str()),
    };
    let verdict = verify_with_key(key, &headers, body, now);

    // What the verifier accepts, it accepted within the tolerance.
    if verdict.is_ok()
        && let Ok(stamp) = ts.trim().parse::<i64>()
    {
        assert!(now.abs_diff(stamp) <= TIMESTAMP_TOLERANCE_SECS.unsigned_abs());
    }

    // And what a key signs, that key verifies, at the signing time.
    let mut raw_key = [0u8; 32];
    for (i, b) in key.iter().take(32).enumerate() {
        raw_key[i] = *b;
    }
    let secret = CallbackSecret::parse(&format!("whsec_{}", B64.encode(raw_key)));
    if let (Ok(secret), Ok(id)) = (secret, WebhookId::parse(&id)) {
        let signature = secret.sign(&id, now, body);
        let stamp = now.to_string();
        let signed = SignatureHeaders {
            id: Some(id.as_str()),
            timestamp: Some(&stamp),
            signature: Some(&signature),
        };
        assert_eq!(
            secret.verify(&signed, body, now),
            Ok(()),
            "a signed delivery verifies"
        );
    }
}

/// A runner event body (`POST /webhooks/runner`).
pub fn event_body(data: &[u8]) {
    if let Ok((_, attempt, _)) = parse_event_body(data) {
        assert!(attempt.0 >= 1, "attempts count from 1");
    }
}

/// A runner log batch (`POST /webhooks/runner/logs`).
pub fn log_batch(data: &[u8]) {
    if let Ok((_, attempt, lines)) = parse_log_batch(data) {
        assert!(lines.len() <= MAX_LOG_BATCH_LINES);
        assert!(
            lines.windows(2).all(|w| w[0].seq < w[1].seq),
            "lines in strictly increasing seq"
        );
        for line in &lines {
            assert_eq!(line.attempt, attempt);
            // Cut after redaction, so even a redaction that grew the text is within the limit.
            assert!(line.text.len() <= MAX_LINE_BYTES, "a stored line is cut");
        }
    }
}

/// A create body (`POST /tasks`): arbitrary bytes, as JSON when they are JSON.
pub fn create_body(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for policy in [RepoPolicy::HttpsOnly, RepoPolicy::AllowLocal] {
        if let Ok(task) = NewTask::parse(&body, policy) {
            assert!(!task.prompt.trim().is_empty());
            assert!(task.prompt.chars().count() <= MAX_PROMPT_CHARS);
            if let Some(email) = &task.notify_email {
                assert!(crate::email::is_sendable_address(email));
            }
            if policy == RepoPolicy::HttpsOnly {
                assert!(task.repo_url.starts_with("https://"), "{}", task.repo_url);
            }
        }
    }
}
