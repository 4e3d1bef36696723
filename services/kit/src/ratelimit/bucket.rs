//! The local token bucket: the fallback's state for one principal, and the
//! reference for the arithmetic of the Redis script.

use std::time::{Duration, Instant};

use super::{Decision, LONGEST_WAIT, RateLimitSettings};

/// One principal's local token bucket.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    pub(super) fn full(settings: &RateLimitSettings, now: Instant) -> Bucket {
        Bucket { tokens: f64::from(settings.burst), updated: now }
    }

    /// Refills for the time since the last call, then takes a token; the
    /// same arithmetic as the Redis script (`BUCKET_SCRIPT`).
    pub(super) fn take(&mut self, settings: &RateLimitSettings, now: Instant) -> Decision {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * settings.per_second).min(f64::from(settings.burst));
        self.updated = self.updated.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Decision::Allowed;
        }
        let wait_ms = ((1.0 - self.tokens) * 1000.0 / settings.per_second).ceil();
        let retry_after = Duration::try_from_secs_f64(wait_ms / 1000.0).unwrap_or(LONGEST_WAIT);
        Decision::Limited { retry_after: retry_after.clamp(Duration::from_millis(1), LONGEST_WAIT) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_second: f64, burst: u32) -> RateLimitSettings {
        RateLimitSettings { per_second, burst }
    }

    #[test]
    fn a_full_bucket_allows_the_burst_then_says_when_the_next_token_is_due() {
        let settings = settings(10.0, 3);
        let start = Instant::now();
        let mut bucket = Bucket::full(&settings, start);
        for _ in 0..3 {
            assert_eq!(bucket.take(&settings, start), Decision::Allowed);
        }
        assert_eq!(
            bucket.take(&settings, start),
            Decision::Limited { retry_after: Duration::from_millis(100) }
        );
        // 40 ms later 0.4 of a token has refilled: 60 ms to go.
        let later = start + Duration::from_millis(40);
        assert_eq!(
            bucket.take(&settings, later),
            Decision::Limited { retry_after: Duration::from_millis(60) }
        );
    }

    #[test]
    fn tokens_refill_at_the_rate_up_to_the_burst() {
        let settings = settings(10.0, 3);
        let start = Instant::now();
        let mut bucket = Bucket::full(&settings, start);
        for _ in 0..3 {
            bucket.take(&settings, start);
        }
        let later = start + Duration::from_millis(200);
        assert_eq!(bucket.take(&settings, later), Decision::Allowed);
        assert_eq!(bucket.take(&settings, later), Decision::Allowed);
        assert!(matches!(bucket.take(&settings, later), Decision::Limited { .. }));

        // A long idle period refills only up to the burst.
        let much_later = later + Duration::from_secs(3600);
        let allowed = (0..10).filter(|_| bucket.take(&settings, much_later) == Decision::Allowed).count();
        assert_eq!(allowed, 3);
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let settings = settings(10.0, 1);
        let start = Instant::now() + Duration::from_secs(1);
        let mut bucket = Bucket::full(&settings, start);
        assert_eq!(bucket.take(&settings, start), Decision::Allowed);
        let earlier = start - Duration::from_millis(500);
        assert!(matches!(bucket.take(&settings, earlier), Decision::Limited { .. }));
    }

    #[test]
    fn very_slow_rates_report_at_most_a_day() {
        let settings = settings(1e-12, 1);
        let now = Instant::now();
        let mut bucket = Bucket::full(&settings, now);
        assert_eq!(bucket.take(&settings, now), Decision::Allowed);
        assert_eq!(bucket.take(&settings, now), Decision::Limited { retry_after: LONGEST_WAIT });
    }
}
