//! Abuse limits, checked before any KDF work (`docs/http.md`, "Limits"). Three budgets,
//! designed after NIST SP 800-63B §5.2.2 and OWASP's guidance, so that nobody can guess a
//! key and nobody can lock an orderer out:
//!
//! 1. **Attempts per client network**, every attempt: a client cannot flood the KDF.
//! 2. **Failures per (contract number, client network)**: a wrong key costs a unit of this
//!    network's budget for this number; a right key costs nothing.
//! 3. **Failures per contract number, from all networks together** (the ceiling): once it
//!    is spent, networks that have failed on the number in the last day wait; a network
//!    that has not may still try, so a correct key from an orderer's office succeeds while
//!    someone else attacks the number, and an attacker gets one guess a day per network.
//!
//! Networks are IPv4 addresses, and IPv6 /64s within their /48 (both budgets must allow).
//! `--limit-network CIDR=RATE` gives the addresses of a named network (a prefecture's shared
//! egress, say) a higher attempt rate. Budgets are counted whether or not the number exists,
//! so the limiter is no existence oracle. They live in memory ([`memory`]), bounded, the
//! least recently used forgotten first.

mod gcra;
mod memory;
mod shared;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use self::gcra::Cell;
use self::memory::Memory;
use self::shared::{Shared, Verdict};

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

/// A named network and the attempt rate of each of its addresses (`--limit-network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkRate {
    pub network: IpNet,
    pub rate: Rate,
}

impl NetworkRate {
    /// Parses `CIDR=RATE`, e.g. `203.0.113.0/24=600/hour+60`.
    pub fn parse(text: &str) -> Result<NetworkRate, String> {
        let bad = || format!("「{text}」は 203.0.113.0/24=600/hour+60 のように書いてください");
        let (network, rate) = text.split_once('=').ok_or_else(bad)?;
        Ok(NetworkRate {
            network: network.trim().parse().map_err(|_| bad())?,
            rate: Rate::parse(rate.trim())?,
        })
    }
}

/// The settings of the limiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbuseLimits {
    /// Attempts per client network (`--limit-address`).
    pub per_address: Rate,
    /// Failures per contract number and client network (`--limit-failures`).
    pub failures_per_network: Rate,
    /// Failures per contract number from all networks (`--limit-number`, the ceiling).
    pub failures_per_number: Rate,
    /// Named networks with their own attempt rate.
    pub networks: Vec<NetworkRate>,
    /// Keys tracked at most.
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
            // Typing mistakes: 5 wrong keys for one number at once, then one every 72 minutes.
            failures_per_network: Rate {
                burst: 5,
                every: Duration::from_secs(4_320),
            },
            // The ceiling: 100 wrong keys for one number at once, then one every 86.4 s
            // (1,000 a day); see docs/http.md for why a 50-bit key stays unguessable.
            failures_per_number: Rate {
                burst: 100,
                every: Duration::from_millis(86_400),
            },
            networks: Vec::new(),
            max_tracked: 400_000,
        }
    }
}

/// A client network: its address bits (host bits cleared) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Net(u128, u8);

/// What a budget belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Attempts(Net),
    Failures(u64, Net),
    /// Whole a day after the network's last failure on the number.
    Failed(u64, Net),
    Number(u64),
}

/// How long a network counts as having failed on a number: while that number's ceiling is
/// spent, it may try again only a day after its last wrong key there.
const FAILED_FOR: Rate = Rate {
    burst: 1,
    every: Duration::from_secs(86_400),
};

/// One network of a client, with its attempt and failure cells.
#[derive(Debug, Clone, Copy)]
struct Tier {
    net: Net,
    attempts: Cell,
    failures: Cell,
}

/// A rate four times as large, for a /48 that holds many /64s.
fn wider(rate: Rate) -> Rate {
    Rate {
        burst: rate.burst.saturating_mul(4),
        every: rate.every / 4,
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

/// An attempt let through to the KDF: what to charge if the key turns out wrong.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    number: Option<u64>,
    tiers: Vec<Tier>,
}

/// What the limiter did, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) keys: usize,
    pub(crate) evictions: u64,
    /// Attempts refused because a number's ceiling was spent.
    pub(crate) ceiling_refusals: u64,
    /// `Some(up)` when budgets are shared in Redis.
    pub(crate) redis_up: Option<bool>,
    /// Exchanges with Redis that failed or timed out.
    pub(crate) redis_failures: u64,
}

pub(crate) struct Limiter {
    limits: AbuseLimits,
    store: Memory,
    /// Budgets shared with other replicas, when `--limits redis://…`.
    shared: Option<Shared>,
    started: Instant,
    ceiling_refusals: AtomicU64,
    /// When the ceiling was last reported in the log (ms on the limiter's clock).
    last_report: AtomicU64,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Limiter {
    /// A limiter on budgets in memory, shared through Redis at `redis` if given.
    pub(crate) fn new(limits: AbuseLimits, redis: Option<&str>) -> anyhow::Result<Limiter> {
        Ok(Limiter {
            store: Memory::new(limits.max_tracked),
            shared: redis.map(Shared::new).transpose()?,
            limits,
            started: Instant::now(),
            ceiling_refusals: AtomicU64::new(0),
            last_report: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        // Offset by a day, so that a TAT of 0 (a key never seen) is always in the past.
        ms(self.started.elapsed()) + 86_400_000
    }

    /// The networks a client counts under, narrowest first.
    fn tiers(&self, client: IpAddr) -> Vec<Tier> {
        let failures = Cell::from(self.limits.failures_per_network);
        match client.to_canonical() {
            IpAddr::V4(v4) => {
                let rate = self
                    .limits
                    .networks
                    .iter()
                    .find(|n| n.network.contains(&IpAddr::V4(v4)))
                    .map_or(self.limits.per_address, |n| n.rate);
                let net = Net(u128::from(u32::from(v4)), 32);
                vec![Tier {
                    net,
                    attempts: rate.into(),
                    failures,
                }]
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let prefix = |len: u32| Net(bits & !(u128::MAX >> len), len as u8);
                let rate = self.limits.per_address;
                vec![
                    Tier {
                        net: prefix(64),
                        attempts: rate.into(),
                        failures,
                    },
                    Tier {
                        net: prefix(48),
                        attempts: wider(rate).into(),
                        failures: wider(self.limits.failures_per_network).into(),
                    },
                ]
            }
        }
    }

    /// Lets an attempt through to the KDF, or says how long to wait. Spends one attempt of
    /// the client's networks; failures are spent only by [`Limiter::failed`]. Asks Redis
    /// when budgets are shared, and falls back to memory when it cannot answer in time.
    pub(crate) async fn admit(
        &self,
        client: IpAddr,
        number: Option<&str>,
    ) -> Result<Admission, Limited> {
        let Some(shared) = &self.shared else {
            return self.admit_local(client, number);
        };
        let tiers = self.tiers(client);
        let number_key = number.and_then(|n| n.parse::<u64>().ok());
        let attempts: Vec<(Key, Cell)> = tiers
            .iter()
            .map(|t| (Key::Attempts(t.net), t.attempts))
            .collect();
        let failures: Vec<(Key, Key, Cell)> = number_key.map_or_else(Vec::new, |n| {
            tiers
                .iter()
                .map(|t| (Key::Failures(n, t.net), Key::Failed(n, t.net), t.failures))
                .collect()
        });
        let ceiling =
            number_key.map(|n| (Key::Number(n), Cell::from(self.limits.failures_per_number)));
        match shared.admit(&attempts, &failures, ceiling).await {
            Some(Verdict::Admit) => Ok(Admission {
                number: number_key,
                tiers,
            }),
            Some(Verdict::Address(w)) => Err(Limited::Address(w)),
            Some(Verdict::Number(w)) => Err(Limited::Number(w)),
            Some(Verdict::Ceiling(w)) => {
                self.ceiling_reached(number_key.unwrap_or(0), self.now());
                Err(Limited::Number(w))
            }
            None => self.admit_local(client, number),
        }
    }

    /// [`Limiter::admit`] on the budgets in memory.
    fn admit_local(&self, client: IpAddr, number: Option<&str>) -> Result<Admission, Limited> {
        let now = self.now();
        let tiers = self.tiers(client);
        for tier in &tiers {
            self.store
                .take(Key::Attempts(tier.net), tier.attempts, now)
                .map_err(|wait| Limited::Address(Duration::from_millis(wait)))?;
        }
        let number = number.and_then(|n| n.parse::<u64>().ok());
        if let Some(number) = number {
            self.check_failures(number, &tiers, now)?;
        }
        Ok(Admission { number, tiers })
    }

    /// The client's failure budgets for `number`, and the number's ceiling.
    fn check_failures(&self, number: u64, tiers: &[Tier], now: u64) -> Result<(), Limited> {
        let refused = |wait: u64| Limited::Number(Duration::from_millis(wait));
        for tier in tiers {
            self.store
                .peek(Key::Failures(number, tier.net), tier.failures, now)
                .map_err(refused)?;
        }
        let ceiling = Cell::from(self.limits.failures_per_number);
        let Err(wait) = self.store.peek(Key::Number(number), ceiling, now) else {
            return Ok(());
        };
        // The ceiling is spent: a network that has not failed on this number may still try.
        let failed_lately = tiers
            .iter()
            .any(|t| !self.store.is_whole(Key::Failed(number, t.net), now));
        if !failed_lately {
            return Ok(());
        }
        self.ceiling_reached(number, now);
        Err(refused(wait))
    }

    /// Counts a refusal by a number's ceiling; says so in the log at most once a minute.
    fn ceiling_reached(&self, number: u64, now: u64) {
        let n = self.ceiling_refusals.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last_report.load(Ordering::Relaxed);
        if now >= last + 60_000
            && self
                .last_report
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                number = format!("{number:010}"),
                refusals = n,
                "保証契約番号の失敗回数が全体の上限に達しました。失敗した接続元からの確認を止めています"
            );
        }
    }

    /// What a wrong key spends: a failure of the client's networks for the number, their
    /// day-long "failed" marks, and a unit of the number's ceiling.
    fn charges(&self, admission: &Admission) -> Vec<(Key, Cell)> {
        let Some(number) = admission.number else {
            return Vec::new();
        };
        let mut keys = Vec::with_capacity(admission.tiers.len() * 2 + 1);
        for tier in &admission.tiers {
            keys.push((Key::Failures(number, tier.net), tier.failures));
            keys.push((Key::Failed(number, tier.net), FAILED_FOR.into()));
        }
        keys.push((
            Key::Number(number),
            Cell::from(self.limits.failures_per_number),
        ));
        keys
    }

    /// The key was wrong: spends what [`Limiter::charges`] names, in Redis when budgets are
    /// shared (in memory when Redis cannot).
    pub(crate) async fn failed(&self, admission: &Admission) {
        let charges = self.charges(admission);
        if let Some(shared) = &self.shared {
            if shared.charge(&charges).await {
                return;
            }
        }
        self.charge_local(&charges);
    }

    fn charge_local(&self, charges: &[(Key, Cell)]) {
        let now = self.now();
        for (key, cell) in charges {
            self.store.charge(*key, *cell, now);
        }
    }

    /// [`Limiter::failed`] on the budgets in memory.
    #[cfg(test)]
    fn failed_local(&self, admission: &Admission) {
        self.charge_local(&self.charges(admission));
    }

    /// Tries Redis again when it was down (run every second).
    pub(crate) async fn probe(&self) {
        if let Some(shared) = self.shared.as_ref().filter(|s| !s.is_up()) {
            shared.probe().await;
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            keys: self.store.len(),
            evictions: self.store.evictions(),
            ceiling_refusals: self.ceiling_refusals.load(Ordering::Relaxed),
            redis_up: self.shared.as_ref().map(Shared::is_up),
            redis_failures: self.shared.as_ref().map_or(0, Shared::failures),
        }
    }

    /// Periodic clean-up: forgets budgets that are whole again.
    pub(crate) fn sweep(&self) {
        self.store.sweep(self.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Limiter {
        fn new_for_test(limits: AbuseLimits) -> Limiter {
            Limiter::new(limits, None).expect("in memory")
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    fn limits(address: &str, failures: &str, number: &str) -> AbuseLimits {
        AbuseLimits {
            per_address: Rate::parse(address).expect("rate"),
            failures_per_network: Rate::parse(failures).expect("rate"),
            failures_per_number: Rate::parse(number).expect("rate"),
            networks: Vec::new(),
            max_tracked: 1_000,
        }
    }

    /// One attempt from `client` on `number` that fails; `Err` when refused first.
    fn wrong(l: &Limiter, client: &str, number: &str) -> Result<(), Limited> {
        let admission = l.admit_local(ip(client), Some(number))?;
        l.failed_local(&admission);
        Ok(())
    }

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
        let named = NetworkRate::parse("203.0.113.0/24=600/hour+60").expect("named");
        assert_eq!((named.network.prefix_len(), named.rate.burst), (24, 60));
        assert!(NetworkRate::parse("203.0.113.0/24").is_err());
    }

    #[test]
    fn only_failures_spend_the_failure_budgets() {
        let l = Limiter::new_for_test(limits("1000/day+1000", "3/day+3", "1000/day+1000"));
        // Right keys cost nothing: admit without `failed`.
        for _ in 0..10 {
            assert!(l.admit_local(ip("192.0.2.1"), Some("2070004426")).is_ok());
        }
        for _ in 0..3 {
            assert_eq!(wrong(&l, "192.0.2.1", "2070004426"), Ok(()));
        }
        let refused = l
            .admit_local(ip("192.0.2.1"), Some("2070004426"))
            .expect_err("4th failure");
        assert!(matches!(refused, Limited::Number(_)) && refused.retry_after() > 60);
        // Another number, or another network, has its own budget.
        assert!(l.admit_local(ip("192.0.2.1"), Some("2070004427")).is_ok());
        assert!(l.admit_local(ip("192.0.2.2"), Some("2070004426")).is_ok());
    }

    #[test]
    fn an_attacked_number_still_opens_for_a_network_that_has_not_failed() {
        let l = Limiter::new_for_test(limits("1000/day+1000", "5/day+5", "10/day+10"));
        // Ten networks spend the number's ceiling with a wrong key each.
        for i in 0..10 {
            assert_eq!(wrong(&l, &format!("198.51.100.{i}"), "2070004426"), Ok(()));
        }
        // A network that has failed waits; one that has not may still try, once a day.
        assert!(l
            .admit_local(ip("198.51.100.0"), Some("2070004426"))
            .is_err());
        assert!(
            l.admit_local(ip("203.0.113.5"), Some("2070004426")).is_ok(),
            "the orderer's office"
        );
        assert_eq!(wrong(&l, "203.0.113.6", "2070004426"), Ok(()));
        assert!(
            l.admit_local(ip("203.0.113.6"), Some("2070004426"))
                .is_err(),
            "one guess per fresh network"
        );
        assert!(l.stats().ceiling_refusals >= 2);
    }

    #[test]
    fn ipv6_counts_by_64_and_by_48() {
        let l = Limiter::new_for_test(limits("2/day+2", "1000/day+1000", "1000/day+1000"));
        assert!(l.admit_local(ip("2001:db8:1:1::1"), None).is_ok());
        assert!(l.admit_local(ip("2001:db8:1:1::ffff"), None).is_ok());
        assert!(
            l.admit_local(ip("2001:db8:1:1::2"), None).is_err(),
            "the same /64"
        );
        // Other /64s of the /48 get their own budget, up to the /48's (four times as large).
        let others: Vec<bool> = (2..10)
            .map(|i| {
                l.admit_local(ip(&format!("2001:db8:1:{i}::1")), None)
                    .is_ok()
            })
            .collect();
        assert_eq!(others.iter().filter(|ok| **ok).count(), 6, "{others:?}");
        assert!(
            l.admit_local(ip("2001:db8:2::1"), None).is_ok(),
            "another /48"
        );
        assert!(l.admit_local(ip("::ffff:192.0.2.1"), None).is_ok());
    }

    #[test]
    fn named_networks_have_their_own_rate() {
        let mut settings = limits("1/day+1", "1000/day+1000", "1000/day+1000");
        settings
            .networks
            .push(NetworkRate::parse("203.0.113.0/24=100/day+50").expect("named"));
        let l = Limiter::new_for_test(settings);
        assert!((0..50).all(|_| l.admit_local(ip("203.0.113.9"), None).is_ok()));
        assert!(l.admit_local(ip("192.0.2.1"), None).is_ok());
        assert!(l.admit_local(ip("192.0.2.1"), None).is_err());
    }

    #[test]
    fn a_full_table_forgets_the_least_recently_used_and_never_shares_a_budget() {
        let mut settings = limits("3/day+3", "1000/day+1000", "1000/day+1000");
        settings.max_tracked = 2_000;
        let l = Limiter::new_for_test(settings);
        let known = ip("192.0.2.1");
        assert!(l.admit_local(known, None).is_ok());
        // 300,000 random numbers from as many addresses.
        for i in 0..300_000u32 {
            let client = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = l.admit_local(
                client,
                Some(&format!("{:010}", 3_000_000_000u64 + u64::from(i))),
            );
            if i % 1000 == 0 {
                // The known client keeps using its budget, so it stays recent.
                let _ = l.admit_local(known, None);
            }
        }
        let stats = l.stats();
        assert!(
            stats.keys <= 2_000 && stats.evictions > 290_000,
            "{stats:?}"
        );
        // The known client's budget was kept (still spent), not forgotten.
        assert!(l.admit_local(known, None).is_err());
        // New clients are not pushed into one shared budget: each still gets its own.
        for i in 0..100u32 {
            let client = IpAddr::V4(std::net::Ipv4Addr::from(0xc612_0000 + i));
            assert!(l.admit_local(client, None).is_ok(), "new client {i}");
        }
    }
}
