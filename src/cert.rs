//! Guarantee records (`data/certificates/*.yaml`, private input) validated into
//! [`Certificate`]s: the content of a 保証証書 (電子証書).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Serialize;
use yaml_serde::{Mapping, Value};

use crate::authkey;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::walk::{self, Walk};
use crate::yaml::{field, read_list, Document, Field, NodePath, Reader};

pub const CERTIFICATES_DIR: &str = "data/certificates";

const NUMBER: Field = field("number", "保証契約番号");
const KIND: Field = field("kind", "区分");
const ISSUED: Field = field("issued", "発行日");
const CONTRACTOR: Field = field("contractor", "保証契約者（受注者）");
const BENEFICIARY: Field = field("beneficiary", "被保証者（発注者）");
const PROJECT: Field = field("project", "工事名");
const SITE: Field = field("site", "工事場所");
const CONTRACT_AMOUNT: Field = field("contract_amount", "請負金額");
const AMOUNT: Field = field("amount", "保証金額");
const PERIOD: Field = field("period", "保証期間");
const BANK: Field = field("bank", "前払金の預託金融機関");
const AUTH_KEY: Field = field("auth_key", "認証キー");
const STATUS: Field = field("status", "状態");
const CHANGES: Field = field("changes", "変更履歴");
const RECORD_FIELDS: [Field; 14] = [
    NUMBER,
    KIND,
    ISSUED,
    CONTRACTOR,
    BENEFICIARY,
    PROJECT,
    SITE,
    CONTRACT_AMOUNT,
    AMOUNT,
    PERIOD,
    BANK,
    AUTH_KEY,
    STATUS,
    CHANGES,
];
const NAME: Field = field("name", "名称");
const ADDRESS: Field = field("address", "所在地");
const FROM: Field = field("from", "始期");
const TO: Field = field("to", "終期");
const DATE: Field = field("date", "変更日");
const CHANGE_FIELDS: [Field; 5] = [DATE, AMOUNT, CONTRACT_AMOUNT, PERIOD, PROJECT];

/// 区分 of a guarantee eligible for 電子保証.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// 前払金保証
    Advance,
    /// 中間前払金保証
    InterimAdvance,
    /// 契約保証
    Contract,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Advance => "前払金保証",
            Kind::InterimAdvance => "中間前払金保証",
            Kind::Contract => "契約保証",
        }
    }

    /// Advance payments are deposited with a bank named on the certificate.
    pub fn needs_bank(self) -> bool {
        matches!(self, Kind::Advance | Kind::InterimAdvance)
    }

    fn parse(text: &str) -> Option<Kind> {
        [Kind::Advance, Kind::InterimAdvance, Kind::Contract]
            .into_iter()
            .find(|k| k.label() == text)
    }
}

/// 保証契約者 (受注者).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Party {
    pub name: String,
    pub address: String,
}

/// 保証期間
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// One 変更 (増額・減額・期限変更 …), as of `date`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub date: NaiveDate,
    pub amount: Option<u64>,
    pub contract_amount: Option<u64>,
    pub period: Option<Period>,
    pub project: Option<String>,
}

/// A validated guarantee record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Certificate {
    /// 保証契約番号 (10 digits)
    pub number: String,
    pub kind: Kind,
    /// 発行日
    pub issued: NaiveDate,
    pub contractor: Party,
    /// 被保証者 (発注者)
    pub beneficiary: String,
    /// 工事名 as first issued
    pub project: String,
    /// 工事場所
    pub site: Option<String>,
    /// 請負金額 as first issued (yen)
    pub contract_amount: u64,
    /// 保証金額 as first issued (yen)
    pub amount: u64,
    pub period: Period,
    /// 前払金の預託金融機関
    pub bank: Option<String>,
    /// 認証キー imported from the core system (canonical), if any.
    #[serde(skip)]
    pub auth_key: Option<String>,
    pub cancelled: bool,
    /// Oldest first.
    pub changes: Vec<Change>,
    #[serde(skip)]
    pub source: PathBuf,
}

/// The values in force after every change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Current {
    pub amount: u64,
    pub contract_amount: u64,
    pub period: Period,
    pub project: String,
}

impl Certificate {
    pub fn current(&self) -> Current {
        let mut c = Current {
            amount: self.amount,
            contract_amount: self.contract_amount,
            period: self.period,
            project: self.project.clone(),
        };
        for change in &self.changes {
            if let Some(a) = change.amount {
                c.amount = a;
            }
            if let Some(a) = change.contract_amount {
                c.contract_amount = a;
            }
            if let Some(p) = change.period {
                c.period = p;
            }
            if let Some(p) = &change.project {
                c.project.clone_from(p);
            }
        }
        c
    }

    /// 有効 / （変更） / 解除, as the manifest records it.
    pub fn status(&self) -> crate::manifest::Status {
        use crate::manifest::Status;
        if self.cancelled {
            Status::Cancelled
        } else if self.changes.is_empty() {
            Status::Valid
        } else {
            Status::Changed
        }
    }
}

/// Every record under `data/certificates/`, sorted by number. Problems go to
/// `diagnostics`; notes that do not stop the build (契約保証 below 1/10) to `warnings`.
pub fn load(
    root: &Path,
    diagnostics: &mut Diagnostics,
    warnings: &mut Diagnostics,
) -> Vec<Certificate> {
    let mut certificates: Vec<Certificate> = Vec::new();
    let mut first_seen: HashMap<String, (PathBuf, usize)> = HashMap::new();
    let walk = Walk {
        flat: false,
        skip_dirs: &[],
    };
    for file in walk::files(root, CERTIFICATES_DIR, walk, diagnostics) {
        if !file.name.ends_with(".yaml") && !file.name.ends_with(".yml") {
            diagnostics.push(Diagnostic::file(
                file.rel,
                "data/certificates/ には .yaml ファイルだけを置いてください",
            ));
            continue;
        }
        let text = match std::fs::read_to_string(&file.abs) {
            Ok(t) => t,
            Err(e) => {
                diagnostics.push(Diagnostic::file(&file.rel, format!("読めません: {e}")));
                continue;
            }
        };
        let parsed = parse_file(&file.rel, &text, diagnostics, warnings);
        for (certificate, index) in parsed {
            if let Some((first_file, first_index)) = first_seen.get(&certificate.number) {
                // Positions are looked up only now: each lookup parses the file again.
                let here = number_position(&file.rel, &text, index);
                let first_text = if *first_file == file.rel {
                    Some(text.clone())
                } else {
                    std::fs::read_to_string(root.join(first_file)).ok()
                };
                let there =
                    first_text.map_or((1, 1), |t| number_position(first_file, &t, *first_index));
                diagnostics.push(Diagnostic::new(
                    &file.rel,
                    here.0,
                    here.1,
                    format!(
                        "保証契約番号 {} は {}:{}:{} にもあります。番号はすべてのファイルを通して一つだけにしてください",
                        certificate.number,
                        first_file.display(),
                        there.0,
                        there.1
                    ),
                ));
                continue;
            }
            first_seen.insert(certificate.number.clone(), (file.rel.clone(), index));
            certificates.push(certificate);
        }
    }
    certificates.sort_by(|a, b| a.number.cmp(&b.number));
    certificates
}

/// Line and column of the number of record `index` in a file.
fn number_position(rel: &Path, text: &str, index: usize) -> (usize, usize) {
    Document::parse(rel, text, 0).map_or((1, 1), |doc| {
        doc.locate(&NodePath::default().index(index).key(NUMBER.key), false)
    })
}

/// The records of one file, each with its index in the file.
pub fn parse_file(
    rel: &Path,
    text: &str,
    diagnostics: &mut Diagnostics,
    warnings: &mut Diagnostics,
) -> Vec<(Certificate, usize)> {
    read_list(
        rel,
        text,
        "保証の記録のファイル",
        diagnostics,
        |r, item, path, i| record(r, item, path, rel, warnings).map(|c| (c, i)),
    )
}

fn positive<'d>(
    r: &mut Reader<'d, '_>,
    map: &'d Mapping,
    path: &NodePath,
    f: Field,
    required: bool,
) -> Option<u64> {
    let n = r.integer(map, path, f, required)?;
    if n <= 0 {
        r.error(
            &path.key(f.key),
            format!("{f} は 1 円以上の整数で書いてください（{n} になっています）"),
        );
        return None;
    }
    u64::try_from(n).ok()
}

fn period<'d>(r: &mut Reader<'d, '_>, value: &'d Value, path: &NodePath) -> Option<Period> {
    let map = r.mapping(value, path, "保証期間", &[FROM, TO])?;
    let from = r.date(map, path, FROM, true);
    let to = r.date(map, path, TO, true);
    let (from, to) = (from?, to?);
    if from > to {
        r.error(
            path,
            format!("保証期間の始期 {from} が終期 {to} より後になっています"),
        );
        return None;
    }
    Some(Period { from, to })
}

fn record<'d>(
    r: &mut Reader<'d, '_>,
    item: &'d Value,
    path: &NodePath,
    rel: &Path,
    warnings: &mut Diagnostics,
) -> Option<Certificate> {
    let map = r.mapping(item, path, "保証の記録", &RECORD_FIELDS)?;
    let before = r.diagnostics.len();
    let number = r.string(map, path, NUMBER, true);
    if let Some(n) = &number {
        if n.len() != authkey::NUMBER_LEN || !n.bytes().all(|b| b.is_ascii_digit()) {
            r.error(
                &path.key(NUMBER.key),
                format!("保証契約番号「{n}」は半角数字 10 桁で書いてください"),
            );
        }
    }
    let kind = r.string(map, path, KIND, true).and_then(|k| {
        let parsed = Kind::parse(&k);
        if parsed.is_none() {
            let message = if k == "契約保証予約" {
                "区分「契約保証予約」は電子保証の対象外です。紙の保証証書で発行してください".to_owned()
            } else {
                format!("区分「{k}」は使えません。前払金保証・中間前払金保証・契約保証のいずれかを書いてください")
            };
            r.error(&path.key(KIND.key), message);
        }
        parsed
    });
    let issued = r.date(map, path, ISSUED, true);
    let contractor = r.required(map, path, CONTRACTOR).and_then(|v| {
        let p = path.key(CONTRACTOR.key);
        let m = r.mapping(v, &p, "保証契約者", &[NAME, ADDRESS])?;
        let name = r.string(m, &p, NAME, true);
        let address = r.string(m, &p, ADDRESS, true);
        Some(Party {
            name: name?,
            address: address?,
        })
    });
    let beneficiary = r.string(map, path, BENEFICIARY, true);
    let project = r.string(map, path, PROJECT, true);
    let site = r.string(map, path, SITE, false);
    let contract_amount = positive(r, map, path, CONTRACT_AMOUNT, true);
    let amount = positive(r, map, path, AMOUNT, true);
    let period_value = r.required(map, path, PERIOD);
    let period = period_value.and_then(|v| period(r, v, &path.key(PERIOD.key)));
    let bank = r.string(map, path, BANK, false);
    if let (Some(kind), None) = (kind, &bank) {
        if kind.needs_bank() {
            r.error(path, format!("{}には {BANK} が必要です", kind.label()));
        }
    }
    let auth_key = r.string(map, path, AUTH_KEY, false).and_then(|k| match authkey::normalise_key(&k) {
        Ok(key) => Some(key),
        Err(e) => {
            r.error(
                &path.key(AUTH_KEY.key),
                format!("認証キー「{k}」が正しくありません（{e}）。英数字 10 文字（I・L・O・U を除く）で書いてください"),
            );
            None
        }
    });
    let cancelled = match r.string(map, path, STATUS, false).as_deref() {
        None | Some("valid") => false,
        Some("cancelled") => true,
        Some(other) => {
            r.error(
                &path.key(STATUS.key),
                format!("状態「{other}」は valid（有効）か cancelled（解除）で書いてください"),
            );
            false
        }
    };
    let changes = changes(r, map, path, issued);
    let certificate = Certificate {
        number: number?,
        kind: kind?,
        issued: issued?,
        contractor: contractor?,
        beneficiary: beneficiary?,
        project: project?,
        site,
        contract_amount: contract_amount?,
        amount: amount?,
        period: period?,
        bank,
        auth_key,
        cancelled,
        changes,
        source: rel.to_path_buf(),
    };
    // Amounts are checked as first issued and after every change.
    let mut state = Current {
        amount: certificate.amount,
        contract_amount: certificate.contract_amount,
        period: certificate.period,
        project: certificate.project.clone(),
    };
    let mut checks = vec![(path.key(AMOUNT.key), state.clone())];
    for (i, change) in certificate.changes.iter().enumerate() {
        state.amount = change.amount.unwrap_or(state.amount);
        state.contract_amount = change.contract_amount.unwrap_or(state.contract_amount);
        checks.push((path.key(CHANGES.key).index(i), state.clone()));
    }
    for (at, s) in &checks {
        if s.amount > s.contract_amount {
            r.error(
                at,
                format!(
                    "保証金額 {} が請負金額 {} を超えています",
                    crate::format::yen(s.amount),
                    crate::format::yen(s.contract_amount)
                ),
            );
        }
    }
    if certificate.kind == Kind::Contract {
        let now = certificate.current();
        if now.amount.saturating_mul(10) < now.contract_amount {
            let (line, column) = r.doc.locate(&path.key(AMOUNT.key), false);
            warnings.push(Diagnostic::new(
                rel,
                line,
                column,
                format!(
                    "注意: 契約保証の保証金額 {} は請負金額 {} の10分の1に満たない額です（通常は10分の1以上）",
                    crate::format::yen(now.amount),
                    crate::format::yen(now.contract_amount)
                ),
            ));
        }
    }
    (r.diagnostics.len() == before).then_some(certificate)
}

fn changes<'d>(
    r: &mut Reader<'d, '_>,
    map: &'d Mapping,
    path: &NodePath,
    issued: Option<NaiveDate>,
) -> Vec<Change> {
    let Some(value) = map.get(CHANGES.key).filter(|v| !v.is_null()) else {
        return Vec::new();
    };
    let list_path = path.key(CHANGES.key);
    let Some(items) = r.sequence(value, &list_path, "変更履歴") else {
        return Vec::new();
    };
    let mut out: Vec<Change> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = list_path.index(i);
        let Some(m) = r.mapping(item, &p, "変更", &CHANGE_FIELDS) else {
            continue;
        };
        let Some(date) = r.date(m, &p, DATE, true) else {
            continue;
        };
        let change = Change {
            date,
            amount: positive(r, m, &p, AMOUNT, false),
            contract_amount: positive(r, m, &p, CONTRACT_AMOUNT, false),
            period: m
                .get(PERIOD.key)
                .filter(|v| !v.is_null())
                .and_then(|v| period(r, v, &p.key(PERIOD.key))),
            project: r.string(m, &p, PROJECT, false),
        };
        if change.amount.is_none()
            && change.contract_amount.is_none()
            && change.period.is_none()
            && change.project.is_none()
        {
            r.error(
                &p,
                "変更には amount・contract_amount・period・project のどれかを書いてください",
            );
        }
        if let Some(issued) = issued.filter(|d| date < *d) {
            r.error(
                &p.key(DATE.key),
                format!("変更日 {date} が発行日 {issued} より前です"),
            );
        }
        if let Some(previous) = out.last().filter(|c| date < c.date) {
            r.error(
                &p.key(DATE.key),
                format!(
                    "変更日 {date} が一つ前の変更 {} より前です。変更履歴は古い順に書いてください",
                    previous.date
                ),
            );
        }
        out.push(change);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"- number: "2070004426"
  kind: 前払金保証
  issued: 2022-05-10
  contractor: {name: 株式会社見本建設, address: 大阪府大阪市北区梅田一丁目1番1号}
  beneficiary: 支出負担行為担当官 近畿地方整備局長
  project: 見本道路改良工事
  contract_amount: 100000000
  amount: 40000000
  period: {from: 2022-05-10, to: 2023-03-31}
  bank: 見本銀行 梅田支店
  changes:
    - {date: 2022-09-01, amount: 45000000, contract_amount: 112500000}
    - {date: 2023-01-10, period: {from: 2022-05-10, to: 2023-06-30}}
"#;

    fn parse(text: &str) -> (Vec<Certificate>, Vec<String>, Vec<String>) {
        let (mut d, mut w) = (Diagnostics::default(), Diagnostics::default());
        let certs = parse_file(Path::new("data/certificates/t.yaml"), text, &mut d, &mut w)
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        let lines = |d: Diagnostics| d.sorted().iter().map(ToString::to_string).collect();
        (certs, lines(d), lines(w))
    }

    #[test]
    fn a_changed_advance_payment_guarantee() {
        let (certs, errs, warns) = parse(GOOD);
        assert!(errs.is_empty() && warns.is_empty(), "{errs:?} {warns:?}");
        let c = &certs[0];
        assert_eq!(c.kind, Kind::Advance);
        assert_eq!(c.status(), crate::manifest::Status::Changed);
        let now = c.current();
        assert_eq!((now.amount, now.contract_amount), (45_000_000, 112_500_000));
        assert_eq!(
            now.period.to,
            NaiveDate::from_ymd_opt(2023, 6, 30).expect("date")
        );
    }

    #[test]
    fn every_rule_is_checked_in_one_run() {
        let text = r#"- number: 2070004426
  kind: 契約保証予約
  issued: 2022-05-10
  contractor: {name: 株式会社見本建設, address: 大阪府}
  beneficiary: 見本市長
  project: 見本工事
  contract_amount: 100000000
  amount: 0
  period: {from: 2023-05-10, to: 2023-03-31}
- number: "207000442"
  kind: 中間前払金保証
  issued: 2022-05-10
  contractor: {name: 株式会社見本建設, address: 大阪府}
  beneficiary: 見本市長
  project: 見本工事
  contract_amount: 100000000
  amount: 120000000
  period: {from: 2022-05-10, to: 2023-03-31}
  auth_key: 332E1E7K9U
  changes:
    - {date: 2022-09-01, amount: 1000}
    - {date: 2022-08-01}
"#;
        let (certs, errs, _) = parse(text);
        assert!(certs.is_empty());
        assert_eq!(
            errs,
            [
                "data/certificates/t.yaml:1:11: number（保証契約番号） は文字列で書いてください（数値になっています。数字だけなら引用符で囲みます）",
                "data/certificates/t.yaml:2:9: 区分「契約保証予約」は電子保証の対象外です。紙の保証証書で発行してください",
                "data/certificates/t.yaml:8:11: amount（保証金額） は 1 円以上の整数で書いてください（0 になっています）",
                "data/certificates/t.yaml:9:11: 保証期間の始期 2023-05-10 が終期 2023-03-31 より後になっています",
                "data/certificates/t.yaml:10:3: 中間前払金保証には bank（前払金の預託金融機関） が必要です",
                "data/certificates/t.yaml:10:11: 保証契約番号「207000442」は半角数字 10 桁で書いてください",
                "data/certificates/t.yaml:17:11: 保証金額 120,000,000円 が請負金額 100,000,000円 を超えています",
                "data/certificates/t.yaml:19:13: 認証キー「332E1E7K9U」が正しくありません（使えない文字「U」があります）。英数字 10 文字（I・L・O・U を除く）で書いてください",
                "data/certificates/t.yaml:22:7: 変更には amount・contract_amount・period・project のどれかを書いてください",
                "data/certificates/t.yaml:22:14: 変更日 2022-08-01 が一つ前の変更 2022-09-01 より前です。変更履歴は古い順に書いてください",
            ]
        );
    }

    #[test]
    fn small_contract_guarantees_are_a_warning_only() {
        let text = GOOD
            .replace("kind: 前払金保証", "kind: 契約保証")
            .replace("  changes:\n    - {date: 2022-09-01, amount: 45000000, contract_amount: 112500000}\n    - {date: 2023-01-10, period: {from: 2022-05-10, to: 2023-06-30}}\n", "")
            .replace("amount: 40000000", "amount: 9000000");
        let (certs, errs, warns) = parse(&text);
        assert_eq!(certs.len(), 1, "{errs:?}");
        assert_eq!(
            warns,
            ["data/certificates/t.yaml:8:11: 注意: 契約保証の保証金額 9,000,000円 は請負金額 100,000,000円 の10分の1に満たない額です（通常は10分の1以上）"]
        );
    }
}
