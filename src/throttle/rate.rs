//! One rate limit: a GCRA bucket per key (`governor`'s keyed limiter on its std hash map; no
//! dashmap), measured on the injected [`Ticker`] so tests control time exactly.

use super::{Reason, Throttled};
use crate::clock::Ticker;
use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// `governor`'s clock over the injected ticker: instants are durations since its start.
#[derive(Clone)]
struct TickerClock(Arc<dyn Ticker>);

impl GovernorClock for TickerClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// `rate` requests per second per key, with bursts of up to `burst`.
pub struct RateLimit<K: Hash + Eq + Clone> {
    limiter: RateLimiter<K, HashMapStateStore<K>, TickerClock, NoOpMiddleware<Duration>>,
    clock: TickerClock,
}

impl<K: Hash + Eq + Clone> RateLimit<K> {
    /// `None` when `rate` is 0 (no limit).
    pub fn new(rate: u32, burst: u32, ticker: Arc<dyn Ticker>) -> Option<Self> {
        let rate = NonZeroU32::new(rate)?;
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(rate).allow_burst(burst);
        let clock = TickerClock(ticker);
        Some(RateLimit {
            limiter: RateLimiter::hashmap_with_clock(quota, clock.clone()),
            clock,
        })
    }

    /// Count one request of `key`, or say how long until it would be allowed.
    pub fn check(&self, key: &K) -> Result<(), Throttled> {
        self.limiter.check_key(key).map_err(|not_until| Throttled {
            retry_after: not_until.wait_time_from(self.clock.now()),
            reason: Reason::Rate,
        })
    }

    /// Forget keys whose buckets are full again.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// How many keys hold state.
    pub fn keys(&self) -> usize {
        self.limiter.len()
    }
}
