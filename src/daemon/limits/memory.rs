//! Budgets kept in this process: the TAT of every key in LRU maps, split in shards so that
//! requests seldom wait for one another. A full shard forgets its least recently used key
//! (a budget nobody touched for the longest time becomes whole again); it never makes new
//! clients share one budget.

use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use lru::LruCache;

use super::gcra::{whole, Cell};
use super::Key;

const SHARDS: usize = 16;

pub(crate) struct Memory {
    shards: Vec<Mutex<LruCache<Key, u64>>>,
    hasher: std::collections::hash_map::RandomState,
    evictions: AtomicU64,
}

impl Memory {
    /// Room for about `max_keys` keys in all.
    pub(crate) fn new(max_keys: usize) -> Memory {
        let per_shard = NonZeroUsize::new((max_keys / SHARDS).max(1)).unwrap_or(NonZeroUsize::MIN);
        Memory {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per_shard)))
                .collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            evictions: AtomicU64::new(0),
        }
    }

    fn with_shard<R>(&self, key: &Key, f: impl FnOnce(&mut LruCache<Key, u64>) -> R) -> R {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        let mut shard = match self.shards[i].lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut shard)
    }

    fn store(&self, shard: &mut LruCache<Key, u64>, key: Key, tat: u64) {
        if let Some((evicted, _)) = shard.push(key, tat) {
            if evicted != key {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Checks `key` against `cell` and spends one unit when there is one; else the wait.
    pub(crate) fn take(&self, key: Key, cell: Cell, now: u64) -> Result<(), u64> {
        self.with_shard(&key, |shard| {
            let tat = shard.get(&key).copied().unwrap_or(0);
            cell.check(tat, now)?;
            self.store(shard, key, cell.charge(tat, now));
            Ok(())
        })
    }

    /// Checks `key` against `cell` without spending.
    pub(crate) fn peek(&self, key: Key, cell: Cell, now: u64) -> Result<(), u64> {
        self.with_shard(&key, |shard| {
            let tat = shard.peek(&key).copied().unwrap_or(0);
            cell.check(tat, now)
        })
    }

    /// Spends one unit of `key`, even beyond its budget.
    pub(crate) fn charge(&self, key: Key, cell: Cell, now: u64) {
        self.with_shard(&key, |shard| {
            let tat = shard.get(&key).copied().unwrap_or(0);
            self.store(shard, key, cell.charge(tat, now));
        });
    }

    /// Whether `key`'s budget is whole (nothing spent lately).
    pub(crate) fn is_whole(&self, key: Key, now: u64) -> bool {
        self.with_shard(&key, |shard| {
            whole(shard.peek(&key).copied().unwrap_or(0), now)
        })
    }

    /// Forgets every key whose budget is whole again.
    pub(crate) fn sweep(&self, now: u64) {
        for shard in &self.shards {
            let mut shard = match shard.lock() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            let stale: Vec<Key> = shard
                .iter()
                .filter(|(_, tat)| whole(**tat, now))
                .map(|(k, _)| *k)
                .collect();
            for key in stale {
                shard.pop(&key);
            }
        }
    }

    /// Keys tracked.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len()))
            .sum()
    }

    /// Keys forgotten because a shard was full.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }
}
