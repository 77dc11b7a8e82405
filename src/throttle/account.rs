//! The sign-in limit per account (issue 17 §3, M4): however many addresses a guesser spreads
//! over, one account — a username at the sign-in form (`http/smart.rs`) — gets `burst`
//! attempts, then one per `interval`. A GCRA bucket per account, as `governor`'s, by hand
//! because this crate's `RateLimit` over `governor` takes whole requests a second and this
//! limit refills one every several seconds. An attempt is taken before the credentials are
//! checked, so concurrent guesses cannot all slip past; a refusal comes before any check, so a
//! refused guess tells nothing, and it lasts until the next attempt is due. Someone
//! who keeps sending one wrong attempt per `interval` keeps the account refused for as long as
//! they keep at it — no more than the lockout after five failures in fifteen minutes
//! (`auth/users.rs`) already allowed. Client ids are not limited this way: they are public, so
//! anyone could lock an app out of its tokens, and their credentials cannot be guessed online
//! (the limit per address stands).
//!
//! Accounts are keyed by a keyed hash (SipHash, a key drawn per process) of the normalised name,
//! so the map holds 8 bytes per account whatever the length of the names sent, and an attacker
//! cannot aim names at one bucket. Accounts back at a full burst are dropped by
//! [`AccountLimit::forget_idle`].

use super::{Reason, Throttled};
use crate::clock::Ticker;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which kind of account a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Account {
    /// A username, compared as the sign-in compares it: trimmed, case-insensitive.
    User,
}

/// `burst` attempts per account, then one per `interval`.
pub struct AccountLimit {
    interval: Duration,
    /// How far ahead of now an account's next due time may run: `interval × (burst − 1)`.
    tolerance: Duration,
    ticker: Arc<dyn Ticker>,
    hasher: RandomState,
    /// When each account's bucket is full again (the GCRA's theoretical arrival time), on the
    /// ticker's scale.
    due: Mutex<HashMap<u64, Duration>>,
}

impl AccountLimit {
    /// `None` when `interval_seconds` is 0 (no limit).
    pub fn new(interval_seconds: u32, burst: u32, ticker: Arc<dyn Ticker>) -> Option<Self> {
        if interval_seconds == 0 {
            return None;
        }
        let interval = Duration::from_secs(interval_seconds.into());
        Some(AccountLimit {
            interval,
            tolerance: interval.saturating_mul(burst.max(1) - 1),
            ticker,
            hasher: RandomState::new(),
            due: Mutex::default(),
        })
    }

    fn key(&self, account: Account, name: &str) -> u64 {
        match account {
            Account::User => self.hasher.hash_one((account, name.trim().to_lowercase())),
        }
    }

    /// Take one attempt at `name`, or say how long until one is allowed.
    pub fn attempt(&self, account: Account, name: &str) -> Result<(), Throttled> {
        let key = self.key(account, name);
        let now = self.ticker.elapsed();
        let mut due = self.due.lock().unwrap_or_else(|p| p.into_inner());
        let tat = due.get(&key).copied().unwrap_or(now).max(now);
        let ahead = tat - now;
        if ahead > self.tolerance {
            return Err(Throttled {
                retry_after: ahead - self.tolerance,
                reason: Reason::Rate,
            });
        }
        due.insert(key, tat.saturating_add(self.interval));
        Ok(())
    }

    /// Forget accounts whose bucket is full again.
    pub fn forget_idle(&self) {
        let now = self.ticker.elapsed();
        let mut due = self.due.lock().unwrap_or_else(|p| p.into_inner());
        due.retain(|_, tat| *tat > now);
        due.shrink_to_fit();
    }

    /// How many accounts hold state.
    pub fn keys(&self) -> usize {
        self.due.lock().map_or(0, |d| d.len())
    }
}
