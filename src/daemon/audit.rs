//! The audit log (`docs/http.md`), never holding a key, and unable to fill the disk:
//!
//! - An attempt that reached the KDF (a key was really checked) gets a line of its own:
//!   time, client, number, outcome.
//! - Attempts refused before the KDF (limits, a full pool, an expired manifest, input that
//!   is no number) are counted: one line per client and outcome per minute, with the count.
//!   A flood of refusals writes a line a minute per client, not a line a request, and costs
//!   the request path one increment in a sharded table, no allocation, no channel.
//!
//! Lines go through a bounded channel to one writer thread, so a slow or full disk never
//! stalls a request; what cannot be queued or written is counted and logged (at most once a
//! minute), and verification goes on. SIGUSR1 reopens the file (logrotate's `postrotate`).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::Serialize;

/// The audit log's file name in the state directory.
pub const AUDIT_FILE: &str = "audit.jsonl";

const BACKLOG: usize = 65_536;
/// How long the writer lets lines gather once it is busy.
const GATHER: Duration = Duration::from_millis(20);
/// Clients counted apart in one minute; more are counted together as `other`.
const MAX_TALLIES: usize = 10_000;
const TALLY_SHARDS: usize = 16;
/// How often a failing disk is reported in the log.
const ERROR_REPORT_EVERY: Duration = Duration::from_secs(60);

enum Message {
    /// A line of its own (an attempt that reached the KDF).
    Line(String),
    Reopen,
    Close,
}

/// One attempt that reached the KDF.
#[derive(Debug, Serialize)]
pub(crate) struct Line<'a> {
    /// RFC 3339, UTC.
    pub(crate) time: String,
    pub(crate) client: String,
    /// The normalised 保証契約番号; `None` when what was typed is not a number.
    pub(crate) number: Option<&'a str>,
    pub(crate) outcome: &'a str,
}

/// The refusals of one client with one outcome in one minute.
#[derive(Debug, Serialize)]
struct TallyLine<'a> {
    /// The minute's start, RFC 3339, UTC.
    time: String,
    client: &'a str,
    number: Option<&'a str>,
    outcome: &'a str,
    count: u64,
}

/// What went wrong, counted.
#[derive(Debug, Default)]
struct Failures {
    /// Lines not queued (the writer fell behind).
    dropped: AtomicU64,
    /// Writes the disk refused (full, gone).
    write_errors: AtomicU64,
}

/// Refusals counted since the last minute's lines: by client and outcome, in shards, one
/// for each thread that counts (so a flood from one client, counted on every worker at
/// once, never makes one worker wait for another's lock); merged when the minute is
/// written.
struct Tallies {
    shards: Vec<Mutex<HashMap<(IpAddr, &'static str), u64>>>,
}

impl Tallies {
    fn new() -> Tallies {
        Tallies {
            shards: (0..TALLY_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
        }
    }

    fn count(&self, client: IpAddr, outcome: &'static str) {
        let shard = &self.shards[super::latency::thread_shard(TALLY_SHARDS)];
        let mut shard = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = if shard.len() >= MAX_TALLIES / TALLY_SHARDS
            && !shard.contains_key(&(client, outcome))
        {
            // Counted together as `other` (the unspecified address).
            (IpAddr::from([0u8; 16]), outcome)
        } else {
            (client, outcome)
        };
        *shard.entry(key).or_insert(0) += 1;
    }

    /// Everything counted so far, sorted; the table is empty again.
    fn take(&self) -> BTreeMap<(String, &'static str), u64> {
        let mut all = BTreeMap::new();
        for shard in &self.shards {
            let taken = std::mem::take(
                &mut *shard
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            for ((client, outcome), n) in taken {
                let name = if client.is_unspecified() {
                    "other".to_owned()
                } else {
                    client.to_string()
                };
                *all.entry((name, outcome)).or_insert(0) += n;
            }
        }
        all
    }
}

pub(crate) struct Audit {
    sender: SyncSender<Message>,
    writer: Mutex<Option<JoinHandle<()>>>,
    failures: Arc<Failures>,
    tallies: Arc<Tallies>,
}

impl Audit {
    /// Appends to `path` (created with mode 0600 if missing).
    pub(crate) fn open(path: &Path) -> Result<Audit> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{} を作れません", dir.display()))?;
        }
        let file =
            open_file(path).with_context(|| format!("監査ログ {} を開けません", path.display()))?;
        let (sender, receiver) = sync_channel::<Message>(BACKLOG);
        let failures = Arc::new(Failures::default());
        let tallies = Arc::new(Tallies::new());
        let mut writer = Writer::new(path.to_path_buf(), file, Arc::clone(&failures));
        writer.tallies = Arc::clone(&tallies);
        let handle = std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || writer.run(&receiver))
            .context("監査ログの書き込みスレッドを起動できません")?;
        Ok(Audit {
            sender,
            writer: Mutex::new(Some(handle)),
            failures,
            tallies,
        })
    }

    /// An attempt that reached the KDF: a line of its own.
    pub(crate) fn record(&self, line: &Line<'_>) {
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        text.push('\n');
        self.send(Message::Line(text));
    }

    /// An attempt refused before the KDF: counted into the client's line of the minute.
    pub(crate) fn tally(&self, client: IpAddr, outcome: &'static str) {
        self.tallies.count(client.to_canonical(), outcome);
    }

    /// Closes and opens the file again (after logrotate moved it).
    pub(crate) fn reopen(&self) {
        self.send(Message::Reopen);
    }

    fn send(&self, message: Message) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.sender.try_send(message)
        {
            let n = self.failures.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::error!(dropped = n, "監査ログが追いつかず、記録を落としました");
            }
        }
    }

    /// Lines that could not be queued.
    pub(crate) fn dropped(&self) -> u64 {
        self.failures.dropped.load(Ordering::Relaxed)
    }

    /// Writes that the disk refused.
    pub(crate) fn write_errors(&self) -> u64 {
        self.failures.write_errors.load(Ordering::Relaxed)
    }

    /// Writes out every queued line and every count (at shutdown).
    pub(crate) fn close(&self) {
        let _ = self.sender.send(Message::Close);
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}

fn open_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// The writer thread's state.
struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    /// The current minute (Unix seconds / 60); its counts are in `tallies`.
    minute: i64,
    tallies: Arc<Tallies>,
    failures: Arc<Failures>,
    last_report: Option<Instant>,
}

fn current_minute() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(60)
}

impl Writer {
    fn new(path: PathBuf, file: File, failures: Arc<Failures>) -> Writer {
        Writer {
            path,
            out: BufWriter::new(file),
            minute: current_minute(),
            tallies: Arc::new(Tallies::new()),
            failures,
            last_report: None,
        }
    }

    /// Blocks while idle (or until the minute's counts are due); once busy, writes what
    /// gathered every `GATHER`.
    fn run(&mut self, receiver: &Receiver<Message>) {
        loop {
            let next_minute = (self.minute + 1) * 60;
            let now = chrono::Utc::now().timestamp();
            let wait = Duration::from_secs(u64::try_from(next_minute - now).unwrap_or(0).max(1));
            let first = match receiver.recv_timeout(wait) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => {
                    self.roll_minute();
                    self.flush();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => Message::Close,
            };
            if !self.handle_batch(first, receiver) {
                return;
            }
            std::thread::sleep(GATHER);
        }
    }

    /// Handles `first` and whatever else is queued; `false` once closed.
    fn handle_batch(&mut self, first: Message, receiver: &Receiver<Message>) -> bool {
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Line(line) => {
                    self.roll_minute();
                    self.write(line.as_bytes());
                }
                Message::Reopen => self.reopen(),
                Message::Close => {
                    self.write_tallies();
                    self.flush();
                    return false;
                }
            }
            next = receiver.try_recv().ok();
        }
        self.flush();
        true
    }

    /// Writes the past minute's counts once the minute is over.
    fn roll_minute(&mut self) {
        let now = current_minute();
        if now != self.minute {
            self.write_tallies();
            self.minute = now;
        }
    }

    fn write_tallies(&mut self) {
        let time = chrono::DateTime::from_timestamp(self.minute * 60, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        let tallies = self.tallies.take();
        for ((client, outcome), count) in &tallies {
            let line = TallyLine {
                time: time.clone(),
                client,
                number: None,
                outcome,
                count: *count,
            };
            if let Ok(mut text) = serde_json::to_string(&line) {
                text.push('\n');
                self.write(text.as_bytes());
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if let Err(e) = self.out.write_all(bytes) {
            self.failed(&e);
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.out.flush() {
            self.failed(&e);
        }
    }

    /// Counts a refused write; reports it at most once a minute. Verification goes on.
    fn failed(&mut self, e: &std::io::Error) {
        let n = self.failures.write_errors.fetch_add(1, Ordering::Relaxed) + 1;
        let due = self
            .last_report
            .is_none_or(|t| t.elapsed() >= ERROR_REPORT_EVERY);
        if due {
            self.last_report = Some(Instant::now());
            tracing::error!(file = %self.path.display(), errors = n, error = %e, "監査ログに書き込めません（確認は続けます）");
        }
    }

    fn reopen(&mut self) {
        self.flush();
        match open_file(&self.path) {
            Ok(file) => {
                self.out = BufWriter::new(file);
                tracing::info!(file = %self.path.display(), "監査ログを開き直しました");
            }
            Err(e) => self.failed(&e),
        }
    }
}

/// Now as RFC 3339 UTC, to the millisecond.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .expect("audit")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    }

    #[test]
    fn refusals_are_counted_and_checks_get_a_line_each() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let audit = Audit::open(&path).expect("open");
        let ip = |text: &str| text.parse::<IpAddr>().expect("ip");
        for _ in 0..1000 {
            audit.tally(ip("198.51.100.7"), "rate_limited_address");
        }
        audit.tally(ip("198.51.100.8"), "rate_limited_number");
        let line = Line {
            time: now_rfc3339(),
            client: "198.51.100.9".into(),
            number: Some("2070004426"),
            outcome: "not_found",
        };
        audit.record(&line);
        audit.close();
        let lines = lines(&path);
        assert_eq!(lines.len(), 3, "{lines:?}");
        let counted = |client: &str| {
            lines
                .iter()
                .find(|l| l["client"] == client)
                .and_then(|l| l["count"].as_u64())
        };
        assert_eq!(counted("198.51.100.7"), Some(1000));
        assert_eq!(counted("198.51.100.8"), Some(1));
        assert!(lines
            .iter()
            .any(|l| l["number"] == "2070004426" && l.get("count").is_none()));
    }

    #[test]
    fn the_file_is_reopened_after_a_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let audit = Audit::open(&path).expect("open");
        let line = |outcome| Line {
            time: now_rfc3339(),
            client: "192.0.2.1".into(),
            number: None,
            outcome,
        };
        audit.record(&line("valid"));
        std::thread::sleep(Duration::from_millis(100));
        std::fs::rename(&path, dir.path().join("audit.jsonl.1")).expect("rotate");
        audit.reopen();
        audit.record(&line("changed"));
        audit.close();
        assert_eq!(
            lines(&dir.path().join("audit.jsonl.1"))[0]["outcome"],
            "valid"
        );
        assert_eq!(lines(&path)[0]["outcome"], "changed");
    }

    #[test]
    fn a_full_disk_is_counted_and_nothing_stops() {
        let audit = Audit::open(Path::new("/dev/full")).expect("open /dev/full");
        for _ in 0..10 {
            audit.record(&Line {
                time: now_rfc3339(),
                client: "192.0.2.1".into(),
                number: None,
                outcome: "valid",
            });
        }
        audit.close();
        assert!(audit.write_errors() >= 1, "{}", audit.write_errors());
    }
}
