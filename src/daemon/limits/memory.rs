//! Budgets kept in this process: the TAT of every key in two tables, each split in shards so
//! that requests seldom wait for one another. Attempts live apart from failures, so a flood
//! of attempts can never push a failure budget out. Attempt keys are sharded by the client's
//! widest network (a /48 and its /64s in one shard), failure keys by the number, so each step
//! of [`super::plan`] locks exactly one shard.
//!
//! Shards are read-write locks: a refusal only reads (`peek_attempts`), so a flood from one
//! network, refused on every worker at once, never makes one worker wait for another.
//!
//! A table never forgets a budget that is still being spent: a full shard first forgets the
//! budgets that are whole again, and when none is, the attempt is refused ([`Full`], answered
//! 503 and counted) rather than giving anyone a budget back. Memory is bounded by
//! `max_tracked` keys in each table.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::budgets::{Key, Net};
use super::gcra::whole;
use super::plan::Budgets;

const SHARDS: usize = 16;

/// One shard: keys and their TATs, at most `capacity`.
pub(crate) struct Table {
    tats: HashMap<Key, u64>,
    capacity: usize,
}

impl Table {
    /// The TAT of `key`, read only.
    pub(crate) fn peek(&self, key: &Key) -> u64 {
        self.tats.get(key).copied().unwrap_or(0)
    }

    fn sweep(&mut self, now: u64) {
        self.tats.retain(|_, tat| !whole(*tat, now));
    }
}

impl Budgets for Table {
    fn tat(&mut self, key: &Key) -> u64 {
        self.tats.get(key).copied().unwrap_or(0)
    }

    fn set(&mut self, key: Key, tat: u64) {
        if tat == 0 {
            self.tats.remove(&key);
        } else {
            self.tats.insert(key, tat);
        }
    }

    fn has_room(&mut self, keys: &[Key], now: u64) -> bool {
        let missing = |t: &Table| keys.iter().filter(|k| !t.tats.contains_key(k)).count();
        if self.tats.len() + missing(self) <= self.capacity {
            return true;
        }
        self.sweep(now);
        self.tats.len() + missing(self) <= self.capacity
    }
}

/// A shard locked for writing.
pub(crate) type Shard<'a> = RwLockWriteGuard<'a, Table>;

pub(crate) struct Memory {
    attempts: Vec<RwLock<Table>>,
    failures: Vec<RwLock<Table>>,
    hasher: ShardHash,
    full: AtomicU64,
}

/// How keys are spread over shards: keyed at random in the daemon, so that nobody can aim
/// at one shard; keyed by a seed in the simulation, so that a run can be repeated.
enum ShardHash {
    Random(std::collections::hash_map::RandomState),
    #[cfg(test)]
    Seeded(u64),
}

impl ShardHash {
    fn shard(&self, value: impl std::hash::Hash) -> usize {
        let hash = match self {
            ShardHash::Random(state) => state.hash_one(value),
            #[cfg(test)]
            ShardHash::Seeded(seed) => {
                std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default()
                    .hash_one((seed, value))
            }
        };
        (hash as usize) % SHARDS
    }
}

fn shards(capacity: usize) -> Vec<RwLock<Table>> {
    let per_shard = (capacity / SHARDS).max(8);
    (0..SHARDS)
        .map(|_| {
            RwLock::new(Table {
                tats: HashMap::new(),
                capacity: per_shard,
            })
        })
        .collect()
}

fn lock(m: &RwLock<Table>) -> Shard<'_> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Memory {
    /// Room for about `max_keys` attempt keys and as many failure keys.
    pub(crate) fn new(max_keys: usize) -> Memory {
        Memory::hashed(max_keys, ShardHash::Random(Default::default()))
    }

    /// [`Memory::new`] with shards chosen by `seed`, the same in every run.
    #[cfg(test)]
    pub(crate) fn seeded(max_keys: usize, seed: u64) -> Memory {
        Memory::hashed(max_keys, ShardHash::Seeded(seed))
    }

    fn hashed(max_keys: usize, hasher: ShardHash) -> Memory {
        Memory {
            attempts: shards(max_keys),
            failures: shards(max_keys),
            hasher,
            full: AtomicU64::new(0),
        }
    }

    /// The shard of the attempt keys of a client whose widest network is `home`.
    pub(crate) fn attempts(&self, home: Net) -> Shard<'_> {
        lock(&self.attempts[self.hasher.shard(home)])
    }

    /// The shard of [`Memory::attempts`], to read only.
    pub(crate) fn peek_attempts(&self, home: Net) -> RwLockReadGuard<'_, Table> {
        let shard = &self.attempts[self.hasher.shard(home)];
        shard
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The shard of every failure key of `number`.
    pub(crate) fn failures(&self, number: u64) -> Shard<'_> {
        lock(&self.failures[self.hasher.shard(number)])
    }

    /// Counts an attempt refused for want of room.
    pub(crate) fn count_full(&self) {
        self.full.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets every key whose budget is whole again.
    pub(crate) fn sweep(&self, now: u64) {
        for shard in self.attempts.iter().chain(&self.failures) {
            lock(shard).sweep(now);
        }
    }

    /// Every key with the TAT it has, for copying into Redis.
    pub(crate) fn snapshot(&self) -> Vec<(Key, u64)> {
        let mut all = Vec::new();
        for shard in self.attempts.iter().chain(&self.failures) {
            all.extend(lock(shard).tats.iter().map(|(k, t)| (*k, *t)));
        }
        all
    }

    /// Keys tracked.
    pub(crate) fn len(&self) -> usize {
        self.attempts
            .iter()
            .chain(&self.failures)
            .map(|s| lock(s).tats.len())
            .sum()
    }

    /// Attempts refused because a table had no room.
    pub(crate) fn full_refusals(&self) -> u64 {
        self.full.load(Ordering::Relaxed)
    }
}
