//! The built site's files, served by the daemon (the preview in building mode, or `site-out/`
//! beside the verification page in production). Paths are percent-decoded once, then every segment
//! is checked (no `..`, `.`, hidden names, separators or NUL); each component is looked at
//! with `symlink_metadata`, so no symlink is followed, in or out of the site directory.

use std::path::{Path, PathBuf};

use hyper::StatusCode;

use super::http::{self, Body};
use crate::common::files::read_capped;
use crate::preview::live::Live;

/// Names that only private outputs hold: keys, a vault, the daemon's state. A directory
/// holding any of them is never previewed.
const PRIVATE_NAMES: [&str; 8] = [
    "signing.pk8",
    "authkey.secret",
    "manifest.json",
    "manifest.json.sig",
    "cache.json",
    "high-water",
    "audit.jsonl",
    "hosho.toml",
];

/// Whether `name` is a certificate's or a notice's PDF (`<10 digits>.pdf`).
fn is_numbered_pdf(name: &str) -> bool {
    name.strip_suffix(".pdf")
        .is_some_and(|stem| stem.len() == 10 && stem.bytes().all(|b| b.is_ascii_digit()))
}

/// Refuses to preview `dir` unless `hosho build` wrote it as a public site: it has the
/// build's marker, and nothing in it is a key, a vault's or the daemon's file, or a
/// certificate or notice PDF (so `--site vault`, `--site notices` or `--site .` are refused).
pub(crate) fn check_site(dir: &Path) -> anyhow::Result<()> {
    use anyhow::{bail, Context as _};
    if !dir.join(crate::common::root::MARKER).is_file() {
        bail!(
            "{} は hosho build が書き出した公開サイトではない（{} がない）ため、プレビューしません。--site には site-out を指定してください",
            dir.display(),
            crate::common::root::MARKER
        );
    }
    for entry in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let entry = entry.with_context(|| format!("{} を読めません", dir.display()))?;
        let name = entry.file_name().to_string_lossy();
        if PRIVATE_NAMES.contains(&name.as_ref()) || is_numbered_pdf(&name) {
            bail!(
                "{} に非公開のファイル（{}）があるため、プレビューしません。--site には site-out を指定してください",
                dir.display(),
                entry.path().strip_prefix(dir).unwrap_or(entry.path()).display()
            );
        }
    }
    Ok(())
}

/// Files over this size are not served by the preview.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

pub(crate) struct SiteFiles {
    root: PathBuf,
    /// The site's base path (`/` or `/denshi/`): the site is served under it.
    base_path: String,
}

/// What a request path resolves to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resolved {
    File(PathBuf),
    /// A directory asked for without its trailing slash.
    Redirect(String),
    NotFound,
}

impl SiteFiles {
    pub(crate) fn new(root: PathBuf, base_path: &str) -> SiteFiles {
        SiteFiles {
            root,
            base_path: base_path.to_owned(),
        }
    }

    #[cfg(test)]
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn resolve(&self, raw_path: &str) -> Resolved {
        let Some(rest) = raw_path.strip_prefix(self.base_path.as_str()).or_else(|| {
            // `/denshi` for `/denshi/`
            (raw_path.len() + 1 == self.base_path.len() && self.base_path.starts_with(raw_path))
                .then_some("")
        }) else {
            return Resolved::NotFound;
        };
        if raw_path.len() < self.base_path.len() {
            return Resolved::Redirect(self.base_path.clone());
        }
        let Ok(decoded) = percent_encoding::percent_decode_str(rest).decode_utf8() else {
            return Resolved::NotFound;
        };
        let mut path = self.root.clone();
        let segments: Vec<&str> = decoded.split('/').collect();
        let last = segments.len() - 1;
        for (i, segment) in segments.iter().enumerate() {
            if segment.is_empty() {
                if i == last {
                    break; // trailing slash: a directory
                }
                return Resolved::NotFound;
            }
            let bad = segment.starts_with('.')
                || segment.contains(['\\', '\0'])
                || segment.chars().any(char::is_control);
            if bad {
                return Resolved::NotFound;
            }
            path.push(segment);
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => return Resolved::NotFound,
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.is_file() && i == last => return Resolved::File(path),
                _ => return Resolved::NotFound,
            }
        }
        // A directory: its index.html, with the trailing slash in the URL.
        if !raw_path.ends_with('/') {
            return Resolved::Redirect(format!("{raw_path}/"));
        }
        let index = path.join("index.html");
        match std::fs::symlink_metadata(&index) {
            Ok(m) if m.is_file() => Resolved::File(index),
            _ => Resolved::NotFound,
        }
    }

    /// The response for a GET of `raw_path`; HTML pages go through `live` (the live
    /// preview's script and problems) when there is one.
    pub(crate) fn serve(&self, raw_path: &str, live: Option<&Live>) -> hyper::Response<Body> {
        match self.resolve(raw_path) {
            Resolved::File(path) => match read(&path) {
                Some(bytes) => {
                    let kind = content_type(&path);
                    let bytes = match live {
                        Some(live) if kind.starts_with("text/html") => live.decorate(&bytes),
                        _ => bytes,
                    };
                    http::preview_response(StatusCode::OK, kind, bytes)
                }
                None => self.not_found(live),
            },
            Resolved::Redirect(to) => http::redirect(&to),
            Resolved::NotFound => self.not_found(live),
        }
    }

    /// The site's own 404 page when there is one.
    pub(crate) fn not_found(&self, live: Option<&Live>) -> hyper::Response<Body> {
        let page = self.root.join("404.html");
        let body = read(&page).unwrap_or_else(|| "ページが見つかりません".as_bytes().to_vec());
        let body = live.map_or(body.clone(), |live| live.decorate(&body));
        http::preview_response(StatusCode::NOT_FOUND, "text/html; charset=utf-8", body)
    }
}

/// The file's bytes: a regular file (no symlink) of at most [`MAX_FILE_BYTES`].
fn read(path: &Path) -> Option<Vec<u8>> {
    read_capped(path, MAX_FILE_BYTES, false).ok()
}

pub(crate) fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "pdf" => "application/pdf",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_built_public_site_is_previewed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let site = dir.path().join("site-out");
        std::fs::create_dir_all(site.join("qa")).expect("mkdir");
        std::fs::write(site.join("qa/index.html"), "qa").expect("write");
        let err = check_site(&site).expect_err("no marker");
        assert!(err.to_string().contains("公開サイトではない"), "{err}");
        std::fs::write(
            site.join(crate::common::root::MARKER),
            "qa/\nqa/index.html\n",
        )
        .expect("marker");
        check_site(&site).expect("a built site");
        for private in [
            "manifest.json",
            "qa/authkey.secret",
            "2070004426.pdf",
            "high-water",
        ] {
            std::fs::write(site.join(private), "x").expect("write");
            let err = check_site(&site).expect_err(private);
            assert!(err.to_string().contains("非公開のファイル"), "{err}");
            std::fs::remove_file(site.join(private)).expect("rm");
        }
        std::fs::write(site.join("guide.pdf"), "x").expect("write");
        check_site(&site).expect("an ordinary PDF is public");
    }

    fn site() -> (tempfile::TempDir, SiteFiles) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("site");
        std::fs::create_dir_all(root.join("qa")).expect("mkdir");
        std::fs::write(root.join("index.html"), "home").expect("write");
        std::fs::write(root.join("qa/index.html"), "qa").expect("write");
        std::fs::write(dir.path().join("secret.txt"), "secret").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.txt"))
            .expect("symlink");
        std::os::unix::fs::symlink(dir.path(), root.join("up")).expect("symlink");
        let preview = SiteFiles::new(root, "/");
        (dir, preview)
    }

    #[test]
    fn files_and_directories() {
        let (_d, p) = site();
        assert_eq!(p.resolve("/"), Resolved::File(p.root().join("index.html")));
        assert_eq!(
            p.resolve("/qa/"),
            Resolved::File(p.root().join("qa/index.html"))
        );
        assert_eq!(p.resolve("/qa"), Resolved::Redirect("/qa/".into()));
        assert_eq!(
            p.resolve("/%71a/index.html"),
            Resolved::File(p.root().join("qa/index.html"))
        );
    }

    #[test]
    fn traversal_hidden_names_and_symlinks_are_not_found() {
        let (_d, p) = site();
        for path in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/qa/..%2f..%2fsecret.txt",
            "/qa/%2E%2E/%2E%2E/secret.txt",
            "/..%5csecret.txt",
            "/link.txt",
            "/up/secret.txt",
            "/.hosho-output",
            "/qa//index.html",
            "/%00",
            "/%ff",
        ] {
            assert_eq!(p.resolve(path), Resolved::NotFound, "{path}");
        }
    }

    #[test]
    fn a_base_path_prefixes_the_site() {
        let (_d, p) = site();
        let p = SiteFiles::new(p.root().to_owned(), "/denshi/");
        assert_eq!(
            p.resolve("/denshi/"),
            Resolved::File(p.root().join("index.html"))
        );
        assert_eq!(p.resolve("/denshi"), Resolved::Redirect("/denshi/".into()));
        assert_eq!(p.resolve("/qa/"), Resolved::NotFound);
    }
}
