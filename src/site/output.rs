//! Rendering the model into output files: every page, the 404 page, feed, sitemap, open
//! data and assets. Each file goes to a [`Sink`] as soon as it is made (`hosho build`
//! writes it into the staging directory at once, so the pages are never all in memory);
//! what the link check needs of it is kept ([`FileLinks`]).
//!
//! With a [`RenderCache`] from the previous render into the same directory, a file whose
//! fingerprint has not changed is not rendered or written again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use rayon::prelude::*;
use tera::Context;

use crate::common::diagnostics::{Diagnostic, Diagnostics};
use crate::common::fingerprint::Fingerprint;
use crate::common::root::{ADOPTERS_DIR, ASSETS_DIR};
use crate::common::walk::{self, Walk};
use crate::site::cache::{RenderCache, RenderedFile};
use crate::site::content::{Page, PageData};
use crate::site::links::FileLinks;
use crate::site::model::{
    output_file, NavItem, PageSummary, Site, BUILT_IN_ASSETS, PRIVATE_ASSET_DIRS,
};
use crate::site::{feed, opendata};

/// Where rendered files go.
pub trait Sink: Sync {
    /// Called once, before any file, with every directory the output will have (relative,
    /// parents first); fails with the directory it could not make.
    fn prepare(&self, dirs: &[String]) -> Result<(), (String, std::io::Error)>;
    /// Takes one file (path relative to the output directory).
    fn put(&self, path: &str, bytes: Vec<u8>) -> std::io::Result<()>;
}

/// The files of one render, by path relative to the output directory, in memory (`hosho
/// check`, tests, and the live preview until the render is known to be good).
#[derive(Debug, Default)]
pub struct Output {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Output {
    pub fn page_count(&self) -> usize {
        page_count(self.files.keys())
    }
}

/// How many of these output files are pages (`…/index.html`).
fn page_count<'a>(paths: impl Iterator<Item = &'a String>) -> usize {
    paths.filter(|p| p.ends_with("index.html")).count()
}

/// A [`Sink`] that keeps the files in memory.
#[derive(Debug, Default)]
pub struct MemorySink(Mutex<Output>);

impl MemorySink {
    pub fn into_output(self) -> Output {
        self.0.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sink for MemorySink {
    fn prepare(&self, _: &[String]) -> Result<(), (String, std::io::Error)> {
        Ok(())
    }

    fn put(&self, path: &str, bytes: Vec<u8>) -> std::io::Result<()> {
        let mut output = self.0.lock().unwrap_or_else(|e| e.into_inner());
        output.files.insert(path.to_owned(), bytes);
        Ok(())
    }
}

/// What a render made.
#[derive(Debug, Default)]
pub struct Rendered {
    /// Every output file, with its fingerprint and links: the next render's cache.
    pub files: BTreeMap<String, RenderedFile>,
    /// How many files went to the sink (the others were unchanged).
    pub written: usize,
}

impl Rendered {
    pub fn page_count(&self) -> usize {
        page_count(self.files.keys())
    }

    /// Files of `previous` that this render no longer makes.
    pub fn removed<'a>(&'a self, previous: &'a RenderCache) -> impl Iterator<Item = &'a str> {
        previous
            .files
            .keys()
            .filter(|p| !self.files.contains_key(*p))
            .map(String::as_str)
    }

    /// The cache for the next render into the same directory.
    pub fn into_cache(self) -> RenderCache {
        RenderCache { files: self.files }
    }
}

/// Why a render stopped.
#[derive(Debug)]
pub enum RenderError {
    /// Some file could not be made: the problems are in the diagnostics.
    Problems,
    /// A file or directory (relative to the output) could not be written.
    Write(String, std::io::Error),
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Problems => write!(f, "描画できないファイルがあります"),
            RenderError::Write(path, e) => write!(f, "{path} を書けません: {e}"),
        }
    }
}

/// Why one file was not made.
enum Failure {
    Input(Diagnostic),
    Write(String, std::io::Error),
}

impl std::error::Error for RenderError {}

/// One output file to make.
struct Job<'a> {
    path: String,
    fingerprint: u64,
    what: What<'a>,
}

enum What<'a> {
    /// A page to render with its template.
    Page(&'a Page),
    /// A file already made (or what stopped it).
    Made(Result<Vec<u8>, Diagnostic>),
    /// A file made only if its fingerprint changed.
    Lazy(Box<dyn FnOnce() -> Result<Vec<u8>, Diagnostic> + Send + 'a>),
}

impl<'a> Job<'a> {
    /// A file already made: its fingerprint is its bytes'.
    fn made(path: String, file: Result<Vec<u8>, Diagnostic>) -> Job<'a> {
        let fingerprint = match &file {
            Ok(bytes) => Fingerprint::new().bytes(bytes).finish(),
            Err(_) => 0,
        };
        Job {
            path,
            fingerprint,
            what: What::Made(file),
        }
    }

    fn lazy(
        path: &str,
        fingerprint: u64,
        make: impl FnOnce() -> Result<Vec<u8>, Diagnostic> + Send + 'a,
    ) -> Job<'a> {
        Job {
            path: path.to_owned(),
            fingerprint,
            what: What::Lazy(Box::new(make)),
        }
    }
}

/// What the context of every page shares.
struct Shared<'a> {
    base: Context,
    /// Settings, navigation and every section's list.
    fingerprint: u64,
    sections: BTreeMap<&'a str, (u64, &'a [PageSummary])>,
    /// [`crate::site::render::Renderer::fingerprint`] of each template used.
    templates: HashMap<&'a str, u64>,
}

impl Site {
    /// Renders every output file whose fingerprint differs from `cache`'s into `sink`, and
    /// checks the internal links of all of them (problems go to `d`).
    pub fn render(
        &self,
        sink: &dyn Sink,
        cache: &RenderCache,
        d: &mut Diagnostics,
    ) -> Result<Rendered, RenderError> {
        let started = Instant::now();
        let nav = self.nav();
        let shared = self.shared(&nav);
        let mut jobs: Vec<Job<'_>> = self
            .pages
            .iter()
            .map(|p| self.page_job(p, &shared))
            .collect();
        jobs.extend(self.special_files(&nav, &shared));
        self.assets(&mut jobs, d);
        tracing::debug!(elapsed = ?started.elapsed(), jobs = jobs.len(), "jobs ready");
        let dirs = directories(&jobs);
        sink.prepare(&dirs)
            .map_err(|(dir, e)| RenderError::Write(dir, e))?;
        let base_path = self.config.base_path.as_str();
        let results: Vec<Result<(String, RenderedFile, bool), Failure>> = jobs
            .into_par_iter()
            .map(|job| self.make(job, &shared, cache, sink, base_path))
            .collect();
        let mut rendered = Rendered::default();
        let problems_before = d.len();
        for result in results {
            match result {
                Ok((path, file, written)) => {
                    rendered.written += usize::from(written);
                    rendered.files.insert(path, file);
                }
                Err(Failure::Input(problem)) => d.push(problem),
                Err(Failure::Write(path, e)) => return Err(RenderError::Write(path, e)),
            }
        }
        tracing::debug!(elapsed = ?started.elapsed(), files = rendered.files.len(), written = rendered.written, "rendered");
        if d.len() > problems_before {
            // Some file is missing from the output: links to it would be false alarms.
            return Err(RenderError::Problems);
        }
        let check_started = Instant::now();
        self.check_links(&rendered.files, cache, d);
        tracing::debug!(elapsed = ?check_started.elapsed(), "checked links");
        Ok(rendered)
    }

    fn shared<'a>(&'a self, nav: &[NavItem]) -> Shared<'a> {
        let base = self.base_context(nav);
        let fingerprint = Fingerprint::new().json(&self.config).json(nav).finish();
        let sections = self
            .sections
            .iter()
            .map(|(path, list)| {
                let f = Fingerprint::new().json(list).finish();
                (path.as_str(), (f, list.as_slice()))
            })
            .collect();
        let mut templates = HashMap::new();
        for page in &self.pages {
            templates
                .entry(page.template.as_str())
                .or_insert_with(|| self.renderer.fingerprint(&page.template));
        }
        Shared {
            base,
            fingerprint,
            sections,
            templates,
        }
    }

    /// A page's job: its fingerprint covers its own data, its section's list, the shared
    /// context and its template's.
    fn page_job<'a>(&self, page: &'a Page, shared: &Shared<'_>) -> Job<'a> {
        let children = shared
            .sections
            .get(page.path.as_str())
            .map_or(0, |(f, _)| *f);
        let template = shared
            .templates
            .get(page.template.as_str())
            .copied()
            .unwrap_or_default();
        let fingerprint = Fingerprint::new()
            .number(page.fingerprint)
            .bytes(page.path.as_bytes())
            .bytes(page.template.as_bytes())
            .number(template)
            .number(shared.fingerprint)
            .number(children)
            .finish();
        Job {
            path: output_file(&page.path),
            fingerprint,
            what: What::Page(page),
        }
    }

    /// Makes one file unless the cache has it, and hands it to the sink.
    fn make(
        &self,
        job: Job<'_>,
        shared: &Shared<'_>,
        cache: &RenderCache,
        sink: &dyn Sink,
        base_path: &str,
    ) -> Result<(String, RenderedFile, bool), Failure> {
        if let Some(cached) = cache.files.get(&job.path) {
            if cached.fingerprint == job.fingerprint {
                return Ok((job.path, cached.clone(), false));
            }
        }
        let is_html = job.path.ends_with(".html");
        let (bytes, links) = match job.what {
            What::Page(page) => {
                let html = self.render_page(page, shared).map_err(Failure::Input)?;
                let links = FileLinks::of(&job.path, &html, base_path);
                (html.into_bytes(), Some(links))
            }
            What::Made(file) => (file.map_err(Failure::Input)?, None),
            What::Lazy(make) => (make().map_err(Failure::Input)?, None),
        };
        let links = match links {
            Some(links) => Some(links),
            None if is_html => Some(FileLinks::of(
                &job.path,
                &String::from_utf8_lossy(&bytes),
                base_path,
            )),
            None => None,
        }
        .map(std::sync::Arc::new);
        sink.put(&job.path, bytes)
            .map_err(|e| Failure::Write(job.path.clone(), e))?;
        let file = RenderedFile {
            fingerprint: job.fingerprint,
            links,
        };
        Ok((job.path, file, true))
    }

    fn render_page(&self, page: &Page, shared: &Shared<'_>) -> Result<String, Diagnostic> {
        let mut c = shared.base.clone();
        c.insert("page", page);
        c.insert("current_path", &page.path);
        c.insert("page_url", &self.url(&page.path));
        let children = shared.sections.get(page.path.as_str());
        c.insert("children", children.map_or(&[][..], |(_, list)| list));
        match page.data {
            PageData::AdopterTable(i) => c.insert("table", &self.tables[i]),
            PageData::Orderer(i, j) => {
                c.insert("table", &self.tables[i]);
                c.insert("adopter", &self.tables[i].adopters[j]);
            }
            PageData::Markdown | PageData::AdoptersOverview | PageData::ReceiptCheck => {}
        }
        let source = page.source.display().to_string();
        self.renderer.render(&page.template, &c, &source)
    }

    /// 404 page, feed, sitemap and open data, each made only when its fingerprint changed.
    fn special_files<'a>(&'a self, nav: &'a [NavItem], shared: &Shared<'_>) -> Vec<Job<'a>> {
        let render = move |template: &str, c: &Context| {
            self.renderer
                .render(template, c, template)
                .map(String::into_bytes)
        };
        let template = |name: &str| {
            Fingerprint::new()
                .number(self.renderer.fingerprint(name))
                .number(shared.fingerprint)
        };
        let not_found = move || {
            let mut c = self.base_context(nav);
            c.insert("current_path", "/404.html");
            c.insert("page_url", &self.url("/404.html"));
            render("404.html", &c)
        };
        let atom = move || self.render_atom(nav);
        let urls = feed::sitemap(&self.config, &self.pages);
        let sitemap_fingerprint = template("sitemap.xml").json(&urls).finish();
        let sitemap = move || {
            let mut c = Context::new();
            c.insert("urls", &urls);
            render("sitemap.xml", &c)
        };
        let atom_fingerprint = template("atom.xml")
            .number(self.updates.1)
            .number(self.tables_fingerprint)
            .finish();
        [
            Job::lazy("404.html", template("404.html").finish(), not_found),
            Job::lazy("atom.xml", atom_fingerprint, atom),
            Job::lazy("sitemap.xml", sitemap_fingerprint, sitemap),
        ]
        .into_iter()
        .chain(self.open_data_jobs())
        .collect()
    }

    /// The Atom feed of the dated entries and the adoption tables.
    fn render_atom(&self, nav: &[NavItem]) -> Result<Vec<u8>, Diagnostic> {
        let entries = &self.updates.0;
        let updated = entries
            .iter()
            .map(|e| e.date)
            .chain(self.tables.iter().map(|t| t.as_of))
            .max();
        // Atom requires <updated>; a site without any dated entry uses a fixed date.
        let updated = updated.map_or_else(|| "1970-01-01T00:00:00Z".to_owned(), feed::rfc3339_jst);
        let mut c = self.base_context(nav);
        c.insert("feed_updated", &updated);
        c.insert("entries", entries.as_slice());
        c.insert("feed_url", &self.config.absolute_url("/atom.xml"));
        self.renderer
            .render("atom.xml", &c, "atom.xml")
            .map(String::into_bytes)
    }

    /// The adoption tables as open data: JSON and CSV.
    fn open_data_jobs(&self) -> [Job<'_>; 2] {
        let json = move || {
            opendata::adopters_json(&self.tables)
                .map_err(|e| Diagnostic::file(ADOPTERS_DIR, format!("JSON を作れません: {e}")))
        };
        let csv = move || {
            opendata::adopters_csv(&self.tables)
                .map_err(|e| Diagnostic::file(ADOPTERS_DIR, format!("CSV を作れません: {e}")))
        };
        let tables = |kind: &str| {
            Fingerprint::new()
                .bytes(kind.as_bytes())
                .number(self.tables_fingerprint)
                .finish()
        };
        [
            Job::lazy("data/adopters.json", tables("json"), json),
            Job::lazy("data/adopters.csv", tables("csv"), csv),
        ]
    }

    /// `assets/` (but fonts) to `site-out/assets/`, over the built-in theme's files.
    fn assets(&self, jobs: &mut Vec<Job<'_>>, d: &mut Diagnostics) {
        let mut assets: BTreeMap<String, Result<Vec<u8>, Diagnostic>> = BUILT_IN_ASSETS
            .iter()
            .map(|(name, text)| (format!("{ASSETS_DIR}/{name}"), Ok(text.as_bytes().to_vec())))
            .collect();
        let walk = Walk {
            flat: false,
            skip_dirs: &PRIVATE_ASSET_DIRS,
        };
        for file in walk::files(&self.root, ASSETS_DIR, walk, d) {
            let bytes = std::fs::read(&file.abs)
                .map_err(|e| Diagnostic::file(file.rel, format!("読めません: {e}")));
            assets.insert(format!("{ASSETS_DIR}/{}", file.name), bytes);
        }
        jobs.extend(assets.into_iter().map(|(path, file)| Job::made(path, file)));
    }
}

/// Every directory the jobs' files are in, parents first.
fn directories(jobs: &[Job<'_>]) -> Vec<String> {
    let mut dirs = std::collections::BTreeSet::new();
    for job in jobs {
        let mut path = job.path.as_str();
        while let Some((dir, _)) = path.rsplit_once('/') {
            if !dirs.insert(dir.to_owned()) {
                break;
            }
            path = dir;
        }
    }
    // Sorted, a parent comes before its children.
    dirs.into_iter().collect()
}
