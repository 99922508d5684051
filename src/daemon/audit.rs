//! The audit log: one JSON line per verification attempt (time, client, number, outcome),
//! never the key. Lines go through a bounded channel to one writer thread, so a slow disk
//! never stalls a request; a line that finds the channel full is counted and reported.
//! Under load the writer wakes every few milliseconds and writes what has gathered, rather
//! than being woken for every line.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Mutex;
use std::thread::JoinHandle;

use anyhow::{Context as _, Result};
use serde::Serialize;

const BACKLOG: usize = 65_536;
/// How long the writer lets lines gather once it is busy.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

enum Message {
    Line(String),
    Close,
}

/// One attempt.
#[derive(Debug, Serialize)]
pub(crate) struct Line<'a> {
    /// RFC 3339, UTC.
    pub(crate) time: String,
    pub(crate) client: String,
    /// The normalised 保証契約番号; `None` when what was typed is not a number.
    pub(crate) number: Option<&'a str>,
    pub(crate) outcome: &'a str,
}

pub(crate) struct Audit {
    sender: SyncSender<Message>,
    writer: Mutex<Option<JoinHandle<()>>>,
    dropped: AtomicU64,
}

impl Audit {
    /// Appends to `path` (created with mode 0600 if missing).
    pub(crate) fn open(path: &Path) -> Result<Audit> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{} を作れません", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("監査ログ {} を開けません", path.display()))?;
        let (sender, receiver) = sync_channel::<Message>(BACKLOG);
        let shown = path.display().to_string();
        let writer = std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || write_lines(&receiver, file, &shown))
            .context("監査ログの書き込みスレッドを起動できません")?;
        Ok(Audit {
            sender,
            writer: Mutex::new(Some(writer)),
            dropped: AtomicU64::new(0),
        })
    }

    pub(crate) fn record(&self, line: &Line<'_>) {
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        text.push('\n');
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.sender.try_send(Message::Line(text))
        {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(dropped = n, "監査ログが追いつかず、記録を落としました");
        }
    }

    /// Lines that could not be queued.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes out every queued line (at shutdown).
    pub(crate) fn close(&self) {
        let _ = self.sender.send(Message::Close);
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}

/// The writer thread: blocks while idle; once a line comes, writes it and then, every
/// `GATHER`, whatever gathered meanwhile, until the channel is quiet again.
fn write_lines(receiver: &Receiver<Message>, file: std::fs::File, shown: &str) {
    let mut out = std::io::BufWriter::new(file);
    let mut next = receiver.recv();
    loop {
        let mut ok = true;
        loop {
            match next {
                Ok(Message::Line(line)) => ok &= out.write_all(line.as_bytes()).is_ok(),
                Ok(Message::Close) | Err(_) => {
                    if out.flush().is_err() {
                        tracing::error!(file = %shown, "監査ログに書き込めません");
                    }
                    return;
                }
            }
            match receiver.try_recv() {
                Ok(m) => next = Ok(m),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => next = Err(std::sync::mpsc::RecvError),
            }
        }
        ok &= out.flush().is_ok();
        if !ok {
            tracing::error!(file = %shown, "監査ログに書き込めません");
        }
        std::thread::sleep(GATHER);
        next = match receiver.try_recv() {
            Ok(m) => Ok(m),
            Err(TryRecvError::Empty) => receiver.recv(),
            Err(TryRecvError::Disconnected) => Err(std::sync::mpsc::RecvError),
        };
    }
}

/// Now as RFC 3339 UTC, to the millisecond.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
