//! A deterministic, seeded simulation of the limiter (docs/http.md, "Invariants"): two or
//! three replicas sharing a model of Redis, many networks and numbers, attempts in flight at
//! once, small tables under pressure, Redis going away and coming back (sometimes empty), on
//! a clock the simulation moves. After every step it asserts:
//!
//! - I1: wrong keys checked per (number, network) ≤ burst + elapsed / interval, plus one per
//!   replica for each time Redis was away or lost its data;
//! - I2: per number, wrong keys checked without a mark ≤ the ceiling's burst + elapsed /
//!   interval, and each network got at most one marked guess per day (and per replica and
//!   outage);
//! - I3: an orderer's network, which never gives a wrong key, is never refused for the number;
//! - I4 follows from I1 and I2 holding under table pressure and Redis outages;
//! - I5: each replica tracks at most its tables' capacity.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::gcra::Cell;
use super::memory::Memory;
use super::plan::{self, Budgets, Reserved};
use super::shared::{admit_keys, Answer, Attempt, Remote, Shared, SETTLING};
use super::{AbuseLimits, Admission, Clock, Key, Limited, Limiter, Rate, HOLD};

/// Redis as the limiter sees it: one store, answering atomically on the shared clock; away,
/// or back with nothing in it.
struct Model {
    store: Mutex<ModelStore>,
    up: AtomicBool,
    clock: Arc<AtomicU64>,
    /// Admissions asked of the store.
    admits: AtomicU64,
}

#[derive(Default)]
struct ModelStore {
    tats: HashMap<Key, u64>,
    epoch: Option<i64>,
    /// The end of the settling time of a new epoch.
    settling_until: u64,
}

impl Budgets for ModelStore {
    fn tat(&mut self, key: &Key) -> u64 {
        self.tats.get(key).copied().unwrap_or(0)
    }
    fn set(&mut self, key: Key, tat: u64) {
        self.tats.insert(key, tat);
    }
    fn has_room(&mut self, _: &[Key], _: u64) -> bool {
        true
    }
}

struct Handle(Arc<Model>);

impl Handle {
    fn with<T>(&self, f: impl FnOnce(&mut ModelStore, u64) -> T) -> Option<T> {
        if !self.0.up.load(Ordering::Relaxed) {
            return None;
        }
        let now = self.0.clock.load(Ordering::Relaxed);
        let mut store = self.0.store.lock().expect("model");
        Some(f(&mut store, now))
    }
}

fn ready<'a, T: Send + 'a>(value: Option<T>) -> Answer<'a, T> {
    Box::pin(async move { value })
}

impl Remote for Handle {
    fn admit<'a>(&'a self, attempt: Attempt<'a>, ours: i64) -> Answer<'a, Shared> {
        self.0.admits.fetch_add(1, Ordering::Relaxed);
        let Attempt {
            tiers,
            number,
            ceiling,
        } = attempt;
        ready(self.with(|s, now| {
            let Some(epoch) = s.epoch.filter(|e| *e == ours) else {
                return Shared::OtherEpoch;
            };
            let strict = now < s.settling_until;
            let verdict = plan::take_attempts(s, tiers, now).and_then(|()| match number {
                Some(n) => plan::reserve(s, (n, tiers), ceiling, strict, now),
                None => Ok(Reserved::default()),
            });
            let left = admit_keys(tiers, number)
                .into_iter()
                .map(|k| (k, s.tat(&k).saturating_sub(now)))
                .collect();
            Shared::Answered {
                epoch,
                verdict,
                left,
            }
        }))
    }
    fn refund<'a>(
        &'a self,
        attempt: Attempt<'a>,
        marks: &'a Reserved,
        epoch: i64,
    ) -> Answer<'a, ()> {
        let Attempt {
            tiers,
            number,
            ceiling,
        } = attempt;
        ready(self.with(|s, _| {
            if let (Some(n), true) = (number, s.epoch == Some(epoch)) {
                plan::refund(s, (n, tiers), ceiling, marks);
            }
        }))
    }
    fn copy_in<'a>(&'a self, entries: &'a [(Key, u64)], epoch: Option<i64>) -> Answer<'a, i64> {
        ready(self.with(|s, now| {
            for (key, left) in entries {
                let tat = s.tat(key).max(now + left);
                s.set(*key, tat);
            }
            if s.epoch.is_none() && epoch.is_some() {
                s.epoch = epoch;
                s.settling_until = now + SETTLING.as_millis() as u64;
            }
            s.epoch.unwrap_or(0)
        }))
    }
    fn epoch(&self) -> Answer<'_, i64> {
        ready(self.with(|s, _| s.epoch.unwrap_or(0)))
    }
}

/// xorshift64*: the simulation's only source of chance.
struct Chance(u64);

impl Chance {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const NUMBERS: u64 = 6;
const HOT_NUMBERS: u64 = 2;
const ATTACKERS: u32 = 120;
const HOT_ATTACKERS: u32 = 8;

fn limits(max_tracked: usize) -> AbuseLimits {
    AbuseLimits {
        per_address: Rate {
            burst: 30,
            every: Duration::from_millis(500),
        },
        failures_per_network: Rate {
            burst: 5,
            every: Duration::from_secs(600),
        },
        failures_per_number: Rate {
            burst: 40,
            every: Duration::from_secs(60),
        },
        networks: Vec::new(),
        max_tracked,
    }
}

/// A client: attackers are IPv4 addresses and /64s in a few /48s; orderers (one per
/// number, always the right key) have addresses of their own.
fn attacker(i: u32) -> IpAddr {
    if i.is_multiple_of(2) {
        IpAddr::V4(Ipv4Addr::from(0xc633_6400 + i))
    } else {
        let bits = (0x2001_0db8_u128 << 96) | (u128::from(i % 3) << 80) | (u128::from(i) << 64) | 1;
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

fn orderer(number: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xcb00_7100 + number as u32))
}

fn number_text(n: u64) -> String {
    format!("{:010}", 2_070_000_000 + n)
}

/// What happened so far, to check the invariants against.
#[derive(Default)]
struct Ledger {
    /// Wrong keys checked per (number, narrowest network of the client).
    wrong: HashMap<(u64, IpAddr), u64>,
    /// Wrong keys checked per number without a mark (within the ceiling).
    unmarked: HashMap<u64, u64>,
    /// Marked guesses per (number, client).
    marked: HashMap<(u64, IpAddr), u64>,
    /// Times Redis went away or came back empty.
    outages: u64,
    /// Times Redis lost its data.
    emptied: u64,
}

struct InFlight {
    replica: usize,
    client: IpAddr,
    number: u64,
    admission: Admission,
    wrong: bool,
}

struct Simulation {
    clock: Arc<AtomicU64>,
    model: Arc<Model>,
    replicas: Vec<Limiter>,
    chance: Chance,
    ledger: Ledger,
    flying: Vec<InFlight>,
    started: u64,
    runtime: tokio::runtime::Runtime,
    capacity: usize,
    /// When each replica's timer is next due.
    due: Vec<u64>,
    /// When each number's orderer was last let in.
    orderer_admitted: HashMap<u64, u64>,
    /// Redis loses its data at one in this many of the steps given to restarts.
    empty_odds: u64,
}

/// What a run simulates.
#[derive(Debug, Clone, Copy)]
struct Run {
    seed: u64,
    replicas: usize,
    /// Keys each table of each replica tracks.
    capacity: usize,
    steps: usize,
    /// Redis loses its data at one in this many of the steps given to restarts (16: about
    /// 15 times in a run of 12,000 steps).
    empty_odds: u64,
}

impl Run {
    fn new(seed: u64, replicas: usize) -> Run {
        Run {
            seed,
            replicas,
            capacity: 400,
            steps: 12_000,
            empty_odds: 16,
        }
    }

    /// Runs every step, checking the invariants after each; a failing run names itself.
    fn ledger(self) -> Ledger {
        let result = std::panic::catch_unwind(|| {
            let mut sim = Simulation::new(self);
            for _ in 0..self.steps {
                sim.step();
            }
            sim.ledger
        });
        result.unwrap_or_else(|e| {
            eprintln!("{self:?}:");
            std::panic::resume_unwind(e)
        })
    }
}

impl Simulation {
    fn new(run: Run) -> Simulation {
        let Run {
            seed,
            replicas,
            capacity,
            empty_odds,
            ..
        } = run;
        let clock = Arc::new(AtomicU64::new(86_400_000));
        let model = Arc::new(Model {
            store: Mutex::new(ModelStore::default()),
            up: AtomicBool::new(true),
            clock: clock.clone(),
            admits: AtomicU64::new(0),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let replicas: Vec<Limiter> = (0..replicas)
            .map(|r| {
                let remote = Box::new(Handle(model.clone())) as Box<dyn Remote>;
                let store = Memory::seeded(capacity, seed ^ r as u64);
                let clock = Clock::Manual(clock.clone());
                Limiter::on(store, limits(capacity), Some(remote), clock)
            })
            .collect();
        for r in &replicas {
            runtime.block_on(r.probe());
        }
        let start = clock.load(Ordering::Relaxed);
        let due = (0..replicas.len() as u64)
            .map(|r| start + r * 333)
            .collect();
        Simulation {
            started: start,
            clock,
            model,
            replicas,
            chance: Chance(seed | 1),
            ledger: Ledger::default(),
            flying: Vec::new(),
            runtime,
            due,
            capacity,
            orderer_admitted: HashMap::new(),
            empty_odds,
        }
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }

    fn step(&mut self) {
        match self.chance.below(100) {
            0..=49 => self.attempt(),
            50..=79 => self.settle(),
            80..=91 => {
                let ms = 1 + self.chance.below(2_000);
                self.clock.fetch_add(ms, Ordering::Relaxed);
                self.timers(false);
            }
            92..=94 => self.timers(true),
            95..=97 => self.redis_away_or_back(),
            _ => self.redis_restarts_empty(),
        }
        self.check();
    }

    fn attempt(&mut self) {
        let replica = self.chance.below(self.replicas.len() as u64) as usize;
        // Most attacks are concentrated (a few networks on two numbers, to spend their
        // budgets and have many attempts in flight at once); the rest spread over all.
        let hot = self.chance.below(10) < 6;
        let number = self.chance.below(if hot { HOT_NUMBERS } else { NUMBERS });
        let is_orderer = self.chance.below(10) == 0;
        if is_orderer && self.flying.iter().any(|f| !f.wrong && f.number == number) {
            return; // an orderer's office checks one number at a time
        }
        let client = if is_orderer {
            orderer(number)
        } else {
            let among = if hot { HOT_ATTACKERS } else { ATTACKERS };
            attacker(self.chance.below(u64::from(among)) as u32)
        };
        // A concentrated attacker sends a few at once, so that they are in flight together.
        let at_once = if hot && !is_orderer {
            1 + self.chance.below(4)
        } else {
            1
        };
        for _ in 0..at_once {
            self.admit(replica, client, number, is_orderer);
        }
    }

    fn admit(&mut self, replica: usize, client: IpAddr, number: u64, is_orderer: bool) {
        let text = number_text(number);
        let admitted = self
            .runtime
            .block_on(self.replicas[replica].admit(client, Some(&text)));
        match admitted {
            Ok(admission) => {
                if is_orderer {
                    self.orderer_admitted.insert(number, self.now());
                }
                self.flying.push(InFlight {
                    replica,
                    client,
                    number,
                    admission,
                    wrong: !is_orderer,
                });
            }
            Err(Limited::Number(_)) if is_orderer => {
                // It may wait for its own last attempt: held until settled, and at most
                // HOLD when Redis did not get the settlement.
                let last = self.orderer_admitted.get(&number).copied().unwrap_or(0);
                assert!(
                    self.now() < last + HOLD.as_millis() as u64,
                    "I3: the orderer of {number} was refused ({client})"
                );
            }
            Err(_) => {}
        }
    }

    fn settle(&mut self) {
        if self.flying.is_empty() {
            return;
        }
        let i = self.chance.below(self.flying.len() as u64) as usize;
        let f = self.flying.swap_remove(i);
        let limiter = &self.replicas[f.replica];
        // As the daemon does: a key is checked only in time; one that is not is given back.
        if f.wrong && limiter.in_time(&f.admission) {
            self.runtime.block_on(limiter.failed(&f.admission));
            self.checked(&f);
        } else {
            self.runtime.block_on(limiter.release(&f.admission));
        }
    }

    fn checked(&mut self, f: &InFlight) {
        let (number, client) = (f.number, f.client);
        *self.ledger.wrong.entry((number, client)).or_default() += 1;
        if f.admission.reserved.marks.is_empty() && f.admission.marked_here.marks.is_empty() {
            *self.ledger.unmarked.entry(number).or_default() += 1;
        } else {
            *self.ledger.marked.entry((number, client)).or_default() += 1;
        }
    }

    /// Each replica's one-second timer (probe Redis, sometimes sweep), each on its own
    /// phase: a due timer fires now or a few steps later, between other replicas' attempts
    /// (`one`: a single replica's), but never more than a second late.
    fn timers(&mut self, one: bool) {
        let now = self.now();
        let picked = self.chance.below(self.replicas.len() as u64) as usize;
        for (i, r) in self.replicas.iter().enumerate() {
            let due = self.due[i];
            let fires = due <= now
                && if one {
                    i == picked
                } else {
                    now - due > 1_000 || self.chance.below(2) == 0
                };
            if fires {
                self.runtime.block_on(r.probe());
                if self.chance.below(4) == 0 {
                    r.sweep();
                }
                self.due[i] = now + 1_000;
            }
        }
    }

    /// Redis goes away now and then, and mostly comes back soon.
    fn redis_away_or_back(&mut self) {
        let up = self.model.up.load(Ordering::Relaxed);
        let change = if up {
            self.chance.below(4) == 0
        } else {
            self.chance.below(4) != 0
        };
        if change {
            self.model.up.store(!up, Ordering::Relaxed);
            self.ledger.outages += u64::from(up);
        }
    }

    fn redis_restarts_empty(&mut self) {
        if self.chance.below(self.empty_odds) == 0 {
            self.ledger.emptied += 1;
            *self.model.store.lock().expect("model") = ModelStore::default();
            self.ledger.outages += 1;
        }
    }

    fn check(&self) {
        let elapsed = self.now() - self.started;
        let l = limits(self.capacity);
        let replicas = self.replicas.len() as u64;
        // While Redis is away or empty, each replica lets a network that it holds no failure
        // of guess once, and marks it for a day.
        let days = 1 + elapsed / 86_400_000;
        let extra = replicas * days;
        let failures = Cell::from(l.failures_per_network);
        let per_network =
            u64::from(l.failures_per_network.burst) + elapsed / failures.interval() + extra;
        for ((number, client), n) in &self.ledger.wrong {
            assert!(
                *n <= per_network,
                "I1: {n} wrong keys for {number} from {client} (bound {per_network})"
            );
        }
        let ceiling = Cell::from(l.failures_per_number);
        let per_number = u64::from(l.failures_per_number.burst) + elapsed / ceiling.interval();
        for (number, n) in &self.ledger.unmarked {
            assert!(
                *n <= per_number,
                "I2: {n} unmarked wrong keys for {number} (bound {per_number})"
            );
        }
        for ((number, client), n) in &self.ledger.marked {
            assert!(
                *n <= days + extra,
                "I2: {n} marked guesses for {number} from {client}"
            );
        }
        for r in &self.replicas {
            let keys = r.stats().keys;
            assert!(
                keys <= 2 * (self.capacity.max(16 * 8)) + 64,
                "I5: {keys} keys"
            );
        }
    }
}

#[test]
fn the_invariants_hold_over_seeded_runs() {
    let mut fullest_ceiling = 0;
    for seed in SEEDS {
        for replicas in [2, 3] {
            let ledger = Run::new(seed, replicas).ledger();
            // The budgets were pressed: a network's spent and refilled, a number's ceiling
            // (burst 40) mostly spent in every run and reached in some.
            let pressed = ledger.wrong.values().max().copied().unwrap_or(0);
            assert!(pressed >= 7, "no network spent its budget: {pressed}");
            let ceiling = ledger.unmarked.values().max().copied().unwrap_or(0);
            assert!(ceiling >= 30, "no number's ceiling was pressed: {ceiling}");
            fullest_ceiling = fullest_ceiling.max(ceiling);
            let wrong: u64 = ledger.wrong.values().sum();
            assert!(
                wrong > 150,
                "the attackers got somewhere to be stopped: {wrong}"
            );
            assert!(
                ledger.outages > 40 && ledger.emptied > 5,
                "Redis was disturbed"
            );
        }
    }
    assert!(
        fullest_ceiling >= 40,
        "no ceiling reached: {fullest_ceiling}"
    );
}

/// The seeds of [`the_invariants_hold_over_seeded_runs`]. With 135, two replicas, the run
/// breaks I1 when the settling time is 5 s instead of 60 (docs/security.md).
const SEEDS: [u64; 5] = [1, 2, 135, 0x5eed, 0xdead_beef];

/// Every seed from 1 to 299, with Redis losing its data as often as in the test and four
/// times as often: `cargo test --lib many_more_seeds -- --ignored` (about 4 minutes).
#[test]
#[ignore]
fn many_more_seeds() {
    let mut failed = Vec::new();
    for empty_odds in [16, 4] {
        for seed in 1..300 {
            for replicas in [2, 3] {
                let run = Run {
                    empty_odds,
                    ..Run::new(seed, replicas)
                };
                if std::panic::catch_unwind(|| run.ledger()).is_err() {
                    failed.push(run);
                }
            }
        }
    }
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn a_single_replica_with_large_tables_holds_them_too() {
    let ledger = Run {
        capacity: 100_000,
        ..Run::new(7, 1)
    }
    .ledger();
    assert!(ledger.wrong.values().sum::<u64>() > 150);
}

#[test]
fn a_network_whose_attempts_are_spent_is_refused_without_asking_redis() {
    let sim = Simulation::new(Run {
        capacity: 1_000,
        ..Run::new(1, 1)
    });
    let limiter = &sim.replicas[0];
    let client = attacker(0);
    let mut admitted = 0;
    for _ in 0..100 {
        if sim.runtime.block_on(limiter.admit(client, None)).is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 30, "the burst of the attempts budget");
    let asked = sim.model.admits.load(Ordering::Relaxed);
    assert_eq!(asked, 30, "refusals were answered from the mirror");
}

/// What the model of Redis holds for `client` on `number`: the TATs of its failure budget
/// and its "failed" mark, and of the number's ceiling, in milliseconds from now.
fn in_redis(sim: &Simulation, number: u64, client: IpAddr) -> (u64, u64, u64) {
    let net = sim.replicas[0].tiers(client)[0].net;
    let store = sim.model.store.lock().expect("model");
    let left = |key: Key| {
        let tat = store.tats.get(&key).copied().unwrap_or(0);
        tat.saturating_sub(sim.now())
    };
    (
        left(Key::Failures(number, net)),
        left(Key::Failed(number, net)),
        left(Key::Number(number)),
    )
}

/// Redis loses its data, and the first replica's timer copies its tables in.
fn redis_loses_its_data(sim: &Simulation) {
    *sim.model.store.lock().expect("model") = ModelStore::default();
    sim.runtime.block_on(sim.replicas[0].probe());
}

#[test]
fn a_right_key_in_flight_when_redis_loses_its_data_leaves_nothing_spent_there() {
    let sim = Simulation::new(Run::new(1, 1));
    let (r, n) = (&sim.replicas[0], 2_070_000_000);
    let text = number_text(0);
    for i in [0, 2] {
        let a = sim.runtime.block_on(r.admit(attacker(i), Some(&text)));
        sim.runtime.block_on(r.failed(&a.expect("admitted")));
    }
    let ceiling = Cell::from(limits(400).failures_per_number).interval();
    let in_flight = sim.runtime.block_on(r.admit(orderer(0), Some(&text)));
    let in_flight = in_flight.expect("the orderer");
    redis_loses_its_data(&sim);
    // The tables were copied in without what the right key in flight holds reserved.
    assert_eq!(in_redis(&sim, n, orderer(0)), (0, 0, 2 * ceiling));
    // Its refund was for the Redis that lost its data: nothing in the new one is given
    // back (the attackers' two units stay spent).
    sim.runtime.block_on(r.release(&in_flight));
    assert_eq!(in_redis(&sim, n, orderer(0)), (0, 0, 2 * ceiling));
}

#[test]
fn a_wrong_key_in_flight_when_redis_loses_its_data_is_in_redis_before_it_is_answered() {
    let sim = Simulation::new(Run::new(1, 1));
    let (r, n) = (&sim.replicas[0], 2_070_000_000);
    let in_flight = sim
        .runtime
        .block_on(r.admit(attacker(0), Some(&number_text(0))));
    let in_flight = in_flight.expect("admitted");
    redis_loses_its_data(&sim);
    assert_eq!(in_redis(&sim, n, attacker(0)).0, 0, "held while in flight");
    sim.runtime.block_on(r.failed(&in_flight));
    let l = limits(400);
    let failure = Cell::from(l.failures_per_network).interval();
    let day = 86_400_000;
    let ceiling = Cell::from(l.failures_per_number).interval();
    assert_eq!(in_redis(&sim, n, attacker(0)), (failure, day, ceiling));
}

#[test]
fn a_replica_counts_nothing_in_an_epoch_it_has_not_copied_its_tables_into() {
    let sim = Simulation::new(Run::new(1, 2));
    let text = number_text(0);
    // Redis loses its data; the first replica copies its tables in, the second has not
    // looked yet.
    redis_loses_its_data(&sim);
    let late = &sim.replicas[1];
    let admitted = sim.runtime.block_on(late.admit(attacker(0), Some(&text)));
    let admitted = admitted.expect("let in strictly, on its own tables");
    assert!(!admitted.shared, "counted on its own tables");
    assert!(!admitted.reserved.marks.is_empty(), "strictly: held");
    assert_eq!(in_redis(&sim, 2_070_000_000, attacker(0)), (0, 0, 0));
    // Its next probe copies its tables in; from then on it counts in Redis.
    sim.runtime.block_on(late.probe());
    let next = sim.runtime.block_on(late.admit(attacker(2), Some(&text)));
    assert!(next.expect("admitted").shared);
}
