//! YAML files read with `yaml_serde`, every problem reported at its `line:column`.
//!
//! `yaml_serde` gives a location only for errors, so a file is read in two steps: parsed once
//! into a [`Value`] (syntax errors carry their position), then checked field by field, every
//! problem collected with the path of the node it concerns. Only for a problem is the node's
//! position looked up, by deserialising the source once more with a seed that walks to the
//! node and fails there on purpose: the error then carries that node's mark.

use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use yaml_serde::{Mapping, Value};

use crate::common::diagnostics::{Diagnostic, Diagnostics};

/// One step from a node to a child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Where a node sits in a document: `adopters[3].start`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodePath(Vec<Step>);

impl NodePath {
    pub fn key(&self, key: &str) -> NodePath {
        let mut steps = self.0.clone();
        steps.push(Step::Key(key.to_owned()));
        NodePath(steps)
    }

    pub fn index(&self, index: usize) -> NodePath {
        let mut steps = self.0.clone();
        steps.push(Step::Index(index));
        NodePath(steps)
    }
}

impl fmt::Display for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(k) if i == 0 => write!(f, "{k}")?,
                Step::Key(k) => write!(f, ".{k}")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A key of a mapping with the label the page shows for it (`start`, 運用開始日).
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub key: &'static str,
    pub label: &'static str,
}

pub const fn field(key: &'static str, label: &'static str) -> Field {
    Field { key, label }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}（{}）", self.key, self.label)
    }
}

/// A parsed YAML document and what is needed to point at its nodes.
pub struct Document<'s> {
    file: PathBuf,
    source: &'s str,
    /// Lines of the file before the YAML text (front matter starts on line 2).
    line_offset: usize,
    pub root: Value,
}

const LOCATE_MARK: &str = "\u{1}hosho-locate";

/// `line:column` kept inside `source`: the parser reports an error at the end of input on a
/// line after the last one when the text does not end with a line break; that is the end of
/// the last line. Lines counted as YAML counts them (a lone CR breaks a line).
fn within(source: &str, line: usize, column: usize) -> (usize, usize) {
    let lines: Vec<&str> = source
        .split("\r\n")
        .flat_map(|l| l.split(['\n', '\r']))
        .collect();
    match lines.len() {
        n if line <= n => (line, column),
        n => (n, lines[n - 1].chars().count() + 1),
    }
}

impl<'s> Document<'s> {
    /// Parses `source`, the YAML part of `file` starting after `line_offset` lines.
    pub fn parse(file: &Path, source: &'s str, line_offset: usize) -> Result<Self, Diagnostic> {
        match yaml_serde::from_str::<Value>(source) {
            Ok(root) => Ok(Self {
                file: file.to_owned(),
                source,
                line_offset,
                root,
            }),
            Err(err) => {
                let (line, column) = err
                    .location()
                    .map_or((1, 1), |l| within(source, l.line(), l.column()));
                let line = line + line_offset;
                Err(Diagnostic::new(
                    file,
                    line,
                    column,
                    format!("YAML の書き方に誤りがあります: {}", bare_message(&err)),
                ))
            }
        }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Line and column of the node at `path` (of its key when `key_of` is set).
    pub fn locate(&self, path: &NodePath, key_of: bool) -> (usize, usize) {
        let seed = Locate {
            steps: &path.0,
            key_of,
        };
        let found = seed
            .deserialize(yaml_serde::Deserializer::from_str(self.source))
            .err()
            .filter(|e| e.to_string().contains(LOCATE_MARK))
            .and_then(|e| e.location());
        match found {
            Some(l) => {
                let (line, column) = within(self.source, l.line(), l.column());
                (line + self.line_offset, column)
            }
            None => (1 + self.line_offset, 1),
        }
    }

    pub fn diagnostic(
        &self,
        path: &NodePath,
        key_of: bool,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, column) = self.locate(path, key_of);
        Diagnostic::new(&self.file, line, column, message)
    }
}

/// The message of a `yaml_serde` error with its embedded positions (` at line L column C`)
/// taken out: the first is the error's own and already leads the line; a later one points
/// at where the unfinished construct began, and is kept as `（L 行 C 列目から）`.
fn bare_message(err: &yaml_serde::Error) -> String {
    let mut text = err.to_string();
    let mut first = true;
    while let Some(start) = text.find(" at line ") {
        let after = &text[start + 9..];
        let line: String = after.chars().take_while(char::is_ascii_digit).collect();
        let rest = &after[line.len()..];
        let Some(col_rest) = rest.strip_prefix(" column ") else {
            break;
        };
        let column: String = col_rest.chars().take_while(char::is_ascii_digit).collect();
        let end = start + 9 + line.len() + 8 + column.len();
        let replacement = if first {
            String::new()
        } else {
            format!("（{line}行{column}列目から）")
        };
        text.replace_range(start..end, &replacement);
        first = false;
    }
    text
}

/// Walks the source to one node and fails there, so the error carries the node's mark.
struct Locate<'p> {
    steps: &'p [Step],
    key_of: bool,
}

fn mark<E: de::Error>() -> E {
    E::custom(LOCATE_MARK)
}

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (wanted, rest) = match self.steps.split_first() {
            None if !self.key_of => return Err(mark()),
            Some((Step::Index(i), rest)) => (*i, rest),
            _ => return Ok(()),
        };
        let mut index = 0;
        loop {
            let more = if index == wanted {
                seq.next_element_seed(Locate {
                    steps: rest,
                    key_of: self.key_of,
                })?
            } else {
                seq.next_element::<IgnoredAny>()?.map(|_| ())
            };
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (wanted, rest) = match self.steps.split_first() {
            None if !self.key_of => return Err(mark()),
            Some((Step::Key(k), rest)) => (k.as_str(), rest),
            _ => return Ok(()),
        };
        let fail_on_key = self.key_of && rest.is_empty();
        while let Some(key) = map.next_key_seed(KeySeed {
            wanted,
            fail: fail_on_key,
        })? {
            if key {
                map.next_value_seed(Locate {
                    steps: rest,
                    key_of: self.key_of,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

impl Locate<'_> {
    fn scalar<E: de::Error>(self) -> Result<(), E> {
        if self.steps.is_empty() && !self.key_of {
            Err(mark())
        } else {
            Ok(())
        }
    }
}

/// Reads a mapping key; `true` when it is the wanted one (and fails there when asked to).
struct KeySeed<'k> {
    wanted: &'k str,
    fail: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        match (v == self.wanted, self.fail) {
            (true, true) => Err(mark()),
            (matched, _) => Ok(matched),
        }
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

/// Reads `text` (the file `rel`) as a YAML list of `what`, calling `item` with each element,
/// its path and its index; every problem goes to `diagnostics`.
pub fn read_list<'s, T>(
    rel: &Path,
    text: &'s str,
    what: &str,
    diagnostics: &mut Diagnostics,
    mut item: impl for<'d> FnMut(&mut Reader<'d, 's>, &'d Value, &NodePath, usize) -> Option<T>,
) -> Vec<T> {
    let doc = match Document::parse(rel, text, 0) {
        Ok(doc) => doc,
        Err(d) => {
            diagnostics.push(d);
            return Vec::new();
        }
    };
    let mut r = Reader::new(&doc);
    let top = NodePath::default();
    let mut out = Vec::new();
    if let Some(values) = r.sequence(&doc.root, &top, what) {
        for (i, value) in values.iter().enumerate() {
            if let Some(t) = item(&mut r, value, &top.index(i), i) {
                out.push(t);
            }
        }
    }
    diagnostics.extend(r.diagnostics);
    out
}

/// Typed, checked access to the nodes of one [`Document`], collecting every problem.
pub struct Reader<'d, 's> {
    pub doc: &'d Document<'s>,
    pub diagnostics: Diagnostics,
}

/// What kind of node a value is, for messages.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "空欄",
        Value::Bool(_) => "真偽値",
        Value::Number(_) => "数値",
        Value::String(_) => "文字列",
        Value::Sequence(_) => "リスト",
        Value::Mapping(_) => "対応表（キー: 値）",
        Value::Tagged(_) => "タグ付きの値",
    }
}

impl<'d, 's> Reader<'d, 's> {
    pub fn new(doc: &'d Document<'s>) -> Self {
        Self {
            doc,
            diagnostics: Diagnostics::default(),
        }
    }

    pub fn error(&mut self, path: &NodePath, message: impl Into<String>) {
        let diagnostic = self.doc.diagnostic(path, false, message);
        self.diagnostics.push(diagnostic);
    }

    pub fn error_at_key(&mut self, path: &NodePath, message: impl Into<String>) {
        let diagnostic = self.doc.diagnostic(path, true, message);
        self.diagnostics.push(diagnostic);
    }

    /// The node as a mapping whose keys are all among `fields`; unknown keys are reported.
    pub fn mapping(
        &mut self,
        value: &'d Value,
        path: &NodePath,
        what: &str,
        fields: &[Field],
    ) -> Option<&'d Mapping> {
        let Value::Mapping(map) = value else {
            self.error(
                path,
                format!(
                    "{what}は「キー: 値」の形で書いてください（{}になっています）",
                    kind_of(value)
                ),
            );
            return None;
        };
        for key in map.keys() {
            let name = match key {
                Value::String(s) => s.clone(),
                other => format!("{other:?}"),
            };
            if !fields.iter().any(|f| f.key == name) {
                let known: Vec<String> = fields.iter().map(ToString::to_string).collect();
                self.error_at_key(
                    &path.key(&name),
                    format!(
                        "知らないキー `{name}` があります。使えるキー: {}",
                        known.join(", ")
                    ),
                );
            }
        }
        Some(map)
    }

    /// The node as a list.
    pub fn sequence(
        &mut self,
        value: &'d Value,
        path: &NodePath,
        what: &str,
    ) -> Option<&'d [Value]> {
        match value {
            Value::Sequence(items) => Some(items),
            other => {
                self.error(
                    path,
                    format!(
                        "{what}は「- 」で始まるリストで書いてください（{}になっています）",
                        kind_of(other)
                    ),
                );
                None
            }
        }
    }

    fn present(map: &'d Mapping, field: Field) -> Option<&'d Value> {
        map.get(field.key).filter(|v| !v.is_null())
    }

    fn missing(&mut self, path: &NodePath, field: Field) {
        self.error(path, format!("必須の項目 {field} がありません"));
    }

    /// A required field: reports its absence.
    pub fn required(
        &mut self,
        map: &'d Mapping,
        path: &NodePath,
        field: Field,
    ) -> Option<&'d Value> {
        let value = Self::present(map, field);
        if value.is_none() {
            self.missing(path, field);
        }
        value
    }

    pub fn string(
        &mut self,
        map: &'d Mapping,
        path: &NodePath,
        field: Field,
        required: bool,
    ) -> Option<String> {
        let value = if required {
            self.required(map, path, field)?
        } else {
            Self::present(map, field)?
        };
        match value {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::String(_) => {
                self.error(&path.key(field.key), format!("{field} が空です"));
                None
            }
            other => {
                self.error(
                    &path.key(field.key),
                    format!("{field} は文字列で書いてください（{}になっています。数字だけなら引用符で囲みます）", kind_of(other)),
                );
                None
            }
        }
    }

    pub fn date(
        &mut self,
        map: &'d Mapping,
        path: &NodePath,
        field: Field,
        required: bool,
    ) -> Option<NaiveDate> {
        let value = if required {
            self.required(map, path, field)?
        } else {
            Self::present(map, field)?
        };
        let parsed = match value {
            Value::String(s) => parse_iso_date(s),
            _ => None,
        };
        if parsed.is_none() {
            let shown = match value {
                Value::String(s) => s.clone(),
                other => kind_of(other).to_owned(),
            };
            self.error(
                &path.key(field.key),
                format!("{field} の日付「{shown}」が読めません。YYYY-MM-DD の形の実在する日付で書いてください（例: 2024-04-01）"),
            );
        }
        parsed
    }

    pub fn boolean(&mut self, map: &'d Mapping, path: &NodePath, field: Field) -> Option<bool> {
        match Self::present(map, field)? {
            Value::Bool(b) => Some(*b),
            other => {
                self.error(
                    &path.key(field.key),
                    format!(
                        "{field} は true（○）か false（×）で書いてください（{}になっています）",
                        kind_of(other)
                    ),
                );
                None
            }
        }
    }

    pub fn integer(
        &mut self,
        map: &'d Mapping,
        path: &NodePath,
        field: Field,
        required: bool,
    ) -> Option<i64> {
        let value = if required {
            self.required(map, path, field)?
        } else {
            Self::present(map, field)?
        };
        match value.as_i64() {
            Some(n) => Some(n),
            None => {
                self.error(
                    &path.key(field.key),
                    format!(
                        "{field} は整数で書いてください（{}になっています）",
                        kind_of(value)
                    ),
                );
                None
            }
        }
    }

    pub fn string_list(&mut self, map: &'d Mapping, path: &NodePath, field: Field) -> Vec<String> {
        let Some(value) = Self::present(map, field) else {
            return Vec::new();
        };
        let path = path.key(field.key);
        let Some(items) = self.sequence(value, &path, &field.to_string()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                other => self.error(
                    &path.index(i),
                    format!(
                        "{field} の要素は文字列で書いてください（{}になっています）",
                        kind_of(other)
                    ),
                ),
            }
        }
        out
    }
}

/// `YYYY-MM-DD`, four-two-two digits, a real calendar day.
pub fn parse_iso_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "title: 一覧\nrows:\n  - name: 熊本県\n    start: 2023-04-01\n  - name: 熊本市\n    strat: 2024-10-01\n";

    fn doc() -> Document<'static> {
        Document::parse(Path::new("t.yaml"), SRC, 0).expect("valid yaml")
    }

    #[test]
    fn locates_values_and_keys() {
        let d = doc();
        let rows = NodePath::default().key("rows");
        assert_eq!(d.locate(&NodePath::default().key("title"), false), (1, 8));
        assert_eq!(d.locate(&rows.index(0).key("start"), false), (4, 12));
        assert_eq!(d.locate(&rows.index(1), false), (5, 5));
        assert_eq!(d.locate(&rows.index(1).key("strat"), true), (6, 5));
        // A path that leads nowhere falls back to the start of the document.
        assert_eq!(d.locate(&rows.index(7), false), (1, 1));
    }

    #[test]
    fn an_error_at_the_end_of_input_is_on_the_last_line() {
        // Found by the fuzzer: `[` was reported at line 2 of a file of one line.
        let at = |text: &str| {
            let d = Document::parse(Path::new("a.yaml"), text, 0)
                .err()
                .expect("error");
            (d.line, d.column)
        };
        assert_eq!(at("["), (1, 2));
        assert_eq!(at("a: [x"), (1, 6));
        assert_eq!(
            at("a: [\n"),
            (2, 1),
            "a line break ends the line: line 2 is there"
        );
        let empty = Document::parse(Path::new("a.yaml"), "# 注記だけ", 0).expect("empty");
        assert_eq!(empty.locate(&NodePath::default(), false), (1, 7));
        let cr = Document::parse(Path::new("a.yaml"), "\r\r+", 0).expect("a string");
        assert_eq!(
            cr.locate(&NodePath::default(), false),
            (3, 1),
            "a lone CR breaks a line"
        );
    }

    #[test]
    fn line_offset_is_added() {
        let d = Document::parse(Path::new("p.md"), "title: x\n", 1).expect("valid");
        assert_eq!(d.locate(&NodePath::default().key("title"), false), (2, 8));
    }

    #[test]
    fn syntax_errors_carry_their_position() {
        let err = Document::parse(Path::new("bad.yaml"), "a: 1\nb: [1, 2\n", 0)
            .err()
            .expect("invalid");
        assert_eq!(err.file, PathBuf::from("bad.yaml"));
        assert!(err.line >= 2, "{err}");
        assert!(
            err.message.starts_with("YAML の書き方に誤りがあります: "),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "bad.yaml:3:1: YAML の書き方に誤りがあります: did not find expected ',' or ']', while parsing a flow sequence（2行4列目から）"
        );
    }

    #[test]
    fn reader_reports_unknown_keys_and_bad_dates() {
        let d = doc();
        let mut r = Reader::new(&d);
        let rows = NodePath::default().key("rows");
        let fields = [field("name", "発注者名"), field("start", "運用開始日")];
        let items = r.sequence(&d.root["rows"], &rows, "rows").expect("list");
        for (i, item) in items.iter().enumerate() {
            let path = rows.index(i);
            let map = r.mapping(item, &path, "行", &fields).expect("mapping");
            r.date(map, &path, fields[1], true);
        }
        let lines: Vec<String> = r.diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "t.yaml:6:5: 知らないキー `strat` があります。使えるキー: name（発注者名）, start（運用開始日）",
                "t.yaml:5:5: 必須の項目 start（運用開始日） がありません",
            ]
        );
    }

    #[test]
    fn iso_dates_are_strict() {
        assert!(parse_iso_date("2024-04-01").is_some());
        assert!(parse_iso_date("2024-02-30").is_none());
        assert!(parse_iso_date("2024-4-1").is_none());
        assert!(parse_iso_date("令和6年4月1日").is_none());
        assert!(parse_iso_date("2024/04/01").is_none());
    }
}
