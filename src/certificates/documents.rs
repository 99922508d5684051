//! The documents typeset for every certificate, described as data: which typst template,
//! which private output the PDF goes to and where in it, and what the template receives
//! ([`DOCUMENTS`]). The certificate goes to the vault, which the daemon host receives; the
//! notice, which holds the 認証キー in clear text, to the notices output, which never leaves
//! the build host. A third
//! per-certificate document is one more entry and one more inputs type; the vault build,
//! its cache and `hosho check` follow the table.
//!
//! Templates receive every value already in the form the page shows (era dates,
//! `40,000,000円`), made from the certificate record, so the PDF and the daemon's page cannot
//! disagree.

use std::path::Path;

use serde::Serialize;

use crate::certificates::qr;
use crate::common::certificate::{Guarantor, Party, Record, Status};
use crate::common::submission::SubmissionRules;
use crate::common::{era, format};
use crate::trust::authkey;
use crate::trust::layout::CERTIFICATES_DIR;

/// What every document of one certificate may use besides its record.
#[derive(Debug, Clone, Copy)]
pub struct Extras<'a> {
    /// Where orderers check certificates (printed on certificates and notices).
    pub verify_url: &'a str,
    /// The certificate's 認証キー, canonical.
    pub key: &'a str,
    /// The orderer's name and its rules for receiving the notice, if it published them.
    pub submission: Option<&'a (String, SubmissionRules)>,
}

/// The private output a document is written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// `vault/`: shipped to the daemon host.
    Vault,
    /// `notices/`: stays on the build host (the notices hold the 認証キー).
    Notices,
}

/// The two private outputs: the vault (for the daemon host) and the notices (for the build
/// host alone).
#[derive(Debug, Clone, Copy)]
pub struct Outputs<'a> {
    pub vault: &'a Path,
    pub notices: &'a Path,
}

impl Outputs<'_> {
    /// The directory of `place`.
    pub fn of(&self, place: Place) -> &Path {
        match place {
            Place::Vault => self.vault,
            Place::Notices => self.notices,
        }
    }
}

/// One kind of document typeset for every certificate.
#[derive(Debug, Clone, Copy)]
pub struct DocumentKind {
    /// Short name: the PDF's identifier prefix and the key of its hash in the cache.
    pub id: &'static str,
    /// The typst template (built in, or the site's `templates/NAME`).
    pub template: &'static str,
    /// The output its PDFs go to.
    pub place: Place,
    /// The directory of its PDFs inside that output (`""` for the top).
    pub dir: &'static str,
    /// The template's inputs: everything the document shows, and its cache key.
    pub inputs: fn(&Record, Extras<'_>) -> serde_json::Result<serde_json::Value>,
    /// Values made from the inputs only when the document is typeset (drawings such as the
    /// QR code), so a rebuild that reuses the PDF never computes them.
    pub derive: fn(&mut serde_json::Value) -> Result<(), String>,
}

/// Nothing to derive.
fn nothing(_: &mut serde_json::Value) -> Result<(), String> {
    Ok(())
}

/// The notice's QR code, drawn from its `verify_link`.
fn notice_qr_code(inputs: &mut serde_json::Value) -> Result<(), String> {
    let link = inputs["verify_link"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let svg = qr::svg(&link).ok_or("確認ページの URL が長すぎて QR コードにできません")?;
    inputs["qr_svg"] = serde_json::Value::String(svg);
    Ok(())
}

impl DocumentKind {
    /// The inputs with the derived values added: what the template receives.
    pub fn template_inputs(&self, inputs: &serde_json::Value) -> Result<serde_json::Value, String> {
        let mut full = inputs.clone();
        (self.derive)(&mut full)?;
        Ok(full)
    }

    /// `DIR/<number>.pdf`, relative to its output.
    pub fn file(&self, number: &str) -> String {
        if self.dir.is_empty() {
            format!("{number}.pdf")
        } else {
            format!("{}/{number}.pdf", self.dir)
        }
    }
}

/// Every document of a certificate, in the order they are typeset and cached.
pub const DOCUMENTS: [DocumentKind; 2] = [
    DocumentKind {
        id: "certificate",
        template: "certificate.typ",
        place: Place::Vault,
        dir: CERTIFICATES_DIR,
        inputs: certificate_inputs,
        derive: nothing,
    },
    DocumentKind {
        id: "notice",
        template: "notice.typ",
        place: Place::Notices,
        dir: "",
        inputs: notice_inputs,
        derive: notice_qr_code,
    },
];

/// The certificate itself: its hash is the manifest's `pdf_sha256`, and it is the one
/// document the daemon serves (from `trust::layout::certificate_file`).
pub const CERTIFICATE: DocumentKind = DOCUMENTS[0];

/// 保証期間 in era form.
#[derive(Debug, Serialize)]
struct PeriodText {
    from: String,
    to: String,
}

/// One 変更 in words, dated in era form.
#[derive(Debug, Serialize)]
struct ChangeText {
    date: String,
    items: Vec<String>,
}

/// What `certificate.typ` receives: the 保証証書 (電子証書, 閲覧用).
#[derive(Debug, Serialize)]
struct CertificateInputs<'a> {
    title: String,
    number: &'a str,
    kind: &'static str,
    issued: String,
    contractor: &'a Party,
    beneficiary: &'a str,
    project: &'a str,
    site: Option<&'a str>,
    amount: String,
    contract_amount: String,
    /// 請負金額（対象額）, when the record gives one (then `contract_amount` is the 総額).
    target_amount: Option<String>,
    period: PeriodText,
    /// 工期, when the record gives it.
    works: Option<PeriodText>,
    bank: Option<&'a str>,
    changed: bool,
    /// 変更日: the last change's date, in era form.
    changed_on: Option<String>,
    cancelled: bool,
    /// 解除日, in era form, when the record gives it.
    cancelled_on: Option<String>,
    /// The 約款 the guarantee was contracted under (`前払金保証約款`).
    terms: String,
    changes: Vec<ChangeText>,
    guarantor: &'a Guarantor,
    verify_url: &'a str,
}

/// What `notice.typ` receives: the 電子証書閲覧用「認証キー」等のお知らせ.
#[derive(Debug, Serialize)]
struct NoticeInputs<'a> {
    number: &'a str,
    kind: &'static str,
    /// Grouped for reading: `332 E1E 7K9Q`.
    key: String,
    /// 発行日 (the certificate's), in era form.
    issued: String,
    project: &'a str,
    beneficiary: &'a str,
    guarantor: &'a Guarantor,
    verify_url: &'a str,
    /// The verification page with the number filled in (its QR code, `qr_svg`, is derived
    /// when the notice is typeset).
    verify_link: String,
    /// How this certificate's orderer wants the notice, when it has said.
    submission: Option<SubmissionText<'a>>,
}

/// An orderer's rules as the notice prints them, for this certificate.
#[derive(Debug, Serialize)]
struct SubmissionText<'a> {
    orderer: &'a str,
    /// `メール・紙`
    channels: String,
    /// 提出先 for this certificate's kind.
    address: Option<&'a str>,
    /// The subject line, filled in with this certificate's number and project.
    subject: Option<String>,
    /// `前払金請求書と一緒に提出できます` / `…できません…`
    with_invoice: Option<&'static str>,
    notes: &'a [String],
    /// The rules are an example (a demo site's), not the orderer's own.
    example: bool,
}

fn submission_text<'a>(
    record: &'a Record,
    (orderer, rules): &'a (String, SubmissionRules),
) -> SubmissionText<'a> {
    SubmissionText {
        orderer,
        channels: rules.channels.join("・"),
        address: rules.address_for(record.kind),
        subject: rules.subject_for(record.kind, &record.number, &record.current.project),
        with_invoice: rules.with_invoice.map(|with| {
            if with {
                "前払金請求書と一緒に提出できます。"
            } else {
                "前払金請求書とは別に提出してください。"
            }
        }),
        notes: &rules.notes,
        example: rules.example,
    }
}

fn certificate_inputs(
    record: &Record,
    extras: Extras<'_>,
) -> serde_json::Result<serde_json::Value> {
    let now = &record.current;
    let kind = record.kind.label();
    let changes = record
        .change_lines()
        .into_iter()
        .map(|(date, items)| ChangeText { date, items })
        .collect();
    serde_json::to_value(CertificateInputs {
        title: format!("保証証書（{kind}）{}", record.number),
        number: &record.number,
        kind,
        issued: era::full_date(record.issued),
        contractor: &record.contractor,
        beneficiary: &record.beneficiary,
        project: &now.project,
        site: record.site.as_deref(),
        amount: format::yen(now.amount),
        contract_amount: format::yen(now.contract_amount),
        target_amount: now.target_amount.map(format::yen),
        period: period_text(now.period),
        works: now.works.map(period_text),
        bank: record.bank.as_deref(),
        changed: record.status == Status::Changed,
        changed_on: record.changed_on().map(era::full_date),
        cancelled: record.status == Status::Cancelled,
        cancelled_on: record.cancelled_on.map(era::full_date),
        terms: format!("{kind}約款"),
        changes,
        guarantor: &record.guarantor,
        verify_url: extras.verify_url,
    })
}

fn period_text(p: crate::common::certificate::Period) -> PeriodText {
    PeriodText {
        from: era::full_date(p.from),
        to: era::full_date(p.to),
    }
}

fn notice_inputs(record: &Record, extras: Extras<'_>) -> serde_json::Result<serde_json::Value> {
    let verify_link = qr::verify_link(extras.verify_url, &record.number);
    serde_json::to_value(NoticeInputs {
        number: &record.number,
        kind: record.kind.label(),
        key: authkey::group(extras.key),
        issued: era::full_date(record.issued),
        project: &record.current.project,
        beneficiary: &record.beneficiary,
        guarantor: &record.guarantor,
        verify_url: extras.verify_url,
        verify_link,
        submission: extras.submission.map(|s| submission_text(record, s)),
    })
}

/// The inputs of every document of `record`, in [`DOCUMENTS`] order.
pub fn all_inputs(
    record: &Record,
    extras: Extras<'_>,
) -> serde_json::Result<Vec<serde_json::Value>> {
    DOCUMENTS
        .iter()
        .map(|document| (document.inputs)(record, extras))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::layout::certificate_file;

    #[test]
    fn the_certificate_is_where_readers_look_for_it() {
        assert_eq!(
            CERTIFICATE.file("2070004426"),
            certificate_file("2070004426")
        );
        let ids: std::collections::BTreeSet<&str> = DOCUMENTS.iter().map(|d| d.id).collect();
        assert_eq!(ids.len(), DOCUMENTS.len(), "document ids are unique");
    }
}
