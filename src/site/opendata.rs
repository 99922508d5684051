//! Open data: every adoption table as JSON and as CSV (UTF-8 with a BOM, so Excel opens it
//! in Japanese).

use serde::Serialize;

use crate::common::submission::SubmissionRules;
use crate::site::adopters::AdopterTable;

/// One row of the open data.
#[derive(Debug, Serialize)]
struct Row<'a> {
    table: &'a str,
    title: &'a str,
    as_of: String,
    category: &'a str,
    name: &'a str,
    start: Option<String>,
    planned: bool,
    services: Option<bool>,
    basis: Option<&'a str>,
    /// How the orderer receives the 認証キー notice, when it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    submission: Option<&'a SubmissionRules>,
}

fn rows(tables: &[AdopterTable]) -> Vec<Row<'_>> {
    tables
        .iter()
        .flat_map(|t| {
            t.adopters.iter().map(move |a| Row {
                table: &t.slug,
                title: &t.title,
                as_of: t.as_of.to_string(),
                category: &a.category,
                name: &a.name,
                start: a.start.map(|d| d.to_string()),
                planned: a.planned,
                services: a.services,
                basis: t.basis.as_deref(),
                submission: a.submission.as_ref(),
            })
        })
        .collect()
}

/// `data/adopters.json`: `{"adopters": [...]}` with ISO dates.
pub fn adopters_json(tables: &[AdopterTable]) -> serde_json::Result<Vec<u8>> {
    #[derive(Serialize)]
    struct Doc<'a> {
        format: u32,
        adopters: Vec<Row<'a>>,
    }
    let mut out = serde_json::to_vec_pretty(&Doc {
        format: 1,
        adopters: rows(tables),
    })?;
    out.push(b'\n');
    Ok(out)
}

/// A cell as a spreadsheet may safely open it: text that a spreadsheet would run as a
/// formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return, or the full-width
/// `＝＋－＠`, which Japanese spreadsheets read as formulas too) gets a leading `'`, as OWASP
/// advises against CSV injection. Names come from maintainers' files, and a table
/// sent in by an orderer could carry `=HYPERLINK(…)`.
fn cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r', '＝', '＋', '－', '＠']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// The submission columns of one row: channels, addresses, subject, with the invoice, notes.
fn submission_cells(rules: Option<&SubmissionRules>) -> [String; 5] {
    let Some(s) = rules else {
        return Default::default();
    };
    let addresses = s
        .address
        .iter()
        .cloned()
        .chain(
            s.addresses
                .iter()
                .map(|a| format!("{}：{}", a.kind, a.address)),
        )
        .collect::<Vec<_>>()
        .join("／");
    [
        s.channels.join("・"),
        addresses,
        s.subject.clone().unwrap_or_default(),
        s.with_invoice
            .map(|b| if b { "可" } else { "不可" }.to_owned())
            .unwrap_or_default(),
        s.notes.join("／"),
    ]
}

/// `data/adopters.csv`: a BOM, a Japanese header row, one row per adopter, CRLF lines.
pub fn adopters_csv(tables: &[AdopterTable]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(vec![0xEF, 0xBB, 0xBF]);
    w.write_record([
        "一覧",
        "現在日",
        "区分",
        "発注者名",
        "運用開始日",
        "運用開始日（和暦）",
        "予定",
        "業務委託への適用",
        "運用開始日の基準",
        "お知らせの提出方法",
        "提出先",
        "メールの件名",
        "前払金請求書との同時提出",
        "提出の注意事項",
    ])?;
    for t in tables {
        for a in &t.adopters {
            let s = submission_cells(a.submission.as_ref());
            w.write_record([
                cell(&t.title).as_ref(),
                &t.as_of.to_string(),
                &cell(&a.category),
                &cell(&a.name),
                &a.start.map(|d| d.to_string()).unwrap_or_default(),
                a.start_wareki.as_deref().unwrap_or(""),
                if a.planned { "予定" } else { "" },
                a.services.map(crate::common::format::maru).unwrap_or(""),
                &cell(t.basis.as_deref().unwrap_or("")),
                &cell(&s[0]),
                &cell(&s[1]),
                &cell(&s[2]),
                &cell(&s[3]),
                &cell(&s[4]),
            ])?;
        }
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_a_spreadsheet_would_run_are_neutralised() {
        assert_eq!(
            cell("=HYPERLINK(\"https://evil.example/\")"),
            "'=HYPERLINK(\"https://evil.example/\")"
        );
        for text in [
            "+1",
            "-1",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "＝HYPERLINK(1)",
            "＋1",
            "－1",
            "＠SUM(A1)",
        ] {
            assert_eq!(cell(text), format!("'{text}"), "{text:?}");
        }
        assert_eq!(cell("熊本県"), "熊本県");
        assert_eq!(cell("a=b"), "a=b");
    }
}
