//! The site's dated entries: adoptions and dated pages, newest first, for the Atom feed and
//! the home page's 新着情報; and the sitemap's URLs.

use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;

use crate::common::config::Config;
use crate::common::era;
use crate::site::adopters::{Adopter, AdopterTable};
use crate::site::content::{Page, PageData, PageKind};
use crate::site::ADOPTERS_PATH;

/// One entry of the Atom feed and of the home page's 新着情報.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FeedEntry {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) date: NaiveDate,
    pub(crate) updated: String,
    pub(crate) url: String,
    pub(crate) permalink: String,
    pub(crate) summary: String,
}

/// One `<url>` of `sitemap.xml`.
#[derive(Debug, Serialize)]
pub(crate) struct SitemapUrl {
    loc: String,
    lastmod: Option<NaiveDate>,
}

/// Midnight in Japan on `date`, as Atom writes it.
pub(crate) fn rfc3339_jst(date: NaiveDate) -> String {
    format!("{date}T00:00:00+09:00")
}

/// A site path as a link (`/qa/` → `/denshi/qa/` under a base path).
pub(crate) fn url(config: &Config, site_path: &str) -> String {
    format!("{}{}", config.base_path, site_path.trim_start_matches('/'))
}

/// Adoptions and dated pages (generated table pages aside), newest first.
pub(crate) fn entries(
    config: &Config,
    pages: &[Arc<Page>],
    tables: &[AdopterTable],
) -> Vec<FeedEntry> {
    let mut entries = Vec::new();
    for page in pages {
        if let (PageKind::Page, Some(date), PageData::Markdown) = (page.kind, page.date, page.data)
        {
            entries.push(FeedEntry {
                id: config.absolute_url(&page.path),
                title: page.title.clone(),
                date,
                updated: rfc3339_jst(date),
                url: url(config, &page.path),
                permalink: config.absolute_url(&page.path),
                summary: page.description.clone().unwrap_or_default(),
            });
        }
    }
    for table in tables {
        let path = format!("{ADOPTERS_PATH}{}/", table.slug);
        for adopter in &table.adopters {
            if let Some(entry) = adoption(config, table, adopter, &path) {
                entries.push(entry);
            }
        }
    }
    entries.sort_by(|a, b| b.date.cmp(&a.date).then(a.id.cmp(&b.id)));
    entries
}

/// The entry of one orderer's start of 電子保証 (planned or begun), if it has a date.
fn adoption(config: &Config, table: &AdopterTable, a: &Adopter, path: &str) -> Option<FeedEntry> {
    let start = a.start?;
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
    Some(FeedEntry {
        id: format!("{}#{}", config.absolute_url(path), a.name),
        title,
        date: start,
        updated: rfc3339_jst(start),
        url: url(config, path),
        permalink: config.absolute_url(path),
        summary,
    })
}

/// Every page, with its date as `lastmod`.
pub(crate) fn sitemap(config: &Config, pages: &[Arc<Page>]) -> Vec<SitemapUrl> {
    pages
        .iter()
        .map(|p| SitemapUrl {
            loc: config.absolute_url(&p.path),
            lastmod: p.date,
        })
        .collect()
}
