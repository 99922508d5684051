//! Budgets shared by replicas in Redis (`--limits redis://HOST:PORT/DB`): the same GCRA as in
//! memory, computed atomically by two Lua scripts on Redis's own clock, every key with an
//! expiry (it disappears when its budget is whole again). The async client (redis-rs, its
//! `ConnectionManager` reconnecting by itself) never makes a request wait more than
//! [`TIMEOUT`]; when Redis does not answer, the replica falls back to its own budgets in
//! memory, says so in the log and the health (`degraded`), and tries Redis again a second
//! later.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use tokio::sync::Mutex;

use super::gcra::Cell;
use super::Key;

/// The longest a request waits for Redis.
pub(crate) const TIMEOUT: Duration = Duration::from_millis(100);
/// How long the replica keeps to its own budgets after Redis failed, before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Attempts (take), failure budgets and the ceiling (peek), and the day-long "failed" marks.
/// Returns `{0, 0}`, `{1, wait}` (attempts), `{2, wait}` (a failure budget) or `{3, wait}`
/// (the ceiling, for a network that failed in the last day).
const ADMIT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local na, nf, has_number = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function tat(key) return tonumber(redis.call('GET', key) or '0') end
local arg = 4
for i = 1, na do
  local interval, tolerance = tonumber(ARGV[arg]), tonumber(ARGV[arg + 1])
  arg = arg + 2
  local at = math.max(tat(KEYS[i]), now)
  if at - now > tolerance then return {1, at - now - tolerance} end
  redis.call('SET', KEYS[i], at + interval, 'PX', at + interval - now)
end
if has_number == 0 then return {0, 0} end
for j = 1, nf do
  local interval, tolerance = tonumber(ARGV[arg]), tonumber(ARGV[arg + 1])
  arg = arg + 2
  local ahead = tat(KEYS[na + j]) - now
  if ahead > tolerance then return {2, ahead - tolerance} end
end
local ceiling = KEYS[na + 2 * nf + 1]
local tolerance = tonumber(ARGV[arg + 1])
local ahead = tat(ceiling) - now
if ahead <= tolerance then return {0, 0} end
for j = 1, nf do
  if tat(KEYS[na + nf + j]) > now then return {3, ahead - tolerance} end
end
return {0, 0}
"#;

/// Charges a wrong key: each key by its interval (ARGV pairs), past its budget if need be.
const CHARGE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do
  local interval = tonumber(ARGV[i])
  local at = math.max(tonumber(redis.call('GET', KEYS[i]) or '0'), now) + interval
  redis.call('SET', KEYS[i], at, 'PX', at - now)
end
return {0}
"#;

/// What Redis said of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Admit,
    /// Attempts of a network spent: wait this long.
    Address(Duration),
    /// A failure budget spent: wait this long.
    Number(Duration),
    /// The number's ceiling spent, and this network failed on it lately.
    Ceiling(Duration),
}

pub(crate) struct Shared {
    client: redis::Client,
    connection: Mutex<Option<ConnectionManager>>,
    admit: redis::Script,
    charge: redis::Script,
    up: AtomicBool,
    started: Instant,
    /// When Redis last failed (ms since `started`), to wait [`RETRY_AFTER`].
    failed_at: AtomicU64,
    failures: AtomicU64,
}

/// A Redis key: `hosho:` and what it counts.
fn redis_key(key: &Key) -> String {
    match key {
        Key::Attempts(net) => format!("hosho:a:{:x}/{}", net.0, net.1),
        Key::Failures(number, net) => format!("hosho:f:{number}:{:x}/{}", net.0, net.1),
        Key::Failed(number, net) => format!("hosho:x:{number}:{:x}/{}", net.0, net.1),
        Key::Number(number) => format!("hosho:n:{number}"),
    }
}

impl Shared {
    /// A client for `url`; nothing is connected yet.
    pub(crate) fn new(url: &str) -> anyhow::Result<Shared> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("--limits {url} を使えません: {e}"))?;
        Ok(Shared {
            client,
            connection: Mutex::new(None),
            admit: redis::Script::new(ADMIT),
            charge: redis::Script::new(CHARGE),
            up: AtomicBool::new(false),
            started: Instant::now(),
            failed_at: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    /// Whether the last exchange with Redis went well.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Exchanges with Redis that failed or timed out.
    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }

    /// Whether Redis failed less than [`RETRY_AFTER`] ago.
    fn resting(&self) -> bool {
        let failed_at = self.failed_at.load(Ordering::Relaxed);
        failed_at != 0 && self.elapsed_ms() < failed_at + RETRY_AFTER.as_millis() as u64
    }

    /// A connection, unless Redis failed less than [`RETRY_AFTER`] ago.
    async fn connection(&self) -> Option<ConnectionManager> {
        if self.resting() {
            return None;
        }
        let mut slot = self.connection.lock().await;
        // Looked at again: while this request waited, another may have found Redis away.
        if slot.is_none() && self.resting() {
            return None;
        }
        if slot.is_none() {
            let manager =
                tokio::time::timeout(TIMEOUT, ConnectionManager::new(self.client.clone()));
            match manager.await {
                Ok(Ok(manager)) => *slot = Some(manager),
                _ => {
                    self.fail("接続できません");
                    return None;
                }
            }
        }
        slot.clone()
    }

    fn fail(&self, what: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.failed_at.store(self.elapsed_ms(), Ordering::Relaxed);
        if self.up.swap(false, Ordering::Relaxed) || self.failures() == 1 {
            tracing::warn!("Redis に{what}。この複製は自分のメモリの制限で続けます（degraded）");
        }
    }

    fn succeed(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            tracing::info!("Redis の共有の制限を使います");
        }
    }

    async fn run(&self, invocation: redis::ScriptInvocation<'_>) -> Option<Vec<i64>> {
        let mut connection = self.connection().await?;
        match tokio::time::timeout(TIMEOUT, invocation.invoke_async(&mut connection)).await {
            Ok(Ok(answer)) => {
                self.succeed();
                Some(answer)
            }
            Ok(Err(_)) => {
                self.fail("問い合わせられません");
                None
            }
            Err(_) => {
                self.fail("時間内に答えがありません");
                None
            }
        }
    }

    /// The verdict on an attempt, or `None` when Redis cannot say in time.
    pub(crate) async fn admit(
        &self,
        attempts: &[(Key, Cell)],
        failures: &[(Key, Key, Cell)],
        ceiling: Option<(Key, Cell)>,
    ) -> Option<Verdict> {
        let mut invocation = self.admit.prepare_invoke();
        invocation
            .arg(attempts.len())
            .arg(failures.len())
            .arg(u8::from(ceiling.is_some()));
        for (key, cell) in attempts {
            invocation
                .key(redis_key(key))
                .arg(cell.interval())
                .arg(cell.tolerance());
        }
        for (key, _, cell) in failures {
            invocation
                .key(redis_key(key))
                .arg(cell.interval())
                .arg(cell.tolerance());
        }
        for (_, failed, _) in failures {
            invocation.key(redis_key(failed));
        }
        let (number, cell) = ceiling.unwrap_or((Key::Number(0), Cell::from(super::FAILED_FOR)));
        invocation
            .key(redis_key(&number))
            .arg(cell.interval())
            .arg(cell.tolerance());
        let answer = self.run(invocation).await?;
        let wait = Duration::from_millis(answer.get(1).copied().unwrap_or(0).max(0) as u64);
        Some(match answer.first() {
            Some(1) => Verdict::Address(wait),
            Some(2) => Verdict::Number(wait),
            Some(3) => Verdict::Ceiling(wait),
            _ => Verdict::Admit,
        })
    }

    /// Tries Redis now (a PING): how a replica finds Redis back without waiting for a request.
    pub(crate) async fn probe(&self) {
        let Some(mut connection) = self.connection().await else {
            return;
        };
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut connection);
        match tokio::time::timeout(TIMEOUT, ping).await {
            Ok(Ok(_)) => self.succeed(),
            _ => self.fail("問い合わせられません"),
        }
    }

    /// Charges a wrong key; `false` when Redis could not.
    pub(crate) async fn charge(&self, keys: &[(Key, Cell)]) -> bool {
        let mut invocation = self.charge.prepare_invoke();
        for (key, cell) in keys {
            invocation.key(redis_key(key)).arg(cell.interval());
        }
        self.run(invocation).await.is_some()
    }
}
