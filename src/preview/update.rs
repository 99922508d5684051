//! The live preview's update of `site-out/` in place: only the files a rebuild changed are
//! written, each beside its place and renamed over it, so the preview never serves a
//! half-written file.

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context as _, Result};

use crate::common::root::MARKER;
use crate::staging::{marker_text, Access};

/// Brings the public output `target`, which an earlier build of this process wrote, up to
/// date in place (the live preview): each file of `changed` is written beside its place and
/// renamed over it, each of `removed` is deleted with the directories it leaves empty, and
/// the marker is rewritten to list `all`. Nothing else in `target` is touched.
pub(crate) fn update_in_place<'a>(
    target: &Path,
    changed: &std::collections::BTreeMap<String, Vec<u8>>,
    removed: &[&str],
    all: impl Iterator<Item = &'a str>,
) -> Result<()> {
    if !target.join(MARKER).is_file() {
        bail!(
            "{} は hosho が作った出力ではありません（{MARKER} がない）",
            target.display()
        );
    }
    for (path, bytes) in changed {
        let file = target.join(path);
        let dir = file.parent().unwrap_or(target);
        fs::create_dir_all(dir).with_context(|| format!("{} を作れません", dir.display()))?;
        let mut temporary = tempfile::Builder::new()
            .prefix(".hosho-")
            .tempfile_in(dir)
            .with_context(|| format!("{} に書けません", dir.display()))?;
        temporary
            .write_all(bytes)
            .and_then(|()| {
                let mode = fs::Permissions::from_mode(Access::Public.file_mode());
                temporary.as_file().set_permissions(mode)
            })
            .with_context(|| format!("{} を書けません", file.display()))?;
        temporary
            .persist(&file)
            .with_context(|| format!("{} を置き換えられません", file.display()))?;
    }
    for path in removed {
        let file = target.join(path);
        match fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("{} を消せません", file.display())),
        }
        // Directories it leaves empty go too (as a clean build would not have them).
        let mut dir = file.parent();
        while let Some(d) = dir.filter(|d| *d != target) {
            if fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
    let marker = target.join(MARKER);
    fs::write(&marker, marker_text(all))
        .with_context(|| format!("{} を書けません", marker.display()))
}
