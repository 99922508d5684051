//! Abuse limits, checked before any KDF work: per client address (IPv6 by /64) and per
//! 保証契約番号 (whether or not it exists, so the limiter is no existence oracle).
//!
//! Each limiter tracks at most `max_tracked` keys. When address or number spraying fills it,
//! stale keys are swept (at most once a second); if it is still full, untracked clients share
//! one overflow bucket. Memory stays bounded and tracked clients keep their own budget.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

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

    fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(self.every)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }
}

/// The settings of both limiters.
#[derive(Debug, Clone, Copy)]
pub struct AbuseLimits {
    pub per_address: Rate,
    pub per_number: Rate,
    /// Keys each limiter tracks at most.
    pub max_tracked: usize,
}

impl Default for AbuseLimits {
    fn default() -> Self {
        AbuseLimits {
            // A clerk checking a pile of notices: 20 at once, then one every 3 seconds.
            per_address: Rate {
                burst: 20,
                every: Duration::from_secs(3),
            },
            // About 100 tries a day per number: 10 at once, then one every 14.4 minutes.
            per_number: Rate {
                burst: 10,
                every: Duration::from_secs(864),
            },
            max_tracked: 200_000,
        }
    }
}

/// The address a client is limited as: IPv4 whole, IPv6 by its /64 (one subscriber's
/// network), IPv4-mapped IPv6 as IPv4.
pub(crate) fn address_key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => (u128::from(v6) & !((1u128 << 64) - 1)) | 1,
    }
}

/// A keyed limiter with a bound on the keys it tracks.
struct Bounded<K: Hash + Eq + Clone> {
    keyed: DefaultKeyedRateLimiter<K>,
    overflow: DefaultDirectRateLimiter,
    max_tracked: usize,
    last_sweep_ms: AtomicU64,
    started: Instant,
    clock: DefaultClock,
}

impl<K: Hash + Eq + Clone> Bounded<K> {
    fn new(rate: Rate, max_tracked: usize) -> Self {
        let overflow = Rate {
            burst: rate.burst.saturating_mul(10),
            every: rate.every / 10,
        };
        Bounded {
            keyed: RateLimiter::keyed(rate.quota()),
            overflow: RateLimiter::direct(overflow.quota()),
            max_tracked,
            last_sweep_ms: AtomicU64::new(0),
            started: Instant::now(),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when `key` has used its budget.
    fn check(&self, key: &K) -> Result<(), Duration> {
        if self.keyed.len() >= self.max_tracked {
            self.sweep(false);
            if self.keyed.len() >= self.max_tracked {
                return self
                    .overflow
                    .check()
                    .map_err(|n| n.wait_time_from(self.clock.now()));
            }
        }
        self.keyed
            .check_key(key)
            .map_err(|n| n.wait_time_from(self.clock.now()))
    }

    /// Drops keys whose budget is full again; at most once a second unless `force`.
    fn sweep(&self, force: bool) {
        let now_ms = self.started.elapsed().as_millis() as u64 + 1_000;
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if !force && now_ms < last + 1_000 {
            return;
        }
        if self
            .last_sweep_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.keyed.retain_recent();
            self.keyed.shrink_to_fit();
        }
    }
}

/// Why an attempt was refused before any KDF work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limited {
    Address(Duration),
    Number(Duration),
}

impl Limited {
    /// Whole seconds until a retry can succeed (at least 1), for `Retry-After`.
    pub(crate) fn retry_after(self) -> u64 {
        let (Limited::Address(d) | Limited::Number(d)) = self;
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    }
}

pub(crate) struct Limiter {
    by_address: Bounded<u128>,
    by_number: Bounded<u64>,
}

impl Limiter {
    pub(crate) fn new(limits: AbuseLimits) -> Limiter {
        Limiter {
            by_address: Bounded::new(limits.per_address, limits.max_tracked),
            by_number: Bounded::new(limits.per_number, limits.max_tracked),
        }
    }

    pub(crate) fn check_address(&self, ip: IpAddr) -> Result<(), Limited> {
        self.by_address
            .check(&address_key(ip))
            .map_err(Limited::Address)
    }

    /// `number` is a normalised 保証契約番号 (10 digits).
    pub(crate) fn check_number(&self, number: &str) -> Result<(), Limited> {
        let key: u64 = number.parse().unwrap_or(u64::MAX);
        self.by_number.check(&key).map_err(Limited::Number)
    }

    /// Keys tracked (addresses, numbers).
    pub(crate) fn tracked(&self) -> (usize, usize) {
        (self.by_address.keyed.len(), self.by_number.keyed.len())
    }

    /// Periodic clean-up of keys whose budget is full again.
    pub(crate) fn sweep(&self) {
        self.by_address.sweep(true);
        self.by_number.sweep(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            Rate::parse("100/day"),
            Ok(Rate {
                burst: 10,
                every: Duration::from_secs(864)
            })
        );
        assert_eq!(
            Rate::parse("60/min+20"),
            Ok(Rate {
                burst: 20,
                every: Duration::from_secs(1)
            })
        );
        assert!(Rate::parse("0/day").is_err());
        assert!(Rate::parse("10/week").is_err());
        assert!(Rate::parse("ten/day").is_err());
    }

    #[test]
    fn ipv6_is_limited_by_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let v4: IpAddr = "192.0.2.1".parse().expect("ip");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(address_key(v4), address_key(mapped));
        assert_ne!(
            address_key(v4),
            address_key("192.0.2.2".parse().expect("ip"))
        );
    }

    #[test]
    fn budgets_run_out_per_key() {
        let limits = AbuseLimits {
            per_address: Rate::parse("3/day+3").expect("rate"),
            per_number: Rate::parse("2/day+2").expect("rate"),
            max_tracked: 1000,
        };
        let l = Limiter::new(limits);
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!((0..3).all(|_| l.check_address(ip).is_ok()));
        let refused = l.check_address(ip).expect_err("4th");
        assert!(refused.retry_after() > 60, "{refused:?}");
        assert!(l.check_address("192.0.2.2".parse().expect("ip")).is_ok());
        assert!(l.check_number("2070004426").is_ok());
        assert!(l.check_number("2070004426").is_ok());
        assert!(matches!(
            l.check_number("2070004426"),
            Err(Limited::Number(_))
        ));
        assert!(l.check_number("9999999999").is_ok());
    }

    #[test]
    fn spraying_addresses_keeps_memory_bounded() {
        let limits = AbuseLimits {
            per_address: Rate::parse("10/day").expect("rate"),
            per_number: Rate::parse("10/day").expect("rate"),
            max_tracked: 1000,
        };
        let l = Limiter::new(limits);
        for i in 0..50_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            let _ = l.check_address(ip);
        }
        let (addresses, _) = l.tracked();
        assert!(addresses <= 1000, "{addresses} tracked");
    }
}
