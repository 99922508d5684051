//! `data/adopters/*.yaml` (導入発注者一覧, format in `docs/data.md`), validated into
//! [`AdopterTable`]s: one table and one page per file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rayon::prelude::*;
use serde::Serialize;
use yaml_serde::Mapping;

use crate::common::config::Config;
use crate::common::diagnostics::{Diagnostic, Diagnostics};
use crate::common::era;
use crate::common::root::ADOPTERS_DIR;
use crate::common::submission::{self, SubmissionRules};
use crate::common::walk::{self, Walk};
use crate::common::yaml::{field, Document, Field, NodePath, Reader};

/// Where the overview of all adoption tables is (generated unless `content/adopters/_index.md` exists).
pub(crate) const ADOPTERS_PATH: &str = "/adopters/";

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
const SUBMISSION: Field = field("submission", "お知らせの提出方法");
const ROW_FIELDS: [Field; 5] = [NAME, CATEGORY, START, SERVICES, SUBMISSION];

const PAGE: Field = field("page", "提出方法のページ名");
const CHANNELS: Field = field("channels", "提出方法");
const ADDRESS: Field = field("address", "提出先");
const ADDRESSES: Field = field("addresses", "区分ごとの提出先");
const SUBJECT: Field = field("subject", "メールの件名");
const WITH_INVOICE: Field = field("with_invoice", "前払金請求書との同時提出");
const NOTES: Field = field("notes", "注意事項");
const EXAMPLE: Field = field("example", "見本の例");
const SUBMISSION_FIELDS: [Field; 8] = [
    PAGE,
    CHANNELS,
    ADDRESS,
    ADDRESSES,
    SUBJECT,
    WITH_INVOICE,
    NOTES,
    EXAMPLE,
];
/// The keys of `addresses:`: one per 区分.
const ADDRESS_KINDS: [Field; 3] = [
    field("前払金保証", "前払金保証の提出先"),
    field("中間前払金保証", "中間前払金保証の提出先"),
    field("契約保証", "契約保証の提出先"),
];

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
    /// How this orderer wants the 認証キー notice (its own page when given).
    pub submission: Option<SubmissionRules>,
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
    /// 運用開始日の基準, when the file (or hosho.toml's `default_basis`) says it.
    pub basis: Option<String>,
    /// Rows by category (in hosho.toml's order), file order inside a category.
    pub adopters: Vec<Adopter>,
    /// Number of rows (団体数).
    pub count: usize,
    /// Row counts per category, in the same order.
    pub categories: Vec<CategoryGroup>,
    pub has_start: bool,
    pub has_services: bool,
    /// Some row has rules for receiving the notice (its name links to them).
    pub has_submission: bool,
}

/// Every adoption table, sorted by file name; the slugs of files that failed go to `failed`.
pub fn load_adopter_tables(
    root: &Path,
    config: &Config,
    diagnostics: &mut Diagnostics,
    failed: &mut Vec<String>,
) -> Vec<AdopterTable> {
    let flat = Walk {
        flat: true,
        skip_dirs: &[],
    };
    let mut files = Vec::new();
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
        files.push((file.abs, rel, slug.to_owned()));
    }
    // Each file on its own, in parallel; their problems in the files' order.
    // `None` for a file that could not be read, `Some(None)` for an invalid table.
    let parsed: Vec<(Option<Option<AdopterTable>>, Diagnostics)> = files
        .par_iter()
        .map(|(abs, rel, slug)| {
            let mut d = Diagnostics::default();
            let table = match std::fs::read_to_string(abs) {
                Ok(text) => Some(parse_adopter_table(rel, slug, &text, config, &mut d)),
                Err(e) => {
                    d.push(Diagnostic::file(rel, format!("読めません: {e}")));
                    None
                }
            };
            (table, d)
        })
        .collect();
    let mut tables = Vec::new();
    for ((_, _, slug), (table, d)) in files.into_iter().zip(parsed) {
        diagnostics.extend(d);
        match table {
            Some(Some(table)) => tables.push(table),
            Some(None) => failed.push(slug),
            None => {}
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
        let basis = basis.or_else(|| config.adopters.default_basis.clone());
        Some(AdopterTable::new(
            slug, rel, title, as_of, note, basis, rows,
        ))
    });
    let ok = r.diagnostics.is_empty();
    diagnostics.extend(r.diagnostics);
    table.filter(|_| ok)
}

fn page_taken(page: &str, line: usize) -> String {
    format!("ページ名「{page}」は{line}行目の発注者でも使われています。発注者ごとに別の名前を付けてください")
}

fn name_taken(name: &str, line: usize) -> String {
    format!("発注者名「{name}」がこのファイルに二度あります（{line}行目にもあります）。一行にまとめてください")
}

/// Records that row `i` uses `value` (a name, a page), or reports at `at` that an earlier
/// row (under `rows`) already does: `message(value, line of that row)`.
fn once(
    r: &mut Reader<'_, '_>,
    first_of: &mut HashMap<String, usize>,
    (value, i): (String, usize),
    (rows, at): (&NodePath, &NodePath),
    message: impl Fn(&str, usize) -> String,
) {
    match first_of.get(&value) {
        Some(first) => {
            let (line, _) = r.doc.locate(&rows.index(*first).key(NAME.key), false);
            r.error(at, message(&value, line));
        }
        None => {
            first_of.insert(value, i);
        }
    }
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
    let (mut first_row_of, mut first_page_of) = (HashMap::new(), HashMap::new());
    for (i, row) in rows.iter().enumerate() {
        let path = rows_path.index(i);
        let Some(row) = r.mapping(row, &path, "発注者の行", &ROW_FIELDS) else {
            continue;
        };
        let name = r.string(row, &path, NAME, true);
        let category = r.string(row, &path, CATEGORY, true);
        let start = r.date(row, &path, START, false);
        let services = r.boolean(row, &path, SERVICES);
        let rules = submission_rules(r, row, &path);
        if let Some(page) = rules.as_ref().map(|s| s.page.clone()) {
            let at = path.key(SUBMISSION.key).key(PAGE.key);
            once(
                r,
                &mut first_page_of,
                (page, i),
                (&rows_path, &at),
                page_taken,
            );
        }
        let rank = category
            .as_ref()
            .and_then(|c| category_rank(r, &path, c, config));
        if let Some(name) = &name {
            let at = path.key(NAME.key);
            once(
                r,
                &mut first_row_of,
                (name.clone(), i),
                (&rows_path, &at),
                name_taken,
            );
        }
        if let (Some(name), Some(category), Some(rank)) = (name, category, rank) {
            adopters.push((
                rank,
                Adopter {
                    name,
                    category,
                    start,
                    start_wareki: start.map(era::full_date),
                    planned: false,
                    services,
                    submission: rules,
                },
            ));
        }
    }
    adopters
}

/// `submission:` of a row: every field checked at its position.
fn submission_rules<'d>(
    r: &mut Reader<'d, '_>,
    row: &'d Mapping,
    path: &NodePath,
) -> Option<SubmissionRules> {
    let value = row.get(SUBMISSION.key).filter(|v| !v.is_null())?;
    let p = path.key(SUBMISSION.key);
    let map = r.mapping(value, &p, "お知らせの提出方法", &SUBMISSION_FIELDS)?;
    let before = r.diagnostics.len();
    let page = r.string(map, &p, PAGE, true);
    if let Some(page) = page.as_deref().filter(|page| !walk::is_url_name(page)) {
        r.error(
            &p.key(PAGE.key),
            format!("ページ名「{page}」は URL になるので、半角の英小文字・数字・-・_ だけで付けてください"),
        );
    }
    let channels = channels(r, map, &p, before);
    let addresses = addresses(r, map, &p);
    let subject = subject(r, map, &p);
    let with_invoice = r.boolean(map, &p, WITH_INVOICE);
    let notes = r.string_list(map, &p, NOTES);
    let address = r.string(map, &p, ADDRESS, false);
    let example = r.boolean(map, &p, EXAMPLE).unwrap_or(false);
    (r.diagnostics.len() == before).then_some(SubmissionRules {
        page: page?,
        channels,
        address,
        addresses,
        subject,
        with_invoice,
        notes,
        example,
    })
}

/// `channels:`: at least one, each one hosho knows.
fn channels<'d>(
    r: &mut Reader<'d, '_>,
    map: &'d Mapping,
    p: &NodePath,
    before: usize,
) -> Vec<String> {
    let channels = r.string_list(map, p, CHANNELS);
    for (i, channel) in channels.iter().enumerate() {
        if !submission::CHANNELS.contains(&channel.as_str()) {
            r.error(
                &p.key(CHANNELS.key).index(i),
                format!(
                    "提出方法「{channel}」は使えません。{}のいずれかを書いてください",
                    submission::CHANNELS.join("・")
                ),
            );
        }
    }
    if channels.is_empty() && r.diagnostics.len() == before {
        r.error(p, "channels（提出方法）を一つ以上書いてください");
    }
    channels
}

/// `addresses:`: a 提出先 per 区分, where the orderer gives them.
fn addresses<'d>(
    r: &mut Reader<'d, '_>,
    map: &'d Mapping,
    p: &NodePath,
) -> Vec<submission::KindAddress> {
    let mut addresses = Vec::new();
    if let Some(value) = map.get(ADDRESSES.key).filter(|v| !v.is_null()) {
        let ap = p.key(ADDRESSES.key);
        if let Some(m) = r.mapping(value, &ap, "区分ごとの提出先", &ADDRESS_KINDS) {
            for kind in ADDRESS_KINDS {
                if let Some(address) = r.string(m, &ap, kind, false) {
                    addresses.push(submission::KindAddress {
                        kind: kind.key.to_owned(),
                        address,
                    });
                }
            }
        }
    }
    addresses
}

/// `subject:`, its placeholders checked.
fn subject<'d>(r: &mut Reader<'d, '_>, map: &'d Mapping, p: &NodePath) -> Option<String> {
    let subject = r.string(map, p, SUBJECT, false)?;
    let problem = match submission::unknown_placeholders(&subject) {
        None => Some("{ と } の組が合っていません".to_owned()),
        Some(unknown) if !unknown.is_empty() => {
            Some(format!("{{{}}} は使えません", unknown.join("}・{")))
        }
        Some(_) => None,
    };
    if let Some(problem) = problem {
        r.error(
            &p.key(SUBJECT.key),
            format!(
                "件名の {problem}。使えるのは {{{}}} です",
                submission::PLACEHOLDERS.join("}・{")
            ),
        );
    }
    Some(subject)
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
        basis: Option<String>,
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
            has_submission: adopters.iter().any(|a| a.submission.is_some()),
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
        assert_eq!(t.basis, None, "unsaid where the file does not say it");
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
    fn submission_rules_are_read_and_checked_at_their_position() {
        let (t, errs) = parse(
            "title: 県下\nas_of: 2025-02-01\nadopters:\n  - name: A県\n    category: 県\n    submission:\n      page: a-pref\n      channels: [メール, 紙]\n      addresses: {契約保証: 契約課, 前払金保証: 会計課}\n      subject: \"【電子保証】{工事番号} {工事名}\"\n      with_invoice: false\n      notes: [画面の印刷は受け付けません]\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let rules = t.expect("valid").adopters[0]
            .submission
            .clone()
            .expect("rules");
        assert_eq!(rules.page, "a-pref");
        assert_eq!(rules.channels, ["メール", "紙"]);
        let kinds: Vec<&str> = rules.addresses.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["前払金保証", "契約保証"],
            "in the order of the kinds"
        );
        assert_eq!(rules.with_invoice, Some(false));

        let (t, errs) = parse(
            "title: 県下\nas_of: 2025-02-01\nadopters:\n  - name: A県\n    category: 県\n    submission: {page: A県, channels: [郵便], subject: \"{案件名}\"}\n  - name: B町\n    category: 市町村\n    submission: {page: b, channels: [], addresses: {保証: x}}\n  - name: C村\n    category: 市町村\n    submission: {page: c, channels: [FAX]}\n  - name: D村\n    category: 市町村\n    submission: {page: c, channels: [FAX]}\n",
        );
        assert!(t.is_none());
        assert_eq!(
            errs,
            [
                "data/adopters/t.yaml:6:24: ページ名「A県」は URL になるので、半角の英小文字・数字・-・_ だけで付けてください",
                "data/adopters/t.yaml:6:39: 提出方法「郵便」は使えません。メール・FAX・紙・電子契約システムのいずれかを書いてください",
                "data/adopters/t.yaml:6:53: 件名の {案件名} は使えません。使えるのは {保証契約番号}・{工事名}・{区分}・{工事番号} です",
                "data/adopters/t.yaml:9:17: channels（提出方法）を一つ以上書いてください",
                "data/adopters/t.yaml:9:53: 知らないキー `保証` があります。使えるキー: 前払金保証（前払金保証の提出先）, 中間前払金保証（中間前払金保証の提出先）, 契約保証（契約保証の提出先）",
                "data/adopters/t.yaml:15:24: ページ名「c」は10行目の発注者でも使われています。発注者ごとに別の名前を付けてください",
            ]
        );
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
                "data/adopters/t.yaml:9:11: 発注者名「A市」がこのファイルに二度あります（4行目にもあります）。一行にまとめてください",
                "data/adopters/t.yaml:11:12: start（運用開始日） の日付「2024-4-1」が読めません。YYYY-MM-DD の形の実在する日付で書いてください（例: 2024-04-01）",
            ]
        );
    }
}
