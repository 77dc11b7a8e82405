//! Per-key async locks: conditional creates with the same criteria (http.html#ccreate) are
//! serialised in this process, so two clients racing `If-None-Exist` for one identifier get one
//! resource and one 200, not two resources. Entries are dropped once nobody holds or waits for
//! them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// A set of named locks.
#[derive(Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
}

/// Holds one key's lock; releasing it forgets the key when nobody else wants it.
pub struct KeyGuard<'a> {
    owner: &'a KeyedLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    /// Wait for, then hold, the lock named `key`.
    pub async fn lock(&self, key: String) -> KeyGuard<'_> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(locks.entry(key.clone()).or_default())
        };
        let guard = lock.lock_owned().await;
        KeyGuard {
            owner: self,
            key,
            guard: Some(guard),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.locks.lock().map(|l| l.len()).unwrap_or(0)
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.owner.locks.lock().unwrap_or_else(|p| p.into_inner());
        if locks
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

/// The lock key of a conditional interaction: the type and its criteria, decoded and sorted,
/// so that the same search written in another order shares the lock.
pub fn criteria_key(resource_type: &str, query: &str) -> String {
    let mut pairs: Vec<(String, String)> =
        form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
            .into_owned()
            .collect();
    pairs.sort();
    let mut key = String::from(resource_type);
    for (k, v) in pairs {
        key.push('\u{0}');
        key.push_str(&k);
        key.push('=');
        key.push_str(&v);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_in_any_order_share_a_key() {
        assert_eq!(
            criteria_key("Patient", "a=1&b=x%20y"),
            criteria_key("Patient", "?b=x y&a=1")
        );
        assert_ne!(criteria_key("Patient", "a=1"), criteria_key("Goal", "a=1"));
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_keys_are_forgotten() {
        let locks = KeyedLocks::default();
        let first = locks.lock("k".into()).await;
        let waiting = locks.lock("k".into());
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), &mut waiting)
                .await
                .is_err(),
            "a second holder must wait"
        );
        drop(first);
        let second = waiting.await;
        drop(second);
        assert_eq!(locks.len(), 0);
    }
}
