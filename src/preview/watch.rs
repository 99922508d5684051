//! The live preview's rebuild loop (`hosho serve` in building mode): watches the site root's
//! inputs (hosho.toml, content/, data/, templates/, assets/) with the platform's file events
//! (`notify`; only creations, writes, renames and removals count, not reads, which the build
//! itself makes), gathers the events of one save, rebuilds what they touch
//! ([`crate::preview::rebuild::Rebuilder`]), and tells the daemon's live preview
//! ([`crate::preview::live::Live`]), which reloads the open pages or shows the problems.
//! A failed rebuild changes nothing on disk: the last good site, vault and notices stay.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher as _};

use crate::common::config::CONFIG_FILE;
use crate::common::diagnostics::InputErrors;
use crate::common::root::{ASSETS_DIR, CONTENT_DIR, TEMPLATES_DIR};
use crate::preview::live::{Event, Live};
use crate::preview::rebuild::{Rebuilder, Rebuilt};

/// How long the file events of one save are gathered before a rebuild: the rebuild starts
/// once this long has passed without another.
const QUIET: Duration = Duration::from_millis(25);

/// The input directories watched (recursively), relative to the root; `data/` holds the
/// adoption tables, the Q&A, the certificates and the customers.
const WATCHED_DIRS: [&str; 4] = [CONTENT_DIR, "data", TEMPLATES_DIR, ASSETS_DIR];

/// Whether an event at `path` is an input change (not the build's own staging directories
/// beside the outputs, or an editor's temporary file).
fn is_input(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let name = rel.file_name().map(|n| n.to_string_lossy().into_owned());
    let temporary = name
        .as_deref()
        .is_some_and(|n| n.starts_with(".#") || n.ends_with('~') || n.ends_with(".swp"));
    if temporary {
        return false;
    }
    rel == Path::new(CONFIG_FILE) || WATCHED_DIRS.iter().any(|dir| rel.starts_with(dir))
}

/// The problems of a failed rebuild as `hosho check` prints them: one line per problem, or
/// the error and its causes.
pub(crate) fn problem_lines(e: &anyhow::Error) -> Vec<String> {
    match e.downcast_ref::<InputErrors>() {
        Some(input) => input.0.iter().map(ToString::to_string).collect(),
        None => vec![format!("{e:#}")],
    }
}

/// The input files an event changed (none for reads and metadata).
fn input_changes(root: &Path, event: notify::Result<notify::Event>) -> Vec<PathBuf> {
    match event {
        Ok(e) => {
            let writes = matches!(
                e.kind,
                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
            ) && !matches!(
                e.kind,
                EventKind::Modify(notify::event::ModifyKind::Metadata(_))
            );
            let paths = e.paths.into_iter().filter(|p| is_input(root, p));
            paths.filter(|_| writes).collect::<Vec<_>>()
        }
        Err(e) => {
            tracing::warn!(error = %e, "ファイルの変更を監視できません");
            Vec::new()
        }
    }
}

/// Starts watching the rebuilder's root on a thread of its own; every change is rebuilt,
/// reported to `report` and to `live`.
pub(crate) fn start(
    mut rebuilder: Rebuilder,
    live: Arc<Live>,
    report: impl Fn(&anyhow::Result<Rebuilt>) + Send + 'static,
) -> anyhow::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher = notify::recommended_watcher(tx)?;
    let root = rebuilder.paths().root.clone();
    let root = std::path::absolute(&root).unwrap_or(root);
    watcher.watch(&root, RecursiveMode::NonRecursive)?;
    for dir in WATCHED_DIRS {
        let dir = root.join(dir);
        if dir.is_dir() {
            watcher.watch(&dir, RecursiveMode::Recursive)?;
        }
    }
    let changed = move |event| input_changes(&root, event);
    std::thread::Builder::new()
        .name("hosho-watch".to_owned())
        .spawn(move || {
            let _keep = watcher;
            while let Ok(event) = rx.recv() {
                let mut paths: BTreeSet<PathBuf> = changed(event).into_iter().collect();
                if paths.is_empty() {
                    continue;
                }
                // The rest of this save (an editor writes, renames, touches).
                while let Ok(event) = rx.recv_timeout(QUIET) {
                    paths.extend(changed(event));
                }
                tracing::info!(?paths, "変更を検知しました。再ビルドします");
                let rebuilt = rebuilder.rebuild(&paths);
                report(&rebuilt);
                live.rebuilt(match &rebuilt {
                    Ok(Rebuilt::Full(_)) => Event::ManifestChanged,
                    Ok(Rebuilt::Site(_)) => Event::SiteChanged,
                    Err(e) => Event::Problems(problem_lines(e)),
                });
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inputs_start_a_rebuild() {
        let root = Path::new("/site");
        for input in [
            "/site/hosho.toml",
            "/site/content/qa.md",
            "/site/data/adopters/a.yaml",
            "/site/templates/base.html",
            "/site/assets/css/style.css",
        ] {
            assert!(is_input(root, Path::new(input)), "{input}");
        }
        for other in [
            "/site/.site-out.new-x/index.html",
            "/site/site-out/index.html",
            "/site/vault/manifest.json",
            "/site/content/.#qa.md",
            "/site/content/qa.md~",
            "/elsewhere/content/a.md",
        ] {
            assert!(!is_input(root, Path::new(other)), "{other}");
        }
    }
}
