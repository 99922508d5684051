//! `hosho new page|notice|adopters NAME`: a new input file with its front matter or fields
//! filled in and a comment on each, as `zola`/`hugo new` give. The kinds are data
//! ([`KINDS`]); a scaffold never overwrites a file and always passes `hosho check`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use chrono::NaiveDate;

use crate::common::root::{ADOPTERS_DIR, CONTENT_DIR};
use crate::common::walk::is_url_name;

/// What `hosho new` can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A Markdown page (`content/NAME.md` → `/NAME/`).
    Page,
    /// A dated notice (`content/notices/NAME.md` → `/notices/NAME/`), a draft until published.
    Notice,
    /// An adoption table (`data/adopters/NAME.yaml` → `/adopters/NAME/`).
    Adopters,
}

/// One kind of scaffold: where its file goes and what it holds.
struct Scaffold {
    kind: Kind,
    dir: &'static str,
    extension: &'static str,
    /// The site path of `NAME`.
    url: fn(&str) -> String,
    /// The file's text for `NAME`, dated `today`.
    text: fn(&str, NaiveDate) -> String,
}

const KINDS: [Scaffold; 3] = [
    Scaffold {
        kind: Kind::Page,
        dir: CONTENT_DIR,
        extension: "md",
        url: |name| format!("/{name}/"),
        text: page,
    },
    Scaffold {
        kind: Kind::Notice,
        dir: "content/notices",
        extension: "md",
        url: |name| format!("/notices/{name}/"),
        text: notice,
    },
    Scaffold {
        kind: Kind::Adopters,
        dir: ADOPTERS_DIR,
        extension: "yaml",
        url: |name| format!("/adopters/{name}/"),
        text: adopters,
    },
];

fn page(name: &str, _today: NaiveDate) -> String {
    format!(
        "---\n\
# 表題（必須）: ページの見出しと、ブラウザのタブに出ます\n\
title: {name}\n\
# 説明（省略可）: 検索結果や一覧に出る一文です\n\
description: \n\
# 並び順（省略可）: 書くと上の案内（ナビゲーション）に、小さい順に並びます\n\
# weight: 50\n\
# 下書き: true のあいだは書き出しません。公開するときは false にするか、この行を消します\n\
draft: true\n\
---\n\
ここに本文をMarkdownで書きます。見出しは「## 見出し」、箇条書きは「- 項目」です。\n"
    )
}

fn notice(name: &str, today: NaiveDate) -> String {
    format!(
        "---\n\
# 表題（必須）: お知らせの一覧と新着情報（Atom）に出ます\n\
title: {name}\n\
# 掲載日（必須）: YYYY-MM-DD。お知らせは新しい順に並びます\n\
date: {today}\n\
# 説明（省略可）: 一覧と新着情報に出る一文です\n\
description: \n\
# 下書き: true のあいだは書き出しません。公開するときは false にするか、この行を消します\n\
draft: true\n\
---\n\
ここにお知らせの本文をMarkdownで書きます。\n"
    )
}

fn adopters(name: &str, today: NaiveDate) -> String {
    format!(
        "# 導入発注者一覧（/adopters/{name}/ に一つの表として載ります）。書き方は docs/data.md にあります。\n\
# 表題（必須）\n\
title: {name}\n\
# 現在日（必須）: 表に「令和…現在」と出ます\n\
as_of: {today}\n\
# 注記（省略可）: 表の下に出ます\n\
# note: 上記以外の市町村については、未導入または導入検討中\n\
# 運用開始日の基準（省略可）: 省くと hosho.toml の [adopters] default_basis、それもなければ表に書きません\n\
# basis: 契約締結日\n\
# 発注者の一覧（必須）: 「[]」を消し、次の行から例のように一行に一団体を書きます\n\
#   name: 発注者名（必須） category: 区分（必須、hosho.toml の [adopters] categories のどれか）\n\
#   start: 運用開始日（省略可） services: 業務委託への適用 true ○ / false ×（省略可）\n\
adopters: []\n\
#  - {{name: 見本市, category: 市町村, start: 2026-04-01, services: true}}\n"
    )
}

/// Writes the scaffold of `kind` named `name` under `root`; returns the file (relative to
/// the root) and the site path it becomes.
pub fn create(root: &Path, kind: Kind, name: &str, today: NaiveDate) -> Result<(PathBuf, String)> {
    let scaffold = KINDS
        .iter()
        .find(|s| s.kind == kind)
        .context("このひな形は作れません")?;
    let segments: Vec<&str> = name.split('/').collect();
    if segments.iter().any(|s| !is_url_name(s)) || (kind != Kind::Page && segments.len() > 1) {
        bail!(
            "名前「{name}」はページの URL になるので、半角の英小文字・数字・-・_ だけで付けてください{}",
            if kind == Kind::Page { "（/ で区切ると下の階層になります）" } else { "" }
        );
    }
    let rel = PathBuf::from(scaffold.dir).join(format!("{name}.{}", scaffold.extension));
    let path = root.join(&rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{} を作れません", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| {
            format!(
                "{} を作れません（同じ名前のファイルがあるときは上書きしません）",
                rel.display()
            )
        })?;
    std::io::Write::write_all(&mut file, (scaffold.text)(name, today).as_bytes())
        .with_context(|| format!("{} を書けません", rel.display()))?;
    let last = segments.last().copied().unwrap_or(name);
    let url = if kind == Kind::Page {
        (scaffold.url)(name)
    } else {
        (scaffold.url)(last)
    };
    Ok((rel, url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_url_names_and_files_are_never_overwritten() {
        let root = tempfile::tempdir().expect("tempdir");
        let today = NaiveDate::from_ymd_opt(2026, 11, 30).expect("date");
        let (rel, url) = create(root.path(), Kind::Notice, "winter-2026", today).expect("new");
        assert_eq!(
            (rel.to_string_lossy().as_ref(), url.as_str()),
            ("content/notices/winter-2026.md", "/notices/winter-2026/")
        );
        let text = std::fs::read_to_string(root.path().join(&rel)).expect("read");
        assert!(
            text.contains("date: 2026-11-30\n") && text.contains("draft: true\n"),
            "{text}"
        );
        let again = create(root.path(), Kind::Notice, "winter-2026", today).expect_err("exists");
        assert!(format!("{again:#}").contains("上書きしません"), "{again:#}");
        assert!(create(root.path(), Kind::Page, "Guide", today).is_err());
        assert!(create(root.path(), Kind::Adopters, "a/b", today).is_err());
        let (rel, url) =
            create(root.path(), Kind::Page, "guide/steps", today).expect("nested page");
        assert_eq!(
            (rel, url.as_str()),
            (PathBuf::from("content/guide/steps.md"), "/guide/steps/")
        );
    }
}
