//! What one render of the site may reuse from the one before (the live preview of
//! `hosho serve`, see `docs/preview.md`): parsed content pages, by their file's text, and
//! for every output file a fingerprint of what it was rendered from and its links.
//!
//! A reused value is always what the same inputs would give again: pages are keyed by the
//! whole text of their file, and an output file is rendered again as soon as anything its
//! template may see differs (the page, its section's list, the navigation, the settings,
//! any template, or a data function the template's files call). `hosho build` starts with
//! an empty cache, so a cached render and a clean one write the same bytes.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::common::diagnostics::Diagnostics;
use crate::site::content::Page;
use crate::site::links::FileLinks;
use crate::site::render::Renderer;

/// A 64-bit fingerprint of what went into something (SipHash with fixed keys: the same in
/// every run).
#[derive(Debug, Default)]
pub struct Fingerprint(DefaultHasher);

impl Fingerprint {
    pub fn new() -> Fingerprint {
        Fingerprint::default()
    }

    pub fn bytes(mut self, bytes: &[u8]) -> Fingerprint {
        self.0.write_usize(bytes.len());
        self.0.write(bytes);
        self
    }

    pub fn number(mut self, n: u64) -> Fingerprint {
        self.0.write_u64(n);
        self
    }

    /// Adds `value` as JSON (what templates see of it).
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Fingerprint {
        // Serialising plain data cannot fail; a failure still changes the fingerprint.
        if serde_json::to_writer(HashWriter(&mut self.0), value).is_err() {
            self.0.write_u8(0xff);
        }
        self
    }

    pub fn finish(self) -> u64 {
        self.0.finish()
    }
}

/// Feeds serialised bytes straight into the hasher.
struct HashWriter<'a>(&'a mut DefaultHasher);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What parsing a content file gave.
pub type Parsed = Result<Arc<Page>, Diagnostics>;

/// What identifies one version of a file without reading it: size, modification and change
/// times (nanoseconds) and inode. A write changes the change time, whatever it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStamp {
    len: u64,
    modified: i128,
    changed: i128,
    inode: u64,
}

impl FileStamp {
    pub fn of(metadata: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        let nanos = |s: i64, ns: i64| i128::from(s) * 1_000_000_000 + i128::from(ns);
        FileStamp {
            len: metadata.len(),
            modified: nanos(metadata.mtime(), metadata.mtime_nsec()),
            changed: nanos(metadata.ctime(), metadata.ctime_nsec()),
            inode: metadata.ino(),
        }
    }
}

/// One content file as last read.
#[derive(Debug, Clone)]
pub struct CachedPage {
    pub stamp: FileStamp,
    /// Fingerprint of the file's text.
    pub text: u64,
    pub parsed: Parsed,
}

/// Inputs as last parsed: content pages by source file (relative to the root), of which a
/// file whose stamp is unchanged is not read again and one whose text is unchanged is not
/// parsed again; and the templates, parsed again only when a text changed.
#[derive(Default)]
pub struct InputCache {
    enabled: bool,
    /// Fingerprint of the Markdown settings the pages were parsed with.
    settings: u64,
    pages: HashMap<PathBuf, CachedPage>,
    templates: Option<(u64, Renderer)>,
}

impl std::fmt::Debug for InputCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputCache")
            .field("enabled", &self.enabled)
            .field("pages", &self.pages.len())
            .field("templates", &self.templates.as_ref().map(|(f, _)| f))
            .finish()
    }
}

impl InputCache {
    /// A cache that keeps what it is given (the live preview).
    pub fn enabled() -> InputCache {
        InputCache {
            enabled: true,
            ..InputCache::default()
        }
    }

    /// A cache that keeps nothing (`hosho build`: one render, and no copies held).
    pub fn disabled() -> InputCache {
        InputCache::default()
    }

    /// What was last read from `rel`.
    pub fn get(&self, rel: &Path) -> Option<&CachedPage> {
        self.pages.get(rel)
    }

    /// Whether this cache keeps anything (the live preview).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The last templates parsed, to reuse while their texts are the same (`None` when this
    /// cache keeps nothing).
    pub fn templates(&mut self) -> Option<&mut Option<(u64, Renderer)>> {
        self.enabled.then_some(&mut self.templates)
    }

    /// Forgets every page when the Markdown settings (fingerprint `settings`) changed.
    pub fn settings(&mut self, settings: u64) {
        if self.settings != settings {
            self.pages.clear();
            self.settings = settings;
        }
    }

    /// Replaces the cache with this load's pages (files gone from `content/` are dropped).
    pub fn replace(&mut self, pages: HashMap<PathBuf, CachedPage>) {
        if self.enabled {
            self.pages = pages;
        }
    }
}

/// One output file of the last render.
#[derive(Debug, Clone)]
pub struct RenderedFile {
    /// What it was made from ([`Fingerprint`]).
    pub fingerprint: u64,
    /// Its ids and links, for HTML files.
    pub links: Option<Arc<FileLinks>>,
}

/// The output files of the last successful render into the directory it describes.
#[derive(Debug, Default)]
pub struct RenderCache {
    pub files: BTreeMap<String, RenderedFile>,
}

/// Everything a render of the site may reuse.
#[derive(Debug, Default)]
pub struct SiteCache {
    pub pages: InputCache,
    pub render: RenderCache,
}

impl SiteCache {
    /// For the live preview: pages are kept between renders.
    pub fn for_preview() -> SiteCache {
        SiteCache {
            pages: InputCache::enabled(),
            render: RenderCache::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_depend_on_every_part_and_its_boundaries() {
        let a = Fingerprint::new().bytes(b"ab").bytes(b"c").finish();
        let b = Fingerprint::new().bytes(b"a").bytes(b"bc").finish();
        assert_ne!(a, b);
        assert_eq!(a, Fingerprint::new().bytes(b"ab").bytes(b"c").finish());
        let json = |v: &serde_json::Value| Fingerprint::new().json(v).finish();
        assert_ne!(
            json(&serde_json::json!({"a": 1})),
            json(&serde_json::json!({"a": 2}))
        );
    }
}
