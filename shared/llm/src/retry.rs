//! When to try an HTTP call again, and how long to wait first.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// The longest a server's `retry-after` is honoured; past it the run would rather fail.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// `base * 2^n`, at most `cap`.
pub fn backoff(retry: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 2u32.saturating_pow(retry.min(16));
    base.saturating_mul(factor).min(cap)
}

/// Statuses that say "later": rate limits and server-side failures (529 is Anthropic's overload).
pub fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// The wait a response asks for: `retry-after-ms` (OpenAI), or `retry-after` as seconds or an
/// HTTP date, capped at [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let ms = text("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0);
    if let Some(ms) = ms {
        return Some(Duration::from_secs_f64(ms / 1000.0).min(MAX_RETRY_AFTER));
    }
    let raw = text("retry-after")?;
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    // An HTTP date is the IMF-fixdate form of RFC 2822 ("Sun, 06 Nov 1994 08:49:37 GMT").
    let at = DateTime::parse_from_rfc2822(raw).ok()?.with_timezone(&Utc);
    let wait = (at - now).to_std().unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let base = Duration::from_millis(500);
        let cap = Duration::from_secs(3);
        let waits: Vec<u128> = (0..5).map(|n| backoff(n, base, cap).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 3000, 3000]);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            retry_after(&headers("retry-after", "7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(
                &headers("retry-after", "Mon, 01 Jan 2024 00:00:05 GMT"),
                now
            ),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_after(
                &headers("retry-after", "Sun, 31 Dec 2023 00:00:05 GMT"),
                now
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(&headers("retry-after", "3600"), now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            retry_after(&headers("retry-after-ms", "250"), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(retry_after(&headers("retry-after", "soon"), now), None);
    }
}
