//! The whole site: [`Site::load`] reads and validates every input, [`Site::render`] turns
//! the model into the files of `site-out/`, in memory, and checks their links.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;
use rayon::prelude::*;
use serde::Serialize;
use tera::Context;

use crate::cert::{self, Certificate};
use crate::config::Config;
use crate::content::{self, Page, PageKind, PageLink};
use crate::data::{self, AdopterTable, QaEntry};
use crate::diagnostics::{Diagnostic, Diagnostics, InputErrors};
use crate::render::Renderer;
use crate::timeline::{self, Timeline};
use crate::walk::{self, Walk};
use crate::{era, links, opendata};

pub const ASSETS_DIR: &str = "assets";
/// Kept out of the public site: fonts are for typesetting certificates.
const PRIVATE_ASSET_DIRS: [&str; 1] = ["fonts"];

/// The built-in theme's assets, written unless the site has its own file of the same name.
const BUILT_IN_ASSETS: [(&str, &str); 2] = [
    ("css/style.css", include_str!("../assets/css/style.css")),
    (
        "js/table-filter.js",
        include_str!("../assets/js/table-filter.js"),
    ),
];

/// Everything a build reads, validated.
pub struct Site {
    pub root: PathBuf,
    pub config: Config,
    pub pages: Vec<Page>,
    pub tables: Vec<AdopterTable>,
    pub qa: Vec<QaEntry>,
    pub timeline: Timeline,
    renderer: Renderer,
    /// Site paths of pages whose own files have problems: links to them are not reported.
    unavailable: BTreeSet<String>,
    /// Guarantee records (private input: never rendered into the site).
    pub certificates: Vec<Certificate>,
    /// Notes that do not stop the build.
    pub warnings: Diagnostics,
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
}

/// The files of one build, by path relative to the output directory.
#[derive(Debug, Default)]
pub struct Output {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Output {
    /// Writes every file under `dir` (which exists and is empty).
    pub fn write_into(&self, dir: &Path) -> anyhow::Result<()> {
        crate::output::write_files(dir, &self.files)
    }

    pub fn page_count(&self) -> usize {
        self.files
            .keys()
            .filter(|p| p.ends_with("index.html"))
            .count()
    }
}

/// A page as listings show it.
#[derive(Debug, Clone, Serialize)]
struct PageSummary {
    title: String,
    path: String,
    url: String,
    date: Option<NaiveDate>,
    description: Option<String>,
}

/// A navigation entry.
#[derive(Debug, Clone, Serialize)]
struct NavItem {
    title: String,
    path: String,
    url: String,
}

/// One entry of the Atom feed and of the home page's 新着情報.
#[derive(Debug, Clone, Serialize)]
struct FeedEntry {
    id: String,
    title: String,
    date: NaiveDate,
    updated: String,
    url: String,
    permalink: String,
    summary: String,
}

/// `/about/` → `about/index.html`.
fn output_file(site_path: &str) -> String {
    format!("{}index.html", site_path.trim_start_matches('/'))
}

fn rfc3339_jst(date: NaiveDate) -> String {
    format!("{date}T00:00:00+09:00")
}

impl Site {
    /// Reads `hosho.toml`, `content/`, `data/` and `templates/` and validates all of it.
    /// Fails with every problem found, including broken links (see [`Site::load_partial`]).
    pub fn load(root: &Path) -> Result<(Site, Output), InputErrors> {
        let (site, mut d) = Site::load_partial(root);
        let output = site.as_ref().and_then(|s| s.render(&mut d));
        match (site, output) {
            (Some(site), Some(output)) if d.is_empty() => Ok((site, output)),
            _ => Err(InputErrors(d.sorted())),
        }
    }

    /// Loads what is valid and reports the rest: a site is returned whenever the settings
    /// and templates are usable, so that rendering and the link check can still report
    /// their own problems in the same run.
    pub fn load_partial(root: &Path) -> (Option<Site>, Diagnostics) {
        let started = Instant::now();
        let mut d = Diagnostics::default();
        let config = Config::load(root).map_err(|e| d.push(e)).ok();
        let base_path = config
            .as_ref()
            .map_or("/", |c| c.base_path.as_str())
            .to_owned();
        let loaded = content::load_pages(root, &base_path, &mut d);
        let mut pages = loaded.pages;
        let mut unavailable: BTreeSet<String> = loaded.failed.into_iter().collect();
        let mut failed_tables = Vec::new();
        let tables = config
            .as_ref()
            .map(|c| data::load_adopter_tables(root, c, &mut d, &mut failed_tables))
            .unwrap_or_default();
        for slug in &failed_tables {
            unavailable.insert(format!("{ADOPTERS_PATH}{slug}/"));
            unavailable.insert(ADOPTERS_PATH.to_owned());
        }
        let qa = data::load_qa(root, &base_path, &mut d);
        let mut warnings = Diagnostics::default();
        let certificates = cert::load(root, &mut d, &mut warnings);
        let templates = Renderer::load(root, &mut d);
        tracing::debug!(elapsed = ?started.elapsed(), pages = pages.len(), "loaded inputs");

        pages.extend(tables.iter().map(table_page));
        if !tables.is_empty() && !pages.iter().any(|p| p.path == ADOPTERS_PATH) {
            pages.push(adopters_overview_page());
        }
        content::check_unique_paths(&pages, &mut d);
        let has_home = pages.iter().any(|p| p.kind == PageKind::Home) || unavailable.contains("/");
        if !has_home && root.join(content::CONTENT_DIR).is_dir() {
            d.push(Diagnostic::file(
                "content/_index.md",
                "トップページ content/_index.md がありません",
            ));
        }
        pages.retain(|page| {
            let known = templates.names.contains(&page.template);
            if !known {
                let (line, column) = page.template_at.unwrap_or((1, 1));
                d.push(Diagnostic::new(
                    &page.source,
                    line,
                    column,
                    format!(
                        "テンプレート「{}」が templates/ にも組み込みにもありません",
                        page.template
                    ),
                ));
                unavailable.insert(page.path.clone());
            }
            known
        });
        let (Some(config), Some(renderer)) = (config, templates.renderer) else {
            return (None, d);
        };
        pages.sort_by(|a, b| a.path.cmp(&b.path));
        let timeline = timeline::build(&tables);
        let mut site = Site {
            root: root.to_path_buf(),
            config,
            pages,
            tables,
            qa,
            timeline,
            renderer,
            unavailable,
            certificates,
            warnings,
        };
        site.register_template_data();
        site.set_trust(None);
        (Some(site), d)
    }

    fn url(&self, site_path: &str) -> String {
        format!(
            "{}{}",
            self.config.base_path,
            site_path.trim_start_matches('/')
        )
    }

    fn summary(&self, page: &Page) -> PageSummary {
        PageSummary {
            title: page.title.clone(),
            path: page.path.clone(),
            url: self.url(&page.path),
            date: page.date,
            description: page.description.clone(),
        }
    }

    /// Pages of each section, newest first, then by weight and title.
    fn sections(&self) -> BTreeMap<String, Vec<PageSummary>> {
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
    fn nav(&self) -> Vec<NavItem> {
        let mut items: Vec<&Page> = self
            .pages
            .iter()
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

    /// Adoptions and dated pages, newest first.
    fn feed_entries(&self) -> Vec<FeedEntry> {
        let mut entries = Vec::new();
        for page in &self.pages {
            if let (PageKind::Page, Some(date), false) =
                (page.kind, page.date, page.template == "adopter_table.html")
            {
                entries.push(FeedEntry {
                    id: self.config.absolute_url(&page.path),
                    title: page.title.clone(),
                    date,
                    updated: rfc3339_jst(date),
                    url: self.url(&page.path),
                    permalink: self.config.absolute_url(&page.path),
                    summary: page.description.clone().unwrap_or_default(),
                });
            }
        }
        for table in &self.tables {
            let path = format!("{ADOPTERS_PATH}{}/", table.slug);
            for a in &table.adopters {
                let Some(start) = a.start else { continue };
                let wareki = era::full_date(start);
                let (title, summary) = if a.planned {
                    (
                        format!("{}が電子保証の運用を始める予定です", a.name),
                        format!(
                            "{}（{}）は{}から電子保証の運用を始める予定です。",
                            a.name, table.title, wareki
                        ),
                    )
                } else {
                    (
                        format!("{}が電子保証の運用を始めました", a.name),
                        format!(
                            "{}（{}）は{}から電子保証の運用を始めました。",
                            a.name, table.title, wareki
                        ),
                    )
                };
                entries.push(FeedEntry {
                    id: format!("{}#{}", self.config.absolute_url(&path), a.name),
                    title,
                    date: start,
                    updated: rfc3339_jst(start),
                    url: self.url(&path),
                    permalink: self.config.absolute_url(&path),
                    summary,
                });
            }
        }
        entries.sort_by(|a, b| b.date.cmp(&a.date).then(a.id.cmp(&b.id)));
        entries
    }

    /// Data templates can ask for: `adopter_tables()`, `qa()`, `timeline()`,
    /// `sections()` and `updates()`.
    fn register_template_data(&mut self) {
        let values = [
            ("adopter_tables", serde_json::to_value(&self.tables)),
            ("qa", serde_json::to_value(&self.qa)),
            ("timeline", serde_json::to_value(&self.timeline)),
            ("sections", serde_json::to_value(self.sections())),
            ("updates", serde_json::to_value(self.feed_entries())),
        ];
        for (name, value) in values {
            // Serialising plain data structures cannot fail; an empty value keeps templates working.
            self.renderer.register_data(name, value.unwrap_or_default());
        }
    }

    /// The key id and manifest fingerprint shown on the home page (`trust()` in templates).
    pub fn set_trust(&mut self, trust: Option<Trust>) {
        let value = serde_json::to_value(trust).unwrap_or_default();
        self.renderer.register_data("trust", value);
    }

    fn base_context(&self, nav: &[NavItem]) -> Context {
        let mut c = Context::new();
        c.insert("config", &self.config);
        c.insert("base_path", &self.config.base_path);
        c.insert("nav", nav);
        c
    }

    /// Renders every output file in memory and checks the internal links; `None` when a
    /// file could not be rendered (the problems are in `d`).
    pub fn render(&self, d: &mut Diagnostics) -> Option<Output> {
        let started = Instant::now();
        let nav = self.nav();
        let sections = self.sections();
        let empty = Vec::new();
        let rendered: Vec<Result<(String, Vec<u8>), Diagnostic>> = self
            .pages
            .par_iter()
            .map(|page| {
                let mut c = self.base_context(&nav);
                c.insert("page", page);
                c.insert("current_path", &page.path);
                c.insert("page_url", &self.url(&page.path));
                c.insert("children", sections.get(&page.path).unwrap_or(&empty));
                if let Some(table) = self.tables.iter().find(|t| t.source == page.source) {
                    c.insert("table", table);
                }
                let html =
                    self.renderer
                        .render(&page.template, &c, &page.source.display().to_string())?;
                Ok((output_file(&page.path), html.into_bytes()))
            })
            .collect();
        let mut output = Output::default();
        let problems_before = d.len();
        for r in rendered {
            match r {
                Ok((path, bytes)) => {
                    output.files.insert(path, bytes);
                }
                Err(e) => d.push(e),
            }
        }
        for (path, result) in self.special_files(&nav) {
            match result {
                Ok(bytes) => {
                    output.files.insert(path, bytes);
                }
                Err(e) => d.push(e),
            }
        }
        self.copy_assets(&mut output, d);
        tracing::debug!(elapsed = ?started.elapsed(), files = output.files.len(), "rendered");
        if d.len() > problems_before {
            // Some file is missing from the output: links to it would be false alarms.
            return None;
        }
        let check_started = Instant::now();
        self.check_links(&output, d);
        tracing::debug!(elapsed = ?check_started.elapsed(), "checked links");
        Some(output)
    }

    /// 404 page, feed, sitemap and open data.
    fn special_files(&self, nav: &[NavItem]) -> Vec<(String, Result<Vec<u8>, Diagnostic>)> {
        let mut files = Vec::new();
        let mut c = self.base_context(nav);
        c.insert("current_path", "/404.html");
        c.insert("page_url", &self.url("/404.html"));
        files.push((
            "404.html".to_owned(),
            self.renderer
                .render("404.html", &c, "404.html")
                .map(String::into_bytes),
        ));

        let entries = self.feed_entries();
        let mut c = self.base_context(nav);
        let updated = entries
            .iter()
            .map(|e| e.date)
            .chain(self.tables.iter().map(|t| t.as_of))
            .max();
        // Atom requires <updated>; a site without any dated entry uses a fixed date.
        let updated = updated.map_or_else(|| "1970-01-01T00:00:00Z".to_owned(), rfc3339_jst);
        c.insert("feed_updated", &updated);
        c.insert("entries", &entries);
        c.insert("feed_url", &self.config.absolute_url("/atom.xml"));
        files.push((
            "atom.xml".to_owned(),
            self.renderer
                .render("atom.xml", &c, "atom.xml")
                .map(String::into_bytes),
        ));

        #[derive(Serialize)]
        struct SitemapUrl {
            loc: String,
            lastmod: Option<NaiveDate>,
        }
        let urls: Vec<SitemapUrl> = self
            .pages
            .iter()
            .map(|p| SitemapUrl {
                loc: self.config.absolute_url(&p.path),
                lastmod: p.date,
            })
            .collect();
        let mut c = Context::new();
        c.insert("urls", &urls);
        files.push((
            "sitemap.xml".to_owned(),
            self.renderer
                .render("sitemap.xml", &c, "sitemap.xml")
                .map(String::into_bytes),
        ));

        let json = opendata::adopters_json(&self.tables)
            .map_err(|e| Diagnostic::file(data::ADOPTERS_DIR, format!("JSON を作れません: {e}")));
        files.push(("data/adopters.json".to_owned(), json));
        let csv = opendata::adopters_csv(&self.tables)
            .map_err(|e| Diagnostic::file(data::ADOPTERS_DIR, format!("CSV を作れません: {e}")));
        files.push(("data/adopters.csv".to_owned(), csv));
        files
    }

    /// `assets/` (but fonts) to `site-out/assets/`, over the built-in theme's files.
    fn copy_assets(&self, output: &mut Output, d: &mut Diagnostics) {
        for (name, text) in BUILT_IN_ASSETS {
            output
                .files
                .insert(format!("{ASSETS_DIR}/{name}"), text.as_bytes().to_vec());
        }
        let walk = Walk {
            flat: false,
            skip_dirs: &PRIVATE_ASSET_DIRS,
        };
        for file in walk::files(&self.root, ASSETS_DIR, walk, d) {
            match std::fs::read(&file.abs) {
                Ok(bytes) => {
                    output
                        .files
                        .insert(format!("{ASSETS_DIR}/{}", file.name), bytes);
                }
                Err(e) => d.push(Diagnostic::file(file.rel, format!("読めません: {e}"))),
            }
        }
    }

    /// Reports every broken internal link at the place it was written.
    fn check_links(&self, output: &Output, d: &mut Diagnostics) {
        let html: BTreeMap<String, &str> = output
            .files
            .iter()
            .filter(|(p, _)| p.ends_with(".html"))
            .filter_map(|(p, b)| Some((p.clone(), std::str::from_utf8(b).ok()?)))
            .chain(
                output
                    .files
                    .keys()
                    .filter(|p| !p.ends_with(".html"))
                    .map(|p| (p.clone(), "")),
            )
            .collect();
        let by_output: BTreeMap<String, &Page> = self
            .pages
            .iter()
            .map(|p| (output_file(&p.path), p))
            .collect();
        for broken in links::check(&html, &self.config.base_path) {
            let to_unavailable = broken.target.as_ref().is_some_and(|t| {
                let t = t.trim_end_matches('/');
                self.unavailable.iter().any(|u| u.trim_matches('/') == t)
            });
            if to_unavailable {
                continue;
            }
            let page = by_output.get(&broken.from_file);
            let written = |links: &[PageLink]| {
                links
                    .iter()
                    .find(|l| l.target == broken.href || self.url(&l.target) == broken.href)
                    .map(|l| (l.line, l.column))
            };
            let message = format!("リンク「{}」: {}", broken.href, broken.reason);
            let from_markdown =
                page.and_then(|p| written(&p.links).map(|pos| (p.source.clone(), pos)));
            let from_qa = || {
                self.qa
                    .iter()
                    .find_map(|q| written(&q.links))
                    .map(|pos| (PathBuf::from(data::QA_FILE), pos))
            };
            let diagnostic = match from_markdown.or_else(from_qa) {
                Some((file, (line, column))) => Diagnostic::new(file, line, column, message),
                None => {
                    let template = page.map_or("404.html", |p| p.template.as_str());
                    let needle = broken
                        .href
                        .strip_prefix(&self.config.base_path)
                        .unwrap_or(&broken.href);
                    let (line, column) = self
                        .renderer
                        .find_in_template(template, needle)
                        .unwrap_or((1, 1));
                    Diagnostic::new(
                        self.renderer.template_file(template),
                        line,
                        column,
                        format!("{message}（{} の中）", broken.from_file),
                    )
                }
            };
            d.push(diagnostic);
        }
    }
}

/// Where the overview of all adoption tables is (generated unless `content/adopters/_index.md` exists).
const ADOPTERS_PATH: &str = "/adopters/";

fn adopters_overview_page() -> Page {
    Page {
        template: "adopters.html".to_owned(),
        ..Page::new(
            PathBuf::from(data::ADOPTERS_DIR),
            PageKind::Section,
            ADOPTERS_PATH.to_owned(),
            Some("/".to_owned()),
            "電子保証の導入発注者".to_owned(),
        )
    }
}

/// The generated page of one adoption table: `/adopters/<slug>/`.
fn table_page(table: &AdopterTable) -> Page {
    Page {
        date: Some(table.as_of),
        template: "adopter_table.html".to_owned(),
        description: Some(format!(
            "{}現在、電子保証を導入している{}の一覧です（{}団体）。",
            table.as_of_wareki,
            table.title,
            table.adopters.len()
        )),
        ..Page::new(
            table.source.clone(),
            PageKind::Page,
            format!("{ADOPTERS_PATH}{}/", table.slug),
            Some(ADOPTERS_PATH.to_owned()),
            table.title.clone(),
        )
    }
}
