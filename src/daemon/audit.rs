//! The audit log: one JSON line per verification attempt (time, client, number, outcome),
//! never the key. Lines go through a bounded channel to one writer thread, so a slow disk
//! never stalls a request; a line that finds the channel full is counted and reported.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Mutex;
use std::thread::JoinHandle;

use anyhow::{Context as _, Result};
use serde::Serialize;

const BACKLOG: usize = 16_384;

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
    sender: Mutex<Option<SyncSender<String>>>,
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
        let (sender, receiver) = sync_channel::<String>(BACKLOG);
        let shown = path.display().to_string();
        let writer = std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::new(file);
                while let Ok(line) = receiver.recv() {
                    let mut ok = out.write_all(line.as_bytes()).is_ok();
                    // Write what else is waiting, then flush once.
                    while let Ok(more) = receiver.try_recv() {
                        ok &= out.write_all(more.as_bytes()).is_ok();
                    }
                    ok &= out.flush().is_ok();
                    if !ok {
                        tracing::error!(file = %shown, "監査ログに書き込めません");
                    }
                }
            })
            .context("監査ログの書き込みスレッドを起動できません")?;
        Ok(Audit {
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
            dropped: AtomicU64::new(0),
        })
    }

    pub(crate) fn record(&self, line: &Line<'_>) {
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        text.push('\n');
        let sent = self
            .sender
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.try_send(text)));
        if let Some(Err(TrySendError::Full(_))) | None = sent {
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
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}

/// Now as RFC 3339 UTC, to the millisecond.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
