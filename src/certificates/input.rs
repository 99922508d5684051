//! The certificate files (`data/certificates/*.yaml`, private input, format in
//! `docs/certificates.md`) validated into [`Certificate`]s: the content of a 保証証書
//! (電子証書). Every problem in every file is reported at `path:line:column` in one run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use yaml_serde::{Mapping, Value};

use crate::certificates::certificate::{Adjustment, AdjustmentKind, Certificate};
use crate::certificates::customers::Customers;
use crate::common::certificate::{
    Change, Guarantor, Kind, Office, Party, Period, Record, Status, Terms, RECORD_FORMAT,
};
use crate::common::diagnostics::{Diagnostic, Diagnostics};
use crate::common::fees::FeeRules;
use crate::common::root::CERTIFICATES_DIR;
use crate::common::submission::{Orderers, SubmissionRules};
use crate::common::walk::{self, Walk};
use crate::common::yaml::{field, read_list, Document, Field, NodePath, Reader};
use crate::trust::authkey;

const NUMBER: Field = field("number", "保証契約番号");
const KIND: Field = field("kind", "区分");
const ISSUED: Field = field("issued", "発行日");
const CONTRACTOR: Field = field("contractor", "保証契約者（受注者）");
const BENEFICIARY: Field = field("beneficiary", "被保証者（発注者）");
const PROJECT: Field = field("project", "工事名");
const SITE: Field = field("site", "工事場所");
const CONTRACT_AMOUNT: Field = field("contract_amount", "請負金額");
const TARGET_AMOUNT: Field = field("target_amount", "請負金額（対象額）");
const AMOUNT: Field = field("amount", "保証金額");
const PERIOD: Field = field("period", "保証期間");
const BANK: Field = field("bank", "前払金の預託金融機関");
const AUTH_KEY: Field = field("auth_key", "認証キー");
const STATUS: Field = field("status", "状態");
const CHANGES: Field = field("changes", "変更履歴");
const FEE: Field = field("fee", "保証料");
const CUSTOMER: Field = field("customer", "顧客コード");
const ORDERER: Field = field("orderer", "提出先の発注者名");
const FEE_ADDED: Field = field("fee_added", "追加保証料");
const FEE_RETURNED: Field = field("fee_returned", "返還保証料");
const WORKS: Field = field("works", "工期");
const CANCELLED_ON: Field = field("cancelled_on", "解除日");
const APPLIED_VIA: Field = field("applied_via", "申込方法");
const OFFICE: Field = field("office", "発行店");
const RECORD_FIELDS: [Field; 22] = [
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
    FEE,
    CUSTOMER,
    APPLIED_VIA,
    OFFICE,
    TARGET_AMOUNT,
    ORDERER,
    WORKS,
    CANCELLED_ON,
];
const NAME: Field = field("name", "名称");
const ADDRESS: Field = field("address", "所在地");
const FROM: Field = field("from", "始期");
const TO: Field = field("to", "終期");
const DATE: Field = field("date", "変更日");
const CHANGE_FIELDS: [Field; 9] = [
    DATE,
    AMOUNT,
    CONTRACT_AMOUNT,
    TARGET_AMOUNT,
    PERIOD,
    PROJECT,
    WORKS,
    FEE_ADDED,
    FEE_RETURNED,
];

/// What certificates refer to outside their file: who is billed monthly, the `[fees]`
/// rules that give a fee to a certificate without one, and the orderers' rules for
/// receiving the notice (from the public adoption files).
#[derive(Debug, Clone, Copy)]
pub struct References<'a> {
    pub customers: &'a Customers,
    pub rules: &'a FeeRules,
    pub orderers: &'a Orderers,
    /// 発行店 (`[[guarantor.offices]]`) that `office:` may name.
    pub offices: &'a [Office],
    /// 保証会社 (`[guarantor]`), as every record names it.
    pub guarantor: &'a Guarantor,
}

impl References<'static> {
    /// No customer, only the built-in fee rules, and a guarantor without a name.
    pub fn built_in() -> References<'static> {
        static NONE: Customers = Customers(std::collections::BTreeMap::new());
        static RULES: std::sync::LazyLock<FeeRules> = std::sync::LazyLock::new(FeeRules::default);
        static ORDERERS: Orderers = Orderers(std::collections::BTreeMap::new());
        static GUARANTOR: std::sync::LazyLock<Guarantor> =
            std::sync::LazyLock::new(Guarantor::unnamed);
        References {
            customers: &NONE,
            rules: &RULES,
            orderers: &ORDERERS,
            offices: &[],
            guarantor: &GUARANTOR,
        }
    }
}

/// Every certificate under `data/certificates/`, sorted by number. Problems go to
/// `diagnostics`; notes that do not stop the build (契約保証 below 1/10) to `warnings`.
pub fn load(
    root: &Path,
    refs: References<'_>,
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
        let parsed = parse_file(&file.rel, &text, refs, diagnostics, warnings);
        for (certificate, index) in parsed {
            if let Some((first_file, first_index)) = first_seen.get(&certificate.record.number) {
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
                        certificate.record.number,
                        first_file.display(),
                        there.0,
                        there.1
                    ),
                ));
                continue;
            }
            first_seen.insert(certificate.record.number.clone(), (file.rel.clone(), index));
            certificates.push(certificate);
        }
    }
    certificates.sort_by(|a, b| a.record.number.cmp(&b.record.number));
    certificates
}

/// Line and column of the number of entry `index` in a file.
fn number_position(rel: &Path, text: &str, index: usize) -> (usize, usize) {
    Document::parse(rel, text, 0).map_or((1, 1), |doc| {
        doc.locate(&NodePath::default().index(index).key(NUMBER.key), false)
    })
}

/// The certificates of one file, each with its index in the file.
pub fn parse_file(
    rel: &Path,
    text: &str,
    refs: References<'_>,
    diagnostics: &mut Diagnostics,
    warnings: &mut Diagnostics,
) -> Vec<(Certificate, usize)> {
    read_list(
        rel,
        text,
        "保証の記録のファイル",
        diagnostics,
        |r, item, path, i| {
            let c = certificate(r, item, path, rel, refs.guarantor, warnings);
            let office = item.as_mapping().and_then(|m| office(r, m, path, refs));
            let mut c = c?;
            if let Some(office) = office? {
                c.record.guarantor = refs.guarantor.issued_by(&office);
            }
            fees(r, item.as_mapping(), path, refs, c).map(|c| (c, i))
        },
    )
}

/// The issuing office `office:` names, if any; `None` (an error) when it names none of
/// `[[guarantor.offices]]`.
fn office<'d>(
    r: &mut Reader<'d, '_>,
    map: &'d Mapping,
    path: &NodePath,
    refs: References<'_>,
) -> Option<Option<Office>> {
    let Some(name) = r.string(map, path, OFFICE, false) else {
        return Some(None);
    };
    if let Some(office) = refs.offices.iter().find(|o| o.name == name) {
        return Some(Some(office.clone()));
    }
    let known: Vec<&str> = refs.offices.iter().map(|o| o.name.as_str()).collect();
    let message = if known.is_empty() {
        format!("発行店「{name}」がありません。hosho.toml の [[guarantor.offices]] に name（支店名）と address（所在地）を書いてください")
    } else {
        format!(
            "発行店「{name}」は hosho.toml の [[guarantor.offices]] にありません。{}のいずれかを書いてください",
            known.join("・")
        )
    };
    r.error(&path.key(OFFICE.key), message);
    None
}

/// The certificate's fee, customer and adjustments, checked: a fee is not negative, a
/// customer is declared, a billed certificate has a fee, a cancelled one with a fee has its
/// return, and no more is returned than was paid.
fn fees<'d>(
    r: &mut Reader<'d, '_>,
    map: Option<&'d Mapping>,
    path: &NodePath,
    refs: References<'_>,
    mut c: Certificate,
) -> Option<Certificate> {
    let map = map?;
    let before = r.diagnostics.len();
    let written = r.integer(map, path, FEE, false);
    let negative = written.filter(|f| *f < 0);
    if let Some(fee) = negative {
        r.error(
            &path.key(FEE.key),
            format!("保証料は0円以上の整数で書いてください（{fee} になっています）"),
        );
    }
    let written = written.and_then(|f| u64::try_from(f).ok());
    c.customer = r.string(map, path, CUSTOMER, false);
    if let Some(code) = c.customer.as_deref() {
        if refs.customers.get(code).is_none() {
            r.error(
                &path.key(CUSTOMER.key),
                format!("顧客コード「{code}」は {} にありません。一括納付のお客様として先に登録してください", crate::common::root::CUSTOMERS_FILE),
            );
        }
    }
    c.fee = written.or_else(|| refs.rules.fee(c.record.kind, c.record.initial.amount));
    c.applied_via = r.string(map, path, APPLIED_VIA, false);
    c.discount = c.fee.and_then(|fee| {
        let d = refs.rules.discount(
            c.record.kind,
            c.applied_via.as_deref(),
            c.record.initial.amount,
        )?;
        Some((d.name.clone(), d.yen.min(fee)))
    });
    c.submission = submission(r, map, path, refs, &c.record.beneficiary);
    let billed = written.is_some() || c.customer.is_some();
    if billed && c.fee.is_none() && negative.is_none() {
        r.error(
            &path.key(AMOUNT.key),
            format!(
                "{}の保証料がありません。fee に書くか、hosho.toml の [fees.rates.\"{}\"] に料率を設定してください",
                c.record.kind, c.record.kind
            ),
        );
    }
    check_returns(r, path, &c, billed);
    (r.diagnostics.len() == before).then_some(c)
}

/// The orderer's rules for receiving the notice: `orderer:` names them, else the adopter
/// whose name the 被保証者 starts with. An `orderer:` that names none is an error.
fn submission<'d>(
    r: &mut Reader<'d, '_>,
    map: &'d Mapping,
    path: &NodePath,
    refs: References<'_>,
    beneficiary: &str,
) -> Option<(String, SubmissionRules)> {
    let orderer = r.string(map, path, ORDERER, false);
    let found = refs
        .orderers
        .find(orderer.as_deref(), beneficiary)
        .map(|(name, rules)| (name.to_owned(), rules.clone()));
    if let (Some(name), None) = (&orderer, &found) {
        r.error(
            &path.key(ORDERER.key),
            format!("発注者「{name}」の提出方法は data/adopters/ のどの一覧にもありません（submission: を書いた行の name を書いてください）"),
        );
    }
    found
}

/// A billed cancelled certificate has its return, and no more is returned than was paid.
fn check_returns(r: &mut Reader<'_, '_>, path: &NodePath, c: &Certificate, billed: bool) {
    let paid = c.net_fee().unwrap_or(0) + total(&c.adjustments, AdjustmentKind::Added);
    let returned = total(&c.adjustments, AdjustmentKind::Returned);
    if billed && c.record.cancelled() && c.fee.is_some_and(|f| f > 0) && returned == 0 {
        r.error(
            &path.key(STATUS.key),
            format!(
                "解除された保証に保証料 {} がありますが、返還の記録がありません。変更履歴に解除の日付と fee_returned（返還保証料）を書いてください",
                crate::common::format::yen(c.fee.unwrap_or(0))
            ),
        );
    }
    if returned > paid {
        r.error(
            &path.key(CHANGES.key),
            format!(
                "返還保証料の合計 {} が、保証料（割引後）と追加保証料の合計 {} を超えています",
                crate::common::format::yen(returned),
                crate::common::format::yen(paid)
            ),
        );
    }
}

fn total(adjustments: &[Adjustment], kind: AdjustmentKind) -> u64 {
    adjustments
        .iter()
        .filter(|a| a.kind == kind)
        .map(|a| a.amount)
        .sum()
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
            format!("{f} は1円以上の整数で書いてください（{n} になっています）"),
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

/// 保証契約番号: a string of exactly 10 half-width digits.
fn number<'d>(r: &mut Reader<'d, '_>, map: &'d Mapping, path: &NodePath) -> Option<String> {
    let number = r.string(map, path, NUMBER, true)?;
    if number.len() != authkey::NUMBER_LEN || !number.bytes().all(|b| b.is_ascii_digit()) {
        r.error(
            &path.key(NUMBER.key),
            format!("保証契約番号「{number}」は半角数字10桁で書いてください"),
        );
    }
    Some(number)
}

/// 区分: one of [`Kind::ALL`]; 契約保証予約 is named as not eligible.
fn kind<'d>(r: &mut Reader<'d, '_>, map: &'d Mapping, path: &NodePath) -> Option<Kind> {
    let text = r.string(map, path, KIND, true)?;
    let kind = Kind::parse(&text);
    if kind.is_none() {
        let message = if text == "契約保証予約" {
            "区分「契約保証予約」は電子保証の対象外です。予約証書を紙で発行してください".to_owned()
        } else {
            format!(
                "区分「{text}」は使えません。{}のいずれかを書いてください",
                Kind::labels()
            )
        };
        r.error(&path.key(KIND.key), message);
    }
    kind
}

/// 保証契約者: name and address.
fn contractor<'d>(r: &mut Reader<'d, '_>, map: &'d Mapping, path: &NodePath) -> Option<Party> {
    let value = r.required(map, path, CONTRACTOR)?;
    let p = path.key(CONTRACTOR.key);
    let m = r.mapping(value, &p, "保証契約者", &[NAME, ADDRESS])?;
    let name = r.string(m, &p, NAME, true);
    let address = r.string(m, &p, ADDRESS, true);
    Some(Party {
        name: name?,
        address: address?,
    })
}

/// An imported 認証キー, normalised.
fn auth_key<'d>(r: &mut Reader<'d, '_>, map: &'d Mapping, path: &NodePath) -> Option<String> {
    let text = r.string(map, path, AUTH_KEY, false)?;
    match authkey::normalise_key(&text) {
        Ok(key) => Some(key),
        Err(e) => {
            r.error(
                &path.key(AUTH_KEY.key),
                format!("認証キーが正しくありません（{e}）。英数字10文字（I・L・O・U を除く）で書いてください。キーそのものはここに表示しません"),
            );
            None
        }
    }
}

/// `status:` valid (the default) or cancelled (解除).
fn cancelled<'d>(r: &mut Reader<'d, '_>, map: &'d Mapping, path: &NodePath) -> bool {
    match r.string(map, path, STATUS, false).as_deref() {
        None | Some("valid") => false,
        Some("cancelled") => true,
        Some(other) => {
            r.error(
                &path.key(STATUS.key),
                format!("状態「{other}」は valid（有効）か cancelled（解除）で書いてください"),
            );
            false
        }
    }
}

fn certificate<'d>(
    r: &mut Reader<'d, '_>,
    item: &'d Value,
    path: &NodePath,
    rel: &Path,
    guarantor: &Guarantor,
    warnings: &mut Diagnostics,
) -> Option<Certificate> {
    let map = r.mapping(item, path, "保証の記録", &RECORD_FIELDS)?;
    let before = r.diagnostics.len();
    let number = number(r, map, path);
    let kind = kind(r, map, path);
    let issued = r.date(map, path, ISSUED, true);
    let contractor = contractor(r, map, path);
    let beneficiary = r.string(map, path, BENEFICIARY, true);
    let site = r.string(map, path, SITE, false);
    let initial = initial_terms(r, map, path);
    let bank = bank(r, map, path, kind);
    let auth_key = auth_key(r, map, path);
    let cancelled = cancelled(r, map, path);
    let cancelled_on = cancelled_on(r, map, path, cancelled);
    let (changes, adjustments) = changes(r, map, path, issued);
    let initial = initial?;
    let certificate = Certificate {
        record: Record {
            format: RECORD_FORMAT,
            number: number?,
            kind: kind?,
            status: status(cancelled, &changes),
            issued: issued?,
            contractor: contractor?,
            beneficiary: beneficiary?,
            site,
            bank,
            current: initial.after(&changes),
            initial,
            changes,
            cancelled_on,
            // Until the issuing office is known.
            guarantor: guarantor.clone(),
        },
        auth_key,
        fee: None,
        customer: None,
        applied_via: None,
        discount: None,
        adjustments,
        submission: None,
        source: rel.to_path_buf(),
    };
    check_amounts(r, &certificate, path);
    if certificate.record.kind == Kind::Contract {
        warn_small_contract_guarantee(r, &certificate, path, warnings);
    }
    warn_paper_rows(r, &certificate, path, warnings);
    (r.diagnostics.len() == before).then_some(certificate)
}

/// 前払金の預託金融機関, which 前払金 and 中間前払金 must name.
fn bank<'d>(
    r: &mut Reader<'d, '_>,
    map: &'d Mapping,
    path: &NodePath,
    kind: Option<Kind>,
) -> Option<String> {
    let bank = r.string(map, path, BANK, false);
    if let (Some(kind), None) = (kind, &bank) {
        if kind.needs_bank() {
            r.error(path, format!("{}には {BANK} が必要です", kind.label()));
        }
    }
    bank
}

/// 有効 / （変更） / 解除, as the manifest records it.
fn status(cancelled: bool, changes: &[Change]) -> Status {
    if cancelled {
        Status::Cancelled
    } else if changes.is_empty() {
        Status::Valid
    } else {
        Status::Changed
    }
}

/// 工事名, 請負金額, 保証金額, 保証期間 and 工期 as first issued.
fn initial_terms<'d>(r: &mut Reader<'d, '_>, map: &'d Mapping, path: &NodePath) -> Option<Terms> {
    let project = r.string(map, path, PROJECT, true);
    let contract_amount = positive(r, map, path, CONTRACT_AMOUNT, true);
    let target_amount = positive(r, map, path, TARGET_AMOUNT, false);
    let amount = positive(r, map, path, AMOUNT, true);
    let period_value = r.required(map, path, PERIOD);
    let period = period_value.and_then(|v| period(r, v, &path.key(PERIOD.key)));
    let works = optional_period(r, map, path, WORKS);
    Some(Terms {
        project: project?,
        contract_amount: contract_amount?,
        target_amount,
        amount: amount?,
        period: period?,
        works,
    })
}

/// A `period`-shaped field that may be left out.
fn optional_period<'d>(
    r: &mut Reader<'d, '_>,
    map: &'d Mapping,
    path: &NodePath,
    f: Field,
) -> Option<Period> {
    let value = map.get(f.key).filter(|v| !v.is_null())?;
    period(r, value, &path.key(f.key))
}

/// `cancelled_on:` the 解除日, only for a cancelled certificate.
fn cancelled_on<'d>(
    r: &mut Reader<'d, '_>,
    map: &'d Mapping,
    path: &NodePath,
    cancelled: bool,
) -> Option<NaiveDate> {
    let date = r.date(map, path, CANCELLED_ON, false)?;
    if !cancelled {
        r.error(
            &path.key(CANCELLED_ON.key),
            "解除日は解除された保証（status: cancelled）にだけ書けます",
        );
        return None;
    }
    Some(date)
}

/// Rows a paper 保証証書 shows that the record leaves out: a warning each (data written
/// before the fields existed still builds).
fn warn_paper_rows(
    r: &Reader<'_, '_>,
    certificate: &Certificate,
    path: &NodePath,
    warnings: &mut Diagnostics,
) {
    // Located only when there is something to say: locating re-reads the file, and doing
    // it for every record made a build quadratic in the number of records.
    let mut at = None;
    let mut warn = |message: String| {
        let (line, column) = *at.get_or_insert_with(|| r.doc.locate(path, false));
        let message = format!("注意: {message}");
        warnings.push(Diagnostic::new(&certificate.source, line, column, message));
    };
    if certificate.record.site.is_none() {
        warn(format!(
            "{SITE} がありません。紙の保証証書には工事場所を記載します"
        ));
    }
    if certificate.record.initial.works.is_none() {
        warn(format!(
            "{WORKS} がありません。紙の保証証書には工期を記載します（works: {{from: …, to: …}}）"
        ));
    }
    if certificate.record.cancelled() && certificate.record.cancelled_on.is_none() {
        warn(format!(
            "{CANCELLED_ON} がありません。解除された保証証書には解除日を記載します"
        ));
    }
}

/// 保証金額 must not exceed 請負金額, as first issued and after every change.
fn check_amounts(r: &mut Reader<'_, '_>, certificate: &Certificate, path: &NodePath) {
    let initial = std::iter::once((path.key(AMOUNT.key), certificate.record.initial.clone()));
    let changed = certificate
        .record
        .initial
        .history(&certificate.record.changes)
        .enumerate()
        .map(|(i, terms)| (path.key(CHANGES.key).index(i), terms));
    let yen = crate::common::format::yen;
    for (at, s) in initial.chain(changed) {
        if let Some(target) = s.target_amount.filter(|t| *t > s.contract_amount) {
            r.error(
                &at,
                format!(
                    "請負金額（対象額） {} が請負金額（総額） {} を超えています",
                    yen(target),
                    yen(s.contract_amount)
                ),
            );
        } else if let Some(target) = s.target_amount.filter(|t| s.amount > *t) {
            r.error(
                &at,
                format!(
                    "保証金額 {} が請負金額（対象額） {} を超えています",
                    yen(s.amount),
                    yen(target)
                ),
            );
        } else if s.amount > s.contract_amount {
            r.error(
                &at,
                format!(
                    "保証金額 {} が請負金額 {} を超えています",
                    yen(s.amount),
                    yen(s.contract_amount)
                ),
            );
        }
    }
}

/// 契約保証 is normally at least 1/10 of 請負金額: below that is a warning, not an error.
fn warn_small_contract_guarantee(
    r: &Reader<'_, '_>,
    certificate: &Certificate,
    path: &NodePath,
    warnings: &mut Diagnostics,
) {
    let rel = &certificate.source;
    let now = &certificate.record.current;
    if now.amount.saturating_mul(10) < now.contract_amount {
        let (line, column) = r.doc.locate(&path.key(AMOUNT.key), false);
        warnings.push(Diagnostic::new(
            rel,
            line,
            column,
            format!(
                "注意: 契約保証の保証金額 {} は請負金額 {} の10分の1に満たない額です（通常は10分の1以上）",
                crate::common::format::yen(now.amount),
                crate::common::format::yen(now.contract_amount)
            ),
        ));
    }
}

/// The fee adjustment of one change, if it has one (never both kinds).
fn adjustment<'d>(
    r: &mut Reader<'d, '_>,
    m: &'d Mapping,
    p: &NodePath,
    date: NaiveDate,
) -> Option<Adjustment> {
    let added = positive(r, m, p, FEE_ADDED, false);
    let returned = positive(r, m, p, FEE_RETURNED, false);
    match (added, returned) {
        (Some(_), Some(_)) => {
            r.error(
                &p.key(FEE_RETURNED.key),
                "一つの変更に fee_added と fee_returned の両方は書けません。日付を分けて書いてください",
            );
            None
        }
        (Some(amount), None) => Some(Adjustment {
            date,
            kind: AdjustmentKind::Added,
            amount,
        }),
        (None, Some(amount)) => Some(Adjustment {
            date,
            kind: AdjustmentKind::Returned,
            amount,
        }),
        (None, None) => None,
    }
}

/// The changes (oldest first) and the fee adjustments they carry. A change that carries
/// only a fee adjustment (a return on 解除) changes nothing on the certificate.
/// What one change alters (everything but its fee).
fn change_terms<'d>(
    r: &mut Reader<'d, '_>,
    m: &'d Mapping,
    p: &NodePath,
    date: NaiveDate,
) -> Change {
    Change {
        date,
        amount: positive(r, m, p, AMOUNT, false),
        contract_amount: positive(r, m, p, CONTRACT_AMOUNT, false),
        target_amount: positive(r, m, p, TARGET_AMOUNT, false),
        period: optional_period(r, m, p, PERIOD),
        project: r.string(m, p, PROJECT, false),
        works: optional_period(r, m, p, WORKS),
    }
}

fn changes<'d>(
    r: &mut Reader<'d, '_>,
    map: &'d Mapping,
    path: &NodePath,
    issued: Option<NaiveDate>,
) -> (Vec<Change>, Vec<Adjustment>) {
    let Some(value) = map.get(CHANGES.key).filter(|v| !v.is_null()) else {
        return (Vec::new(), Vec::new());
    };
    let list_path = path.key(CHANGES.key);
    let Some(items) = r.sequence(value, &list_path, "変更履歴") else {
        return (Vec::new(), Vec::new());
    };
    let mut adjustments = Vec::new();
    let mut last_date: Option<NaiveDate> = None;
    let mut out: Vec<Change> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = list_path.index(i);
        let Some(m) = r.mapping(item, &p, "変更", &CHANGE_FIELDS) else {
            continue;
        };
        let Some(date) = r.date(m, &p, DATE, true) else {
            continue;
        };
        let change = change_terms(r, m, &p, date);
        let fee = adjustment(r, m, &p, date);
        let fee_written = [FEE_ADDED, FEE_RETURNED]
            .iter()
            .any(|f| m.contains_key(f.key));
        if change.is_empty() && !fee_written {
            r.error(
                &p,
                "変更には amount・contract_amount・target_amount・period・project・works・fee_added・fee_returned のどれかを書いてください",
            );
        }
        if let Some(issued) = issued.filter(|d| date < *d) {
            r.error(
                &p.key(DATE.key),
                format!("変更日 {date} が発行日 {issued} より前です"),
            );
        }
        if let Some(previous) = last_date.filter(|d| date < *d) {
            r.error(
                &p.key(DATE.key),
                format!(
                    "変更日 {date} が一つ前の変更 {} より前です。変更履歴は古い順に書いてください",
                    previous
                ),
            );
        }
        last_date = Some(date);
        adjustments.extend(fee);
        if !change.is_empty() {
            out.push(change);
        }
    }
    (out, adjustments)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A changed 前払金保証, as a maintainer writes it.
    pub(crate) const GOOD: &str = r#"- number: "2070004426"
  kind: 前払金保証
  issued: 2022-05-10
  contractor: {name: 株式会社見本建設, address: 大阪府大阪市北区梅田一丁目1番1号}
  beneficiary: 支出負担行為担当官 近畿地方整備局長
  project: 見本道路改良工事
  contract_amount: 100000000
  amount: 40000000
  period: {from: 2022-05-10, to: 2023-03-31}
  works: {from: 2022-05-10, to: 2023-03-31}
  site: 大阪府見本市地内
  bank: 見本銀行 梅田支店
  changes:
    - {date: 2022-09-01, amount: 45000000, contract_amount: 112500000}
    - {date: 2023-01-10, period: {from: 2022-05-10, to: 2023-06-30}}
"#;

    /// The certificates of `text` (as `t.yaml`) read against `refs`, and the errors.
    fn read_with(refs: References<'_>, text: &str) -> (Vec<Certificate>, Vec<String>) {
        let (mut d, mut w) = (Diagnostics::default(), Diagnostics::default());
        let parsed = parse_file(Path::new("t.yaml"), text, refs, &mut d, &mut w);
        let lines: Vec<String> = d.sorted().iter().map(ToString::to_string).collect();
        (parsed.into_iter().map(|(c, _)| c).collect(), lines)
    }

    fn parse(text: &str) -> (Vec<Certificate>, Vec<String>, Vec<String>) {
        let (mut d, mut w) = (Diagnostics::default(), Diagnostics::default());
        let certs = parse_file(
            Path::new("data/certificates/t.yaml"),
            text,
            References::built_in(),
            &mut d,
            &mut w,
        )
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
        assert_eq!(c.record.kind, Kind::Advance);
        assert_eq!(c.record.status, Status::Changed);
        let now = &c.record.current;
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
                "data/certificates/t.yaml:2:9: 区分「契約保証予約」は電子保証の対象外です。予約証書を紙で発行してください",
                "data/certificates/t.yaml:8:11: amount（保証金額） は1円以上の整数で書いてください（0 になっています）",
                "data/certificates/t.yaml:9:11: 保証期間の始期 2023-05-10 が終期 2023-03-31 より後になっています",
                "data/certificates/t.yaml:10:3: 中間前払金保証には bank（前払金の預託金融機関） が必要です",
                "data/certificates/t.yaml:10:11: 保証契約番号「207000442」は半角数字10桁で書いてください",
                "data/certificates/t.yaml:17:11: 保証金額 120,000,000円 が請負金額 100,000,000円 を超えています",
                "data/certificates/t.yaml:19:13: 認証キーが正しくありません（10文字目に使えない文字があります）。英数字10文字（I・L・O・U を除く）で書いてください。キーそのものはここに表示しません",
                "data/certificates/t.yaml:22:7: 変更には amount・contract_amount・target_amount・period・project・works・fee_added・fee_returned のどれかを書いてください",
                "data/certificates/t.yaml:22:14: 変更日 2022-08-01 が一つ前の変更 2022-09-01 より前です。変更履歴は古い順に書いてください",
            ]
        );
    }

    #[test]
    fn a_certificate_names_its_issuing_office_and_the_record_carries_it() {
        let offices = [Office {
            name: "大阪支店".to_owned(),
            address: "大阪府大阪市西区".to_owned(),
            tel: Some("06-0000-0000".to_owned()),
            fax: None,
        }];
        let head = crate::common::certificate::test_guarantor();
        let refs = References {
            offices: &offices,
            guarantor: &head,
            ..References::built_in()
        };
        let read = |text: &str| read_with(refs, text);
        let named = GOOD.replace("  project:", "  office: 大阪支店\n  project:");
        let (certs, errors) = read(&named);
        assert!(errors.is_empty(), "{errors:?}");
        let record = &certs[0].record;
        assert_eq!(record.guarantor.branch.as_deref(), Some("大阪支店"));
        assert_eq!(
            record.guarantor.branch_address.as_deref(),
            Some("大阪府大阪市西区")
        );
        assert_eq!(record.guarantor.tel.as_deref(), Some("06-0000-0000"));
        assert_eq!(record.guarantor.address, head.address);
        // Without office: the guarantor as configured, byte for byte as before.
        let (certs, _) = read(GOOD);
        assert_eq!(certs[0].record.guarantor, head);
        let (certs, errors) = read(&GOOD.replace("  project:", "  office: 京都支店\n  project:"));
        assert!(certs.is_empty());
        assert_eq!(
            errors,
            ["t.yaml:6:11: 発行店「京都支店」は hosho.toml の [[guarantor.offices]] にありません。大阪支店のいずれかを書いてください"]
        );
    }

    #[test]
    fn the_orderers_rules_are_found_by_name_or_by_the_beneficiary() {
        let rules = crate::common::submission::SubmissionRules {
            page: "osaka".to_owned(),
            channels: vec!["メール".to_owned()],
            address: None,
            addresses: Vec::new(),
            subject: None,
            with_invoice: None,
            notes: Vec::new(),
            example: false,
        };
        let orderers = Orderers([("近畿地方整備局".to_owned(), rules)].into());
        let refs = References {
            orderers: &orderers,
            ..References::built_in()
        };
        let read = |text: &str| read_with(refs, text);
        // 支出負担行為担当官 近畿地方整備局長 does not start with the name: say it.
        let named = GOOD.replace("  bank:", "  orderer: 近畿地方整備局\n  bank:");
        let (certs, errs) = read(&named);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            certs[0].submission.as_ref().map(|s| s.0.as_str()),
            Some("近畿地方整備局")
        );
        let (certs, _) = read(GOOD);
        assert!(certs[0].submission.is_none());
        let unknown = GOOD.replace("  bank:", "  orderer: 見本市\n  bank:");
        let (_, errs) = read(&unknown);
        assert_eq!(errs, ["t.yaml:12:12: 発注者「見本市」の提出方法は data/adopters/ のどの一覧にもありません（submission: を書いた行の name を書いてください）"]);
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

    #[test]
    fn rows_a_paper_certificate_shows_are_warned_about_when_missing() {
        let text = GOOD
            .replace("  works: {from: 2022-05-10, to: 2023-03-31}\n", "")
            .replace("  site: 大阪府見本市地内\n", "")
            .replace("  bank:", "  status: cancelled\n  bank:");
        let (certs, errs, warns) = parse(&text);
        assert_eq!(certs.len(), 1, "still built: {errs:?}");
        assert_eq!(
            warns,
            [
                "data/certificates/t.yaml:1:3: 注意: cancelled_on（解除日） がありません。解除された保証証書には解除日を記載します",
                "data/certificates/t.yaml:1:3: 注意: site（工事場所） がありません。紙の保証証書には工事場所を記載します",
                "data/certificates/t.yaml:1:3: 注意: works（工期） がありません。紙の保証証書には工期を記載します（works: {from: …, to: …}）",
            ]
        );
        let dated = text.replace(
            "  status: cancelled\n",
            "  status: cancelled\n  cancelled_on: 2022-12-01\n",
        );
        let (certs, _, warns) = parse(&dated);
        assert_eq!(
            certs[0].record.cancelled_on,
            NaiveDate::from_ymd_opt(2022, 12, 1)
        );
        assert_eq!(warns.len(), 2, "工事場所 and 工期: {warns:?}");
    }
}
