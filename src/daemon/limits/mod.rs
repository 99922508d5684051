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

mod budgets;
mod gcra;
mod memory;
mod plan;
mod primary;
mod shared;
#[cfg(test)]
mod simulation;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(crate) use self::budgets::HOLD;
use self::budgets::{wider, Key, Net, Tier};
pub use self::budgets::{AbuseLimits, NetworkRate};
use self::gcra::Cell;
pub use self::gcra::Rate;
use self::memory::Memory;
use self::plan::{Budgets as _, Reserved, Verdict};
pub(crate) use self::primary::shown as shown_url;
pub use self::primary::LimitsRedis;
pub(crate) use self::shared::Redis as SharedBudgets;
use self::shared::{Attempt, Remote, Shared};

/// Time left, at the latest check, for the KDF (milliseconds), settling in Redis (at most
/// its 100 ms timeout) and the difference of the two clocks.
const SETTLE_WITHIN: Duration = Duration::from_secs(5);

/// Why an attempt was refused before any KDF work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limited {
    Address(Duration),
    Number(Duration),
    /// The limiter's tables are full of budgets still being spent: answered as busy.
    Full,
}

impl Limited {
    /// Whole seconds until a retry can succeed (at least 1), for `Retry-After`.
    pub(crate) fn retry_after(self) -> u64 {
        let (Limited::Address(d) | Limited::Number(d)) = self else {
            return 1;
        };
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

/// An attempt let through to the KDF: what it reserved, to confirm or give back.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    number: Option<u64>,
    tiers: Vec<Tier>,
    /// What was reserved where the attempt was counted (Redis, or this replica's tables).
    reserved: Reserved,
    /// The marks as this replica's tables hold them (mirrored from Redis, or its own).
    marked_here: Reserved,
    /// Whether the reservation was made in Redis (else only in this replica's tables).
    shared: bool,
    /// The epoch of Redis the reservation was made in (0 when it was made here).
    epoch: i64,
    /// When it was let in (on the limiter's clock, read before Redis was asked).
    admitted_at: u64,
}

/// What the limiter did, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    pub(crate) keys: usize,
    /// Attempts refused because a table was full of budgets still being spent.
    pub(crate) full_refusals: u64,
    /// Attempts refused because a number's ceiling was spent.
    pub(crate) ceiling_refusals: u64,
    /// `Some(up)` when budgets are shared in Redis.
    pub(crate) redis_up: Option<bool>,
    /// Exchanges with Redis that failed or timed out.
    pub(crate) redis_failures: u64,
}

/// The limiter's milliseconds: the process's monotonic clock offset by a day (so that a TAT
/// of 0, a key never seen, is always in the past), or a clock the simulation sets.
#[derive(Clone)]
pub(crate) enum Clock {
    Monotonic(Instant),
    #[cfg(test)]
    Manual(std::sync::Arc<AtomicU64>),
}

impl Clock {
    fn now(&self) -> u64 {
        match self {
            Clock::Monotonic(started) => ms(started.elapsed()) + 86_400_000,
            #[cfg(test)]
            Clock::Manual(now) => now.load(Ordering::Relaxed),
        }
    }
}

/// The way to Redis and what this replica knows of it.
struct Link {
    remote: Box<dyn Remote>,
    /// Redis answers, and holds this replica's tables (copied in since it was last away or
    /// lost its data). While it is not, the replica counts on its own, strictly.
    up: AtomicBool,
    /// Redis's epoch when this replica last copied its tables in.
    epoch: AtomicI64,
    failures: AtomicU64,
    /// Reservations Redis could not be told to give back, replayed once it is back with the
    /// same epoch (a Redis that lost its data got this replica's tables, refunds applied).
    pending: std::sync::Mutex<Vec<Pending>>,
}

/// A refund Redis did not get.
struct Pending {
    epoch: i64,
    number: u64,
    tiers: Vec<Tier>,
    reserved: Reserved,
}

/// Refunds kept for Redis at most; beyond, they are dropped (the budgets stay spent longer).
const MAX_PENDING: usize = 10_000;

impl Link {
    fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Keeps a refund Redis did not get, for [`Limiter::probe`] to replay.
    fn keep(&self, refund: Pending) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pending.len() < MAX_PENDING {
            pending.push(refund);
        }
    }

    fn lost(&self, why: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!("Redis {why}。この複製は自分の表で、失敗のない接続元だけを通して続けます（degraded）");
        }
    }
}

pub(crate) struct Limiter {
    limits: AbuseLimits,
    /// What the attempts in flight through this replica hold reserved, in milliseconds per
    /// failure or ceiling key: not copied into Redis until they are settled, so that a right
    /// key in flight when Redis comes back (or loses its data) leaves nothing spent there
    /// that could not be given back. (A wrong key's units are copied in when it is settled,
    /// before its answer is given.)
    in_flight: std::sync::Mutex<std::collections::HashMap<Key, u64>>,
    /// This replica's budgets: its own, and a mirror of Redis's for the keys it touched.
    store: Memory,
    link: Option<Link>,
    clock: Clock,
    ceiling_refusals: AtomicU64,
    /// When the ceiling was last reported in the log (ms on the limiter's clock).
    last_report: AtomicU64,
    /// Milliseconds a test moved the clock on by.
    #[cfg(test)]
    moved: AtomicU64,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Limiter {
    /// A limiter on budgets in memory, shared through Redis at `redis` if given.
    pub(crate) fn new(limits: AbuseLimits, redis: Option<&LimitsRedis>) -> anyhow::Result<Limiter> {
        let remote = match redis {
            Some(target) => Some(Box::new(shared::Redis::new(target)?) as Box<dyn Remote>),
            None => None,
        };
        Ok(Limiter::with(
            limits,
            remote,
            Clock::Monotonic(Instant::now()),
        ))
    }

    fn with(limits: AbuseLimits, remote: Option<Box<dyn Remote>>, clock: Clock) -> Limiter {
        let store = Memory::new(limits.max_tracked);
        Limiter::on(store, limits, remote, clock)
    }

    fn on(
        store: Memory,
        limits: AbuseLimits,
        remote: Option<Box<dyn Remote>>,
        clock: Clock,
    ) -> Limiter {
        Limiter {
            store,
            link: remote.map(|remote| Link {
                remote,
                up: AtomicBool::new(false),
                epoch: AtomicI64::new(0),
                failures: AtomicU64::new(0),
                pending: std::sync::Mutex::new(Vec::new()),
            }),
            limits,
            in_flight: std::sync::Mutex::new(std::collections::HashMap::new()),
            clock,
            ceiling_refusals: AtomicU64::new(0),
            last_report: AtomicU64::new(0),
            #[cfg(test)]
            moved: AtomicU64::new(0),
        }
    }

    #[cfg(not(test))]
    fn now(&self) -> u64 {
        self.clock.now()
    }

    #[cfg(test)]
    fn now(&self) -> u64 {
        self.clock.now() + self.moved.load(Ordering::Relaxed)
    }

    /// Moves this limiter's clock on by `ms` (a test of what a slow request meets).
    #[cfg(test)]
    pub(crate) fn move_clock(&self, ms: u64) {
        self.moved.fetch_add(ms, Ordering::Relaxed);
    }

    fn ceiling(&self) -> Cell {
        Cell::from(self.limits.failures_per_number)
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
    /// the client's networks and, when a number is given, reserves what a wrong key would
    /// spend ([`plan::reserve`]); [`Limiter::failed`] or [`Limiter::release`] settles it.
    /// Asks Redis when budgets are shared and it is up; else counts here, strictly.
    pub(crate) async fn admit(
        &self,
        client: IpAddr,
        number: Option<&str>,
    ) -> Result<Admission, Limited> {
        let tiers = self.tiers(client);
        let number = number.and_then(|n| n.parse::<u64>().ok());
        let Some(link) = self.link.as_ref().filter(|l| l.is_up()) else {
            let strict = self.link.is_some();
            return self.admit_local(tiers, number, strict);
        };
        // A network whose attempts this replica already knows to be spent is refused on a
        // read of its tables: Redis would refuse it too (attempts are never given back, and
        // the mirror keeps the later TAT). So a flood from one network costs Redis nothing.
        // (Counting here, `take_attempts` makes the same check.)
        self.attempts_spent_here(&tiers)
            .map_err(|v| self.limited(v, number))?;
        // The mirror must be able to hold what Redis will say, or a Redis that restarts
        // empty could not be given this replica's budgets back.
        if !self.room_here(&tiers, number) {
            return Err(self.limited(Verdict::Full, number));
        }
        let attempt = Attempt {
            tiers: &tiers,
            number,
            ceiling: self.ceiling(),
        };
        let ours = link.epoch.load(Ordering::Relaxed);
        let admitted_at = self.now();
        match link.remote.admit(attempt, ours).await {
            Some(Shared::Answered {
                epoch,
                verdict,
                left,
            }) => {
                let reserved = verdict.map_err(|v| self.limited(v, number))?;
                Ok(self.reserved_in_redis(tiers, number, reserved, &left, (epoch, admitted_at)))
            }
            Some(Shared::OtherEpoch) => {
                // Redis lost its data (and perhaps got another replica's tables since):
                // this replica counts on its own until it has copied its tables in.
                link.lost("がデータを失いました");
                self.admit_local(tiers, number, true)
            }
            None => {
                link.lost("から時間内に答えがありません");
                self.admit_local(tiers, number, true)
            }
        }
    }

    /// An attempt Redis let in, made in `epoch` at `admitted_at`: what Redis said of its
    /// keys is mirrored here, and what it reserved is held while it is in flight.
    fn reserved_in_redis(
        &self,
        tiers: Vec<Tier>,
        number: Option<u64>,
        reserved: Reserved,
        left: &[(Key, u64)],
        (epoch, admitted_at): (i64, u64),
    ) -> Admission {
        let marked_here = self.mirror(&tiers, number, left, &reserved);
        let admission = Admission {
            number,
            tiers,
            reserved,
            marked_here,
            shared: true,
            epoch,
            admitted_at,
        };
        self.hold(&admission, true);
        admission
    }

    /// [`Limiter::admit`] on this replica's tables; `strict` while Redis is away.
    fn admit_local(
        &self,
        tiers: Vec<Tier>,
        number: Option<u64>,
        strict: bool,
    ) -> Result<Admission, Limited> {
        let now = self.now();
        plan::take_attempts(&mut *self.store.attempts(home(&tiers)), &tiers, now)
            .map_err(|v| self.limited(v, number))?;
        let reserved = match number {
            Some(n) => {
                let mut shard = self.store.failures(n);
                plan::reserve(&mut *shard, (n, &tiers), self.ceiling(), strict, now)
                    .map_err(|v| self.limited(v, number))?
            }
            None => Reserved::default(),
        };
        let admission = Admission {
            number,
            tiers,
            marked_here: reserved.clone(),
            reserved,
            shared: false,
            epoch: 0,
            admitted_at: now,
        };
        self.hold(&admission, true);
        Ok(admission)
    }

    /// Whether an admitted attempt may still be checked: it was let in less than [`HOLD`]
    /// ago, less [`SETTLE_WITHIN`], so that a strict guess's hold keeps the network's next
    /// guess out until this one is checked and settled.
    pub(crate) fn in_time(&self, admission: &Admission) -> bool {
        let age = self.now().saturating_sub(admission.admitted_at);
        age.saturating_add(ms(SETTLE_WITHIN)) < ms(HOLD)
    }

    /// Adds (or, when settled, takes away) what an admission holds reserved in flight;
    /// only when budgets are shared (counting alone, nothing is ever copied).
    fn hold(&self, admission: &Admission, add: bool) {
        let (Some(number), Some(_)) = (admission.number, self.link.as_ref()) else {
            return;
        };
        let mut held = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let units = admission
            .tiers
            .iter()
            .map(|t| (Key::Failures(number, t.net), t.failures.interval()))
            .chain([(Key::Number(number), self.ceiling().interval())]);
        for (key, ms) in units {
            let entry = held.entry(key).or_insert(0);
            *entry = if add {
                entry.saturating_add(ms)
            } else {
                entry.saturating_sub(ms)
            };
            if *entry == 0 {
                held.remove(&key);
            }
        }
    }

    /// Copies the failure keys of a settled wrong key from this replica's tables into
    /// Redis (each keeping the later TAT): its units and the day-long marks, whatever
    /// Redis's epoch is now. Redis away, the next probe copies them.
    async fn copy_failure(&self, admission: &Admission) {
        let (Some(n), Some(link)) = (admission.number, self.link.as_ref()) else {
            return;
        };
        if !link.is_up() {
            return;
        }
        let now = self.now();
        let entries: Vec<(Key, u64)> = {
            let mut shard = self.store.failures(n);
            shared::admit_keys(&admission.tiers, Some(n))
                .into_iter()
                .filter(|k| !matches!(k, Key::Attempts(_)))
                .map(|k| (k, shard.tat(&k).saturating_sub(now)))
                .filter(|(_, left)| *left > 0)
                .collect()
        };
        if link.remote.copy_in(&entries, None).await.is_none() {
            link.lost("に失敗を書けません");
        }
    }

    /// Why `client` would be refused whatever it sends: its attempts are spent (in this
    /// replica's tables, which mirror Redis's); read only, nothing is counted.
    pub(crate) fn attempts_spent(&self, client: IpAddr) -> Option<Limited> {
        let tiers = self.tiers(client);
        let verdict = self.attempts_spent_here(&tiers).err()?;
        Some(self.limited(verdict, None))
    }

    /// Refuses an attempt of a network whose attempts are spent in this replica's tables.
    fn attempts_spent_here(&self, tiers: &[Tier]) -> Result<(), Verdict> {
        let now = self.now();
        let shard = self.store.peek_attempts(home(tiers));
        for tier in tiers {
            let tat = shard.peek(&Key::Attempts(tier.net));
            tier.attempts.check(tat, now).map_err(Verdict::Address)?;
        }
        Ok(())
    }

    /// Whether this replica's tables have room for every key an attempt may touch.
    fn room_here(&self, tiers: &[Tier], number: Option<u64>) -> bool {
        let now = self.now();
        let keys = shared::admit_keys(tiers, number);
        let (attempts, failures): (Vec<Key>, Vec<Key>) = keys
            .into_iter()
            .partition(|k| matches!(k, Key::Attempts(_)));
        self.store.attempts(home(tiers)).has_room(&attempts, now)
            && number.is_none_or(|n| self.store.failures(n).has_room(&failures, now))
    }

    /// Copies what Redis said of the keys an attempt touched into this replica's tables,
    /// each keeping the later TAT, so that a budget spent in Redis stays spent here if Redis
    /// goes away. Returns the holds Redis set, as this replica now holds them.
    fn mirror(
        &self,
        tiers: &[Tier],
        number: Option<u64>,
        left: &[(Key, u64)],
        marks: &Reserved,
    ) -> Reserved {
        let now = self.now();
        // Always the attempts table first, then the failures: no two locks the other way.
        let mut attempts = self.store.attempts(home(tiers));
        let mut failures = number.map(|n| self.store.failures(n));
        for (key, left) in left.iter().filter(|(_, left)| *left > 0) {
            let shard = match (key, failures.as_mut()) {
                (Key::Attempts(_), _) => &mut attempts,
                (_, Some(failures)) => failures,
                _ => continue,
            };
            let tat = now + left;
            if shard.tat(key) < tat && shard.has_room(std::slice::from_ref(key), now) {
                shard.set(*key, tat);
            }
        }
        let marks = marks.marks.iter();
        Reserved {
            marks: match failures.as_mut() {
                Some(shard) => marks.map(|(k, _)| (*k, shard.tat(k))).collect(),
                None => Vec::new(),
            },
        }
    }

    /// A refusal as the routes see it; a refusal by the ceiling counted and logged.
    fn limited(&self, verdict: Verdict, number: Option<u64>) -> Limited {
        let wait = |ms: u64| Duration::from_millis(ms);
        match verdict {
            Verdict::Address(w) => Limited::Address(wait(w)),
            Verdict::Number(w) => Limited::Number(wait(w)),
            Verdict::Ceiling(w) => {
                self.ceiling_reached(number.unwrap_or(0), self.now());
                Limited::Number(wait(w))
            }
            Verdict::Full => {
                self.store.count_full();
                Limited::Full
            }
        }
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

    /// [`plan::confirm`] in this replica's tables.
    fn confirm_here(&self, admission: &Admission) {
        if let Some(n) = admission.number {
            let now = self.now();
            plan::confirm(&mut *self.store.failures(n), (n, &admission.tiers), now);
        }
    }

    /// [`plan::refund`] in this replica's tables.
    fn refund_here(&self, admission: &Admission) {
        if let Some(n) = admission.number {
            let (ceiling, marks) = (self.ceiling(), &admission.marked_here);
            let mut shard = self.store.failures(n);
            plan::refund(&mut *shard, (n, &admission.tiers), ceiling, marks);
        }
    }

    /// The key was wrong: the reservation stays spent and the networks are marked as having
    /// failed on the number, here and in Redis.
    pub(crate) async fn failed(&self, admission: &Admission) {
        self.confirm_here(admission);
        self.hold(admission, false);
        self.copy_failure(admission).await;
    }

    /// The key was right, or never checked: what the attempt reserved comes back.
    pub(crate) async fn release(&self, admission: &Admission) {
        let Some(n) = admission.number else {
            return;
        };
        self.refund_here(admission);
        self.hold(admission, false);
        if !admission.shared {
            return;
        }
        if let Some(link) = self.link.as_ref() {
            let attempt = Attempt {
                tiers: &admission.tiers,
                number: Some(n),
                ceiling: self.ceiling(),
            };
            let refund = link
                .remote
                .refund(attempt, &admission.reserved, admission.epoch);
            if refund.await.is_none() {
                link.lost("に払い戻しを書けません");
                link.keep(Pending {
                    epoch: admission.epoch,
                    number: n,
                    tiers: admission.tiers.clone(),
                    reserved: admission.reserved.clone(),
                });
            }
        }
    }

    /// Run every second: while Redis is up, looks at its epoch, so that a Redis that lost
    /// its data (or got another replica's tables) is noticed within the settling time even
    /// by a replica that gets no request; while it is not up, looks for it and copies this
    /// replica's tables in (each key keeping the later TAT), then counts there again.
    pub(crate) async fn probe(&self) {
        let Some(link) = self.link.as_ref() else {
            return;
        };
        if link.is_up() {
            match link.remote.epoch().await {
                Some(epoch) if epoch == link.epoch.load(Ordering::Relaxed) => return,
                Some(0) => link.lost("がデータを失いました"),
                Some(_) => link.lost("のデータが入れ替わりました"),
                None => {
                    link.lost("から時間内に答えがありません");
                    return;
                }
            }
        }
        let now = self.now();
        let entries: Vec<(Key, u64)> = {
            let held = self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.store
                .snapshot()
                .into_iter()
                .map(|(key, tat)| {
                    let in_flight = held.get(&key).copied().unwrap_or(0);
                    (key, tat.saturating_sub(now).saturating_sub(in_flight))
                })
                .filter(|(_, left)| *left > 0)
                .collect()
        };
        let proposed = new_epoch();
        match link.remote.copy_in(&entries, Some(proposed)).await {
            Some(epoch) if epoch != 0 => {
                link.epoch.store(epoch, Ordering::Relaxed);
                self.replay_refunds(link, epoch).await;
                if !link.up.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        keys = entries.len(),
                        "Redis の共有の制限を使います（この複製の表を写しました）"
                    );
                }
            }
            _ => {
                link.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Gives Redis the refunds it missed, if it kept its data since.
    async fn replay_refunds(&self, link: &Link, epoch: i64) {
        let pending = std::mem::take(
            &mut *link
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for p in pending.into_iter().filter(|p| p.epoch == epoch) {
            let attempt = Attempt {
                tiers: &p.tiers,
                number: Some(p.number),
                ceiling: self.ceiling(),
            };
            let refund = link.remote.refund(attempt, &p.reserved, p.epoch);
            if refund.await.is_none() {
                link.keep(p);
            }
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            keys: self.store.len(),
            full_refusals: self.store.full_refusals(),
            ceiling_refusals: self.ceiling_refusals.load(Ordering::Relaxed),
            redis_up: self.link.as_ref().map(Link::is_up),
            redis_failures: self
                .link
                .as_ref()
                .map_or(0, |l| l.failures.load(Ordering::Relaxed)),
        }
    }

    /// Periodic clean-up: forgets budgets that are whole again.
    pub(crate) fn sweep(&self) {
        self.store.sweep(self.now());
    }
}

/// The client's widest network: its attempt keys share that network's shard.
fn home(tiers: &[Tier]) -> Net {
    tiers.last().map_or(Net(0, 0), |t| t.net)
}

/// A random epoch for a Redis that has none (never 0).
/// Below 2^53: Redis's Lua reads numbers as doubles, and a larger epoch would come back from
/// a script changed in its last digits, unequal to itself.
fn new_epoch() -> i64 {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    (i64::from_be_bytes(bytes) & EPOCH_MAX).max(1)
}

/// The largest epoch: 2^53 - 1, the largest integer a double holds exactly.
const EPOCH_MAX: i64 = (1 << 53) - 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_survives_a_double() {
        for _ in 0..1_000 {
            let epoch = new_epoch();
            assert!((1..=EPOCH_MAX).contains(&epoch));
            assert_eq!(epoch as f64 as i64, epoch);
        }
    }

    impl Limiter {
        fn new_for_test(limits: AbuseLimits) -> Limiter {
            Limiter::new(limits, None).expect("in memory")
        }

        /// [`Limiter::admit`] in memory, without a runtime.
        fn try_local(&self, client: IpAddr, number: Option<&str>) -> Result<Admission, Limited> {
            let number = number.and_then(|n| n.parse().ok());
            self.admit_local(self.tiers(client), number, false)
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
        let admission = l.try_local(ip(client), Some(number))?;
        l.confirm_here(&admission);
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
        // Right keys cost nothing: what they reserved comes back.
        for _ in 0..10 {
            let a = l
                .try_local(ip("192.0.2.1"), Some("2070004426"))
                .expect("admitted");
            l.refund_here(&a);
        }
        for _ in 0..3 {
            assert_eq!(wrong(&l, "192.0.2.1", "2070004426"), Ok(()));
        }
        let refused = l
            .try_local(ip("192.0.2.1"), Some("2070004426"))
            .expect_err("4th failure");
        assert!(matches!(refused, Limited::Number(_)) && refused.retry_after() > 60);
        // Another number, or another network, has its own budget.
        assert!(l.try_local(ip("192.0.2.1"), Some("2070004427")).is_ok());
        assert!(l.try_local(ip("192.0.2.2"), Some("2070004426")).is_ok());
    }

    #[test]
    fn an_attacked_number_still_opens_for_a_network_that_has_not_failed() {
        let l = Limiter::new_for_test(limits("1000/day+1000", "5/day+5", "10/day+10"));
        // Ten networks spend the number's ceiling with a wrong key each.
        for i in 0..10 {
            assert_eq!(wrong(&l, &format!("198.51.100.{i}"), "2070004426"), Ok(()));
        }
        // A network that has failed waits; one that has not may still try, once a day.
        assert!(l.try_local(ip("198.51.100.0"), Some("2070004426")).is_err());
        assert!(
            l.try_local(ip("203.0.113.5"), Some("2070004426")).is_ok(),
            "the orderer's office"
        );
        assert_eq!(wrong(&l, "203.0.113.6", "2070004426"), Ok(()));
        assert!(
            l.try_local(ip("203.0.113.6"), Some("2070004426")).is_err(),
            "one guess per fresh network"
        );
        assert!(l.stats().ceiling_refusals >= 2);
    }

    #[test]
    fn ipv6_counts_by_64_and_by_48() {
        let l = Limiter::new_for_test(limits("2/day+2", "1000/day+1000", "1000/day+1000"));
        assert!(l.try_local(ip("2001:db8:1:1::1"), None).is_ok());
        assert!(l.try_local(ip("2001:db8:1:1::ffff"), None).is_ok());
        assert!(
            l.try_local(ip("2001:db8:1:1::2"), None).is_err(),
            "the same /64"
        );
        // Other /64s of the /48 get their own budget, up to the /48's (four times as large).
        let others: Vec<bool> = (2..10)
            .map(|i| l.try_local(ip(&format!("2001:db8:1:{i}::1")), None).is_ok())
            .collect();
        assert_eq!(others.iter().filter(|ok| **ok).count(), 6, "{others:?}");
        assert!(
            l.try_local(ip("2001:db8:2::1"), None).is_ok(),
            "another /48"
        );
        assert!(l.try_local(ip("::ffff:192.0.2.1"), None).is_ok());
    }

    #[test]
    fn named_networks_have_their_own_rate() {
        let mut settings = limits("1/day+1", "1000/day+1000", "1000/day+1000");
        settings
            .networks
            .push(NetworkRate::parse("203.0.113.0/24=100/day+50").expect("named"));
        let l = Limiter::new_for_test(settings);
        assert!((0..50).all(|_| l.try_local(ip("203.0.113.9"), None).is_ok()));
        assert!(l.try_local(ip("192.0.2.1"), None).is_ok());
        assert!(l.try_local(ip("192.0.2.1"), None).is_err());
    }

    #[test]
    fn a_strict_guess_holds_its_network_for_thirty_seconds_and_is_checked_only_within_them() {
        let now = std::sync::Arc::new(AtomicU64::new(86_400_000));
        let settings = limits("1000/day+1000", "5/day+5", "1000/day+1000");
        let l = Limiter::with(settings, None, Clock::Manual(now.clone()));
        let strict = |client: &str| l.admit_local(l.tiers(ip(client)), Some(2_070_004_426), true);
        let first = strict("198.51.100.7").expect("the network's one guess");
        assert_eq!(first.reserved.marks.len(), 1, "held as it is let in");
        assert!(
            matches!(strict("198.51.100.7"), Err(Limited::Number(_))),
            "a second guess waits for the first"
        );
        assert!(
            strict("198.51.100.8").is_ok(),
            "another network is not held"
        );
        now.fetch_add(24_900, Ordering::Relaxed);
        assert!(l.in_time(&first), "checked within 25 s");
        now.fetch_add(100, Ordering::Relaxed);
        assert!(!l.in_time(&first), "not checked from 25 s on");
        now.fetch_add(5_000, Ordering::Relaxed);
        // The hold has run out: the network is let in again, which is why the first
        // attempt must not be checked any more.
        let second = strict("198.51.100.7").expect("held no longer");
        // A right key gives the hold back at once; a wrong one marks the network for a day.
        l.refund_here(&second);
        let third = strict("198.51.100.7").expect("the hold was given back");
        l.confirm_here(&third);
        now.fetch_add(60_000, Ordering::Relaxed);
        assert!(
            matches!(strict("198.51.100.7"), Err(Limited::Number(_))),
            "a day after a wrong key"
        );
    }

    #[test]
    fn a_full_table_never_gives_a_spent_budget_back() {
        let now = std::sync::Arc::new(AtomicU64::new(86_400_000));
        let mut settings = limits("3/day+3", "1000/day+1000", "1000/day+1000");
        settings.max_tracked = 2_000;
        let l = Limiter::with(settings, None, Clock::Manual(now.clone()));
        let known = ip("192.0.2.1");
        for _ in 0..3 {
            assert!(l.try_local(known, None).is_ok());
        }
        // 300,000 random numbers from as many addresses, while the table fills up.
        let mut full = 0;
        for i in 0..300_000u32 {
            let client = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let number = format!("{:010}", 3_000_000_000u64 + u64::from(i));
            if matches!(l.try_local(client, Some(&number)), Err(Limited::Full)) {
                full += 1;
            }
        }
        let stats = l.stats();
        assert!(stats.keys <= 4_000 + 16 * 8, "{stats:?}");
        assert!(full > 290_000 && stats.full_refusals == full, "{stats:?}");
        // The known client's budget was kept (still spent), not forgotten.
        assert!(matches!(l.try_local(known, None), Err(Limited::Address(_))));
        // Once budgets are whole again, there is room for new clients, each its own budget.
        now.fetch_add(86_400_000, Ordering::Relaxed);
        for i in 0..100u32 {
            let client = IpAddr::V4(std::net::Ipv4Addr::from(0xc612_0000 + i));
            assert!(l.try_local(client, None).is_ok(), "new client {i}");
        }
    }

    #[test]
    fn concurrent_wrong_keys_cannot_overspend_a_budget() {
        let l = Limiter::new_for_test(limits("1000/day+1000", "5/day+5", "1000/day+1000"));
        // 20 attempts admitted before any KDF answered: only 5 get through.
        let admitted: Vec<Admission> = (0..20)
            .filter_map(|_| l.try_local(ip("192.0.2.1"), Some("2070004426")).ok())
            .collect();
        assert_eq!(admitted.len(), 5);
        for a in &admitted {
            l.confirm_here(a);
        }
        assert!(l.try_local(ip("192.0.2.1"), Some("2070004426")).is_err());
    }

    #[test]
    fn a_refused_48_stores_no_64() {
        let l = Limiter::new_for_test(limits("2/day+2", "1000/day+1000", "1000/day+1000"));
        for i in 0..8 {
            let _ = l.try_local(ip(&format!("2001:db8:1:{i}::1")), None);
        }
        let keys = l.stats().keys;
        for i in 8..3_000 {
            assert!(l
                .try_local(ip(&format!("2001:db8:1:{i}::1")), None)
                .is_err());
        }
        assert_eq!(l.stats().keys, keys, "refused attempts add no keys");
    }
}
