//! Per-principal rate limiting shared by every replica.
//!
//! **Algorithm.** Each principal (the token's `sub`) has a token bucket
//! holding at most `burst` tokens, refilled continuously at `per_second`
//! tokens per second; a call takes one token or is refused with the time
//! until the next token (`retry_after`, whole milliseconds rounded up).
//!
//! **Shared state.** The bucket lives in Redis under the key
//! `rapport:ratelimit:<subject>` ([`KEY_PREFIX`] + the subject): a hash
//! with `t` (tokens, fractional) and `ts` (time of the last refill, in
//! milliseconds). One Lua script (`BUCKET_SCRIPT` in this file, sent as
//! `EVALSHA` and loaded on `NOSCRIPT`) refills, takes and stores
//! atomically in one round trip, reading the time from Redis' own clock
//! (`TIME`), so replicas with skewed clocks agree. Each write sets the
//! key's expiry to when the bucket would be full again (at most a day), so
//! idle principals leave nothing behind (an absent key is a full bucket); a
//! refused call writes nothing. Scripts are replicated by their effects (the only mode
//! since Redis 7, the default since 5), which is what makes `TIME` safe in
//! a writing script.
//!
//! **Fallback.** When kit's [`Redis`] is unavailable (down, slow, an error
//! reply, or in its back-off after one), each process enforces the same
//! settings on a local bucket per principal instead: limits neither switch
//! off nor turn into "refuse everything". Local buckets are per process, so
//! N replicas then allow up to N× the rate, and a principal's local bucket
//! starts full. The switch is logged once (a warning when falling back, an
//! info when Redis answers again; recovery is noticed by the first call
//! after Redis' back-off) and shown by the `rapport_rate_limiter_degraded`
//! gauge. Local buckets live in a bounded cache (at most [`LOCAL_BUCKETS`]
//! principals, each dropped once idle for as long as a full refill takes,
//! when it would be full anyway, or an hour), so a flood of principals cannot grow
//! memory without bound. Without Redis at all (`REDIS_URL=off`),
//! [`RateLimiter::local`] uses local buckets only.
//!
//! [`RateLimitLayer`] applies the limiter to every call that carries a
//! [`Principal`](crate::auth::Principal) (set by
//! [`AuthLayer`](crate::auth::AuthLayer), which must run first).

mod bucket;
mod layer;

use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::config::{ConfigError, Env};
use crate::redis::Redis;

use bucket::Bucket;
pub use layer::{RateLimitLayer, RateLimitService};

/// The prefix of every bucket key in Redis; the principal's subject follows.
pub const KEY_PREFIX: &str = "rapport:ratelimit:";

/// The `ErrorInfo.reason` of a refused call.
pub const REASON_RATE_LIMITED: &str = "RATE_LIMITED";

/// How many principals the local fallback keeps buckets for.
pub const LOCAL_BUCKETS: u64 = 100_000;

/// The longest `retry_after` reported, and the longest a bucket key lives
/// (only reached with rates below one call per few minutes).
const LONGEST_WAIT: Duration = Duration::from_secs(86_400);

/// The token bucket, atomically: refill from the elapsed Redis time, take
/// one token or report how long until there is one. `KEYS[1]`: the bucket;
/// `ARGV[1]`: tokens per second; `ARGV[2]`: burst. Returns `{allowed (0 or
/// 1), milliseconds until the next token (0 when allowed)}`; both times
/// are capped at [`LONGEST_WAIT`].
const BUCKET_SCRIPT: &str = r"
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = burst
  last = now
end
tokens = math.min(burst, tokens + math.max(0, now - last) * rate / 1000)
if tokens < 1 then
  return {0, math.min(86400000, math.ceil((1 - tokens) * 1000 / rate))}
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 't', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.min(86400000, math.max(1, math.ceil((burst - tokens) * 1000 / rate))))
return {1, 0}
";

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(BUCKET_SCRIPT));

/// How fast each principal may call.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitSettings {
    /// Sustained calls per second; `0` disables limiting.
    pub per_second: f64,
    /// Calls allowed at once after being idle (the bucket's size, at least 1).
    pub burst: u32,
}

impl RateLimitSettings {
    /// Reads `RATE_LIMIT_PER_SECOND` (default 100) and `RATE_LIMIT_BURST`
    /// (default 200); `RATE_LIMIT_PER_SECOND=0` disables limiting.
    pub fn from_env(env: &Env) -> Result<RateLimitSettings, ConfigError> {
        let per_second: f64 = env.or_default("RATE_LIMIT_PER_SECOND", 100.0)?;
        if !per_second.is_finite() || per_second < 0.0 {
            return Err(ConfigError {
                name: "RATE_LIMIT_PER_SECOND".to_owned(),
                problem: format!("{per_second} is not a rate (a number ≥ 0; 0 disables limiting)"),
            });
        }
        let burst: u32 = env.or_default("RATE_LIMIT_BURST", 200)?;
        if burst == 0 {
            return Err(ConfigError {
                name: "RATE_LIMIT_BURST".to_owned(),
                problem: "must be at least 1".to_owned(),
            });
        }
        Ok(RateLimitSettings { per_second, burst })
    }

    /// False when limiting is switched off (`per_second` is 0).
    pub fn enabled(&self) -> bool {
        self.per_second > 0.0 && self.burst > 0
    }

    /// How long an empty bucket takes to fill up.
    fn full_refill(&self) -> Duration {
        Duration::try_from_secs_f64(f64::from(self.burst) / self.per_second).unwrap_or(Duration::MAX)
    }
}

/// Whether a call may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allowed,
    /// Over the limit; the next token is due in `retry_after`.
    Limited {
        /// Time until the principal's next token.
        retry_after: Duration,
    },
}

/// Where a decision was made, the label of `rapport_rate_limited_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The shared bucket in Redis (`redis`).
    Redis,
    /// This process's fallback bucket (`local`).
    Local,
}

impl Source {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Redis => "redis",
            Source::Local => "local",
        }
    }
}

impl EncodeLabelValue for Source {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// The labels of `rapport_rate_limited_total`: `source="redis"|"local"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SourceLabel {
    /// Which bucket refused the call.
    pub source: Source,
}

/// The limiter's metric handles (clones share their values).
#[derive(Debug, Clone, Default)]
pub struct RateLimitMetrics {
    /// `rapport_rate_limited_total{source}` (registered as
    /// `rapport_rate_limited`; the exposition adds `_total`): calls refused,
    /// by the bucket that refused them.
    pub limited: Family<SourceLabel, Counter>,
    /// `rapport_rate_limiter_degraded`: 1 while Redis is unavailable and
    /// limits are enforced per process, else 0.
    pub degraded: Gauge,
}

/// The per-principal limiter. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    settings: RateLimitSettings,
    redis: Option<Redis>,
    /// `settings` as script arguments, formatted once.
    per_second_arg: String,
    burst_arg: String,
    local: moka::sync::Cache<String, Arc<Mutex<Bucket>>>,
    /// `degraded` is 1 while Redis is configured but unavailable.
    metrics: RateLimitMetrics,
    limited_redis: Counter,
    limited_local: Counter,
}

impl RateLimiter {
    /// A limiter sharing buckets through `redis`, falling back to local
    /// buckets while it is unavailable.
    pub fn new(redis: Redis, settings: RateLimitSettings) -> RateLimiter {
        RateLimiter::build(Some(redis), settings)
    }

    /// A limiter with local buckets only, for when Redis is disabled
    /// (`REDIS_URL=off`): each process enforces the limits on its own. This
    /// is the configured mode, so the degraded gauge stays 0.
    pub fn local(settings: RateLimitSettings) -> RateLimiter {
        RateLimiter::build(None, settings)
    }

    fn build(redis: Option<Redis>, settings: RateLimitSettings) -> RateLimiter {
        let idle = settings.full_refill().clamp(Duration::from_secs(1), Duration::from_secs(3600));
        let local = moka::sync::Cache::builder().max_capacity(LOCAL_BUCKETS).time_to_idle(idle).build();
        let metrics = RateLimitMetrics::default();
        let limited_redis = metrics.limited.get_or_create(&SourceLabel { source: Source::Redis }).clone();
        let limited_local = metrics.limited.get_or_create(&SourceLabel { source: Source::Local }).clone();
        RateLimiter {
            inner: Arc::new(Inner {
                settings,
                redis,
                per_second_arg: settings.per_second.to_string(),
                burst_arg: settings.burst.to_string(),
                local,
                metrics,
                limited_redis,
                limited_local,
            }),
        }
    }

    /// The settings enforced.
    pub fn settings(&self) -> RateLimitSettings {
        self.inner.settings
    }

    /// Takes one token from `key`'s bucket: in Redis (one round trip), or
    /// locally while Redis is unavailable. Always allowed when limiting is
    /// disabled.
    pub async fn check(&self, key: &str) -> Decision {
        let inner = &*self.inner;
        if !inner.settings.enabled() {
            return Decision::Allowed;
        }
        let (decision, source) = match &inner.redis {
            Some(redis) => match inner.check_redis(redis, key).await {
                Ok(decision) => {
                    inner.redis_answered();
                    (decision, Source::Redis)
                }
                Err(crate::redis::Unavailable) => {
                    inner.redis_failed();
                    (inner.check_local(key), Source::Local)
                }
            },
            None => (inner.check_local(key), Source::Local),
        };
        if let Decision::Limited { .. } = decision {
            match source {
                Source::Redis => inner.limited_redis.inc(),
                Source::Local => inner.limited_local.inc(),
            };
        }
        decision
    }

    /// The metric handles, for registering elsewhere or reading in tests.
    pub fn metrics(&self) -> &RateLimitMetrics {
        &self.inner.metrics
    }

    /// Registers `rapport_rate_limited_total{source="redis"|"local"}` and
    /// `rapport_rate_limiter_degraded` (gauge 0/1: 1 while the local
    /// fallback is in use because Redis is unavailable).
    pub fn register_metrics(&self, registry: &mut Registry) {
        let metrics = self.metrics().clone();
        registry.register(
            "rapport_rate_limited",
            "Calls refused by the per-principal rate limit, by the bucket that refused them",
            metrics.limited,
        );
        registry.register(
            "rapport_rate_limiter_degraded",
            "1 while Redis is unavailable and rate limits are enforced per process",
            metrics.degraded,
        );
    }
}

impl Inner {
    async fn check_redis(&self, redis: &Redis, key: &str) -> Result<Decision, crate::redis::Unavailable> {
        let mut invocation = SCRIPT.prepare_invoke();
        invocation.key(format!("{KEY_PREFIX}{key}")).arg(&self.per_second_arg).arg(&self.burst_arg);
        let (allowed, wait_ms): (i64, i64) =
            redis.run(|mut connection| async move { invocation.invoke_async(&mut connection).await }).await?;
        Ok(if allowed == 1 {
            Decision::Allowed
        } else {
            Decision::Limited {
                retry_after: Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1))
                    .clamp(Duration::from_millis(1), LONGEST_WAIT),
            }
        })
    }

    fn check_local(&self, key: &str) -> Decision {
        let bucket = match self.local.get(key) {
            Some(bucket) => bucket,
            None => self
                .local
                .entry_by_ref(key)
                .or_insert_with(|| Arc::new(Mutex::new(Bucket::full(&self.settings, Instant::now()))))
                .into_value(),
        };
        let mut bucket = bucket.lock().unwrap_or_else(PoisonError::into_inner);
        bucket.take(&self.settings, Instant::now())
    }

    // The gauge is the state: a plain read on the hot path, and exactly one
    // caller sees each transition (and logs it).
    fn redis_answered(&self) {
        if self.metrics.degraded.get() != 0 && self.metrics.degraded.set(0) != 0 {
            tracing::info!("redis is back; rate limits are shared by all replicas again");
        }
    }

    fn redis_failed(&self) {
        if self.metrics.degraded.get() == 0 && self.metrics.degraded.set(1) == 0 {
            tracing::warn!(
                per_second = self.settings.per_second,
                burst = self.settings.burst,
                "redis is unavailable; rate limits are enforced per process until it is back \
                 (N replicas allow up to N times the rate)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_to_100_per_second_with_a_burst_of_200() {
        let settings = RateLimitSettings::from_env(&Env::from_pairs([])).unwrap();
        assert_eq!((settings.per_second, settings.burst), (100.0, 200));
        assert!(settings.enabled());

        let env = Env::from_pairs([("RATE_LIMIT_PER_SECOND", "0.5"), ("RATE_LIMIT_BURST", "3")]);
        let settings = RateLimitSettings::from_env(&env).unwrap();
        assert_eq!((settings.per_second, settings.burst), (0.5, 3));
    }

    #[test]
    fn a_rate_of_zero_disables_limiting() {
        let env = Env::from_pairs([("RATE_LIMIT_PER_SECOND", "0")]);
        assert!(!RateLimitSettings::from_env(&env).unwrap().enabled());
    }

    #[test]
    fn bad_settings_name_the_variable() {
        for (name, value) in [
            ("RATE_LIMIT_PER_SECOND", "-1"),
            ("RATE_LIMIT_PER_SECOND", "NaN"),
            ("RATE_LIMIT_PER_SECOND", "inf"),
            ("RATE_LIMIT_PER_SECOND", "fast"),
            ("RATE_LIMIT_BURST", "0"),
            ("RATE_LIMIT_BURST", "-5"),
        ] {
            let err = RateLimitSettings::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(err.name, name, "{value}");
        }
    }
}
