//! A bounded in-process cache of current resource versions. Reads of a cached resource are a
//! hash lookup and a reference-count bump of the stored bytes. Entries only ever move forward
//! in version, so a slow reader can never put an older version back over a newer one that a
//! writer installed. SQLite, where this process is the only writer, fills it on reads and
//! commits (`put_if_newer`). PostgreSQL nodes share the database with other writers
//! (postgres_cache.rs): they learn of other nodes' commits late, so a read that missed stamps
//! its shard first and offers what it read only if no invalidation reached the shard since
//! (`stamp` / `put_if_unchanged`) — an invalidation that overtook it cannot be undone.

use super::StoredVersion;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 16;

/// A cached version and when it was cached.
struct Cached {
    version: StoredVersion,
    at: Instant,
}

struct Shard {
    entries: HashMap<String, Cached>,
    bytes: usize,
    /// Invalidations so far (see [`CurrentCache::stamp`]).
    invalidations: u64,
}

/// Current versions by `Type/id`, bounded by the total size of the bodies held.
pub struct CurrentCache {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
    budget_per_shard: usize,
}

fn key(resource_type: &str, id: &str) -> String {
    let mut k = String::with_capacity(resource_type.len() + id.len() + 1);
    k.push_str(resource_type);
    k.push('/');
    k.push_str(id);
    k
}

fn cost(key: &str, version: &StoredVersion) -> usize {
    key.len() + version.body.as_ref().map_or(0, |b| b.len()) + 64
}

impl CurrentCache {
    /// A cache holding at most about `budget_bytes` of keys and bodies.
    pub fn new(budget_bytes: usize) -> Self {
        CurrentCache {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        entries: HashMap::new(),
                        bytes: 0,
                        invalidations: 0,
                    })
                })
                .collect(),
            hasher: RandomState::new(),
            budget_per_shard: budget_bytes / SHARDS,
        }
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// The cached current version, if any.
    pub fn get(&self, resource_type: &str, id: &str) -> Option<StoredVersion> {
        let key = key(resource_type, id);
        let shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        shard.entries.get(&key).map(|c| c.version.clone())
    }

    /// The cached current version if it was cached less than `max_age` ago.
    pub fn get_younger_than(
        &self,
        resource_type: &str,
        id: &str,
        max_age: Duration,
    ) -> Option<StoredVersion> {
        let key = key(resource_type, id);
        let shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        shard
            .entries
            .get(&key)
            .filter(|c| c.at.elapsed() < max_age)
            .map(|c| c.version.clone())
    }

    /// Remember `version` unless a newer (or the same) version is already cached.
    pub fn put_if_newer(&self, resource_type: &str, id: &str, version: StoredVersion) {
        self.put(resource_type, id, None, version);
    }

    /// Where the resource's shard stands, to be given to [`Self::put_if_unchanged`] with what
    /// a read of the database that begins after this call returns.
    pub fn stamp(&self, resource_type: &str, id: &str) -> u64 {
        let key = key(resource_type, id);
        let shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        shard.invalidations
    }

    /// [`Self::put_if_newer`], unless an invalidation reached the shard after `stamp` (it may
    /// have been about this resource, newer than `version`).
    pub fn put_if_unchanged(
        &self,
        resource_type: &str,
        id: &str,
        stamp: u64,
        version: StoredVersion,
    ) {
        self.put(resource_type, id, Some(stamp), version);
    }

    /// Version `version_id` of the resource is committed: drop an older cached version.
    pub fn invalidate_below(&self, resource_type: &str, id: &str, version_id: i64) {
        let key = key(resource_type, id);
        let mut shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        shard.invalidations += 1;
        if shard
            .entries
            .get(&key)
            .is_some_and(|cached| cached.version.version_id < version_id)
        {
            if let Some(old) = shard.entries.remove(&key) {
                shard.bytes -= cost(&key, &old.version);
            }
        }
    }

    /// Forget everything (every shard counts an invalidation).
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.invalidations += 1;
            shard.entries.clear();
            shard.bytes = 0;
        }
    }

    fn put(&self, resource_type: &str, id: &str, stamp: Option<u64>, version: StoredVersion) {
        let key = key(resource_type, id);
        let size = cost(&key, &version);
        let mut shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        if size > self.budget_per_shard {
            // Too large to keep: an older version cached before must not be served instead.
            if shard
                .entries
                .get(&key)
                .is_some_and(|cached| cached.version.version_id < version.version_id)
            {
                if let Some(old) = shard.entries.remove(&key) {
                    shard.bytes -= cost(&key, &old.version);
                }
            }
            return;
        }
        if stamp.is_some_and(|stamp| stamp != shard.invalidations) {
            return;
        }
        // The same version again replaces the entry (its age starts over); an older never does.
        if let Some(existing) = shard.entries.get(&key) {
            if existing.version.version_id > version.version_id {
                return;
            }
        }
        let cached = Cached {
            version,
            at: Instant::now(),
        };
        if let Some(old) = shard.entries.insert(key.clone(), cached) {
            shard.bytes -= cost(&key, &old.version);
        }
        shard.bytes += size;
        if shard.bytes > self.budget_per_shard {
            evict(&mut shard, self.budget_per_shard * 3 / 4, &key);
        }
    }
}

/// Drop arbitrary entries (never `keep`) until the shard is within `target` bytes.
fn evict(shard: &mut Shard, target: usize, keep: &str) {
    let victims: Vec<String> = {
        let mut freed = 0usize;
        let excess = shard.bytes.saturating_sub(target);
        shard
            .entries
            .iter()
            .filter(|(k, _)| k.as_str() != keep)
            .take_while(|(k, v)| {
                let go = freed < excess;
                freed += cost(k, &v.version);
                go
            })
            .map(|(k, _)| k.clone())
            .collect()
    };
    for k in victims {
        if let Some(v) = shard.entries.remove(&k) {
            shard.bytes -= cost(&k, &v.version);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn v(version_id: i64, body: &str) -> StoredVersion {
        StoredVersion {
            version_id,
            last_updated_us: 0,
            body: Some(Bytes::from(body.to_string())),
        }
    }

    #[test]
    fn versions_only_move_forward() {
        let cache = CurrentCache::new(1 << 20);
        assert_eq!(cache.get("Patient", "a"), None);
        cache.put_if_newer("Patient", "a", v(2, "two"));
        cache.put_if_newer("Patient", "a", v(1, "one"));
        assert_eq!(cache.get("Patient", "a"), Some(v(2, "two")));
        cache.put_if_newer("Patient", "a", v(3, "three"));
        assert_eq!(cache.get("Patient", "a").map(|x| x.version_id), Some(3));
        assert_eq!(cache.get("Goal", "a"), None, "keys include the type");
    }

    #[test]
    fn a_read_overtaken_by_an_invalidation_is_not_cached() {
        let cache = CurrentCache::new(1 << 20);
        // A read stamps, reads version 1 from the database; meanwhile version 2 commits
        // elsewhere and its invalidation arrives first: version 1 must not be cached.
        let stamp = cache.stamp("Patient", "a");
        cache.invalidate_below("Patient", "a", 2);
        cache.put_if_unchanged("Patient", "a", stamp, v(1, "one"));
        assert_eq!(cache.get("Patient", "a"), None);
        // A read that began after the invalidation caches what it read.
        let stamp = cache.stamp("Patient", "a");
        cache.put_if_unchanged("Patient", "a", stamp, v(2, "two"));
        assert_eq!(cache.get("Patient", "a"), Some(v(2, "two")));
        // An invalidation of the cached version or an older one keeps it; a newer drops it.
        cache.invalidate_below("Patient", "a", 2);
        assert_eq!(cache.get("Patient", "a"), Some(v(2, "two")));
        cache.invalidate_below("Patient", "a", 3);
        assert_eq!(cache.get("Patient", "a"), None);
        // Clearing empties every shard and refuses reads stamped before it.
        let stamp = cache.stamp("Goal", "g");
        cache.put_if_newer("Patient", "b", v(1, "b"));
        cache.clear();
        assert_eq!(cache.get("Patient", "b"), None);
        cache.put_if_unchanged("Goal", "g", stamp, v(1, "g"));
        assert_eq!(cache.get("Goal", "g"), None);
        let held: usize = cache.shards.iter().map(|s| s.lock().unwrap().bytes).sum();
        assert_eq!(held, 0);
    }

    /// A version too large for a shard is not kept, and neither is the older one it replaces
    /// (found by review: the older version stayed and was served, and every update conflicted).
    #[test]
    fn a_version_too_large_to_keep_drops_the_older_one() {
        let cache = CurrentCache::new(16 * 1024);
        cache.put_if_newer("Patient", "a", v(1, "small"));
        assert_eq!(cache.get("Patient", "a"), Some(v(1, "small")));
        cache.put_if_newer("Patient", "a", v(2, &"x".repeat(2_000)));
        assert_eq!(cache.get("Patient", "a"), None);
        let held: usize = cache.shards.iter().map(|s| s.lock().unwrap().bytes).sum();
        assert_eq!(held, 0);
    }

    #[test]
    fn stays_within_its_budget() {
        let cache = CurrentCache::new(16 * 1024);
        let body = "x".repeat(200);
        for n in 0..1000 {
            cache.put_if_newer("Patient", &n.to_string(), v(1, &body));
        }
        let held: usize = cache.shards.iter().map(|s| s.lock().unwrap().bytes).sum();
        assert!(held <= 16 * 1024, "{held}");
        assert!(
            cache.get("Patient", "999").is_some(),
            "the newest entry is kept"
        );
    }
}
