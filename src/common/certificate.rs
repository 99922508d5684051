//! The one model of a guarantee certificate (保証証書) that the build, the vault and the
//! daemon share: its kind, status, parties, terms and changes, and the certificate record
//! (`vault/records/<number>.json`, see `docs/vault.md`) that both the PDF and the daemon's
//! page are made from, bound to the signed manifest by its SHA-256 (`record_sha256`).
//!
//! In hosho "record" means that vault file and nothing else; the maintainer's input is a
//! certificate (`data/certificates/*.yaml`, `certificates::input`). Types only: no key,
//! secret or file access lives here. Values are raw (ISO dates, amounts in yen); the words
//! an orderer reads about a change are made here too ([`Record::change_lines`]).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::common::{era, format};

/// Format version of record files.
pub const RECORD_FORMAT: u32 = 1;

/// 区分 of a guarantee eligible for 電子保証. Written as its Japanese name wherever it
/// travels (YAML, the record, the manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// 前払金保証
    #[serde(rename = "前払金保証")]
    Advance,
    /// 中間前払金保証
    #[serde(rename = "中間前払金保証")]
    InterimAdvance,
    /// 契約保証
    #[serde(rename = "契約保証")]
    Contract,
}

impl Kind {
    /// Every kind, in the order messages list them.
    pub const ALL: [Kind; 3] = [Kind::Advance, Kind::InterimAdvance, Kind::Contract];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Advance => "前払金保証",
            Kind::InterimAdvance => "中間前払金保証",
            Kind::Contract => "契約保証",
        }
    }

    /// The kind named `text` (`前払金保証` …).
    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.label() == text)
    }

    /// `前払金保証・中間前払金保証・契約保証`, for messages.
    pub fn labels() -> String {
        Kind::ALL.map(Kind::label).join("・")
    }

    /// Advance payments are deposited with a bank named on the certificate.
    pub fn needs_bank(self) -> bool {
        matches!(self, Kind::Advance | Kind::InterimAdvance)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// 状態 of a certificate as an orderer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 有効
    Valid,
    /// （変更）: valid, with a change history.
    Changed,
    /// 解除
    Cancelled,
}

impl Status {
    /// 有効 / 有効（変更あり） / 解除, as `hosho verify` and the daemon say it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Valid => "有効",
            Status::Changed => "有効（変更あり）",
            Status::Cancelled => "解除（保証の効力はありません）",
        }
    }

    /// The name in the audit log and the API (`valid`, `changed`, `cancelled`).
    pub fn code(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Changed => "changed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// 保証期間
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// 始期
    pub from: NaiveDate,
    /// 終期
    pub to: NaiveDate,
}

/// 保証契約者（受注者）
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// 名称
    pub name: String,
    /// 所在地
    pub address: String,
}

/// 保証会社: the guarantee company that publishes the site and issues the certificates
/// (`[guarantor]` in hosho.toml, printed on every certificate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guarantor {
    /// 会社名
    pub name: String,
    /// 支店名
    #[serde(default)]
    pub branch: Option<String>,
    /// 所在地 (of the head office, written with what it is: 「本社　…」)
    pub address: String,
    /// 電話番号
    #[serde(default)]
    pub tel: Option<String>,
    /// FAX番号
    #[serde(default)]
    pub fax: Option<String>,
    /// 支店の所在地: given when a certificate names its issuing office (`office:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_address: Option<String>,
}

/// 発行店: an office that issues certificates (`[[guarantor.offices]]` in hosho.toml),
/// named by a certificate's `office:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Office {
    /// 支店名 (`大阪支店`), unique.
    pub name: String,
    /// 所在地
    pub address: String,
    /// 電話番号
    #[serde(default)]
    pub tel: Option<String>,
    /// FAX番号
    #[serde(default)]
    pub fax: Option<String>,
}

impl Guarantor {
    /// A guarantor without a name, address or number, for reading certificates apart from
    /// any site (the fuzz targets).
    pub fn unnamed() -> Guarantor {
        Guarantor {
            name: String::new(),
            branch: None,
            address: String::new(),
            tel: None,
            fax: None,
            branch_address: None,
        }
    }

    /// The guarantor as a certificate issued by `office` names it: the company and its head
    /// office, then the issuing office with its own address, telephone and FAX.
    pub fn issued_by(&self, office: &Office) -> Guarantor {
        Guarantor {
            name: self.name.clone(),
            branch: Some(office.name.clone()),
            address: self.address.clone(),
            tel: office.tel.clone(),
            fax: office.fax.clone(),
            branch_address: Some(office.address.clone()),
        }
    }
}

/// The values that a change can alter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    /// 工事名
    pub project: String,
    /// 請負金額 (yen): 請負金額（総額） when `target_amount` is given.
    pub contract_amount: u64,
    /// 請負金額（対象額） (yen): the part of a multi-year contract the guarantee is for,
    /// when it differs from the whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_amount: Option<u64>,
    /// 保証金額 (yen)
    pub amount: u64,
    /// 保証期間
    pub period: Period,
    /// 工期 (the contract's construction period), when the record gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub works: Option<Period>,
}

/// One 変更 (増額・減額・期限変更 …): only what changed on `date`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// 変更日
    pub date: NaiveDate,
    /// 保証金額 (yen)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    /// 請負金額 (yen)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_amount: Option<u64>,
    /// 請負金額（対象額） (yen)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_amount: Option<u64>,
    /// 保証期間
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// 工事名
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// 工期
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub works: Option<Period>,
}

impl Change {
    /// Whether the change alters anything at all.
    pub fn is_empty(&self) -> bool {
        self.amount.is_none()
            && self.contract_amount.is_none()
            && self.target_amount.is_none()
            && self.period.is_none()
            && self.project.is_none()
            && self.works.is_none()
    }
}

impl Terms {
    /// The terms in force after `change`.
    pub fn apply(&self, change: &Change) -> Terms {
        Terms {
            project: change
                .project
                .clone()
                .unwrap_or_else(|| self.project.clone()),
            contract_amount: change.contract_amount.unwrap_or(self.contract_amount),
            target_amount: change.target_amount.or(self.target_amount),
            amount: change.amount.unwrap_or(self.amount),
            period: change.period.unwrap_or(self.period),
            works: change.works.or(self.works),
        }
    }

    /// The terms after each change in turn, oldest first (the initial terms not included).
    pub fn history<'c>(&self, changes: &'c [Change]) -> impl Iterator<Item = Terms> + 'c {
        let mut state = self.clone();
        changes.iter().map(move |change| {
            state = state.apply(change);
            state.clone()
        })
    }

    /// The terms in force after every change.
    pub fn after(&self, changes: &[Change]) -> Terms {
        self.history(changes).last().unwrap_or_else(|| self.clone())
    }
}

/// Everything a certificate shows: the content of `vault/records/<number>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub format: u32,
    /// 保証契約番号
    pub number: String,
    /// 区分
    pub kind: Kind,
    /// 有効 / 変更 / 解除
    pub status: Status,
    /// 発行日
    pub issued: NaiveDate,
    /// 保証契約者（受注者）
    pub contractor: Party,
    /// 被保証者（発注者）
    pub beneficiary: String,
    /// 工事場所
    pub site: Option<String>,
    /// 前払金の預託金融機関
    pub bank: Option<String>,
    /// The terms in force after every change.
    pub current: Terms,
    /// The terms as first issued.
    pub initial: Terms,
    /// Oldest first.
    pub changes: Vec<Change>,
    /// 解除日, when the record gives it (a cancelled certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_on: Option<NaiveDate>,
    /// 保証会社
    pub guarantor: Guarantor,
}

impl Record {
    /// 解除
    pub fn cancelled(&self) -> bool {
        self.status == Status::Cancelled
    }

    /// The date of the last change (変更日), if any.
    pub fn changed_on(&self) -> Option<NaiveDate> {
        self.changes.last().map(|c| c.date)
    }

    /// The canonical bytes of the record file (pretty JSON, one trailing newline).
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Whether the guarantee period ended before `today` (保証期間満了). Computed when the
    /// certificate is viewed: a PDF cannot know it.
    pub fn period_ended(&self, today: NaiveDate) -> bool {
        today > self.current.period.to
    }

    /// Each change as its date in era form and what it changed, in words
    /// (`保証金額：40,000,000円 → 45,000,000円（増額）`), oldest first.
    pub fn change_lines(&self) -> Vec<(String, Vec<String>)> {
        let before =
            std::iter::once(self.initial.clone()).chain(self.initial.history(&self.changes));
        self.changes
            .iter()
            .zip(before)
            .map(|(change, previous)| {
                (era::full_date(change.date), change_items(change, &previous))
            })
            .collect()
    }
}

/// What a change did to 請負金額 (総額) and 請負金額（対象額）.
fn contract_amount_items(change: &Change, previous: &Terms) -> Vec<String> {
    let mut items = Vec::new();
    if let Some(a) = change.contract_amount {
        let label = if previous.target_amount.is_some() {
            "請負金額（総額）"
        } else {
            "請負金額"
        };
        items.push(format!(
            "{label}：{} → {}",
            format::yen(previous.contract_amount),
            format::yen(a)
        ));
    }
    if let Some(a) = change.target_amount {
        let before = previous.target_amount.unwrap_or(previous.contract_amount);
        items.push(format!(
            "請負金額（対象額）：{} → {}",
            format::yen(before),
            format::yen(a)
        ));
    }
    items
}

fn change_items(change: &Change, previous: &Terms) -> Vec<String> {
    let mut items = Vec::new();
    if let Some(a) = change.amount {
        let word = if a >= previous.amount {
            "増額"
        } else {
            "減額"
        };
        items.push(format!(
            "保証金額：{} → {}（{word}）",
            format::yen(previous.amount),
            format::yen(a)
        ));
    }
    items.extend(contract_amount_items(change, previous));
    if let Some(p) = change.period {
        if p.to != previous.period.to {
            items.push(format!(
                "保証期間の終期：{} → {}（期限変更）",
                era::full_date(previous.period.to),
                era::full_date(p.to)
            ));
        }
        if p.from != previous.period.from {
            items.push(format!(
                "保証期間の始期：{} → {}",
                era::full_date(previous.period.from),
                era::full_date(p.from)
            ));
        }
    }
    if let Some(p) = &change.project {
        items.push(format!("工事名：{} → {}", previous.project, p));
    }
    if let Some(w) = change.works {
        let before = previous
            .works
            .map_or_else(|| "記載なし".to_owned(), |p| era::full_date(p.to));
        items.push(format!("工期の終期：{before} → {}", era::full_date(w.to)));
    }
    items
}

/// The guarantor of unit tests' records.
#[cfg(test)]
pub(crate) fn test_guarantor() -> Guarantor {
    Guarantor {
        name: "テスト保証株式会社".to_owned(),
        branch: None,
        address: "東京都".to_owned(),
        tel: None,
        fax: None,
        branch_address: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    fn sample() -> Record {
        let terms = Terms {
            project: "県道改良工事".to_owned(),
            contract_amount: 400_000_000,
            target_amount: None,
            amount: 40_000_000,
            period: Period {
                from: date(2024, 4, 1),
                to: date(2025, 3, 31),
            },
            works: None,
        };
        Record {
            format: RECORD_FORMAT,
            number: "2070310002".to_owned(),
            kind: Kind::Contract,
            status: Status::Changed,
            issued: date(2024, 4, 1),
            contractor: Party {
                name: "株式会社テスト建設".to_owned(),
                address: "熊本県熊本市".to_owned(),
            },
            beneficiary: "熊本県".to_owned(),
            site: None,
            bank: None,
            current: Terms {
                amount: 30_000_000,
                period: Period {
                    from: date(2024, 4, 1),
                    to: date(2025, 9, 30),
                },
                ..terms.clone()
            },
            initial: terms,
            changes: vec![
                Change {
                    date: date(2024, 10, 1),
                    amount: Some(30_000_000),
                    contract_amount: None,
                    target_amount: None,
                    period: None,
                    project: None,
                    works: None,
                },
                Change {
                    date: date(2025, 3, 1),
                    amount: None,
                    contract_amount: None,
                    target_amount: None,
                    period: Some(Period {
                        from: date(2024, 4, 1),
                        to: date(2025, 9, 30),
                    }),
                    project: None,
                    works: None,
                },
            ],
            cancelled_on: None,
            guarantor: test_guarantor(),
        }
    }

    #[test]
    fn changes_read_as_before_and_after() {
        let lines = sample().change_lines();
        assert_eq!(
            lines,
            vec![
                (
                    "令和6年10月1日".to_owned(),
                    vec!["保証金額：40,000,000円 → 30,000,000円（減額）".to_owned()]
                ),
                (
                    "令和7年3月1日".to_owned(),
                    vec!["保証期間の終期：令和7年3月31日 → 令和7年9月30日（期限変更）".to_owned()]
                ),
            ]
        );
    }

    #[test]
    fn round_trips_and_knows_when_the_period_ended() {
        let r = sample();
        let back: Record = serde_json::from_slice(&r.to_bytes().expect("json")).expect("parse");
        assert_eq!(back, r);
        assert!(!r.period_ended(date(2025, 9, 30)));
        assert!(r.period_ended(date(2025, 10, 1)));
    }
}
