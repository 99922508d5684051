//! Budgets shared by replicas in Redis (`--limits redis://HOST:PORT/DB`, or the primary of a
//! Sentinel service, `redis+sentinel://…`, [`super::primary`]): the rules of
//! [`super::plan`], written again as Lua scripts so that each step is atomic in Redis and
//! computed on Redis's own clock, every key with an expiry (it disappears once its budget is
//! whole again). One round trip per step. The async client (redis-rs, its
//! `ConnectionManager` reconnecting by itself) never makes a request wait more than
//! [`TIMEOUT`].
//!
//! Every answer carries the time left on each key it touched, so the replica mirrors the
//! shared budgets in its own tables (see `Limiter`), and an epoch: a number written by the
//! first replica that copies its tables into an empty Redis. A replica counts and gives
//! back only in the epoch it copied its own tables into: a Redis that lost its data
//! (restarted empty) has no epoch, and one that got a new epoch has not yet got this
//! replica's tables, so the scripts count nothing for it there and it counts on its own,
//! strictly, until it has copied them in (within a second). Writing the epoch also starts a
//! settling time ([`SETTLING`]): until every other replica has noticed the new epoch and
//! copied its own tables in, Redis holds only part of the budgets, so it counts strictly, as
//! a replica does while Redis is away: one guess per network per number, marked for a day.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use redis::aio::ConnectionManager;
use tokio::sync::Mutex;

use super::budgets::{Key, Tier, HOLD};
use super::gcra::Cell;
use super::plan::{Reserved, Verdict};
use super::primary::{shown, LimitsRedis, Primary};
use crate::common::private_files::read_owner_only;

/// The start of every script: `now`, in milliseconds on Redis's own clock.
macro_rules! script {
    ($body:literal) => {
        concat!(
            "local t = redis.call('TIME')\n",
            "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n",
            $body
        )
    };
}

/// The longest a request waits for Redis.
pub(crate) const TIMEOUT: Duration = Duration::from_millis(100);
/// How long a Redis that got a new epoch counts strictly: time for every replica to look at
/// the epoch (each second) and copy its tables in, even when Redis was away for a while
/// right after it lost its data.
pub(crate) const SETTLING: Duration = Duration::from_secs(60);
/// After a connection to Redis failed, the time before the next is tried.
const RETRY: Duration = Duration::from_millis(500);
/// How many keys one copy step sends.
const COPY_BATCH: usize = 500;

/// A future answered by the shared store: `None` when it could not answer in time.
pub(crate) type Answer<'a, T> = Pin<Box<dyn Future<Output = Option<T>> + Send + 'a>>;

/// What the shared store said of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shared {
    /// The store has no epoch (it lost its data), or another one than the replica's (it
    /// lost its data and another replica copied its tables in): nothing was counted.
    OtherEpoch,
    Answered {
        epoch: i64,
        verdict: Result<Reserved, Verdict>,
        /// Milliseconds left on each key the step touched, for the mirror.
        left: Vec<(Key, u64)>,
    },
}

/// Where replicas share their budgets: Redis, or a model of it in the simulation.
pub(crate) trait Remote: Send + Sync {
    /// [`super::plan::take_attempts`] then, with a number, [`super::plan::reserve`], if the
    /// store's epoch is `epoch`.
    fn admit<'a>(&'a self, attempt: Attempt<'a>, epoch: i64) -> Answer<'a, Shared>;
    /// [`super::plan::refund`] if the store's epoch is `epoch` (in another epoch the
    /// reservation is not there to give back); `marks` are the marks' TATs as the store gave
    /// them.
    fn refund<'a>(
        &'a self,
        attempt: Attempt<'a>,
        marks: &'a Reserved,
        epoch: i64,
    ) -> Answer<'a, ()>;
    /// Copies `entries` (key, milliseconds left) in, each key keeping the later of its two
    /// TATs; when `epoch` is given, writes it if there is none and starts the settling time.
    /// The store's epoch.
    fn copy_in<'a>(&'a self, entries: &'a [(Key, u64)], epoch: Option<i64>) -> Answer<'a, i64>;
    /// The store's epoch (0: none).
    fn epoch(&self) -> Answer<'_, i64>;
}

/// What an attempt asks of the store: the client's networks, the number (if any) and the
/// number's ceiling.
#[derive(Clone, Copy)]
pub(crate) struct Attempt<'a> {
    pub(crate) tiers: &'a [Tier],
    pub(crate) number: Option<u64>,
    pub(crate) ceiling: Cell,
}

/// Takes every attempt key and, with a number, reserves its failure keys: `{code, a, b,
/// left…}`. Codes: 9 no epoch or another than the replica's (the last ARGV); 1 attempts
/// spent (a: wait); 2 a failure budget spent; 3 the ceiling spent (or Redis settling) and
/// the network marked as failed or held; 4 admitted (a: 1 when held, b: the hold's TAT).
/// Every reply but 9 ends with the epoch before the times left. KEYS[2] is the settling
/// key, taken out of KEYS before the rest is read; then come the na attempt keys, and with a
/// number the nf failure keys, the nf failed marks, the nf holds and the number's key.
const ADMIT: &str = script!(
    r#"
local epoch = redis.call('GET', KEYS[1])
if not epoch or epoch ~= ARGV[#ARGV] then return {9} end
epoch = tonumber(epoch)
local settling = redis.call('EXISTS', KEYS[2]) == 1
table.remove(KEYS, 2)
local na, nf = tonumber(ARGV[1]), tonumber(ARGV[2])
local function tat(key) return tonumber(redis.call('GET', key) or '0') end
local function put(key, v)
  if v > now then redis.call('SET', key, v, 'PX', v - now) else redis.call('DEL', key) end
end
local new = {}
for i = 1, na do
  local interval, tolerance = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local at = math.max(tat(KEYS[1 + i]), now)
  if at - now > tolerance then return {1, at - now - tolerance, 0, epoch} end
  new[i] = at + interval
end
-- Every tier allowed: the attempt is spent, whatever the failure budgets say.
for i = 1, na do put(KEYS[1 + i], new[i]) end
local arg = 3 + 2 * na
local marked, mark = 0, 0
if nf > 0 then
  for j = 1, nf do
    local ahead = tat(KEYS[1 + na + j]) - now
    local tolerance = tonumber(ARGV[arg + 2 * j - 1])
    if ahead > tolerance then return {2, ahead - tolerance, 0, epoch} end
  end
  local ci, ct = tonumber(ARGV[arg + 2 * nf]), tonumber(ARGV[arg + 2 * nf + 1])
  local hold = tonumber(ARGV[arg + 2 * nf + 2])
  local nkey = KEYS[2 + na + 3 * nf]
  local ahead = tat(nkey) - now
  if ahead > ct or settling then
    local wait = ahead - ct
    if wait <= 0 then wait = 1000 end
    for j = 1, 2 * nf do
      local m = tat(KEYS[1 + na + nf + j])
      if m > now then return {3, math.min(wait, m - now), 0, epoch} end
    end
    marked, mark = 1, now + hold
  end
  for j = 1, nf do
    if marked == 1 then put(KEYS[1 + na + 2 * nf + j], mark) end
    local k = KEYS[1 + na + j]
    put(k, math.max(tat(k), now) + tonumber(ARGV[arg + 2 * j - 2]))
  end
  put(nkey, math.max(tat(nkey), now) + ci)
end
local reply = {4, marked, mark, epoch}
for i = 2, #KEYS do reply[#reply + 1] = math.max(tat(KEYS[i]) - now, 0) end
return reply
"#
);

/// Gives reserved units back: KEYS are the epoch, nf failure keys, the number, then nf
/// holds; ARGV the failure intervals, the ceiling's, the holds' TAT (0: none set at
/// admission), then the epoch the units were reserved in (in another, nothing is done).
const REFUND: &str = script!(
    r#"
if redis.call('GET', KEYS[1]) ~= ARGV[#ARGV] then return {9} end
table.remove(KEYS, 1)
local nf = (#KEYS - 1) / 2
local function give_back(key, interval)
  local at = tonumber(redis.call('GET', key) or '0') - interval
  if at > now then redis.call('SET', key, at, 'PX', at - now) else redis.call('DEL', key) end
end
for j = 1, nf + 1 do give_back(KEYS[j], tonumber(ARGV[j])) end
local mark = tonumber(ARGV[nf + 2])
if mark > 0 then
  for j = 1, nf do
    local k = KEYS[nf + 1 + j]
    if tonumber(redis.call('GET', k) or '0') == mark then redis.call('DEL', k) end
  end
end
return {0}
"#
);

/// Copies keys in (KEYS[1] the epoch, KEYS[2] the settling key; ARGV[1] the epoch to write
/// if none, ARGV[2] the settling time, ARGV[3] 1 to write the epoch even over another (after
/// a failover), then the milliseconds left of each further key), keeping the later TAT;
/// returns the epoch. Writing the epoch starts the settling time.
const COPY_IN: &str = script!(
    r#"
for i = 3, #KEYS do
  local at = now + tonumber(ARGV[i + 1])
  if at > tonumber(redis.call('GET', KEYS[i]) or '0') then
    redis.call('SET', KEYS[i], at, 'PX', at - now)
  end
end
if tonumber(ARGV[1]) ~= 0 and (ARGV[3] == '1' or redis.call('EXISTS', KEYS[1]) == 0) then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], 1, 'PX', tonumber(ARGV[2]))
end
return {tonumber(redis.call('GET', KEYS[1]) or '0')}
"#
);

const EPOCH_KEY: &str = "hosho:epoch";
const SETTLING_KEY: &str = "hosho:settling";

/// A Redis key: `hosho:` and what it counts.
fn redis_key(key: &Key) -> String {
    match key {
        Key::Attempts(net) => format!("hosho:a:{:x}/{}", net.0, net.1),
        Key::Failures(number, net) => format!("hosho:f:{number}:{:x}/{}", net.0, net.1),
        Key::Failed(number, net) => format!("hosho:x:{number}:{:x}/{}", net.0, net.1),
        Key::Held(number, net) => format!("hosho:h:{number}:{:x}/{}", net.0, net.1),
        Key::Number(number) => format!("hosho:n:{number}"),
    }
}

/// The keys an ADMIT touches after the epoch, in its KEYS order.
pub(crate) fn admit_keys(tiers: &[Tier], number: Option<u64>) -> Vec<Key> {
    let mut keys: Vec<Key> = tiers.iter().map(|t| Key::Attempts(t.net)).collect();
    if let Some(n) = number {
        keys.extend(tiers.iter().map(|t| Key::Failures(n, t.net)));
        keys.extend(tiers.iter().map(|t| Key::Failed(n, t.net)));
        keys.extend(tiers.iter().map(|t| Key::Held(n, t.net)));
        keys.push(Key::Number(n));
    }
    keys
}

/// Redis, through one reconnecting connection.
pub(crate) struct Redis {
    primary: Primary,
    connection: Mutex<Option<ConnectionManager>>,
    /// No new connection is tried before this, after one failed.
    retry_at: Mutex<Option<Instant>>,
    /// The Sentinel service failed over to another primary, which may lack the last writes
    /// of the old one (replication is asynchronous): nothing is counted there until this
    /// replica has started a new epoch on it (the next copy), so that every replica copies
    /// its tables in and counts strictly meanwhile, as after a Redis that lost its data.
    failed_over: AtomicBool,
    admit: redis::Script,
    refund: redis::Script,
    copy_in: redis::Script,
}

/// The password in `path` (its first line), from a file only its owner may read.
fn read_password(path: &Path) -> anyhow::Result<String> {
    let what = || format!("{}: Redis のパスワードを読めません", path.display());
    let text = read_owner_only(path).with_context(what)?;
    match text.lines().next().filter(|line| !line.is_empty()) {
        Some(line) => Ok(line.to_owned()),
        None => Err(anyhow::anyhow!(
            "{}:1: パスワードが書かれていません",
            path.display()
        )),
    }
}

impl Redis {
    /// A client for `target` (`redis://…` or `redis+sentinel://…`, and the file of its
    /// password); nothing is connected yet.
    pub(crate) fn new(target: &LimitsRedis) -> anyhow::Result<Redis> {
        let password = match &target.password_file {
            Some(path) => Some(read_password(path)?),
            None => None,
        };
        let primary = Primary::parse(&target.url, password.as_deref())
            .map_err(|e| anyhow::anyhow!("--limits {} を使えません: {e}", shown(&target.url)))?;
        Ok(Redis {
            primary,
            connection: Mutex::new(None),
            retry_at: Mutex::new(None),
            failed_over: AtomicBool::new(false),
            admit: redis::Script::new(ADMIT),
            refund: redis::Script::new(REFUND),
            copy_in: redis::Script::new(COPY_IN),
        })
    }

    /// Whether Redis (through Sentinel, its primary) answers `PING` within the exchange
    /// timeout: what `hosho serve --check` asks; the error when it does not.
    pub(crate) async fn ping(&self) -> Result<(), String> {
        let within = TIMEOUT * 20;
        let exchange = async {
            let (client, _) = self.primary.current(within).await?;
            let mut connection = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(within, exchange).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "{} ms のうちに応答がありません",
                within.as_millis()
            )),
        }
    }

    /// The connection, made (to the primary Sentinel names now) if there is none and the last
    /// attempt was not within [`RETRY`]: while Redis is away, a request waits for one attempt
    /// at most, and most wait for none.
    async fn connection(&self) -> Option<ConnectionManager> {
        let mut slot = self.connection.lock().await;
        if slot.is_none() {
            let mut retry_at = self.retry_at.lock().await;
            if retry_at.is_some_and(|at| Instant::now() < at) {
                return None;
            }
            *retry_at = Some(Instant::now() + RETRY);
            let (client, moved) = self.primary.current(TIMEOUT).await.ok()?;
            if moved {
                self.failed_over.store(true, Ordering::Relaxed);
                tracing::warn!("Redis Sentinel が主サーバーを切り替えました。新しいエポックを始めるまで、この複製は自分の表で厳しく数えます");
            }
            let manager = tokio::time::timeout(TIMEOUT, ConnectionManager::new(client));
            *slot = Some(manager.await.ok()?.ok()?);
            *retry_at = None;
        }
        slot.clone()
    }

    /// After a failed exchange through Sentinel, the connection is dropped, so that the
    /// next one asks the sentinels where the primary is (a primary that failed, or came
    /// back as a replica, refuses or fails every step).
    async fn forget_on_failure<T>(&self, answer: Option<T>) -> Option<T> {
        if answer.is_none() && self.primary.follows_sentinel() {
            *self.connection.lock().await = None;
        }
        answer
    }

    /// Runs a script; after a failover only the copy that starts the new epoch (`renewing`).
    async fn run(
        &self,
        invocation: redis::ScriptInvocation<'_>,
        renewing: bool,
    ) -> Option<Vec<i64>> {
        let answer = async {
            let mut connection = self.connection().await?;
            if !renewing && self.failed_over.load(Ordering::Relaxed) {
                return None;
            }
            let answer = tokio::time::timeout(TIMEOUT, invocation.invoke_async(&mut connection));
            answer.await.ok()?.ok()
        };
        let answer = answer.await;
        self.forget_on_failure(answer).await
    }

    async fn admit_now(&self, attempt: Attempt<'_>, epoch: i64) -> Option<Shared> {
        let Attempt {
            tiers,
            number,
            ceiling,
        } = attempt;
        let keys = admit_keys(tiers, number);
        let mut inv = self.admit.prepare_invoke();
        inv.key(EPOCH_KEY)
            .key(SETTLING_KEY)
            .arg(tiers.len())
            .arg(if number.is_some() { tiers.len() } else { 0 });
        for tier in tiers {
            inv.arg(tier.attempts.interval())
                .arg(tier.attempts.tolerance());
        }
        for tier in tiers.iter().filter(|_| number.is_some()) {
            inv.arg(tier.failures.interval())
                .arg(tier.failures.tolerance());
        }
        inv.arg(ceiling.interval()).arg(ceiling.tolerance());
        inv.arg(u64::try_from(HOLD.as_millis()).unwrap_or(u64::MAX))
            .arg(epoch);
        for key in &keys {
            inv.key(redis_key(key));
        }
        let reply = self.run(inv, false).await?;
        Some(read_admit(&reply, &keys, number))
    }
}

/// An ADMIT reply as a [`Shared`].
fn read_admit(reply: &[i64], keys: &[Key], number: Option<u64>) -> Shared {
    let at = |i: usize| reply.get(i).copied().unwrap_or(0).max(0) as u64;
    let epoch = reply.get(3).copied().unwrap_or(0);
    let verdict = match reply.first() {
        Some(9) | None => return Shared::OtherEpoch,
        Some(1) => Err(Verdict::Address(at(1))),
        Some(2) => Err(Verdict::Number(at(1))),
        Some(3) => Err(Verdict::Ceiling(at(1))),
        _ => {
            let marks = match number {
                Some(n) if at(1) == 1 => keys
                    .iter()
                    .filter(|k| matches!(k, Key::Held(m, _) if *m == n))
                    .map(|k| (*k, at(2)))
                    .collect(),
                _ => Vec::new(),
            };
            Ok(Reserved { marks })
        }
    };
    let left = if verdict.is_ok() {
        keys.iter()
            .enumerate()
            .map(|(i, k)| (*k, at(4 + i)))
            .collect()
    } else {
        Vec::new()
    };
    Shared::Answered {
        epoch,
        verdict,
        left,
    }
}

impl Remote for Redis {
    fn admit<'a>(&'a self, attempt: Attempt<'a>, epoch: i64) -> Answer<'a, Shared> {
        Box::pin(self.admit_now(attempt, epoch))
    }

    fn refund<'a>(
        &'a self,
        attempt: Attempt<'a>,
        marks: &'a Reserved,
        epoch: i64,
    ) -> Answer<'a, ()> {
        Box::pin(async move {
            let Attempt {
                tiers,
                number,
                ceiling,
            } = attempt;
            let number = number?;
            let mut inv = self.refund.prepare_invoke();
            inv.key(EPOCH_KEY);
            for tier in tiers {
                inv.key(redis_key(&Key::Failures(number, tier.net)))
                    .arg(tier.failures.interval());
            }
            inv.key(redis_key(&Key::Number(number)))
                .arg(ceiling.interval());
            for tier in tiers {
                inv.key(redis_key(&Key::Held(number, tier.net)));
            }
            inv.arg(marks.marks.first().map_or(0, |(_, tat)| *tat))
                .arg(epoch);
            self.run(inv, false).await.map(drop)
        })
    }

    fn copy_in<'a>(&'a self, entries: &'a [(Key, u64)], epoch: Option<i64>) -> Answer<'a, i64> {
        Box::pin(async move {
            // Connected first, so that a failover found on the way is known before the
            // epoch is written: after one, the epoch is replaced rather than kept.
            self.connection().await?;
            let renew = epoch.is_some() && self.failed_over.load(Ordering::Relaxed);
            let mut current = 0;
            let batches: Vec<&[(Key, u64)]> = if entries.is_empty() {
                vec![&[]]
            } else {
                entries.chunks(COPY_BATCH).collect()
            };
            for (i, batch) in batches.iter().enumerate() {
                let last = i + 1 == batches.len();
                let mut inv = self.copy_in.prepare_invoke();
                inv.key(EPOCH_KEY)
                    .arg(if last { epoch.unwrap_or(0) } else { 0 })
                    .key(SETTLING_KEY)
                    .arg(SETTLING.as_millis() as u64)
                    .arg(u8::from(last && renew));
                for (key, left) in *batch {
                    inv.key(redis_key(key)).arg(*left);
                }
                current = *self.run(inv, renew).await?.first()?;
            }
            if renew {
                self.failed_over.store(false, Ordering::Relaxed);
                tracing::info!(
                    epoch = current,
                    "Redis Sentinel の新しい主サーバーで新しいエポックを始めました"
                );
            }
            Some(current)
        })
    }

    fn epoch(&self) -> Answer<'_, i64> {
        Box::pin(async move {
            let answer = async {
                let mut connection = self.connection().await?;
                if self.failed_over.load(Ordering::Relaxed) {
                    return None;
                }
                let mut get = redis::cmd("GET");
                get.arg(EPOCH_KEY);
                let answer = get.query_async::<Option<i64>>(&mut connection);
                Some(
                    tokio::time::timeout(TIMEOUT, answer)
                        .await
                        .ok()?
                        .ok()?
                        .unwrap_or(0),
                )
            };
            let answer = answer.await;
            self.forget_on_failure(answer).await
        })
    }
}
