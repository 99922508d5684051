//! Pages from `content/**/*.md` (`docs/data.md`): YAML front matter between `---` lines,
//! Markdown body.
//!
//! `content/_index.md` is the home page, `content/DIR/_index.md` a section listing the
//! pages in `DIR`, every other file a page at `/DIR/NAME/`. Line numbers of every problem
//! count from the top of the whole file, front matter included.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;

use crate::common::diagnostics::{Diagnostic, Diagnostics};
use crate::common::root::CONTENT_DIR;
use crate::common::walk;
use crate::common::yaml::{field, Document, Field, NodePath, Reader};
use crate::site::markdown::{self, SourceLink};

const TITLE: Field = field("title", "表題");
const DATE: Field = field("date", "日付");
const WEIGHT: Field = field("weight", "並び順");
const DRAFT: Field = field("draft", "下書き");
const TEMPLATE: Field = field("template", "テンプレート");
const DESCRIPTION: Field = field("description", "説明");
const FRONT_MATTER: [Field; 6] = [TITLE, DATE, WEIGHT, DRAFT, TEMPLATE, DESCRIPTION];

/// What a content file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    Home,
    Section,
    Page,
}

/// What a page is made from besides its front matter: a Markdown file, or data the build
/// generates a page for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageData {
    /// A Markdown file under `content/`.
    Markdown,
    /// One adoption table (`/adopters/<slug>/`): the index into the site's tables.
    AdopterTable(usize),
    /// The overview of all adoption tables (`/adopters/`), unless `content/adopters/_index.md`
    /// is written.
    AdoptersOverview,
    /// One orderer's rules for receiving the notice (`/adopters/<slug>/<page>/`): the table
    /// and the row.
    Orderer(usize, usize),
    /// The page that checks a 確認記録 in the browser (`/receipt/`), unless
    /// `content/receipt.md` is written.
    ReceiptCheck,
}

/// One page of the site.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// The source file relative to the site root (`content/qa.md`).
    pub source: PathBuf,
    pub kind: PageKind,
    /// Site path without the base path: `/`, `/notices/`, `/notices/niihama/`.
    pub path: String,
    /// Path of the section this page belongs to (`/` for top-level pages).
    pub section: Option<String>,
    pub title: String,
    pub date: Option<NaiveDate>,
    pub weight: Option<i64>,
    pub draft: bool,
    /// Template named in the front matter, or the default for the kind.
    pub template: String,
    /// Where `template:` was written, to report an unknown template there.
    #[serde(skip)]
    pub template_at: Option<(usize, usize)>,
    pub description: Option<String>,
    /// The rendered body.
    pub content: String,
    #[serde(skip)]
    pub links: Vec<PageLink>,
    #[serde(skip)]
    pub anchors: Vec<String>,
    /// What the page is made from.
    #[serde(skip)]
    pub data: PageData,
    /// A fingerprint of everything the page was made from (its file's text and path, or the
    /// data of a generated page): what a rebuild compares to reuse its last rendering.
    #[serde(skip)]
    pub fingerprint: u64,
}

/// A link written in a Markdown file, with its position there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageLink {
    pub target: String,
    pub line: usize,
    pub column: usize,
}

impl Page {
    /// A page with no body, date, weight or description, and the default template of its kind.
    pub fn new(
        source: PathBuf,
        kind: PageKind,
        path: String,
        section: Option<String>,
        title: String,
    ) -> Page {
        let template = match kind {
            PageKind::Home => "index.html",
            PageKind::Section => "section.html",
            PageKind::Page => "page.html",
        };
        Page {
            source,
            kind,
            path,
            section,
            title,
            date: None,
            weight: None,
            draft: false,
            template: template.to_owned(),
            template_at: None,
            description: None,
            content: String::new(),
            links: Vec::new(),
            anchors: Vec::new(),
            data: PageData::Markdown,
            fingerprint: 0,
        }
    }
}

/// Reports pages (written or generated) that would be written to the same URL.
pub fn check_unique_paths(pages: &[Arc<Page>], diagnostics: &mut Diagnostics) {
    let mut seen: std::collections::HashMap<&str, &Path> = std::collections::HashMap::new();
    for page in pages {
        if let Some(first) = seen.insert(&page.path, &page.source) {
            diagnostics.push(Diagnostic::file(
                &page.source,
                format!(
                    "{} と同じ URL {} になります。どちらかの名前を変えてください",
                    first.display(),
                    page.path
                ),
            ));
        }
    }
}

/// Site path and kind of a content file (`content/a/b.md` → `/a/b/`).
pub(crate) fn site_path(
    rel_in_content: &Path,
) -> Result<(String, PageKind, Option<String>), String> {
    let parts: Vec<String> = rel_in_content
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let Some((file, dirs)) = parts.split_last() else {
        return Err("ファイル名がありません".into());
    };
    let stem = file.trim_end_matches(".md");
    for name in dirs.iter().map(String::as_str).chain(std::iter::once(stem)) {
        if name != "_index" && !walk::is_url_name(name) {
            return Err(format!(
                "ファイル名・ディレクトリ名「{name}」は URL になるので、半角の英小文字・数字・-・_ だけで付けてください"
            ));
        }
    }
    let dir_path: String = dirs.iter().map(|d| format!("/{d}")).collect();
    Ok(if stem == "_index" {
        let kind = if dirs.is_empty() {
            PageKind::Home
        } else {
            PageKind::Section
        };
        let section = dirs.split_last().map(|(_, parent)| {
            format!(
                "{}/",
                parent.iter().map(|d| format!("/{d}")).collect::<String>()
            )
        });
        (format!("{dir_path}/"), kind, section)
    } else {
        (
            format!("{dir_path}/{stem}/"),
            PageKind::Page,
            Some(format!("{dir_path}/")),
        )
    })
}

/// Splits `---\nYAML\n---\nbody`: the YAML text and the byte offset where the body starts.
fn split_front_matter(text: &str) -> Option<(&str, usize)> {
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))?;
    let start = text.len() - rest.len();
    let mut pos = start;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Some((&text[start..pos], pos + line.len()));
        }
        pos += line.len();
    }
    None
}

/// Parses a page's text as the build does, its problems into `diagnostics` (the fuzzer's
/// way in).
pub(crate) fn parse_page_text(
    raw: &str,
    rel: &Path,
    markdown: markdown::Settings<'_>,
    diagnostics: &mut Diagnostics,
) {
    if let Err(problems) = parse_page(raw, rel, markdown) {
        diagnostics.extend(problems);
    }
}

/// Reads the front matter `yaml` of the file `rel` into `page`.
fn read_front_matter(rel: &Path, yaml: &str, page: &mut Page) -> Result<(), Diagnostics> {
    let doc = Document::parse(rel, yaml, 1).map_err(Diagnostics::from)?;
    let mut r = Reader::new(&doc);
    let top = NodePath::default();
    let map = r.mapping(&doc.root, &top, "front matter", &FRONT_MATTER);
    if let Some(map) = map {
        page.title = r.string(map, &top, TITLE, true).unwrap_or_default();
        page.date = r.date(map, &top, DATE, false);
        page.weight = r.integer(map, &top, WEIGHT, false);
        page.draft = r.boolean(map, &top, DRAFT).unwrap_or(false);
        page.description = r.string(map, &top, DESCRIPTION, false);
        if let Some(template) = r.string(map, &top, TEMPLATE, false) {
            page.template_at = Some(doc.locate(&top.key(TEMPLATE.key), false));
            page.template = template;
        }
    }
    if !r.diagnostics.is_empty() {
        return Err(r.diagnostics);
    }
    Ok(())
}

/// Parses the text of content file `rel`.
pub(crate) fn parse_page(
    raw: &str,
    rel: &Path,
    markdown: markdown::Settings<'_>,
) -> Result<Page, Diagnostics> {
    let text = raw.strip_prefix('\u{feff}').unwrap_or(raw);
    let in_content = rel.strip_prefix(CONTENT_DIR).unwrap_or(rel);
    let (path, kind, section) =
        site_path(in_content).map_err(|m| Diagnostics::from(Diagnostic::file(rel, m)))?;
    let Some((yaml, body_start)) = split_front_matter(text) else {
        return Err(Diagnostic::file(
            rel,
            "先頭に front matter がありません。1行目を --- にし、title: などを書いて --- の行で閉じてください",
        )
        .into());
    };
    let mut page = Page::new(rel.to_path_buf(), kind, path, section, String::new());
    read_front_matter(rel, yaml, &mut page)?;
    let body = &text[body_start..];
    let rendered = markdown::render(body, markdown);
    let at = |offset: &usize, message: &str| {
        Diagnostic::at_offset(rel, text, body_start + offset, message)
    };
    let emphasis = rendered.unclosed_emphasis.iter();
    let problems = emphasis
        .map(|o| at(o, markdown::UNCLOSED_EMPHASIS))
        .chain(
            rendered
                .unsafe_markup
                .iter()
                .map(|o| at(o, markdown::UNSAFE_MARKUP)),
        )
        .fold(Diagnostics::default(), |mut d, e| {
            d.push(e);
            d
        });
    if !problems.is_empty() {
        return Err(problems);
    }
    page.links = rendered
        .links
        .iter()
        .map(|SourceLink { target, offset }| {
            let (line, column) = crate::common::diagnostics::line_column(text, body_start + offset);
            PageLink {
                target: target.clone(),
                line,
                column,
            }
        })
        .collect();
    page.content = rendered.html;
    page.anchors = rendered.anchors;
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_content_files() {
        let p = |s: &str| site_path(Path::new(s)).expect("valid name");
        assert_eq!(p("_index.md"), ("/".into(), PageKind::Home, None));
        assert_eq!(
            p("qa.md"),
            ("/qa/".into(), PageKind::Page, Some("/".into()))
        );
        assert_eq!(
            p("notices/_index.md"),
            ("/notices/".into(), PageKind::Section, Some("/".into()))
        );
        assert_eq!(
            p("notices/niihama.md"),
            (
                "/notices/niihama/".into(),
                PageKind::Page,
                Some("/notices/".into())
            )
        );
        assert!(site_path(Path::new("お知らせ.md")).is_err());
        assert!(site_path(Path::new("About.md")).is_err());
    }

    #[test]
    fn front_matter_split() {
        let text = "---\ntitle: a\n---\n本文\n";
        let (yaml, body) = split_front_matter(text).expect("has front matter");
        assert_eq!(yaml, "title: a\n");
        assert_eq!(&text[body..], "本文\n");
        assert!(split_front_matter("title: a\n").is_none());
        assert!(split_front_matter("---\ntitle: a\n").is_none());
    }

    fn load(text: &str) -> Result<Page, Vec<String>> {
        parse_page(
            text,
            Path::new("content/p.md"),
            markdown::Settings::new("/"),
        )
        .map_err(|d| d.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn errors_count_lines_in_the_whole_file() {
        let errs = load("---\ntitle: 案内\ndate: 2024-13-01\ncolor: red\n---\n本文\n")
            .expect_err("invalid");
        assert_eq!(
            errs,
            [
                "content/p.md:4:1: 知らないキー `color` があります。使えるキー: title（表題）, date（日付）, weight（並び順）, draft（下書き）, template（テンプレート）, description（説明）",
                "content/p.md:3:7: date（日付） の日付「2024-13-01」が読めません。YYYY-MM-DD の形の実在する日付で書いてください（例: 2024-04-01）",
            ]
        );
    }

    #[test]
    fn links_carry_their_line_in_the_file() {
        let page = load("---\ntitle: 案内\n---\n\n一行目\n\n[Q&A へ](/qa/)\n").expect("valid");
        assert_eq!(
            page.links,
            [PageLink {
                target: "/qa/".into(),
                line: 7,
                column: 1
            }]
        );
    }
}
