//! Sorted walks over the directories of a site root: hidden entries skipped, unreadable
//! entries reported, every file with its path relative to the root (for messages).

use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::common::diagnostics::{Diagnostic, Diagnostics};

/// A file found in a site root.
#[derive(Debug, Clone)]
pub struct SiteFile {
    pub abs: PathBuf,
    /// Relative to the site root: `content/qa.md`.
    pub rel: PathBuf,
    /// Relative to the walked directory, `/`-separated: `qa.md`, `css/style.css`.
    pub name: String,
}

/// How far and what to walk.
#[derive(Debug, Clone, Copy, Default)]
pub struct Walk<'a> {
    /// Only files directly in the directory.
    pub flat: bool,
    /// Top-level subdirectories to leave out (`fonts`).
    pub skip_dirs: &'a [&'a str],
}

/// A file or directory name that can be part of a URL as it is: `a-z`, `0-9`, `-`, `_`.
pub fn is_url_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Files under `root/dir`, sorted by name; nothing when the directory does not exist.
pub fn files(
    root: &Path,
    dir: &str,
    walk: Walk<'_>,
    diagnostics: &mut Diagnostics,
) -> Vec<SiteFile> {
    let base = root.join(dir);
    if !base.is_dir() {
        return Vec::new();
    }
    let mut walker = WalkDir::new(&base).min_depth(1).sort_by_file_name();
    if walk.flat {
        walker = walker.max_depth(1);
    }
    let entries = walker.into_iter().filter_entry(|e| {
        let name = e.file_name().to_string_lossy();
        let skipped =
            e.depth() == 1 && e.file_type().is_dir() && walk.skip_dirs.contains(&name.as_ref());
        !name.starts_with('.') && !skipped
    });
    let mut found = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                let rel = e
                    .path()
                    .strip_prefix(root)
                    .unwrap_or(e.path())
                    .to_path_buf();
                let name = e
                    .path()
                    .strip_prefix(&base)
                    .unwrap_or(e.path())
                    .to_string_lossy()
                    .replace('\\', "/");
                found.push(SiteFile {
                    abs: e.path().to_path_buf(),
                    rel,
                    name,
                });
            }
            Ok(_) => {}
            Err(e) => diagnostics.push(Diagnostic::file(dir, format!("読めません: {e}"))),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_without_hidden_or_skipped_entries() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("assets");
        for f in ["b.css", "a/z.js", "fonts/x.otf", ".hidden", "a/.git/config"] {
            let p = dir.join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, "").expect("write");
        }
        let mut d = Diagnostics::default();
        let walk = Walk {
            flat: false,
            skip_dirs: &["fonts"],
        };
        let names: Vec<String> = files(root.path(), "assets", walk, &mut d)
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["a/z.js", "b.css"]);
        let flat = Walk {
            flat: true,
            skip_dirs: &[],
        };
        let names: Vec<String> = files(root.path(), "assets", flat, &mut d)
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["b.css"]);
        let rel = files(root.path(), "assets", flat, &mut d).remove(0).rel;
        assert_eq!(rel, PathBuf::from("assets/b.css"));
        assert!(files(root.path(), "missing", flat, &mut d).is_empty());
        assert!(d.is_empty());
    }
}
