//! Per-user token buckets for task creation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ids::UserId;

/// A token bucket per user: `burst` tokens, refilled at `per_minute`.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<UserId, (f64, Instant)>>,
}

/// Tokens a user's bucket gains per minute, unless the deployment says otherwise.
pub const DEFAULT_PER_MINUTE: u32 = 60;
/// Tokens a user's bucket holds, unless the deployment says otherwise.
pub const DEFAULT_BURST: u32 = 20;

/// Buckets kept before full ones are forgotten.
const MAX_TRACKED_USERS: usize = 10_000;

impl RateLimiter {
    pub fn new(per_minute: u32, burst: u32) -> Self {
        RateLimiter {
            per_second: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token, or says how long until one is there.
    pub fn check(&self, user: &UserId) -> Result<(), Duration> {
        self.check_at(user, Instant::now())
    }

    fn check_at(&self, user: &UserId, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED_USERS {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_second < burst
            });
        }
        let (tokens, at) = buckets.entry(user.clone()).or_insert((self.burst, now));
        let refilled =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            let wait = (1.0 - refilled) / self.per_second;
            Err(Duration::from_secs_f64(wait.max(0.001)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_until_refilled() {
        let limiter = RateLimiter::new(60, 3);
        let user = UserId::parse("u1").unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(&user, start).is_ok());
        }
        let wait = limiter.check_at(&user, start).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        assert!(
            limiter
                .check_at(&user, start + Duration::from_millis(1100))
                .is_ok()
        );
    }

    #[test]
    fn users_have_separate_buckets() {
        let limiter = RateLimiter::new(60, 1);
        let now = Instant::now();
        assert!(limiter.check_at(&UserId::parse("a").unwrap(), now).is_ok());
        assert!(limiter.check_at(&UserId::parse("b").unwrap(), now).is_ok());
        assert!(limiter.check_at(&UserId::parse("a").unwrap(), now).is_err());
    }
}
