//! The certificate record (`vault/records/<number>.json`): what an orderer sees of one
//! certificate, written by the build and read by the daemon, bound to the signed manifest by
//! its SHA-256 (`record_sha256`).
//!
//! The PDF's typst inputs and the daemon's HTML view are both made from this one value, so
//! the two can never disagree. Values are kept raw (ISO dates, amounts in yen); the text an
//! orderer reads is made here too ([`Record::change_lines`]).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::cert::{self, Certificate};
use crate::config::Guarantor;
use crate::manifest::Status;
use crate::{era, format};

/// Format version of record files.
pub const FORMAT: u32 = 1;

/// Where the record of `number` lives inside the vault.
pub fn record_file(number: &str) -> String {
    format!("records/{number}.json")
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

impl From<cert::Period> for Period {
    fn from(p: cert::Period) -> Self {
        Period {
            from: p.from,
            to: p.to,
        }
    }
}

/// 保証契約者（受注者）
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    pub name: String,
    pub address: String,
}

/// The values that a change can alter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    /// 工事名
    pub project: String,
    /// 請負金額 (yen)
    pub contract_amount: u64,
    /// 保証金額 (yen)
    pub amount: u64,
    /// 保証期間
    pub period: Period,
}

/// One 変更 (増額・減額・期限変更 …): only what changed on `date`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordChange {
    /// 変更日
    pub date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_amount: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// 保証会社 as printed on the certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    pub name: String,
    pub branch: Option<String>,
    pub address: String,
    pub tel: Option<String>,
    pub fax: Option<String>,
}

/// Everything a certificate shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub format: u32,
    /// 保証契約番号
    pub number: String,
    /// 区分 (前払金保証 …)
    pub kind: String,
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
    pub changes: Vec<RecordChange>,
    /// 保証会社
    pub guarantor: Issuer,
}

impl Record {
    pub fn new(c: &Certificate, guarantor: &Guarantor) -> Record {
        let now = c.current();
        Record {
            format: FORMAT,
            number: c.number.clone(),
            kind: c.kind.label().to_owned(),
            status: c.status(),
            issued: c.issued,
            contractor: Party {
                name: c.contractor.name.clone(),
                address: c.contractor.address.clone(),
            },
            beneficiary: c.beneficiary.clone(),
            site: c.site.clone(),
            bank: c.bank.clone(),
            current: Terms {
                project: now.project,
                contract_amount: now.contract_amount,
                amount: now.amount,
                period: now.period.into(),
            },
            initial: Terms {
                project: c.project.clone(),
                contract_amount: c.contract_amount,
                amount: c.amount,
                period: c.period.into(),
            },
            changes: c
                .changes
                .iter()
                .map(|ch| RecordChange {
                    date: ch.date,
                    amount: ch.amount,
                    contract_amount: ch.contract_amount,
                    period: ch.period.map(Period::from),
                    project: ch.project.clone(),
                })
                .collect(),
            guarantor: Issuer {
                name: guarantor.name.clone(),
                branch: guarantor.branch.clone(),
                address: guarantor.address.clone(),
                tel: guarantor.tel.clone(),
                fax: guarantor.fax.clone(),
            },
        }
    }

    /// The canonical bytes of the record file (pretty JSON, one trailing newline).
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Whether the guarantee period ended before `today` (保証期限経過). Computed when the
    /// certificate is viewed: a PDF cannot know it.
    pub fn period_ended(&self, today: NaiveDate) -> bool {
        today > self.current.period.to
    }

    /// Each change as its date in era form and what it changed, in words
    /// (`保証金額 40,000,000円 → 45,000,000円（増額）`), oldest first.
    pub fn change_lines(&self) -> Vec<(String, Vec<String>)> {
        let mut state = self.initial.clone();
        let mut lines = Vec::with_capacity(self.changes.len());
        for change in &self.changes {
            lines.push((era::full_date(change.date), change_items(change, &state)));
            state.amount = change.amount.unwrap_or(state.amount);
            state.contract_amount = change.contract_amount.unwrap_or(state.contract_amount);
            state.period = change.period.unwrap_or(state.period);
            if let Some(p) = &change.project {
                state.project.clone_from(p);
            }
        }
        lines
    }
}

fn change_items(change: &RecordChange, previous: &Terms) -> Vec<String> {
    let mut items = Vec::new();
    if let Some(a) = change.amount {
        let word = if a >= previous.amount {
            "増額"
        } else {
            "減額"
        };
        items.push(format!(
            "保証金額 {} → {}（{word}）",
            format::yen(previous.amount),
            format::yen(a)
        ));
    }
    if let Some(a) = change.contract_amount {
        items.push(format!(
            "請負金額 {} → {}",
            format::yen(previous.contract_amount),
            format::yen(a)
        ));
    }
    if let Some(p) = change.period {
        if p.to != previous.period.to {
            items.push(format!(
                "保証期間の終期 {} → {}（期限変更）",
                era::full_date(previous.period.to),
                era::full_date(p.to)
            ));
        }
        if p.from != previous.period.from {
            items.push(format!(
                "保証期間の始期 {} → {}",
                era::full_date(previous.period.from),
                era::full_date(p.from)
            ));
        }
    }
    if let Some(p) = &change.project {
        items.push(format!("工事名 {} → {}", previous.project, p));
    }
    items
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
            amount: 40_000_000,
            period: Period {
                from: date(2024, 4, 1),
                to: date(2025, 3, 31),
            },
        };
        Record {
            format: FORMAT,
            number: "2070310002".to_owned(),
            kind: "契約保証".to_owned(),
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
                RecordChange {
                    date: date(2024, 10, 1),
                    amount: Some(30_000_000),
                    contract_amount: None,
                    period: None,
                    project: None,
                },
                RecordChange {
                    date: date(2025, 3, 1),
                    amount: None,
                    contract_amount: None,
                    period: Some(Period {
                        from: date(2024, 4, 1),
                        to: date(2025, 9, 30),
                    }),
                    project: None,
                },
            ],
            guarantor: Issuer {
                name: "テスト保証株式会社".to_owned(),
                branch: None,
                address: "東京都".to_owned(),
                tel: None,
                fax: None,
            },
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
                    vec!["保証金額 40,000,000円 → 30,000,000円（減額）".to_owned()]
                ),
                (
                    "令和7年3月1日".to_owned(),
                    vec!["保証期間の終期 令和7年3月31日 → 令和7年9月30日（期限変更）".to_owned()]
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
