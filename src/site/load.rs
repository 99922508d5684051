//! Loading the public site: `hosho.toml`, `content/`, `data/adopters/`, `data/qa.yaml` and
//! `templates/`, each as far as it is valid, into the [`Site`] model, with the pages hosho
//! generates (the adoption tables' pages and the orderers' pages).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::common::config::Config;
use crate::common::diagnostics::{Diagnostic, Diagnostics};
use crate::common::fingerprint::Fingerprint;
use crate::common::root::{ADOPTERS_DIR, CONTENT_DIR};
use crate::site::adopters::{self, AdopterTable, ADOPTERS_PATH};
use crate::site::cache::InputCache;
use crate::site::content::{Page, PageData, PageKind};
use crate::site::model::Site;
use crate::site::qa::QaEntry;
use crate::site::render::Renderer;
use crate::site::{content, feed, fees, markdown, pages, qa, render, timeline};

/// What a site root holds, each part loaded as far as it is valid.
struct Loaded {
    config: Option<Config>,
    pages: Vec<Arc<Page>>,
    tables: Vec<AdopterTable>,
    qa: Vec<QaEntry>,
    templates: render::LoadedTemplates,
    unavailable: BTreeSet<String>,
}

impl Loaded {
    /// Reads every input; problems go to `d`.
    fn read(root: &Path, pages: &mut InputCache, d: &mut Diagnostics) -> Loaded {
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
        let loaded = pages::load_pages(root, markdown, pages, d);
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
        let templates = Renderer::load(root, pages.templates(), d);
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
        self.pages
            .extend(tables.map(|(i, t)| Arc::new(table_page(i, t))));
        let orderers = self.tables.iter().enumerate().flat_map(|(i, t)| {
            t.adopters
                .iter()
                .enumerate()
                .filter(|(_, a)| a.submission.is_some())
                .map(move |(j, _)| Arc::new(orderer_page(i, t, j)))
        });
        let orderers: Vec<Arc<Page>> = orderers.collect();
        self.pages.extend(orderers);
        if !self.tables.is_empty() && !self.pages.iter().any(|p| p.path == ADOPTERS_PATH) {
            self.pages.push(Arc::new(adopters_overview_page()));
        }
        if !self.pages.iter().any(|p| p.path == RECEIPT_PATH) {
            self.pages.push(Arc::new(receipt_page()));
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
    /// Reads and validates everything, reusing the pages in `pages` whose files have not
    /// changed ([`InputCache::disabled`] reuses none). What is valid is loaded and the rest
    /// reported: a site is returned whenever the settings and templates are usable, so that
    /// rendering and the link check can still report their own problems in the same run.
    pub fn load(root: &Path, pages: &mut InputCache) -> (Option<Site>, Diagnostics) {
        let started = Instant::now();
        let mut d = Diagnostics::default();
        let mut loaded = Loaded::read(root, pages, &mut d);
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
            sections: Arc::default(),
            updates: (Arc::default(), 0),
            tables_fingerprint: 0,
        };
        site.sections = Arc::new(site.list_sections());
        site.updates.0 = Arc::new(feed::entries(&site.config, &site.pages, &site.tables));
        site.register_template_data();
        site.set_trust(None);
        tracing::debug!(elapsed = ?started.elapsed(), "site model ready");
        (Some(site), d)
    }

    /// Data templates can ask for: `adopter_tables()`, `qa()`, `timeline()`,
    /// `sections()`, `updates()` and `fee_estimates()`.
    fn register_template_data(&mut self) {
        let r = &mut self.renderer;
        self.updates.1 = r.register_list("updates", Arc::clone(&self.updates.0));
        self.tables_fingerprint = r.register_data("adopter_tables", self.tables.clone());
        r.register_data("qa", self.qa.clone());
        r.register_data("timeline", self.timeline.clone());
        r.register_data("sections", Arc::clone(&self.sections));
        r.register_data("fee_estimates", fees::estimates(&self.config.fees));
    }
}

/// Where the page that checks a 確認記録 stands.
pub(super) const RECEIPT_PATH: &str = "/receipt/";

/// `/receipt/`: a 確認記録 checked in the browser, against the keys the site publishes.
fn receipt_page() -> Page {
    Page {
        template: "receipt.html".to_owned(),
        data: PageData::ReceiptCheck,
        description: Some(
            "「電子証書の確認」で保存した確認記録（電子ファイル）を、通信せずに検証します。"
                .to_owned(),
        ),
        fingerprint: Fingerprint::new().bytes(RECEIPT_PATH.as_bytes()).finish(),
        ..Page::new(
            PathBuf::from("content/receipt.md"),
            PageKind::Page,
            RECEIPT_PATH.to_owned(),
            Some("/".to_owned()),
            "確認記録の検証".to_owned(),
        )
    }
}

fn adopters_overview_page() -> Page {
    Page {
        template: "adopters.html".to_owned(),
        data: PageData::AdoptersOverview,
        fingerprint: Fingerprint::new().bytes(ADOPTERS_PATH.as_bytes()).finish(),
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
        fingerprint: Fingerprint::new().json(table).finish(),
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
            "{}へ「電子証書閲覧用『認証キー』等のお知らせ」を提出する方法です。",
            adopter.name
        )),
        data: PageData::Orderer(table_index, row),
        fingerprint: Fingerprint::new().json(table).number(row as u64).finish(),
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
    use crate::common::diagnostics::InputErrors;
    use crate::site::cache::RenderCache;
    use crate::site::output::{MemorySink, Output};

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

    /// Loads and renders `root` in memory, failing with every problem (links included).
    fn load_valid(root: &Path) -> Result<(Site, Output), InputErrors> {
        let (site, mut d) = Site::load(root, &mut InputCache::disabled());
        let sink = MemorySink::default();
        let rendered = site
            .as_ref()
            .map(|s| s.render(&sink, &RenderCache::default(), &mut d));
        match (site, rendered) {
            (Some(site), Some(Ok(_))) if d.is_empty() => Ok((site, sink.into_output())),
            _ => Err(InputErrors(d.sorted())),
        }
    }

    fn text(output: &Output, path: &str) -> String {
        String::from_utf8(output.files[path].clone()).expect("utf-8")
    }

    #[test]
    fn tables_are_generated_pages_with_their_data() {
        let dir = root(&[]);
        let (site, output) = load_valid(dir.path()).expect("valid");
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
        let (site, output) = load_valid(dir.path()).expect("valid");
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
        let errors = load_valid(dir.path()).err().expect("a broken link");
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
        let errors = load_valid(dir.path()).err().expect("raw HTML");
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
        let (_, output) = load_valid(dir.path()).expect("allowed");
        assert!(text(&output, "notices/b/index.html").contains("<script>alert(1)</script>"));
    }

    #[test]
    fn fonts_stay_out_of_the_public_assets() {
        let dir = root(&[
            ("assets/fonts/x.ttf", "font"),
            ("assets/img/a.svg", "<svg/>"),
        ]);
        let (_, output) = load_valid(dir.path()).expect("valid");
        assert!(output.files.contains_key("assets/img/a.svg"));
        assert!(output.files.contains_key("assets/css/style.css"));
        assert!(!output.files.keys().any(|p| p.contains("fonts")));
    }
}
