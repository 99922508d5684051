//! The limiter's rules, once, over any store of budgets (the tables in memory, and a model of
//! Redis in the simulation; `shared.rs`'s Lua scripts are these functions written again for
//! Redis, step for step). Each function runs atomically on its store:
//!
//! - [`take_attempts`]: every tier is checked before anything is stored, so a refused attempt
//!   leaves no key behind (a /48 that is refused adds no /64 keys);
//! - [`reserve`]: the failure units a wrong key would spend are **reserved when the attempt is
//!   admitted**, so attempts in flight at once can never spend more than the budget;
//! - [`confirm`]: the key was wrong: the network's day-long "failed" marks;
//! - [`refund`]: the key was right (or never checked): the reserved units come back.

use super::budgets::{Key, Tier, FAILED_FOR, HOLD};
use super::gcra::{whole, Cell};

/// A store of budgets: the TAT of each key, 0 for a key never seen (or whole and forgotten).
pub(crate) trait Budgets {
    fn tat(&mut self, key: &Key) -> u64;
    /// Stores `tat` for `key`; only called after [`Budgets::has_room`] said yes for it.
    fn set(&mut self, key: Key, tat: u64);
    /// Whether every key of `keys` not yet stored fits (forgetting whole budgets to make
    /// room, never one still spent).
    fn has_room(&mut self, keys: &[Key], now: u64) -> bool;
}

/// Why an attempt is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A network's attempts are spent: wait this long (ms).
    Address(u64),
    /// A failure budget of the network for the number is spent.
    Number(u64),
    /// The number's ceiling is spent and this network failed on it lately (or has its one
    /// guess in flight: held).
    Ceiling(u64),
    /// No room to count the attempt.
    Full,
}

/// What an admitted attempt reserved, to confirm or refund when the KDF has spoken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reserved {
    /// The [`Key::Held`] marks set at admission (the network's one guess while the
    /// number's ceiling is spent, or while Redis is away or settling), with their TAT.
    pub(crate) marks: Vec<(Key, u64)>,
}

/// Spends one attempt of every tier, or none.
pub(crate) fn take_attempts(b: &mut impl Budgets, tiers: &[Tier], now: u64) -> Result<(), Verdict> {
    let mut tats = Vec::with_capacity(tiers.len());
    for tier in tiers {
        let tat = b.tat(&Key::Attempts(tier.net));
        tier.attempts.check(tat, now).map_err(Verdict::Address)?;
        tats.push(tat);
    }
    let keys: Vec<Key> = tiers.iter().map(|t| Key::Attempts(t.net)).collect();
    if !b.has_room(&keys, now) {
        return Err(Verdict::Full);
    }
    for ((tier, tat), key) in tiers.iter().zip(tats).zip(keys) {
        b.set(key, tier.attempts.charge(tat, now));
    }
    Ok(())
}

/// The keys a reservation for `number` may store.
fn reservation_keys(number: u64, tiers: &[Tier]) -> Vec<Key> {
    let mut keys = Vec::with_capacity(tiers.len() * 2 + 1);
    keys.extend(tiers.iter().map(|t| Key::Failures(number, t.net)));
    keys.extend(tiers.iter().map(|t| Key::Failed(number, t.net)));
    keys.extend(tiers.iter().map(|t| Key::Held(number, t.net)));
    keys.push(Key::Number(number));
    keys
}

/// Checks the network's failure budgets for `number` and the number's ceiling, then
/// reserves a unit of each. While the ceiling is spent (or when `strict`: Redis is away and
/// other replicas' failures are unknown), only a network with neither a "failed" mark nor a
/// guess in flight gets in, and it is held at once: one guess per network at a time, and
/// none for a day after a wrong one.
pub(crate) fn reserve(
    b: &mut impl Budgets,
    (number, tiers): (u64, &[Tier]),
    ceiling: Cell,
    strict: bool,
    now: u64,
) -> Result<Reserved, Verdict> {
    for tier in tiers {
        let tat = b.tat(&Key::Failures(number, tier.net));
        tier.failures.check(tat, now).map_err(Verdict::Number)?;
    }
    let ceiling_tat = b.tat(&Key::Number(number));
    let spent = match ceiling.check(ceiling_tat, now) {
        Err(wait) => Some(wait),
        Ok(()) if strict => Some(1_000),
        Ok(()) => None,
    };
    if let Some(wait) = spent {
        let marked: Vec<u64> = tiers
            .iter()
            .flat_map(|t| [Key::Failed(number, t.net), Key::Held(number, t.net)])
            .map(|k| b.tat(&k))
            .collect();
        if let Some(until) = marked.iter().copied().find(|tat| !whole(*tat, now)) {
            // In again when the ceiling refills or the mark runs out, whichever comes first.
            return Err(Verdict::Ceiling(wait.min(until - now)));
        }
    }
    if !b.has_room(&reservation_keys(number, tiers), now) {
        return Err(Verdict::Full);
    }
    let mut reserved = Reserved::default();
    if spent.is_some() {
        for tier in tiers {
            let key = Key::Held(number, tier.net);
            let tat = now + Cell::from(HOLD_FOR).interval();
            b.set(key, tat);
            reserved.marks.push((key, tat));
        }
    }
    for tier in tiers {
        let key = Key::Failures(number, tier.net);
        let tat = b.tat(&key);
        b.set(key, tier.failures.charge(tat, now));
    }
    b.set(Key::Number(number), ceiling.charge(ceiling_tat, now));
    Ok(reserved)
}

/// How long a [`Key::Held`] mark lasts at most.
const HOLD_FOR: super::gcra::Rate = super::gcra::Rate {
    burst: 1,
    every: HOLD,
};

/// The key was wrong: the reserved units stay spent, and each network is marked as having
/// failed on the number for a day.
pub(crate) fn confirm(b: &mut impl Budgets, (number, tiers): (u64, &[Tier]), now: u64) {
    let until = now + Cell::from(FAILED_FOR).interval();
    let keys: Vec<Key> = tiers.iter().map(|t| Key::Failed(number, t.net)).collect();
    // Room was made for these keys by the reservation; if a sweep took it since, the mark
    // is still written (a table may run over by the few keys of attempts in flight).
    let _ = b.has_room(&keys, now);
    for key in keys {
        let tat = b.tat(&key).max(until);
        b.set(key, tat);
    }
}

/// The key was right, or never checked: the reserved units come back, and the networks are
/// no longer held (unless another attempt held them since).
pub(crate) fn refund(
    b: &mut impl Budgets,
    (number, tiers): (u64, &[Tier]),
    ceiling: Cell,
    reserved: &Reserved,
) {
    for tier in tiers {
        let key = Key::Failures(number, tier.net);
        let tat = b.tat(&key);
        b.set(key, tier.failures.refund(tat));
    }
    let key = Key::Number(number);
    let tat = b.tat(&key);
    b.set(key, ceiling.refund(tat));
    for (key, tat) in &reserved.marks {
        if b.tat(key) == *tat {
            b.set(*key, 0);
        }
    }
}
