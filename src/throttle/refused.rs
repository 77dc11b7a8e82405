//! Addresses the anonymous limit has refused, and until when (issue 17 §3, M3). A bearer token
//! that is not in the verifier's cache costs a signature check; only tokens that fail it count
//! against the anonymous limit (a valid one never does, so users behind one NAT are not refused
//! for each other's cache misses), and once the limit refuses an address, its tokens that need
//! a check are refused before any check until the refusal's `Retry-After` has passed: a flood
//! of forged tokens costs one signature check per request the limit allows, not one per
//! request. Entries that have run out are dropped by [`RefusedAddresses::forget_expired`].

use crate::clock::Ticker;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Address keys (`throttle::address_key`) and the ticker time their refusal ends.
pub struct RefusedAddresses {
    until: Mutex<HashMap<IpAddr, Duration>>,
    ticker: Arc<dyn Ticker>,
}

impl RefusedAddresses {
    pub fn new(ticker: Arc<dyn Ticker>) -> Self {
        RefusedAddresses {
            until: Mutex::new(HashMap::new()),
            ticker,
        }
    }

    /// Remember that `key` was refused for `retry_after` from now.
    pub fn refuse(&self, key: IpAddr, retry_after: Duration) {
        let ends = self.ticker.elapsed() + retry_after;
        if let Ok(mut until) = self.until.lock() {
            let entry = until.entry(key).or_insert(ends);
            *entry = (*entry).max(ends);
        }
    }

    /// How long `key` stays refused, if it is refused now.
    pub fn remaining(&self, key: IpAddr) -> Option<Duration> {
        let now = self.ticker.elapsed();
        let until = self.until.lock().ok()?;
        until
            .get(&key)
            .and_then(|ends| ends.checked_sub(now))
            .filter(|d| !d.is_zero())
    }

    /// Drop the refusals that have run out.
    pub fn forget_expired(&self) {
        let now = self.ticker.elapsed();
        if let Ok(mut until) = self.until.lock() {
            until.retain(|_, ends| *ends > now);
        }
    }

    /// Addresses refused now or not yet forgotten (counted in `Throttle::tracked_keys`).
    pub fn len(&self) -> usize {
        self.until.lock().map_or(0, |until| until.len())
    }
}
