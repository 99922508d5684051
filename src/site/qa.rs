//! `data/qa.yaml` (Q&A, format in `docs/data.md`): questions with Markdown answers.

use std::path::Path;

use serde::Serialize;

use crate::common::diagnostics::{Diagnostic, Diagnostics};
use crate::common::root::QA_FILE;
use crate::common::yaml::{field, read_list, Field};
use crate::site::content::PageLink;
use crate::site::markdown;

const QUESTION: Field = field("q", "質問");
const ANSWER: Field = field("a", "回答");
const TAGS: Field = field("tags", "タグ");
const QA_FIELDS: [Field; 3] = [QUESTION, ANSWER, TAGS];

/// 質問と回答
#[derive(Debug, Clone, Serialize)]
pub struct QaEntry {
    /// Fragment id on the Q&A page (`q1`, `q2`, …).
    pub id: String,
    pub question: String,
    /// The answer rendered from Markdown.
    pub answer: String,
    pub tags: Vec<String>,
    #[serde(skip)]
    pub links: Vec<PageLink>,
}

/// The Q&A entries of `data/qa.yaml` (none when the file is absent).
pub fn load_qa(
    root: &Path,
    markdown: markdown::Settings<'_>,
    diagnostics: &mut Diagnostics,
) -> Vec<QaEntry> {
    let path = root.join(QA_FILE);
    if !path.exists() {
        return Vec::new();
    }
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_qa(Path::new(QA_FILE), &text, markdown, diagnostics),
        Err(e) => {
            diagnostics.push(Diagnostic::file(QA_FILE, format!("読めません: {e}")));
            Vec::new()
        }
    }
}

pub fn parse_qa(
    rel: &Path,
    text: &str,
    markdown: markdown::Settings<'_>,
    diagnostics: &mut Diagnostics,
) -> Vec<QaEntry> {
    read_list(
        rel,
        text,
        "Q&A のファイル",
        diagnostics,
        |r, item, path, i| {
            let map = r.mapping(item, path, "Q&A の項目", &QA_FIELDS)?;
            let question = r.string(map, path, QUESTION, true);
            let answer = r.string(map, path, ANSWER, true);
            let tags = r.string_list(map, path, TAGS);
            let (question, answer) = (question?, answer?);
            let rendered = markdown::render(&answer, markdown);
            let (line, column) = r.doc.locate(&path.key(ANSWER.key), false);
            if !rendered.unclosed_emphasis.is_empty() {
                r.error(&path.key(ANSWER.key), markdown::UNCLOSED_EMPHASIS);
            }
            if !rendered.unsafe_markup.is_empty() {
                r.error(&path.key(ANSWER.key), markdown::UNSAFE_MARKUP);
            }
            let links = rendered
                .links
                .into_iter()
                .map(|l| PageLink {
                    target: l.target,
                    line,
                    column,
                })
                .collect();
            Some(QaEntry {
                id: format!("q{}", i + 1),
                question,
                answer: rendered.html,
                tags,
                links,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qa_answers_are_markdown() {
        let mut d = Diagnostics::default();
        let qa = parse_qa(
            Path::new("data/qa.yaml"),
            "- q: 費用は？\n  a: \"**発生しません**。詳しくは [こちら](/enet/)\"\n- q: 2問目\n",
            markdown::Settings::new("/"),
            &mut d,
        );
        assert_eq!(qa.len(), 1);
        assert_eq!(qa[0].id, "q1");
        assert!(qa[0].answer.contains("<strong>発生しません</strong>"));
        assert_eq!(qa[0].links[0].target, "/enet/");
        let errs: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            ["data/qa.yaml:3:3: 必須の項目 a（回答） がありません"]
        );
    }
}
