//! Fixture site roots built into temporary directories with the real `hosho` binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use scraper::{Html, Selector};

pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create fixture directory");
    let mut entries: Vec<_> = fs::read_dir(from)
        .unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
        .map(|e| e.expect("dir entry"))
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// What one run of `hosho` printed and returned.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// A site root in a temporary directory.
pub(crate) struct SiteDir {
    _tmp: tempfile::TempDir,
    pub(crate) root: PathBuf,
}

impl SiteDir {
    /// `tests/fixtures/NAME`, copied.
    pub(crate) fn fixture(name: &str) -> SiteDir {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("site");
        copy_dir(&repo_root().join("tests/fixtures").join(name), &root);
        SiteDir { _tmp: tmp, root }
    }

    /// The repository's own demo site root, copied.
    pub(crate) fn demo() -> SiteDir {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("site");
        fs::create_dir_all(&root).expect("mkdir");
        for dir in ["content", "data", "templates", "assets"] {
            copy_dir(&repo_root().join(dir), &root.join(dir));
        }
        fs::copy(repo_root().join("hosho.toml"), root.join("hosho.toml")).expect("copy hosho.toml");
        SiteDir { _tmp: tmp, root }
    }

    pub(crate) fn hosho(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_hosho"))
            .args(args)
            .arg("--root")
            .arg(&self.root)
            .env_remove("RUST_LOG")
            .output()
            .expect("run hosho");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `hosho build`, which must succeed.
    pub(crate) fn build(&self) -> Run {
        let run = self.hosho(&["build"]);
        assert_eq!(run.code, 0, "build failed: {run:?}");
        run
    }

    pub(crate) fn out(&self) -> PathBuf {
        self.root.join("site-out")
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.out().join(rel))
            .unwrap_or_else(|e| panic!("read site-out/{rel}: {e}"))
    }

    pub(crate) fn page(&self, rel: &str) -> Html {
        Html::parse_document(&self.read(rel))
    }
}

/// The text of every element matching `selector`: text nodes joined by a space, whitespace collapsed.
pub(crate) fn texts(doc: &Html, selector: &str) -> Vec<String> {
    let sel = Selector::parse(selector).unwrap_or_else(|e| panic!("selector {selector}: {e}"));
    doc.select(&sel)
        .map(|e| {
            e.text()
                .collect::<Vec<_>>()
                .join(" ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

pub(crate) fn count(doc: &Html, selector: &str) -> usize {
    texts(doc, selector).len()
}

pub(crate) fn attrs(doc: &Html, selector: &str, attr: &str) -> Vec<String> {
    let sel = Selector::parse(selector).unwrap_or_else(|e| panic!("selector {selector}: {e}"));
    doc.select(&sel)
        .filter_map(|e| e.value().attr(attr).map(str::to_owned))
        .collect()
}

/// Every file under `dir` with its bytes, by relative path.
pub(crate) fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    fn walk(base: &Path, dir: &Path, files: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).expect("read dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, files);
            } else {
                let rel = path
                    .strip_prefix(base)
                    .expect("inside")
                    .to_string_lossy()
                    .into_owned();
                files.insert(rel, fs::read(&path).expect("read"));
            }
        }
    }
    walk(dir, dir, &mut files);
    files
}

/// The `<title>` of every `<entry>` of an Atom feed, in order.
pub(crate) fn feed_titles(feed: &str) -> Vec<&str> {
    feed.split("<entry>")
        .skip(1)
        .filter_map(|e| e.split("<title>").nth(1)?.split("</title>").next())
        .collect()
}

/// The text of a PDF through pdftotext (poppler-utils, installed by scripts/test), with
/// `options` such as `-layout`.
/// The number of pages of a PDF (pdfinfo, poppler-utils).
pub(crate) fn pdf_pages(path: &Path) -> usize {
    let out = Command::new("pdfinfo")
        .arg(path)
        .output()
        .expect("pdfinfo (poppler-utils) is installed by scripts/test");
    assert!(out.status.success(), "pdfinfo {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no page count for {}", path.display()))
}

pub(crate) fn pdftotext(path: &Path, options: &[&str]) -> String {
    let out = Command::new("pdftotext")
        .args(options)
        .args(["-enc", "UTF-8"])
        .arg(path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed by scripts/test");
    assert!(out.status.success(), "pdftotext {}", path.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `c` is Japanese (kana, kanji, full-width forms and punctuation).
fn japanese(c: char) -> bool {
    matches!(c, '\u{3000}'..='\u{30ff}' | '\u{3400}'..='\u{9fff}' | '\u{ff01}'..='\u{ff5e}')
}

/// The spacing rule of docs/style.md: in what a reader sees, no half-width space stands
/// between Japanese and a half-width letter or digit (「PDFファイル」, 「10桁」). Code and
/// preformatted text are left out; text is read across tags, as the reader sees it.
pub(crate) fn assert_japanese_spacing(html: &str, what: &str) {
    let doc = Html::parse_document(html);
    let mut text = String::new();
    let body = Selector::parse("body").expect("selector");
    for root in doc.select(&body) {
        for node in root.descendants() {
            let Some(t) = node.value().as_text() else {
                continue;
            };
            let hidden = node.ancestors().any(|a| {
                a.value()
                    .as_element()
                    .is_some_and(|e| matches!(e.name(), "code" | "pre" | "script" | "style"))
            });
            text.push_str(if hidden { "\u{1}" } else { t });
        }
    }
    let chars: Vec<char> = text.chars().collect();
    for w in chars.windows(3) {
        let latin = |c: char| c.is_ascii_alphanumeric();
        let broken =
            w[1] == ' ' && ((japanese(w[0]) && latin(w[2])) || (latin(w[0]) && japanese(w[2])));
        assert!(
            !broken,
            "{what}: a space between Japanese and Latin text in 「{}」",
            w.iter().collect::<String>()
        );
    }
}
