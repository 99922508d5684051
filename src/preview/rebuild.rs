//! Rebuilds for the live preview (`hosho serve`): the first build is a full one; after an
//! edit, only what it touches is done again.
//!
//! - An edit to `content/`, `data/qa.yaml`, the adoption tables (unless an orderer's rules
//!   for receiving the notice change, which the notices print) or the public assets changes
//!   only the site. The content pages whose files did not change are not parsed again, the
//!   output files whose inputs did not change are not rendered again
//!   ([`crate::site::cache`]), and the files that did change are written into `site-out/` in
//!   place, once the whole site has rendered and its links are checked. The certificates are
//!   not loaded.
//! - Anything else (hosho.toml, templates/, the certificates, the customers, fonts, keys),
//!   and any rebuild after a failed full build or a failed write into `site-out/`, runs a
//!   full [`build::build`], which reuses the parsed pages and typesets only changed
//!   certificates, as every build does. A failed incremental rebuild wrote nothing, so the
//!   next edit of the site alone is incremental again.
//!
//! Either way the result is byte for byte what `hosho build` writes from the same files
//! (tested in `tests/testsuite/incremental.rs`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::build::{self, BuildSummary, Crossing, Paths};
use crate::common::diagnostics::InputErrors;
use crate::common::root::{ADOPTERS_DIR, ASSETS_DIR, CONTENT_DIR, QA_FILE};
use crate::site::cache::SiteCache;
use crate::site::{MemorySink, Site, Trust};

/// Builds, then rebuilds what each edit touches.
pub struct Rebuilder {
    paths: Paths,
    cache: SiteCache,
    /// What crossed between the two sides in the last successful full build, when the
    /// output on disk is still what the builds since wrote.
    last: Option<Crossing>,
}

/// What one rebuild did.
#[derive(Debug)]
pub enum Rebuilt {
    /// A full build: the certificates, notices and statements too, and a new manifest.
    Full(Box<BuildSummary>),
    /// Only the public site, updated in place.
    Site(SiteUpdate),
}

/// What a rebuild of the site alone wrote into `site-out/`.
#[derive(Debug)]
pub struct SiteUpdate {
    pub out: PathBuf,
    pub pages: usize,
    pub files: usize,
    /// Files written or removed.
    pub written: usize,
    pub elapsed: Duration,
}

/// Whether a change to `rel` (relative to the root) can change nothing but the public site
/// (an adoption table may still change the notices: see [`Rebuilder::rebuild`]).
fn site_only(rel: &Path) -> bool {
    let fonts = Path::new(ASSETS_DIR).join("fonts");
    rel.starts_with(CONTENT_DIR)
        || rel.starts_with(ADOPTERS_DIR)
        || rel == Path::new(QA_FILE)
        || (rel.starts_with(ASSETS_DIR) && !rel.starts_with(fonts))
}

impl Rebuilder {
    pub fn new(paths: Paths) -> Rebuilder {
        Rebuilder {
            paths,
            cache: SiteCache::for_preview(),
            last: None,
        }
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// What the public site shows of the signed manifest since the last build; `None`
    /// before the first successful build or after a failed one.
    pub fn trust(&self) -> Option<&Trust> {
        self.last.as_ref().map(|c| &c.trust)
    }

    /// A full build.
    pub fn build(&mut self) -> Result<BuildSummary> {
        self.last = None;
        let (summary, crossing) = build::build_with(&self.paths, &mut self.cache)?;
        self.last = Some(crossing);
        Ok(summary)
    }

    /// Rebuilds after the files `changed` (absolute or relative to the root) changed.
    pub fn rebuild(&mut self, changed: &BTreeSet<PathBuf>) -> Result<Rebuilt> {
        let root = std::path::absolute(&self.paths.root).unwrap_or(self.paths.root.clone());
        let only_site = changed.iter().all(|p| {
            let rel = p.strip_prefix(&root).unwrap_or(p);
            site_only(rel)
        });
        if self.last.is_none() || !only_site {
            tracing::debug!(?changed, "full rebuild");
            return self.build().map(|s| Rebuilt::Full(Box::new(s)));
        }
        match self.rebuild_site()? {
            Some(update) => Ok(Rebuilt::Site(update)),
            // An orderer's rules changed: the notices print them.
            None => self.build().map(|s| Rebuilt::Full(Box::new(s))),
        }
    }

    /// Renders the site again, reusing what did not change, and updates `site-out/` in
    /// place. `None` when the edit changed the orderers' rules (the notices need a build).
    fn rebuild_site(&mut self) -> Result<Option<SiteUpdate>> {
        let started = Instant::now();
        let (site, d) = Site::load(&self.paths.root, &mut self.cache.pages);
        let Some(mut site) = site else {
            return Err(InputErrors(d.sorted()).into());
        };
        let Some(last) = self.last.as_ref() else {
            return Ok(None);
        };
        if site.orderers() != last.orderers {
            return Ok(None);
        }
        site.set_trust(Some(last.trust.clone()));
        let sink = MemorySink::default();
        // Problems of the inputs are reported with the link check's, as by a full build.
        let rendered = build::render(&site, &sink, &self.cache.render, d)?;
        tracing::debug!(elapsed = ?started.elapsed(), "rendered and checked");
        let changed = sink.into_output().files;
        let removed: Vec<&str> = rendered.removed(&self.cache.render).collect();
        let all = rendered.files.keys().map(String::as_str);
        if let Err(e) =
            crate::preview::update::update_in_place(&self.paths.out, &changed, &removed, all)
        {
            // What is on disk is no longer known: the next rebuild is a full one.
            self.last = None;
            return Err(e);
        }
        let update = SiteUpdate {
            out: self.paths.out.clone(),
            pages: rendered.page_count(),
            files: rendered.files.len(),
            written: changed.len() + removed.len(),
            elapsed: started.elapsed(),
        };
        self.cache.render = rendered.into_cache();
        Ok(Some(update))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::config::CONFIG_FILE;

    #[test]
    fn only_public_inputs_stay_in_the_site() {
        for rel in [
            "content/qa.md",
            "data/adopters/a.yaml",
            "data/qa.yaml",
            "assets/css/style.css",
        ] {
            assert!(site_only(Path::new(rel)), "{rel}");
        }
        for rel in [
            CONFIG_FILE,
            "templates/base.html",
            "templates/certificate.typ",
            "data/certificates/2024.yaml",
            "data/customers.yaml",
            "assets/fonts/a.ttf",
        ] {
            assert!(!site_only(Path::new(rel)), "{rel}");
        }
    }
}
