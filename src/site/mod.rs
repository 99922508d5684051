//! The public site: [`Site::load_partial`] reads and validates `hosho.toml`, `content/`,
//! `data/adopters/`, `data/qa.yaml` and `templates/`; [`Site::render`] turns the model into
//! the files of `site-out/`, in memory, and checks their links.
//!
//! The site never receives a certificate, a key or the vault: the build hands it only what
//! the public may see of the signed manifest ([`Trust`]).

pub mod adopters;
mod check;
pub mod content;
mod feed;
pub mod fees;
pub mod links;
pub mod markdown;
pub mod opendata;
pub mod qa;
pub mod render;
pub mod timeline;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use tera::Context;

use crate::common::config::Config;
use crate::common::diagnostics::{Diagnostic, Diagnostics, InputErrors};
use crate::common::root::{ADOPTERS_DIR, ASSETS_DIR, CONTENT_DIR};
use crate::common::walk::{self, Walk};
use crate::site::adopters::AdopterTable;
use crate::site::content::{Page, PageData, PageKind};
use crate::site::qa::QaEntry;
use crate::site::render::Renderer;
use crate::site::timeline::Timeline;

/// Kept out of the public site: fonts are for typesetting certificates.
const PRIVATE_ASSET_DIRS: [&str; 1] = ["fonts"];

/// Where the overview of all adoption tables is (generated unless `content/adopters/_index.md` exists).
pub(crate) const ADOPTERS_PATH: &str = "/adopters/";

/// The built-in theme's assets, written unless the site has its own file of the same name.
const BUILT_IN_ASSETS: [(&str, &str); 2] = [
    ("css/style.css", include_str!("../../assets/css/style.css")),
    (
        "js/table-filter.js",
        include_str!("../../assets/js/table-filter.js"),
    ),
];

/// Everything the public site is made from, validated.
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
    pub fn page_count(&self) -> usize {
        self.files
            .keys()
            .filter(|p| p.ends_with("index.html"))
            .count()
    }

    /// Adds `file`, or its problem to `d`.
    fn add(&mut self, path: String, file: Result<Vec<u8>, Diagnostic>, d: &mut Diagnostics) {
        match file {
            Ok(bytes) => {
                self.files.insert(path, bytes);
            }
            Err(e) => d.push(e),
        }
    }
}

/// A navigation entry.
#[derive(Debug, Clone, Serialize)]
struct NavItem {
    title: String,
    path: String,
    url: String,
}

/// A page as listings show it.
#[derive(Debug, Clone, Serialize)]
struct PageSummary {
    title: String,
    path: String,
    url: String,
    date: Option<chrono::NaiveDate>,
    description: Option<String>,
}

/// `/about/` → `about/index.html`.
fn output_file(site_path: &str) -> String {
    format!("{}index.html", site_path.trim_start_matches('/'))
}

/// What a site root holds, each part loaded as far as it is valid.
struct Loaded {
    config: Option<Config>,
    pages: Vec<Page>,
    tables: Vec<AdopterTable>,
    qa: Vec<QaEntry>,
    templates: render::LoadedTemplates,
    unavailable: BTreeSet<String>,
}

impl Loaded {
    /// Reads every input; problems go to `d`.
    fn read(root: &Path, d: &mut Diagnostics) -> Loaded {
        let config = Config::load(root).map_err(|e| d.push(e)).ok();
        let base_path = config
            .as_ref()
            .map_or("/", |c| c.base_path.as_str())
            .to_owned();
        let unsafe_html = config.as_ref().is_some_and(|c| c.markdown.unsafe_html);
        let markdown = markdown::Settings {
            base_path: &base_path,
            unsafe_html,
        };
        let loaded = content::load_pages(root, markdown, d);
        let mut unavailable: BTreeSet<String> = loaded.failed.into_iter().collect();
        let mut failed_tables = Vec::new();
        let tables = config
            .as_ref()
            .map(|c| adopters::load_adopter_tables(root, c, d, &mut failed_tables))
            .unwrap_or_default();
        for slug in &failed_tables {
            unavailable.insert(format!("{ADOPTERS_PATH}{slug}/"));
            unavailable.insert(ADOPTERS_PATH.to_owned());
        }
        let qa = qa::load_qa(root, markdown, d);
        let templates = Renderer::load(root, d);
        Loaded {
            config,
            pages: loaded.pages,
            tables,
            qa,
            templates,
            unavailable,
        }
    }

    /// The generated pages: one per adoption table, and their overview unless written.
    fn add_generated_pages(&mut self) {
        let tables = self.tables.iter().enumerate();
        self.pages.extend(tables.map(|(i, t)| table_page(i, t)));
        let orderers = self.tables.iter().enumerate().flat_map(|(i, t)| {
            t.adopters
                .iter()
                .enumerate()
                .filter(|(_, a)| a.submission.is_some())
                .map(move |(j, _)| orderer_page(i, t, j))
        });
        let orderers: Vec<Page> = orderers.collect();
        self.pages.extend(orderers);
        if !self.tables.is_empty() && !self.pages.iter().any(|p| p.path == ADOPTERS_PATH) {
            self.pages.push(adopters_overview_page());
        }
    }

    /// Reports a missing home page and unknown templates; pages without a template are left
    /// out (and links to them not reported).
    fn check_pages(&mut self, root: &Path, d: &mut Diagnostics) {
        content::check_unique_paths(&self.pages, d);
        let has_home =
            self.pages.iter().any(|p| p.kind == PageKind::Home) || self.unavailable.contains("/");
        if !has_home && root.join(CONTENT_DIR).is_dir() {
            d.push(Diagnostic::file(
                "content/_index.md",
                "トップページ content/_index.md がありません",
            ));
        }
        let names = &self.templates.names;
        let unavailable = &mut self.unavailable;
        self.pages.retain(|page| {
            let known = names.contains(&page.template);
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
    }
}

impl Site {
    /// Reads and validates everything; fails with every problem found, including broken
    /// links (see [`Site::load_partial`]).
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
        let mut loaded = Loaded::read(root, &mut d);
        tracing::debug!(elapsed = ?started.elapsed(), pages = loaded.pages.len(), "loaded inputs");
        loaded.add_generated_pages();
        loaded.check_pages(root, &mut d);
        let (Some(config), Some(renderer)) = (loaded.config, loaded.templates.renderer) else {
            return (None, d);
        };
        let mut pages = loaded.pages;
        pages.sort_by(|a, b| a.path.cmp(&b.path));
        let timeline = timeline::build(&loaded.tables);
        let mut site = Site {
            root: root.to_path_buf(),
            config,
            pages,
            tables: loaded.tables,
            qa: loaded.qa,
            timeline,
            renderer,
            unavailable: loaded.unavailable,
        };
        site.register_template_data();
        site.set_trust(None);
        (Some(site), d)
    }

    fn url(&self, site_path: &str) -> String {
        feed::url(&self.config, site_path)
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

    /// Data templates can ask for: `adopter_tables()`, `qa()`, `timeline()`,
    /// `sections()`, `updates()` and `fee_estimates()`.
    fn register_template_data(&mut self) {
        let updates = feed::entries(&self.config, &self.pages, &self.tables);
        let values = [
            ("adopter_tables", serde_json::to_value(&self.tables)),
            ("qa", serde_json::to_value(&self.qa)),
            ("timeline", serde_json::to_value(&self.timeline)),
            ("sections", serde_json::to_value(self.sections())),
            ("updates", serde_json::to_value(updates)),
            (
                "fee_estimates",
                serde_json::to_value(fees::estimates(&self.config.fees)),
            ),
        ];
        for (name, value) in values {
            // Serialising plain data structures cannot fail; an empty value keeps templates working.
            self.renderer.register_data(name, value.unwrap_or_default());
        }
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
        let problems_before = d.len();
        let mut output = Output::default();
        for (path, page) in self.render_pages(&nav) {
            output.add(path, page, d);
        }
        for (path, file) in self.special_files(&nav) {
            output.add(path, file, d);
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

    /// Every page, rendered in parallel.
    fn render_pages(&self, nav: &[NavItem]) -> Vec<(String, Result<Vec<u8>, Diagnostic>)> {
        let sections = self.sections();
        let empty = Vec::new();
        self.pages
            .par_iter()
            .map(|page| {
                let mut c = self.base_context(nav);
                c.insert("page", page);
                c.insert("current_path", &page.path);
                c.insert("page_url", &self.url(&page.path));
                c.insert("children", sections.get(&page.path).unwrap_or(&empty));
                match page.data {
                    PageData::AdopterTable(i) => c.insert("table", &self.tables[i]),
                    PageData::Orderer(i, j) => {
                        c.insert("table", &self.tables[i]);
                        c.insert("adopter", &self.tables[i].adopters[j]);
                    }
                    PageData::Markdown | PageData::AdoptersOverview => {}
                }
                let source = page.source.display().to_string();
                let html = self.renderer.render(&page.template, &c, &source);
                (output_file(&page.path), html.map(String::into_bytes))
            })
            .collect()
    }

    /// 404 page, feed, sitemap and open data.
    fn special_files(&self, nav: &[NavItem]) -> Vec<(String, Result<Vec<u8>, Diagnostic>)> {
        let render = |template: &str, c: &Context| {
            self.renderer
                .render(template, c, template)
                .map(String::into_bytes)
        };
        let mut not_found = self.base_context(nav);
        not_found.insert("current_path", "/404.html");
        not_found.insert("page_url", &self.url("/404.html"));

        let entries = feed::entries(&self.config, &self.pages, &self.tables);
        let updated = entries
            .iter()
            .map(|e| e.date)
            .chain(self.tables.iter().map(|t| t.as_of))
            .max();
        // Atom requires <updated>; a site without any dated entry uses a fixed date.
        let updated = updated.map_or_else(|| "1970-01-01T00:00:00Z".to_owned(), feed::rfc3339_jst);
        let mut atom = self.base_context(nav);
        atom.insert("feed_updated", &updated);
        atom.insert("entries", &entries);
        atom.insert("feed_url", &self.config.absolute_url("/atom.xml"));

        let mut sitemap = Context::new();
        sitemap.insert("urls", &feed::sitemap(&self.config, &self.pages));

        let json = opendata::adopters_json(&self.tables)
            .map_err(|e| Diagnostic::file(ADOPTERS_DIR, format!("JSON を作れません: {e}")));
        let csv = opendata::adopters_csv(&self.tables)
            .map_err(|e| Diagnostic::file(ADOPTERS_DIR, format!("CSV を作れません: {e}")));
        vec![
            ("404.html".to_owned(), render("404.html", &not_found)),
            ("atom.xml".to_owned(), render("atom.xml", &atom)),
            ("sitemap.xml".to_owned(), render("sitemap.xml", &sitemap)),
            ("data/adopters.json".to_owned(), json),
            ("data/adopters.csv".to_owned(), csv),
        ]
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
            let bytes = std::fs::read(&file.abs)
                .map_err(|e| Diagnostic::file(file.rel, format!("読めません: {e}")));
            output.add(format!("{ASSETS_DIR}/{}", file.name), bytes, d);
        }
    }
}

fn adopters_overview_page() -> Page {
    Page {
        template: "adopters.html".to_owned(),
        data: PageData::AdoptersOverview,
        ..Page::new(
            PathBuf::from(ADOPTERS_DIR),
            PageKind::Section,
            ADOPTERS_PATH.to_owned(),
            Some("/".to_owned()),
            "電子保証の導入発注者".to_owned(),
        )
    }
}

/// The generated page of adoption table `index`: `/adopters/<slug>/`.
fn table_page(index: usize, table: &AdopterTable) -> Page {
    Page {
        date: Some(table.as_of),
        template: "adopter_table.html".to_owned(),
        description: Some(format!(
            "{}現在、電子保証を導入している{}の一覧です（{}団体）。",
            table.as_of_wareki,
            table.title,
            table.adopters.len()
        )),
        data: PageData::AdopterTable(index),
        ..Page::new(
            table.source.clone(),
            PageKind::Page,
            format!("{ADOPTERS_PATH}{}/", table.slug),
            Some(ADOPTERS_PATH.to_owned()),
            table.title.clone(),
        )
    }
}

/// The page of one orderer's rules for receiving the notice.
fn orderer_page(table_index: usize, table: &AdopterTable, row: usize) -> Page {
    let adopter = &table.adopters[row];
    let page = adopter.submission.as_ref().map_or("", |s| s.page.as_str());
    let table_path = format!("{ADOPTERS_PATH}{}/", table.slug);
    Page {
        template: "orderer.html".to_owned(),
        description: Some(format!(
            "{}へ電子証書閲覧用「認証キー」等のお知らせを提出する方法です。",
            adopter.name
        )),
        data: PageData::Orderer(table_index, row),
        ..Page::new(
            table.source.clone(),
            PageKind::Page,
            format!("{table_path}{page}/"),
            Some(table_path),
            format!("{}へのお知らせの提出方法", adopter.name),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"title = "テスト"
base_url = "https://example.jp/denshi/"
[guarantor]
name = "テスト保証株式会社"
address = "東京都千代田区"
[adopters]
categories = ["県", "市町村"]
"#;

    /// A site root with a home page, a dated notice, a table and Q&A; `extra` adds files.
    fn root(extra: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = [
            ("hosho.toml", CONFIG),
            ("content/_index.md", "---\ntitle: ホーム\n---\n[お知らせ](/notices/a/)\n"),
            ("content/notices/_index.md", "---\ntitle: お知らせ\n---\n"),
            ("content/notices/a.md", "---\ntitle: 運用開始\ndate: 2024-04-01\n---\n本文\n"),
            (
                "data/adopters/kumamoto.yaml",
                "title: 熊本県\nas_of: 2025-02-01\nadopters:\n  - {name: 熊本県, category: 県, start: 2023-04-01}\n",
            ),
            ("data/qa.yaml", "- q: 費用は？\n  a: かかりません。\n"),
        ];
        for (path, text) in files.iter().chain(extra) {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    fn text(output: &Output, path: &str) -> String {
        String::from_utf8(output.files[path].clone()).expect("utf-8")
    }

    #[test]
    fn tables_are_generated_pages_with_their_data() {
        let dir = root(&[]);
        let (site, output) = Site::load(dir.path()).expect("valid");
        let table_page = site
            .pages
            .iter()
            .find(|p| p.path == "/adopters/kumamoto/")
            .expect("table page");
        assert_eq!(table_page.data, PageData::AdopterTable(0));
        let overview = site
            .pages
            .iter()
            .find(|p| p.path == ADOPTERS_PATH)
            .expect("overview");
        assert_eq!(overview.data, PageData::AdoptersOverview);
        let html = text(&output, "adopters/kumamoto/index.html");
        assert!(
            html.contains("熊本県") && html.contains("令和5年4月1日"),
            "{html}"
        );
        assert!(output.files.contains_key("data/adopters.csv"));
        // Links carry the base path; the feed has the notice and the adoption, not the table page.
        assert!(text(&output, "index.html").contains("href=\"/denshi/notices/a/\""));
        let feed = text(&output, "atom.xml");
        assert_eq!(feed.matches("<entry>").count(), 2, "{feed}");
        assert!(feed.contains("運用開始") && feed.contains("熊本県が電子保証の運用を始めました"));
    }

    #[test]
    fn a_written_overview_replaces_the_generated_one() {
        let dir = root(&[("content/adopters/_index.md", "---\ntitle: 導入状況\n---\n")]);
        let (site, output) = Site::load(dir.path()).expect("valid");
        let overview = site
            .pages
            .iter()
            .find(|p| p.path == ADOPTERS_PATH)
            .expect("overview");
        assert_eq!(overview.data, PageData::Markdown);
        assert!(text(&output, "adopters/index.html").contains("導入状況"));
    }

    #[test]
    fn broken_links_are_reported_where_they_were_written() {
        let dir = root(&[(
            "content/notices/b.md",
            "---\ntitle: 二つ目\n---\n\n本文\n\n[どこにもない](/nowhere/)\n",
        )]);
        let errors = Site::load(dir.path()).err().expect("a broken link");
        let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            ["content/notices/b.md:7:1: リンク「/denshi/nowhere/」: リンク先のページがありません"]
        );
    }

    #[test]
    fn raw_html_is_refused_unless_the_site_allows_it() {
        let page = (
            "content/notices/b.md",
            "---\ntitle: 二つ目\n---\n\n本文\n\n<script>alert(1)</script>\n",
        );
        let dir = root(&[page]);
        let errors = Site::load(dir.path()).err().expect("raw HTML");
        let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [format!(
                "content/notices/b.md:7:1: {}",
                markdown::UNSAFE_MARKUP
            )]
        );
        let allowed = format!("{CONFIG}[markdown]\nunsafe = true\n");
        let dir = root(&[page, ("hosho.toml", &allowed)]);
        let (_, output) = Site::load(dir.path()).expect("allowed");
        assert!(text(&output, "notices/b/index.html").contains("<script>alert(1)</script>"));
    }

    #[test]
    fn fonts_stay_out_of_the_public_assets() {
        let dir = root(&[
            ("assets/fonts/x.ttf", "font"),
            ("assets/img/a.svg", "<svg/>"),
        ]);
        let (_, output) = Site::load(dir.path()).expect("valid");
        assert!(output.files.contains_key("assets/img/a.svg"));
        assert!(output.files.contains_key("assets/css/style.css"));
        assert!(!output.files.keys().any(|p| p.contains("fonts")));
    }
}
