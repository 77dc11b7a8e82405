//! The cap on one caller's requests in progress at once: a count per caller, taken when a
//! request starts and given back when its guard drops (whatever way the request ends). A map
//! of counts rather than a semaphore per caller: a refusal must be immediate (429, never a
//! queue), and an entry disappears with its caller's last request.

use super::{Caller, Reason, Throttled};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Requests in progress per caller, at most `limit` each.
pub struct InProgress {
    limit: u32,
    counts: Arc<Mutex<HashMap<Caller, u32>>>,
}

/// One request in progress; dropping it ends it.
pub struct InProgressGuard {
    counts: Arc<Mutex<HashMap<Caller, u32>>>,
    caller: Option<Caller>,
}

impl InProgress {
    pub fn new(limit: u32) -> Self {
        InProgress {
            limit,
            counts: Arc::default(),
        }
    }

    /// Start a request of `caller`, unless it already has `limit` in progress.
    pub fn enter(&self, caller: Caller) -> Result<InProgressGuard, Throttled> {
        let Ok(mut counts) = self.counts.lock() else {
            // A poisoned map (a panic while holding it) must not stop the server; the cap
            // is off rather than every request refused.
            return Ok(InProgressGuard {
                counts: self.counts.clone(),
                caller: None,
            });
        };
        // The key is cloned only for a caller with nothing in progress yet.
        if !counts.contains_key(&caller) {
            counts.insert(caller.clone(), 0);
        }
        let Some(count) = counts.get_mut(&caller) else {
            return Err(Throttled {
                retry_after: Duration::from_secs(1),
                reason: Reason::Concurrency,
            });
        };
        if *count >= self.limit {
            return Err(Throttled {
                // A request usually finishes within a second; no better hint exists.
                retry_after: Duration::from_secs(1),
                reason: Reason::Concurrency,
            });
        }
        *count += 1;
        Ok(InProgressGuard {
            counts: self.counts.clone(),
            caller: Some(caller),
        })
    }

    /// How many callers have requests in progress.
    pub fn callers(&self) -> usize {
        self.counts.lock().map_or(0, |c| c.len())
    }
}

impl Drop for InProgressGuard {
    fn drop(&mut self) {
        let Some(caller) = self.caller.take() else {
            return;
        };
        if let Ok(mut counts) = self.counts.lock() {
            if let Some(count) = counts.get_mut(&caller) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    counts.remove(&caller);
                }
            }
        }
    }
}
