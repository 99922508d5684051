//! `data/adopters/*.yaml` (導入発注者一覧, format in `docs/data.md`), validated into
//! [`AdopterTable`]s: one table and one page per file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Serialize;
use yaml_serde::Mapping;

use crate::common::config::Config;
use crate::common::diagnostics::{Diagnostic, Diagnostics};
use crate::common::era;
use crate::common::root::ADOPTERS_DIR;
use crate::common::walk::{self, Walk};
use crate::common::yaml::{field, Document, Field, NodePath, Reader};

const TITLE: Field = field("title", "表題");
const AS_OF: Field = field("as_of", "現在日");
const NOTE: Field = field("note", "注記");
const BASIS: Field = field("basis", "運用開始日の基準");
const ADOPTERS: Field = field("adopters", "発注者の一覧");
const TABLE_FIELDS: [Field; 5] = [TITLE, AS_OF, NOTE, BASIS, ADOPTERS];

const NAME: Field = field("name", "発注者名");
const CATEGORY: Field = field("category", "区分");
const START: Field = field("start", "運用開始日");
const SERVICES: Field = field("services", "業務委託への適用");
const ROW_FIELDS: [Field; 4] = [NAME, CATEGORY, START, SERVICES];

/// An orderer (発注者) that has adopted 電子保証.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adopter {
    /// 発注者名
    pub name: String,
    /// 区分
    pub category: String,
    /// 運用開始日
    pub start: Option<NaiveDate>,
    /// 運用開始日 in era form (`令和6年4月1日`).
    pub start_wareki: Option<String>,
    /// The start lies after the table's 現在日: shown as 予定.
    pub planned: bool,
    /// 業務委託への適用
    pub services: Option<bool>,
}

/// Rows of one category, in file order.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryGroup {
    pub category: String,
    pub count: usize,
}

/// One adoption table, from one file (`data/adopters/kumamoto.yaml` → `/adopters/kumamoto/`).
#[derive(Debug, Clone, Serialize)]
pub struct AdopterTable {
    /// File stem: the table's page is `/adopters/<slug>/`.
    pub slug: String,
    #[serde(skip)]
    pub source: PathBuf,
    /// 表題
    pub title: String,
    /// 現在日
    pub as_of: NaiveDate,
    pub as_of_wareki: String,
    /// 注記
    pub note: Option<String>,
    /// 運用開始日の基準 (契約締結日 unless the file says otherwise).
    pub basis: String,
    /// Rows by category (in hosho.toml's order), file order inside a category.
    pub adopters: Vec<Adopter>,
    /// Number of rows (団体数).
    pub count: usize,
    /// Row counts per category, in the same order.
    pub categories: Vec<CategoryGroup>,
    pub has_start: bool,
    pub has_services: bool,
}

/// Every adoption table, sorted by file name; the slugs of files that failed go to `failed`.
pub fn load_adopter_tables(
    root: &Path,
    config: &Config,
    diagnostics: &mut Diagnostics,
    failed: &mut Vec<String>,
) -> Vec<AdopterTable> {
    let mut tables = Vec::new();
    let flat = Walk {
        flat: true,
        skip_dirs: &[],
    };
    for file in walk::files(root, ADOPTERS_DIR, flat, diagnostics) {
        let (rel, name) = (file.rel, file.name);
        let Some(slug) = name
            .strip_suffix(".yaml")
            .or_else(|| name.strip_suffix(".yml"))
        else {
            diagnostics.push(Diagnostic::file(
                rel,
                "data/adopters/ には .yaml ファイルだけを置いてください",
            ));
            continue;
        };
        if !walk::is_url_name(slug) {
            diagnostics.push(Diagnostic::file(
                rel,
                format!("ファイル名「{slug}」はページの URL になるので、半角の英小文字・数字・-・_ だけで付けてください"),
            ));
            continue;
        }
        let text = match std::fs::read_to_string(&file.abs) {
            Ok(t) => t,
            Err(e) => {
                diagnostics.push(Diagnostic::file(rel, format!("読めません: {e}")));
                continue;
            }
        };
        match parse_adopter_table(&rel, slug, &text, config, diagnostics) {
            Some(table) => tables.push(table),
            None => failed.push(slug.to_owned()),
        }
    }
    tables
}

/// Parses one adoption table; problems go to `diagnostics`.
pub fn parse_adopter_table(
    rel: &Path,
    slug: &str,
    text: &str,
    config: &Config,
    diagnostics: &mut Diagnostics,
) -> Option<AdopterTable> {
    let doc = match Document::parse(rel, text, 0) {
        Ok(doc) => doc,
        Err(d) => {
            diagnostics.push(d);
            return None;
        }
    };
    let mut r = Reader::new(&doc);
    let top = NodePath::default();
    let map = r.mapping(&doc.root, &top, "導入発注者一覧のファイル", &TABLE_FIELDS);
    let table = map.and_then(|map| {
        let title = r.string(map, &top, TITLE, true);
        let as_of = r.date(map, &top, AS_OF, true);
        let note = r.string(map, &top, NOTE, false);
        let basis = r.string(map, &top, BASIS, false);
        let rows = rows(&mut r, map, config);
        let (title, as_of) = (title?, as_of?);
        let basis = basis.unwrap_or_else(|| config.adopters.default_basis.clone());
        Some(AdopterTable::new(
            slug, rel, title, as_of, note, basis, rows,
        ))
    });
    let ok = r.diagnostics.is_empty();
    diagnostics.extend(r.diagnostics);
    table.filter(|_| ok)
}

/// The valid rows of `adopters:`, each with the rank of its category in hosho.toml.
fn rows<'d>(r: &mut Reader<'d, '_>, map: &'d Mapping, config: &Config) -> Vec<(usize, Adopter)> {
    let top = NodePath::default();
    let rows_path = top.key(ADOPTERS.key);
    let rows = r
        .required(map, &top, ADOPTERS)
        .and_then(|v| r.sequence(v, &rows_path, "adopters（発注者の一覧）"))
        .unwrap_or(&[]);
    let mut adopters: Vec<(usize, Adopter)> = Vec::new();
    let mut first_row_of: HashMap<String, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let path = rows_path.index(i);
        let Some(row) = r.mapping(row, &path, "発注者の行", &ROW_FIELDS) else {
            continue;
        };
        let name = r.string(row, &path, NAME, true);
        let category = r.string(row, &path, CATEGORY, true);
        let start = r.date(row, &path, START, false);
        let services = r.boolean(row, &path, SERVICES);
        let rank = category
            .as_ref()
            .and_then(|c| category_rank(r, &path, c, config));
        if let Some(name) = &name {
            if let Some(first) = first_row_of.get(name) {
                let (line, _) = r.doc.locate(&rows_path.index(*first).key(NAME.key), false);
                r.error(
                    &path.key(NAME.key),
                    format!("発注者名「{name}」がこのファイルに二度あります（{line} 行目にもあります）。一行にまとめてください"),
                );
            } else {
                first_row_of.insert(name.clone(), i);
            }
        }
        if let (Some(name), Some(category), Some(rank)) = (name, category, rank) {
            let start_wareki = start.map(era::full_date);
            let adopter = Adopter {
                name,
                category,
                start,
                start_wareki,
                planned: false,
                services,
            };
            adopters.push((rank, adopter));
        }
    }
    adopters
}

/// The position of `category` in hosho.toml's list, or an error at the row's `category:`.
fn category_rank(
    r: &mut Reader<'_, '_>,
    row: &NodePath,
    category: &str,
    config: &Config,
) -> Option<usize> {
    let categories = &config.adopters.categories;
    let rank = categories.iter().position(|k| k == category);
    if rank.is_none() {
        r.error(
            &row.key(CATEGORY.key),
            format!(
                "区分「{category}」は hosho.toml の [adopters] categories にありません。使える区分: {}",
                categories.join("、")
            ),
        );
    }
    rank
}

impl AdopterTable {
    /// The table of a file: rows by category rank (file order inside one), 予定 marked, and
    /// counts per category.
    fn new(
        slug: &str,
        rel: &Path,
        title: String,
        as_of: NaiveDate,
        note: Option<String>,
        basis: String,
        mut ranked: Vec<(usize, Adopter)>,
    ) -> AdopterTable {
        ranked.sort_by_key(|(rank, _)| *rank);
        let mut adopters: Vec<Adopter> = ranked.into_iter().map(|(_, a)| a).collect();
        for a in &mut adopters {
            a.planned = a.start.is_some_and(|s| s > as_of);
        }
        let mut categories: Vec<CategoryGroup> = Vec::new();
        for a in &adopters {
            match categories.last_mut() {
                Some(g) if g.category == a.category => g.count += 1,
                _ => categories.push(CategoryGroup {
                    category: a.category.clone(),
                    count: 1,
                }),
            }
        }
        AdopterTable {
            slug: slug.to_owned(),
            source: rel.to_path_buf(),
            title,
            as_of,
            as_of_wareki: era::full_date(as_of),
            note,
            basis,
            has_start: adopters.iter().any(|a| a.start.is_some()),
            has_services: adopters.iter().any(|a| a.services.is_some()),
            count: adopters.len(),
            adopters,
            categories,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Option<AdopterTable>, Vec<String>) {
        let mut d = Diagnostics::default();
        let t = parse_adopter_table(
            Path::new("data/adopters/t.yaml"),
            "t",
            text,
            &Config::default_for_test(),
            &mut d,
        );
        (t, d.sorted().iter().map(ToString::to_string).collect())
    }

    #[test]
    fn rows_follow_category_order_then_file_order() {
        let (t, errs) = parse(
            "title: 県下\nas_of: 2025-02-01\nadopters:\n  - {name: B町, category: 市町村, start: 2025-04-01}\n  - {name: A県, category: 県, start: 2023-04-01, services: true}\n  - {name: C村, category: 市町村}\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let t = t.expect("valid");
        let names: Vec<&str> = t.adopters.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["A県", "B町", "C村"]);
        assert_eq!(t.as_of_wareki, "令和7年2月1日");
        assert_eq!(t.basis, "契約締結日");
        assert!(t.adopters[1].planned, "2025-04-01 is after as_of");
        assert!(!t.adopters[0].planned);
        let counts: Vec<(&str, usize)> = t
            .categories
            .iter()
            .map(|g| (g.category.as_str(), g.count))
            .collect();
        assert_eq!(counts, [("県", 1), ("市町村", 2)]);
        assert!(t.has_start && t.has_services);
    }

    #[test]
    fn every_problem_is_reported_with_its_position() {
        let (t, errs) = parse(
            "title: 県下\nas_of: 2025-02-30\nadopters:\n  - name: A市\n    category: 政令市\n  - name: B町\n    category: 市町村\n    services: yes\n  - name: A市\n    category: 市町村\n    start: 2024-4-1\n",
        );
        assert!(t.is_none());
        assert_eq!(
            errs,
            [
                "data/adopters/t.yaml:2:8: as_of（現在日） の日付「2025-02-30」が読めません。YYYY-MM-DD の形の実在する日付で書いてください（例: 2024-04-01）",
                "data/adopters/t.yaml:5:15: 区分「政令市」は hosho.toml の [adopters] categories にありません。使える区分: 県、市町村",
                "data/adopters/t.yaml:8:15: services（業務委託への適用） は true（○）か false（×）で書いてください（文字列になっています）",
                "data/adopters/t.yaml:9:11: 発注者名「A市」がこのファイルに二度あります（4 行目にもあります）。一行にまとめてください",
                "data/adopters/t.yaml:11:12: start（運用開始日） の日付「2024-4-1」が読めません。YYYY-MM-DD の形の実在する日付で書いてください（例: 2024-04-01）",
            ]
        );
    }
}
