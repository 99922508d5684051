//! The private model of a guarantee certificate ([`Certificate`]): what the certificate
//! shows (its [`Record`]), and what only the guarantor sees (its 認証キー, fee, discount,
//! customer and fee adjustments). Read from `data/certificates/` by [`crate::certificates::input`].

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::common::certificate::{Record, Terms};
use crate::common::submission::SubmissionRules;
use crate::trust::authkey;

/// 追加 (more fee, with an increase) or 返還 (fee paid back, with a decrease or 解除).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdjustmentKind {
    /// 追加保証料
    Added,
    /// 返還保証料
    Returned,
}

/// A fee adjustment carried by a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// 変更日
    pub date: NaiveDate,
    pub kind: AdjustmentKind,
    /// Yen, at least 1.
    pub amount: u64,
}

/// A validated guarantee certificate: the content of a 保証証書 (電子証書), with its
/// 認証キー when one was imported. Private: it never reaches the public site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// What the certificate shows, as `vault/records/<number>.json` holds it: the PDF and
    /// the daemon's page are made from it.
    pub record: Record,
    /// 認証キー imported from the core system (canonical), if any.
    pub auth_key: Option<String>,
    /// 保証料 (yen): as the core system computed it, else by the `[fees]` rules; `None`
    /// when neither gives one.
    pub fee: Option<u64>,
    /// 顧客コード of a contractor on 保証料一括納付制度 (`data/customers.yaml`).
    pub customer: Option<String>,
    /// 申込方法 (`e-Net`, …), which a `[fees]` discount may name.
    pub applied_via: Option<String>,
    /// 割引: the name of the `[fees]` discount it receives and the yen off its fee (never
    /// more than the fee). Private, like the fee.
    pub discount: Option<(String, u64)>,
    /// 追加保証料・返還保証料, oldest first. Private: never in the record.
    pub adjustments: Vec<Adjustment>,
    /// The orderer's rules for receiving the notice, with its name, when it has published
    /// them (`orderer:`, else the adopter whose name the 被保証者 starts with).
    pub submission: Option<(String, SubmissionRules)>,
    /// The file it was read from, relative to the site root.
    pub source: PathBuf,
}

impl Certificate {
    /// The yen off its fee (0 without a discount).
    pub fn discount_yen(&self) -> u64 {
        self.discount.as_ref().map_or(0, |(_, yen)| *yen)
    }

    /// 保証料 after its discount.
    pub fn net_fee(&self) -> Option<u64> {
        let off = self.discount_yen();
        self.fee.map(|fee| fee - off.min(fee))
    }

    /// The terms in force just before `date`: after every change dated before it.
    pub fn terms_before(&self, date: NaiveDate) -> Terms {
        let r = &self.record;
        let until = r.changes.partition_point(|c| c.date < date);
        r.initial.after(&r.changes[..until])
    }

    /// The terms in force on `date`: after every change dated then or before.
    pub fn terms_on(&self, date: NaiveDate) -> Terms {
        let r = &self.record;
        let until = r.changes.partition_point(|c| c.date <= date);
        r.initial.after(&r.changes[..until])
    }

    /// The 認証キー (canonical): the imported one, or the one derived from `auth_secret`.
    pub fn key(&self, auth_secret: &[u8]) -> String {
        self.auth_key
            .clone()
            .unwrap_or_else(|| authkey::derive_key(auth_secret, &self.record.number))
    }
}
