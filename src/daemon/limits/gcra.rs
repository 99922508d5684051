//! The generic cell rate algorithm on one number per key, the theoretical arrival time (TAT,
//! milliseconds on the limiter's clock): a budget of `burst` at once, refilled one every
//! `every`. A unit reserved before the KDF is given back ([`Cell::refund`]) when the key was
//! right, so a budget counts failures only.

use std::time::Duration;

/// A budget: `burst` tries at once, then one more every `every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub every: Duration,
}

impl Rate {
    /// Parses `N/PERIOD` (PERIOD one of `s`, `min`, `hour`, `day`), optionally `N/PERIOD+BURST`:
    /// `100/day` is about 100 tries a day, 10 at once (a tenth) then evenly spread.
    pub fn parse(text: &str) -> Result<Rate, String> {
        let bad = || format!("「{text}」は 100/day や 60/min+20 のように書いてください");
        let (count, rest) = text.split_once('/').ok_or_else(bad)?;
        let (period, burst) = match rest.split_once('+') {
            Some((p, b)) => (p, Some(b.parse::<u32>().map_err(|_| bad())?)),
            None => (rest, None),
        };
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let seconds: u64 = match period.trim() {
            "s" | "sec" => 1,
            "min" => 60,
            "hour" | "h" => 3600,
            "day" | "d" => 86_400,
            _ => return Err(bad()),
        };
        if count == 0 {
            return Err(bad());
        }
        let every = Duration::from_secs(seconds) / count;
        let burst = burst.unwrap_or((count / 10).max(1)).max(1);
        if every.is_zero() {
            return Err(bad());
        }
        Ok(Rate { burst, every })
    }
}

/// A rate in the limiter's milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cell {
    /// Milliseconds per unit of budget.
    interval: u64,
    /// How far the TAT may run ahead of now: `interval × (burst − 1)`.
    tolerance: u64,
}

impl From<Rate> for Cell {
    fn from(rate: Rate) -> Cell {
        let interval = u64::try_from(rate.every.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        Cell {
            interval,
            tolerance: interval.saturating_mul(u64::from(rate.burst.max(1) - 1)),
        }
    }
}

impl Cell {
    /// Milliseconds per unit of budget.
    pub(crate) fn interval(self) -> u64 {
        self.interval
    }

    /// How far the TAT may run ahead of now.
    pub(crate) fn tolerance(self) -> u64 {
        self.tolerance
    }

    /// `Err(milliseconds to wait)` when the budget with `tat` has nothing left at `now`.
    pub(crate) fn check(self, tat: u64, now: u64) -> Result<(), u64> {
        let ahead = tat.saturating_sub(now);
        if ahead > self.tolerance {
            Err(ahead - self.tolerance)
        } else {
            Ok(())
        }
    }

    /// The TAT after one unit is spent at `now`.
    pub(crate) fn charge(self, tat: u64, now: u64) -> u64 {
        tat.max(now).saturating_add(self.interval)
    }

    /// The TAT after one unit reserved by [`Cell::charge`] is given back: never more than
    /// the one unit, and a budget that refilled meanwhile stays whole.
    pub(crate) fn refund(self, tat: u64) -> u64 {
        tat.saturating_sub(self.interval)
    }
}

/// Whether a budget with `tat` is whole again at `now` (nothing spent that has not been
/// refilled): a network with a whole failure budget has not failed lately.
pub(crate) fn whole(tat: u64, now: u64) -> bool {
    tat <= now
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_one_per_interval() {
        let cell = Cell::from(Rate {
            burst: 3,
            every: Duration::from_secs(10),
        });
        let mut tat = 0;
        for _ in 0..3 {
            assert_eq!(cell.check(tat, 1_000), Ok(()));
            tat = cell.charge(tat, 1_000);
        }
        assert_eq!(cell.check(tat, 1_000), Err(10_000));
        assert_eq!(cell.check(tat, 11_000), Ok(()));
        assert!(!whole(tat, 11_000));
        assert!(whole(tat, 31_000));
    }
}
