//! Broken internal links and `#fragment`s, reported where they were written: the Markdown
//! line, the Q&A answer in `data/qa.yaml`, or the template.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::common::diagnostics::{Diagnostic, Diagnostics};
use crate::common::root::QA_FILE;
use crate::site::cache::{RenderCache, RenderedFile};
use crate::site::content::{Page, PageLink};
use crate::site::feed;
use crate::site::links::{self, BrokenLink};
use crate::site::model::{output_file, Site};

impl Site {
    /// Reports every broken internal link at the place it was written. With `previous`, the
    /// files of a render whose links all held: when no file came or went and no rewritten
    /// file lost or gained an id, only the rewritten files' own links can have broken.
    pub(crate) fn check_links(
        &self,
        files: &BTreeMap<String, RenderedFile>,
        previous: &RenderCache,
        d: &mut Diagnostics,
    ) {
        let same_ids = |path: &str, file: &RenderedFile| {
            let before = previous.files.get(path);
            match (
                before.and_then(|b| b.links.as_deref()),
                file.links.as_deref(),
            ) {
                (Some(before), Some(now)) => before.same_ids(now),
                (None, None) => before.is_some(),
                _ => false,
            }
        };
        let only_rewritten = files.len() == previous.files.len()
            && files.iter().all(|(path, file)| {
                let before = previous.files.get(path);
                before.is_some_and(|b| b.fingerprint == file.fingerprint) || same_ids(path, file)
            });
        let checked = |path: &str| {
            !only_rewritten
                || previous
                    .files
                    .get(path)
                    .is_none_or(|b| b.fingerprint != files[path].fingerprint)
        };
        let by_output: BTreeMap<String, &Page> = self
            .pages
            .iter()
            .map(|p| (output_file(&p.path), p.as_ref()))
            .collect();
        // The verification page is the daemon's, not a file of the site.
        let verify_link = self.config.verify_link();
        for broken in links::check_files(files, |f| f.links.as_deref(), checked) {
            let to_unavailable = broken.target.as_ref().is_some_and(|t| {
                let t = t.trim_end_matches('/');
                self.unavailable.iter().any(|u| u.trim_matches('/') == t)
            });
            if !to_unavailable && broken.href != verify_link {
                d.push(self.locate(&broken, by_output.get(&broken.from_file).copied()));
            }
        }
    }

    /// Where `broken` was written: its Markdown or Q&A line, else its template's.
    fn locate(&self, broken: &BrokenLink, page: Option<&Page>) -> Diagnostic {
        let written = |links: &[PageLink]| {
            links
                .iter()
                .find(|l| {
                    l.target == broken.href || feed::url(&self.config, &l.target) == broken.href
                })
                .map(|l| (l.line, l.column))
        };
        let message = format!("リンク「{}」: {}", broken.href, broken.reason);
        let from_markdown = page.and_then(|p| written(&p.links).map(|pos| (p.source.clone(), pos)));
        let from_qa = || {
            self.qa
                .iter()
                .find_map(|q| written(&q.links))
                .map(|pos| (PathBuf::from(QA_FILE), pos))
        };
        if let Some((file, (line, column))) = from_markdown.or_else(from_qa) {
            return Diagnostic::new(file, line, column, message);
        }
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
}
