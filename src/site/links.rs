//! The internal link check: every `href` and `src` in the built HTML must point at a file
//! of the build (and at an `id` of it when it has a `#fragment`).

use std::collections::{BTreeMap, HashSet};

use rayon::prelude::*;

/// Every `name="value"` attribute in HTML, in order, in one pass: a name of letters, digits
/// and `-` after whitespace, then `="`, the value up to the next `"`.
pub fn attributes(html: &str) -> impl Iterator<Item = (&str, &str)> {
    html.match_indices("=\"").filter_map(move |(at, _)| {
        let before = &html[..at];
        let name_start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let name = &before[name_start..];
        let preceded_by_space = before[..name_start].ends_with(|c: char| c.is_ascii_whitespace());
        if name.is_empty() || !preceded_by_space {
            return None;
        }
        let value_start = at + 2;
        let len = html[value_start..].find('"')?;
        Some((name, &html[value_start..value_start + len]))
    })
}

/// A link that leads nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The output file holding the link (`about/index.html`).
    pub from_file: String,
    /// The link as written in the HTML.
    pub href: String,
    /// The output path it resolves to (`qa/`, `assets/a.png`), when inside the site.
    pub target: Option<String>,
    pub reason: String,
}

/// Decodes `%XX` escapes (ids and paths may be written percent-encoded).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() && text.is_char_boundary(i + 3) {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_external(href: &str) -> bool {
    if href.starts_with("//") {
        return true;
    }
    match href.find(':') {
        Some(colon) => !href[..colon].contains(['/', '?', '#']),
        None => false,
    }
}

/// The output file a site-relative path names: `a/` → `a/index.html`.
fn candidates(path: &str) -> [String; 2] {
    if path.is_empty() || path.ends_with('/') {
        [format!("{path}index.html"), format!("{path}index.html")]
    } else {
        [path.to_owned(), format!("{path}/index.html")]
    }
}

/// Resolves `href` found in output file `from` (both relative to the output root) to an
/// output-relative path and fragment, or `None` for external links.
fn resolve(
    from: &str,
    href: &str,
    base_path: &str,
) -> Option<Result<(String, Option<String>), String>> {
    if is_external(href) || href.is_empty() {
        return None;
    }
    let (without_fragment, fragment) = match href.split_once('#') {
        Some((p, f)) => (p, Some(percent_decode(f))),
        None => (href, None),
    };
    let path = without_fragment.split('?').next().unwrap_or("");
    let path = percent_decode(path);
    let joined = if path.is_empty() {
        from.to_owned()
    } else if let Some(abs) = path.strip_prefix('/') {
        let abs = format!("/{abs}");
        match abs.strip_prefix(base_path) {
            Some(rest) => rest.to_owned(),
            None if abs == base_path.trim_end_matches('/') => String::new(),
            None => {
                return Some(Err(format!(
                    "サイトの URL（{base_path}）の外を指しています"
                )))
            }
        }
    } else {
        let dir = from.rsplit_once('/').map_or("", |(d, _)| d);
        if dir.is_empty() {
            path.clone()
        } else {
            format!("{dir}/{path}")
        }
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Some(Err("サイトの外を指しています".into()));
                }
            }
            p => parts.push(p),
        }
    }
    let mut normalised = parts.join("/");
    if joined.ends_with('/') && !normalised.is_empty() {
        normalised.push('/');
    }
    Some(Ok((normalised, fragment)))
}

/// Where a link leads, worked out once per file (see [`FileLinks`]).
#[derive(Debug, Clone)]
enum Target {
    /// A file of this build (the first candidate that exists), and maybe an `id` in it.
    Inside {
        /// The output path it resolves to (`qa/`, `assets/a.png`).
        path: String,
        /// The output files it may name, in order (`qa/` → `qa/index.html`).
        candidates: Vec<String>,
        fragment: Option<String>,
    },
    /// A path outside the site: the reason.
    Outside(String),
}

/// One `href` or `src` of an HTML file.
#[derive(Debug, Clone)]
struct Link {
    /// As written in the HTML, `&amp;` decoded.
    href: String,
    target: Target,
}

/// What the link check needs of one HTML file: the `id`s it holds and where its internal
/// links lead. Made once per rendered file, so a rebuild checks unchanged files without
/// reading them again.
#[derive(Debug, Clone, Default)]
pub struct FileLinks {
    ids: HashSet<String>,
    links: Vec<Link>,
}

impl FileLinks {
    /// Whether both files hold the same ids (what links into a file can point at).
    pub fn same_ids(&self, other: &FileLinks) -> bool {
        self.ids == other.ids
    }

    /// The ids and internal links of `html`, output file `from`.
    pub fn of(from: &str, html: &str, base_path: &str) -> FileLinks {
        let mut ids = HashSet::new();
        let mut links = Vec::new();
        for (name, value) in attributes(html) {
            match name {
                "id" => {
                    ids.insert(value.to_owned());
                    continue;
                }
                "href" | "src" => {}
                _ => continue,
            }
            let href = if value.contains("&amp;") {
                value.replace("&amp;", "&")
            } else {
                value.to_owned()
            };
            let target = match resolve(from, &href, base_path) {
                None => continue,
                Some(Err(reason)) => Target::Outside(reason),
                Some(Ok((path, fragment))) => {
                    let candidates = if path.is_empty() && href.starts_with('#') {
                        vec![from.to_owned()]
                    } else {
                        let [a, b] = candidates(&path);
                        if a == b {
                            vec![a]
                        } else {
                            vec![a, b]
                        }
                    };
                    Target::Inside {
                        path,
                        candidates,
                        fragment,
                    }
                }
            };
            links.push(Link { href, target });
        }
        FileLinks { ids, links }
    }
}

/// Checks the links of the files in `files` that `checked` selects against all of them (by
/// output path; `links` gives a file's links, `None` for files that are not HTML).
pub fn check_files<T: Sync>(
    files: &BTreeMap<String, T>,
    links: impl Fn(&T) -> Option<&FileLinks> + Sync,
    checked: impl Fn(&str) -> bool,
) -> Vec<BrokenLink> {
    let with_links: Vec<(&String, &FileLinks)> = files
        .iter()
        .filter(|(p, _)| checked(p))
        .filter_map(|(p, f)| Some((p, links(f)?)))
        .collect();
    let per_file: Vec<Vec<BrokenLink>> = with_links
        .par_iter()
        .map(|(from, file_links)| broken_in(from, file_links, files, &links))
        .collect();
    per_file.into_iter().flatten().collect()
}

/// The broken links of one HTML file.
fn broken_in<T>(
    from: &str,
    file_links: &FileLinks,
    files: &BTreeMap<String, T>,
    links: &impl Fn(&T) -> Option<&FileLinks>,
) -> Vec<BrokenLink> {
    let mut broken = Vec::new();
    for link in &file_links.links {
        let (target_path, reason) = match &link.target {
            Target::Outside(reason) => (None, Some(reason.clone())),
            Target::Inside {
                path,
                candidates,
                fragment,
            } => {
                let target = candidates.iter().find_map(|c| files.get(c));
                let reason = match (target.map(links), fragment) {
                    (None, _) => Some("リンク先のページがありません".to_owned()),
                    (Some(Some(t)), Some(f)) if !f.is_empty() && !t.ids.contains(f) => {
                        Some(format!("リンク先のページに見出し（id）「{f}」がありません"))
                    }
                    _ => None,
                };
                (Some(path.clone()), reason)
            }
        };
        if let Some(reason) = reason {
            broken.push(BrokenLink {
                from_file: from.to_owned(),
                href: link.href.clone(),
                target: target_path,
                reason,
            });
        }
    }
    broken
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks every link of every HTML file in `files` (output-relative path → content).
    fn check(files: &BTreeMap<String, &str>, base_path: &str) -> Vec<BrokenLink> {
        let facts: Vec<(String, Option<FileLinks>)> = files
            .par_iter()
            .map(|(path, html)| {
                let links = path
                    .ends_with(".html")
                    .then(|| FileLinks::of(path, html, base_path));
                (path.clone(), links)
            })
            .collect();
        let files: BTreeMap<String, Option<FileLinks>> = facts.into_iter().collect();
        check_files(&files, Option::as_ref, |_| true)
    }

    fn files(list: &[(&str, &'static str)]) -> BTreeMap<String, &'static str> {
        list.iter().map(|(p, h)| ((*p).to_owned(), *h)).collect()
    }

    #[test]
    fn attributes_are_found_only_as_attributes() {
        let html =
            r#"<a href="/a/">x</a><p>data-href="no"</p><img alt="" src="/i.png"> <a  href="b">"#;
        let v: Vec<&str> = attributes(html)
            .filter(|(name, _)| *name == "href")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(v, ["/a/", "b"]);
        let all: Vec<(&str, &str)> = attributes(html).collect();
        let japanese: Vec<(&str, &str)> =
            attributes("<p>あ=\"い\" <a\thref=\"/う/\">え</a>").collect();
        assert_eq!(japanese, [("href", "/う/")]);
        assert_eq!(
            all,
            [
                ("href", "/a/"),
                ("alt", ""),
                ("src", "/i.png"),
                ("href", "b")
            ]
        );
    }

    #[test]
    fn resolves_paths_and_reports_missing_targets() {
        let f = files(&[
            (
                "index.html",
                r##"<a href="/qa/#q1">q</a> <a href="/missing/">m</a> <a href="https://e.jp/">e</a> <a href="#top">t</a> <a href="atom.xml">f</a>"##,
            ),
            (
                "qa/index.html",
                r#"<h2 id="q1">Q</h2><a href="../">up</a><a href="/qa/#q9">x</a><a href="../../x">o</a>"#,
            ),
            ("atom.xml", "<feed/>"),
        ]);
        let broken: Vec<(String, String)> = check(&f, "/")
            .into_iter()
            .map(|b| (b.from_file, b.href))
            .collect();
        assert_eq!(
            broken,
            [
                ("index.html".to_owned(), "/missing/".to_owned()),
                ("index.html".to_owned(), "#top".to_owned()),
                ("qa/index.html".to_owned(), "/qa/#q9".to_owned()),
                ("qa/index.html".to_owned(), "../../x".to_owned()),
            ]
        );
    }

    #[test]
    fn base_path_is_respected() {
        let f = files(&[
            (
                "index.html",
                r#"<a href="/denshi/qa/">a</a><a href="/other/">b</a>"#,
            ),
            ("qa/index.html", ""),
        ]);
        let broken = check(&f, "/denshi/");
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].href, "/other/");
        assert!(broken[0].reason.contains("外"));
    }

    #[test]
    fn percent_encoded_fragments_match_ids() {
        let f = files(&[(
            "index.html",
            r##"<h2 id="電子保証とは">x</h2><a href="#%E9%9B%BB%E5%AD%90%E4%BF%9D%E8%A8%BC%E3%81%A8%E3%81%AF">y</a>"##,
        )]);
        assert!(check(&f, "/").is_empty());
    }
}
