//! Reading `content/` into pages: every Markdown file, in path order, parsed by
//! [`content`](crate::site::content) unless the input cache has it (unchanged, or changed to
//! the same text).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::common::diagnostics::{Diagnostic, Diagnostics};
use crate::common::fingerprint::{FileStamp, Fingerprint};
use crate::common::root::CONTENT_DIR;
use crate::common::walk::{self, Walk};
use crate::site::cache::{CachedPage, InputCache, Parsed};
use crate::site::content::{parse_page, site_path, Page};
use crate::site::markdown;

/// Pages that loaded, and the site paths of files that did not (links to those are not
/// reported as broken: the file's own problem is).
#[derive(Debug, Default)]
pub struct LoadedPages {
    pub pages: Vec<Arc<Page>>,
    pub failed: Vec<String>,
}

/// Loads every page under `ROOT/content`, sorted by path; drafts are left out.
pub fn load_pages(
    root: &Path,
    markdown: markdown::Settings<'_>,
    cache: &mut InputCache,
    diagnostics: &mut Diagnostics,
) -> LoadedPages {
    let dir = root.join(CONTENT_DIR);
    if !dir.is_dir() {
        diagnostics.push(Diagnostic::file(
            CONTENT_DIR,
            "content/ ディレクトリがありません（少なくとも content/_index.md が必要です）",
        ));
        return LoadedPages::default();
    }
    let mut files = Vec::new();
    for file in walk::files(root, CONTENT_DIR, Walk::default(), diagnostics) {
        if file.abs.extension().is_some_and(|x| x == "md") {
            files.push((file.abs, file.rel));
        } else {
            diagnostics.push(Diagnostic::file(
                file.rel,
                "content/ には Markdown（.md）だけを置いてください。画像などは assets/ に置きます",
            ));
        }
    }
    cache.settings(
        Fingerprint::new()
            .bytes(markdown.base_path.as_bytes())
            .number(u64::from(markdown.unsafe_html))
            .finish(),
    );
    let results: Vec<CachedPage> = files
        .par_iter()
        .map(|(abs, rel)| read_page(abs, rel, markdown, cache))
        .collect();
    let results = cache_pages(&files, results, cache);
    let mut loaded = LoadedPages::default();
    for ((_, rel), result) in files.iter().zip(results) {
        match result {
            Ok(page) if !page.draft => loaded.pages.push(page),
            Ok(_) => {}
            Err(d) => {
                diagnostics.extend(d);
                let in_content = rel.strip_prefix(CONTENT_DIR).unwrap_or(rel);
                if let Ok((path, _, _)) = site_path(in_content) {
                    loaded.failed.push(path);
                }
            }
        }
    }
    loaded
}

/// Keeps this load's results in `cache` (when it keeps anything) and returns them.
fn cache_pages(
    files: &[(PathBuf, PathBuf)],
    results: Vec<CachedPage>,
    cache: &mut InputCache,
) -> Vec<Parsed> {
    let pages = results.iter().map(|c| c.parsed.clone()).collect();
    let kept = files.iter().map(|(_, rel)| rel.clone()).zip(results);
    cache.replace(kept.collect());
    pages
}

/// Reads one content file and parses it, unless `cache` has it: unchanged (same
/// [`FileStamp`]), or changed to the same text.
fn read_page(
    abs: &Path,
    rel: &Path,
    markdown: markdown::Settings<'_>,
    cache: &InputCache,
) -> CachedPage {
    let failed = |e: &dyn std::fmt::Display| CachedPage {
        stamp: FileStamp::default(),
        text: 0,
        parsed: Err(unreadable(rel, e)),
    };
    // Without a cache to compare with, no stamp is needed.
    let stamp = match cache.is_enabled().then(|| std::fs::metadata(abs)) {
        Some(Ok(m)) => FileStamp::of(&m),
        Some(Err(e)) => return failed(&e),
        None => FileStamp::default(),
    };
    let cached = cache.get(rel);
    if let Some(c) = cached.filter(|c| c.stamp == stamp && stamp != FileStamp::default()) {
        return c.clone();
    }
    let raw = match std::fs::read(abs) {
        Ok(raw) => raw,
        Err(e) => return failed(&e),
    };
    let text = Fingerprint::new()
        .bytes(rel.as_os_str().as_encoded_bytes())
        .bytes(&raw)
        .finish();
    if let Some(c) = cached.filter(|c| c.text == text) {
        return CachedPage { stamp, ..c.clone() };
    }
    let parsed = match String::from_utf8(raw) {
        Ok(source) => parse_page(&source, rel, markdown).map(|mut page| {
            page.fingerprint = text;
            Arc::new(page)
        }),
        Err(e) => Err(unreadable(rel, &e)),
    };
    CachedPage {
        stamp,
        text,
        parsed,
    }
}

fn unreadable(rel: &Path, e: &dyn std::fmt::Display) -> Diagnostics {
    Diagnostics::from(Diagnostic::file(
        rel,
        format!("読めません（UTF-8 のテキストですか）: {e}"),
    ))
}
