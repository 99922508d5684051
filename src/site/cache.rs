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
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::common::diagnostics::Diagnostics;
use crate::common::fingerprint::FileStamp;
use crate::site::content::Page;
use crate::site::links::FileLinks;
use crate::site::render::Renderer;

/// What parsing a content file gave.
pub type Parsed = Result<Arc<Page>, Diagnostics>;

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
