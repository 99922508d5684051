//! The site's dated entries: adoptions and dated pages, newest first, for the Atom feed and
//! the home page's 新着情報; and the sitemap's URLs.

use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;

use crate::common::config::Config;
use crate::common::era;
use crate::site::adopters::AdopterTable;
use crate::site::adopters::ADOPTERS_PATH;
use crate::site::content::{Page, PageData, PageKind};

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
        entries.extend(adoptions(config, table, &path));
    }
    entries.sort_by(|a, b| b.date.cmp(&a.date).then(a.id.cmp(&b.id)));
    entries
}

/// The entries of a table's starts of 電子保証: one per day (and planned or begun), naming
/// every orderer that started that day, so that a day on which many started is one entry
/// on the home page's 新着情報 and in the feed.
fn adoptions(config: &Config, table: &AdopterTable, path: &str) -> Vec<FeedEntry> {
    let mut days: std::collections::BTreeMap<(NaiveDate, bool), Vec<&str>> =
        std::collections::BTreeMap::new();
    for a in &table.adopters {
        if let Some(start) = a.start {
            days.entry((start, a.planned)).or_default().push(&a.name);
        }
    }
    days.into_iter()
        .map(|((start, planned), names)| adoption(config, table, path, (start, planned), &names))
        .collect()
}

fn adoption(
    config: &Config,
    table: &AdopterTable,
    path: &str,
    (start, planned): (NaiveDate, bool),
    names: &[&str],
) -> FeedEntry {
    let wareki = era::full_date(start);
    let who = match names {
        [one] => (*one).to_owned(),
        [a, b] => format!("{a}・{b}"),
        [a, b, ..] => format!("{a}・{b}など{}団体", names.len()),
        [] => String::new(),
    };
    let all = names.join("、");
    let (title, summary) = if planned {
        (
            format!("{who}が電子保証の運用を始める予定です"),
            format!(
                "{all}（{}）は{wareki}から電子保証の運用を始める予定です。",
                table.title
            ),
        )
    } else {
        (
            format!("{who}が電子保証の運用を始めました"),
            format!(
                "{all}（{}）は{wareki}から電子保証の運用を始めました。",
                table.title
            ),
        )
    };
    let id = match names {
        [one] => format!("{}#{one}", config.absolute_url(path)),
        _ => format!("{}#{start}", config.absolute_url(path)),
    };
    FeedEntry {
        id,
        title,
        date: start,
        updated: rfc3339_jst(start),
        url: url(config, path),
        permalink: config.absolute_url(path),
        summary,
    }
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
