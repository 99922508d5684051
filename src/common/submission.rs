//! How an orderer (発注者) wants to receive the 電子証書閲覧用「認証キー」等のお知らせ: by
//! e-mail (often with a required subject line), by fax, on paper at the counter, or through
//! its 電子契約システム, to which section for which kind of guarantee. Orderers set these
//! rules themselves; the adoption files carry them (`submission:` on a row, `docs/data.md`),
//! the site gives each such orderer a page, the open data lists them, and the notice of a
//! certificate for that orderer prints them with its subject line filled in.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::common::certificate::Kind;

/// 提出方法 an orderer accepts.
pub const CHANNELS: [&str; 4] = ["メール", "FAX", "紙", "電子契約システム"];

/// Placeholders a subject line may hold: filled from the certificate, except 工事番号,
/// which only the contractor knows and fills in.
pub const PLACEHOLDERS: [&str; 4] = ["保証契約番号", "工事名", "区分", "工事番号"];

/// What the contractor writes where the subject line asks for the orderer's 工事番号.
const WORK_NUMBER_BLANK: &str = "（工事番号）";

/// 提出先 of one 区分.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindAddress {
    pub kind: String,
    pub address: String,
}

/// One orderer's rules for receiving the notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubmissionRules {
    /// The last part of the orderer's page: `/adopters/TABLE/PAGE/`.
    pub page: String,
    /// 提出方法, in the orderer's order of preference (from [`CHANNELS`]).
    pub channels: Vec<String>,
    /// 提出先 for every kind not named in `addresses`.
    pub address: Option<String>,
    /// 提出先 by 区分, where 契約保証 and 前払金保証 go to different sections (in
    /// [`Kind::ALL`] order).
    pub addresses: Vec<KindAddress>,
    /// 件名 of an e-mail, with `{保証契約番号}`, `{工事名}`, `{区分}`, `{工事番号}`.
    pub subject: Option<String>,
    /// Whether the notice may be sent together with the 前払金請求書.
    pub with_invoice: Option<bool>,
    /// 注意事項, one per line.
    pub notes: Vec<String>,
    /// Rules written as an example (a demo site's), not the orderer's own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub example: bool,
}

impl SubmissionRules {
    /// 提出先 for a guarantee of `kind`.
    pub fn address_for(&self, kind: Kind) -> Option<&str> {
        self.addresses
            .iter()
            .find(|a| a.kind == kind.label())
            .map(|a| &a.address)
            .or(self.address.as_ref())
            .map(String::as_str)
    }

    /// The subject line filled in for one certificate.
    pub fn subject_for(&self, kind: Kind, number: &str, project: &str) -> Option<String> {
        let subject = self.subject.as_ref()?;
        Some(
            subject
                .replace("{保証契約番号}", number)
                .replace("{工事名}", project)
                .replace("{区分}", kind.label())
                .replace("{工事番号}", WORK_NUMBER_BLANK),
        )
    }
}

/// The `{…}` in `subject` that are not [`PLACEHOLDERS`]; `None` when braces do not pair.
pub fn unknown_placeholders(subject: &str) -> Option<Vec<String>> {
    let mut unknown = Vec::new();
    let mut rest = subject;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}')?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            unknown.push(name.to_owned());
        }
        rest = &after[close + 1..];
    }
    (!rest.contains('}')).then_some(unknown)
}

/// Every orderer with rules, by name (発注者名), for the notices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Orderers(pub BTreeMap<String, SubmissionRules>);

impl Orderers {
    /// The orderer of a certificate: `named` when given (the certificate's `orderer:`), else
    /// the longest orderer name the 被保証者 starts with (熊本県知事 → 熊本県).
    pub fn find(&self, named: Option<&str>, beneficiary: &str) -> Option<(&str, &SubmissionRules)> {
        if let Some(name) = named {
            return self.0.get_key_value(name).map(|(k, v)| (k.as_str(), v));
        }
        self.0
            .iter()
            .filter(|(name, _)| beneficiary.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map(|(k, v)| (k.as_str(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> SubmissionRules {
        SubmissionRules {
            page: "shiga".to_owned(),
            channels: vec!["メール".to_owned()],
            address: Some("会計課".to_owned()),
            addresses: vec![KindAddress {
                kind: "契約保証".to_owned(),
                address: "契約課".to_owned(),
            }],
            subject: Some("【電子保証】{工事番号} {工事名}（{保証契約番号}）".to_owned()),
            with_invoice: Some(true),
            notes: Vec::new(),
            example: false,
        }
    }

    #[test]
    fn the_subject_is_filled_in_but_the_work_number() {
        assert_eq!(
            rules()
                .subject_for(Kind::Advance, "2070310006", "市道改良工事")
                .as_deref(),
            Some("【電子保証】（工事番号） 市道改良工事（2070310006）")
        );
        assert_eq!(rules().address_for(Kind::Contract), Some("契約課"));
        assert_eq!(rules().address_for(Kind::Advance), Some("会計課"));
    }

    #[test]
    fn placeholders_are_checked() {
        assert_eq!(
            unknown_placeholders("【電子保証】{工事番号} {工事名}"),
            Some(vec![])
        );
        assert_eq!(
            unknown_placeholders("{案件名} {区分}"),
            Some(vec!["案件名".to_owned()])
        );
        assert_eq!(unknown_placeholders("{工事名"), None);
        assert_eq!(unknown_placeholders("工事名}"), None);
    }

    #[test]
    fn the_orderer_is_the_named_one_or_the_longest_prefix() {
        let orderers = Orderers(
            [
                ("熊本県".to_owned(), rules()),
                ("熊本県警察".to_owned(), rules()),
            ]
            .into(),
        );
        assert_eq!(
            orderers.find(None, "熊本県知事").map(|o| o.0),
            Some("熊本県")
        );
        assert_eq!(
            orderers.find(None, "熊本県警察本部長").map(|o| o.0),
            Some("熊本県警察")
        );
        assert_eq!(orderers.find(None, "熊本市長"), None);
        assert_eq!(
            orderers
                .find(Some("熊本県"), "熊本県警察本部長")
                .map(|o| o.0),
            Some("熊本県")
        );
        assert_eq!(orderers.find(Some("八代市"), "八代市長"), None);
    }
}
