//! The model of the public site: everything it is made from, validated ([`Site`]), and the
//! questions the renderer asks of it (navigation, sections, URLs). Loading is in
//! [`load`](super::load), rendering in [`output`](super::output).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use tera::Context;

use crate::common::config::Config;
use crate::site::adopters::AdopterTable;
use crate::site::content::{Page, PageKind};
use crate::site::feed;
use crate::site::qa::QaEntry;
use crate::site::render::Renderer;
use crate::site::timeline::Timeline;

/// Kept out of the public site: fonts are for typesetting certificates.
pub(crate) const PRIVATE_ASSET_DIRS: [&str; 1] = ["fonts"];

/// The built-in theme's assets, written unless the site has its own file of the same name.
pub(crate) const BUILT_IN_ASSETS: [(&str, &str); 3] = [
    ("css/style.css", include_str!("../../assets/css/style.css")),
    (
        "js/table-filter.js",
        include_str!("../../assets/js/table-filter.js"),
    ),
    ("js/receipt.js", include_str!("../../assets/js/receipt.js")),
];

/// Everything the public site is made from, validated.
pub struct Site {
    pub root: PathBuf,
    pub config: Config,
    pub pages: Vec<Arc<Page>>,
    pub tables: Vec<AdopterTable>,
    pub qa: Vec<QaEntry>,
    pub timeline: Timeline,
    pub(super) renderer: Renderer,
    /// Site paths of pages whose own files have problems: links to them are not reported.
    pub(super) unavailable: BTreeSet<String>,
    /// Pages of each section (by the section's path), as `sections()` and `children` list them.
    pub(super) sections: Arc<BTreeMap<String, Vec<PageSummary>>>,
    /// The dated entries (`updates()` and the feed), and their fingerprint.
    pub(super) updates: (Arc<Vec<feed::FeedEntry>>, u64),
    /// Fingerprint of the adoption tables (`adopter_tables()` and the open data).
    pub(super) tables_fingerprint: u64,
}

/// What the public site may say about the signed manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Trust {
    /// Id of the signing key.
    pub key_id: String,
    /// The signing public key, hex.
    pub public_key: String,
    /// SHA-256 of `manifest.json`.
    pub manifest_sha256: String,
    pub seq: u64,
    /// Id of the verification service's key, which signs 確認記録, when the build has its
    /// public key.
    pub service_key_id: Option<String>,
    /// That public key, hex.
    pub service_public_key: Option<String>,
}

/// A navigation entry.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NavItem {
    title: String,
    path: String,
    url: String,
}

/// A page as listings show it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PageSummary {
    title: String,
    path: String,
    url: String,
    date: Option<chrono::NaiveDate>,
    description: Option<String>,
}

/// `/about/` → `about/index.html`.
pub(crate) fn output_file(site_path: &str) -> String {
    format!("{}index.html", site_path.trim_start_matches('/'))
}

impl Site {
    pub(crate) fn url(&self, site_path: &str) -> String {
        feed::url(&self.config, site_path)
    }

    pub(super) fn summary(&self, page: &Page) -> PageSummary {
        PageSummary {
            title: page.title.clone(),
            path: page.path.clone(),
            url: self.url(&page.path),
            date: page.date,
            description: page.description.clone(),
        }
    }

    /// Pages of each section, newest first, then by weight and title.
    pub(super) fn list_sections(&self) -> BTreeMap<String, Vec<PageSummary>> {
        let mut sections: BTreeMap<String, Vec<&Page>> = BTreeMap::new();
        for page in &self.pages {
            if let Some(section) = &page.section {
                sections.entry(section.clone()).or_default().push(page);
            }
        }
        sections
            .into_iter()
            .map(|(section, mut pages)| {
                pages.sort_by(|a, b| {
                    b.date
                        .cmp(&a.date)
                        .then(
                            a.weight
                                .unwrap_or(i64::MAX)
                                .cmp(&b.weight.unwrap_or(i64::MAX)),
                        )
                        .then(a.path.cmp(&b.path))
                });
                (
                    section,
                    pages.into_iter().map(|p| self.summary(p)).collect(),
                )
            })
            .collect()
    }

    /// The home page and every top-level page or section with a `weight`, by weight.
    pub(crate) fn nav(&self) -> Vec<NavItem> {
        let mut items: Vec<&Page> = self
            .pages
            .iter()
            .map(AsRef::as_ref)
            .filter(|p| {
                p.kind == PageKind::Home
                    || (p.section.as_deref() == Some("/") && p.weight.is_some())
            })
            .collect();
        items.sort_by_key(|p| (p.kind != PageKind::Home, p.weight, p.path.clone()));
        items
            .into_iter()
            .map(|p| NavItem {
                title: p.title.clone(),
                path: p.path.clone(),
                url: self.url(&p.path),
            })
            .collect()
    }

    /// Every orderer that published rules for receiving the notice, by name (the first
    /// table that names it wins).
    pub fn orderers(&self) -> crate::common::submission::Orderers {
        let mut orderers = std::collections::BTreeMap::new();
        for a in self.tables.iter().flat_map(|t| &t.adopters) {
            if let Some(rules) = &a.submission {
                orderers
                    .entry(a.name.clone())
                    .or_insert_with(|| rules.clone());
            }
        }
        crate::common::submission::Orderers(orderers)
    }

    /// The key id and manifest fingerprint shown on the home page (`trust()` in templates).
    pub fn set_trust(&mut self, trust: Option<Trust>) {
        self.renderer.register_data("trust", trust);
    }

    pub(crate) fn base_context(&self, nav: &[NavItem]) -> Context {
        let mut c = Context::new();
        c.insert("config", &self.config);
        c.insert("base_path", &self.config.base_path);
        c.insert("nav", nav);
        c.insert("verify_link", &self.config.verify_link());
        c.insert("verifying", &false);
        c
    }
}
