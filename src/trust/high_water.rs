//! The high-water mark of a host (`STATE/high-water`; a platform keeps one per guarantor in
//! `STATE/issuers/<id>/high-water`): the newest manifest it ever served, its sequence number
//! and SHA-256, as `SEQ SHA256` and a newline. A manifest below it (rolled back), or at its
//! sequence number with other bytes (replaced), is never served. The daemon saves it;
//! `hosho vault check --state` reads it before a vault is swapped in.

use std::io::Write;
use std::path::Path;

use crate::common::hex::is_hex_of;
use crate::trust::manifest::Catalog;

/// The file under a state directory.
pub const HIGH_WATER_FILE: &str = "high-water";

/// The newest manifest ever served (sequence number 0 when none was).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HighWater {
    pub seq: u64,
    /// Its SHA-256 (hex); `None` in a mark saved before hosho recorded it.
    pub sha256: Option<String>,
}

/// Why a manifest may not come after the mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behind {
    /// Its sequence number is below the mark's.
    RolledBack { seq: u64, high_water: u64 },
    /// The mark's sequence number, with other bytes.
    Replaced { seq: u64 },
}

impl std::fmt::Display for Behind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Behind::RolledBack { seq, high_water } => write!(
                f,
                "マニフェスト #{seq} は、すでに提供した #{high_water} より古いものです（巻き戻しは受け付けません）"
            ),
            Behind::Replaced { seq } => write!(
                f,
                "マニフェスト #{seq} は、すでに提供した同じ番号のマニフェストと中身が違います（差し替えは受け付けません。新しくビルドしてください）"
            ),
        }
    }
}

impl HighWater {
    fn parse(text: &str) -> Option<HighWater> {
        let mut parts = text.split_whitespace();
        let seq = parts.next()?.parse().ok()?;
        let sha256 = match parts.next() {
            Some(hex) if is_hex_of(hex, 32) => Some(hex.to_owned()),
            Some(_) => return None,
            None => None,
        };
        parts.next().is_none().then_some(HighWater { seq, sha256 })
    }

    /// The mark saved in `state_dir` (sequence number 0 when none was saved yet). A file that
    /// exists but cannot be read is an error: going on would forget it.
    pub fn read(state_dir: &Path) -> Result<HighWater, String> {
        let path = state_dir.join(HIGH_WATER_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => HighWater::parse(&text).ok_or_else(|| {
                format!(
                    "{} の内容が「シーケンス番号 SHA-256」の形ではありません",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HighWater::default()),
            Err(e) => Err(format!("{} を読めません: {e}", path.display())),
        }
    }

    /// Whether `catalog` may be served after this mark, and why not; `floor` is a sequence
    /// number it must reach besides (the manifest already served, on a reload).
    pub fn admits(&self, catalog: &Catalog, floor: u64) -> Result<(), Behind> {
        let high_water = floor.max(self.seq);
        if catalog.seq() < high_water {
            return Err(Behind::RolledBack {
                seq: catalog.seq(),
                high_water,
            });
        }
        let replaced = catalog.seq() == self.seq
            && self
                .sha256
                .as_deref()
                .is_some_and(|s| s != catalog.sha256());
        match replaced {
            true => Err(Behind::Replaced { seq: catalog.seq() }),
            false => Ok(()),
        }
    }

    /// Saves `catalog` as the mark in `state_dir` when it is newer (or the mark has no
    /// SHA-256 yet): written aside, synced, renamed.
    pub fn save(state_dir: &Path, catalog: &Catalog) -> Result<(), String> {
        let saved = HighWater::read(state_dir)?;
        let seq = catalog.seq();
        if seq < saved.seq || (seq == saved.seq && saved.sha256.is_some()) {
            return Ok(());
        }
        let at = |what: &'static str| {
            let dir = state_dir.display().to_string();
            move |e: std::io::Error| format!("{dir} {what}: {e}")
        };
        std::fs::create_dir_all(state_dir).map_err(at("を作れません"))?;
        let mut file = tempfile::NamedTempFile::new_in(state_dir).map_err(at("に書けません"))?;
        writeln!(file, "{seq} {}", catalog.sha256())
            .and_then(|()| file.as_file().sync_all())
            .map_err(at("に書けません"))?;
        let path = state_dir.join(HIGH_WATER_FILE);
        file.persist(&path)
            .map_err(|e| format!("{} を置き換えられません: {}", path.display(), e.error))?;
        if let Ok(d) = std::fs::File::open(state_dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}
