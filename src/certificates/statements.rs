//! 保証料計算書 (and 保証料返還計算書): for each contractor on 保証料一括納付制度 and each
//! month, one statement of the fees of the guarantees issued that month and of the 追加保証料
//! of that month's changes; the month's 返還保証料 go on a return statement of their own.
//! Typeset from `templates/statement.typ` into the notices output (`statements/CODE/`),
//! which stays on the build host.
//!
//! Statements are described as data ([`Statement::inputs`]); a statement whose inputs and
//! template did not change, and whose previous PDF still has its recorded hash, is carried
//! forward instead of typeset (`statements/cache.json`, authenticated with the auth-key
//! secret like the vault's cache).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::certificates::certificate::{AdjustmentKind, Certificate};
use crate::certificates::customers::{Customer, Customers};
use crate::certificates::reuse::Sealer;
use crate::certificates::typeset::Template;
use crate::certificates::vault::run_on_workers;
use crate::common::certificate::Guarantor;
use crate::common::certificate::Terms;
use crate::common::diagnostics::{Diagnostics, InputErrors};
use crate::common::fees::{Account, FeeRules};
use crate::common::private_files::{create_private_dir, link_or_copy, write_private};
use crate::common::{era, format};

/// The directory of statements in the notices output.
pub const STATEMENTS_DIR: &str = "statements";
/// The template of both kinds of statement.
pub const TEMPLATE: &str = "statement.typ";
const CACHE_FILE: &str = "statements/cache.json";
const CACHE_DOMAIN: &[u8] = b"hosho statement cache v2\0";

/// 保証料計算書 or 保証料返還計算書.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatementKind {
    /// 保証料計算書: fees and 追加保証料, to be paid.
    Bill,
    /// 保証料返還計算書: 返還保証料, to be paid back.
    Return,
}

impl StatementKind {
    pub fn title(self) -> &'static str {
        match self {
            StatementKind::Bill => "保証料計算書",
            StatementKind::Return => "保証料返還計算書",
        }
    }
}

/// What one line of a statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// The 保証料 of a guarantee issued in the month.
    Fee(u64),
    /// A change's 追加保証料 or 返還保証料.
    Adjustment(AdjustmentKind, u64),
}

/// One line: a guarantee issued, or a change that moved its fee.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// 発行日 or 変更日.
    pub date: NaiveDate,
    pub certificate: &'a Certificate,
    /// 保証金額 in force after it.
    pub guaranteed: u64,
    pub charge: Charge,
}

/// One customer's statement of one kind for one month.
#[derive(Debug, Clone)]
pub struct Statement<'a> {
    pub customer: &'a Customer,
    /// The first day of the month.
    pub month: NaiveDate,
    pub kind: StatementKind,
    /// By date, then 保証契約番号.
    pub lines: Vec<Line<'a>>,
}

fn first_of_month(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

fn last_of_month(month: NaiveDate) -> NaiveDate {
    month
        .checked_add_months(chrono::Months::new(1))
        .and_then(|next| next.pred_opt())
        .unwrap_or(month)
}

/// Every statement the certificates call for, sorted by customer, month and kind.
pub fn statements<'a>(
    certificates: &'a [Certificate],
    customers: &'a Customers,
) -> Vec<Statement<'a>> {
    type Key<'k> = (&'k str, NaiveDate, StatementKind);
    let mut by_key: BTreeMap<Key<'a>, Vec<Line<'a>>> = BTreeMap::new();
    for c in certificates {
        let Some(code) = c.customer.as_deref() else {
            continue;
        };
        if let Some(fee) = c.fee {
            by_key
                .entry((code, first_of_month(c.record.issued), StatementKind::Bill))
                .or_default()
                .push(Line {
                    date: c.record.issued,
                    certificate: c,
                    guaranteed: c.record.initial.amount,
                    charge: Charge::Fee(fee),
                });
        }
        for a in &c.adjustments {
            let kind = match a.kind {
                AdjustmentKind::Added => StatementKind::Bill,
                AdjustmentKind::Returned => StatementKind::Return,
            };
            by_key
                .entry((code, first_of_month(a.date), kind))
                .or_default()
                .push(Line {
                    date: a.date,
                    certificate: c,
                    guaranteed: c.terms_on(a.date).amount,
                    charge: Charge::Adjustment(a.kind, a.amount),
                });
        }
    }
    by_key
        .into_iter()
        .filter_map(|((code, month, kind), mut lines)| {
            lines.sort_by(|a, b| {
                (a.date, &a.certificate.record.number).cmp(&(b.date, &b.certificate.record.number))
            });
            Some(Statement {
                customer: customers.get(code)?,
                month,
                kind,
                lines,
            })
        })
        .collect()
}

/// What `statement.typ` receives for one line, every value as printed.
#[derive(Debug, Serialize)]
struct LineText<'a> {
    date: String,
    /// 新規 / 変更 / 解除
    reason: &'static str,
    number: &'a str,
    kind: &'static str,
    beneficiary: &'a str,
    project: String,
    /// 保証期間 on the line's date: its start and its end.
    period: [String; 2],
    /// 保証金額 after the line; on a change that moved it, `before` holds the earlier one.
    guaranteed: String,
    before: Option<String>,
    /// 保証料 (on the line of an issue), else empty.
    fee: String,
    /// 割引額 (on the line of an issue that receives one), else empty.
    discount: String,
    /// 追加保証料 or 返還保証料 (on the line of a change), else empty.
    adjustment: String,
    /// 納付済みの保証料 before a return (after the discount, with additions, less earlier
    /// returns), else empty.
    paid: String,
    /// 摘要 / 返還の理由 in words (the discount, what the change altered, the 解除), in
    /// pieces that the template never breaks inside (dates and amounts stay whole).
    note: Vec<String>,
}

/// The totals at the foot of a statement.
#[derive(Debug, Serialize)]
struct Totals {
    fees: String,
    discounts: String,
    added: String,
    returned: String,
    /// 請求額 (fees − discounts + 追加) on a bill, 返還額 on a return.
    total: String,
}

/// 振込先 as printed.
#[derive(Debug, Serialize)]
struct AccountText<'a> {
    /// `みほん銀行　本店営業部　普通預金　0123456`
    line: String,
    holder: &'a str,
}

/// What `statement.typ` receives.
#[derive(Debug, Serialize)]
struct StatementInputs<'a> {
    title: &'static str,
    is_return: bool,
    /// `令和6年10月分`
    month: String,
    /// `令和6年10月1日から令和6年10月31日まで`
    period: String,
    /// The last day of the month, in era form: the statement's only 発行日.
    issued: String,
    code: &'a str,
    customer: &'a crate::common::certificate::Party,
    guarantor: &'a Guarantor,
    lines: Vec<LineText<'a>>,
    totals: Totals,
    /// 支払期限 (bill) or 返還日 (return), when hosho.toml gives the rule.
    due: Option<String>,
    /// 振込先 (bill), when hosho.toml gives it.
    account: Option<AccountText<'a>>,
    payment_terms: Option<&'a str>,
}

/// The sums of a statement's lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub fees: u64,
    pub discounts: u64,
    pub added: u64,
    pub returned: u64,
}

impl Sums {
    /// 請求額 on a bill (fees − discounts + 追加), 返還額 on a return.
    pub fn due(&self, kind: StatementKind) -> u64 {
        match kind {
            StatementKind::Bill => self.fees - self.discounts + self.added,
            StatementKind::Return => self.returned,
        }
    }
}

impl Statement<'_> {
    /// `statements/CODE/YYYY-MM.pdf`, `…/YYYY-MM-return.pdf`, in the notices output.
    pub fn file(&self) -> String {
        let suffix = match self.kind {
            StatementKind::Bill => "",
            StatementKind::Return => "-return",
        };
        format!(
            "{STATEMENTS_DIR}/{}/{:04}-{:02}{suffix}.pdf",
            self.customer.code,
            self.month.year(),
            self.month.month()
        )
    }

    /// The sum of the lines' fees, discounts, 追加 and 返還.
    pub fn totals(&self) -> Sums {
        let mut sums = Sums::default();
        for line in &self.lines {
            match line.charge {
                Charge::Fee(yen) => {
                    sums.fees += yen;
                    sums.discounts += line.certificate.discount_yen();
                }
                Charge::Adjustment(AdjustmentKind::Added, yen) => sums.added += yen,
                Charge::Adjustment(AdjustmentKind::Returned, yen) => sums.returned += yen,
            }
        }
        sums
    }

    /// The template's inputs: every value already as printed.
    pub fn inputs(
        &self,
        guarantor: &Guarantor,
        rules: &FeeRules,
    ) -> serde_json::Result<serde_json::Value> {
        let sums = self.totals();
        let last = last_of_month(self.month);
        let (due, account) = match self.kind {
            StatementKind::Bill => (rules.due, rules.account.as_ref().map(account_text)),
            StatementKind::Return => (rules.return_due, None),
        };
        serde_json::to_value(StatementInputs {
            title: self.kind.title(),
            is_return: self.kind == StatementKind::Return,
            month: format!("{}分", era::year_month(self.month)),
            period: format!(
                "{}から{}まで",
                era::full_date(self.month),
                era::full_date(last)
            ),
            issued: era::full_date(last),
            code: &self.customer.code,
            customer: &self.customer.party,
            guarantor,
            lines: self.lines.iter().map(line_text).collect(),
            totals: Totals {
                fees: format::yen(sums.fees),
                discounts: format::yen(sums.discounts),
                added: format::yen(sums.added),
                returned: format::yen(sums.returned),
                total: format::yen(sums.due(self.kind)),
            },
            due: due.map(|rule| era::full_date(rule.date(self.month))),
            account,
            payment_terms: rules.payment_terms.as_deref(),
        })
    }
}

fn account_text(a: &Account) -> AccountText<'_> {
    AccountText {
        line: format!("{}　{}　{}預金　{}", a.bank, a.branch, a.kind, a.number),
        holder: &a.holder,
    }
}

fn line_text<'a>(line: &Line<'a>) -> LineText<'a> {
    let c = line.certificate;
    let terms = c.terms_on(line.date);
    let before = c.terms_before(line.date);
    let cancelled = c.record.cancelled() && c.record.cancelled_on.is_none_or(|on| on == line.date);
    let mut text = LineText {
        date: era::full_date(line.date),
        reason: "新規",
        number: &c.record.number,
        kind: c.record.kind.label(),
        beneficiary: &c.record.beneficiary,
        project: terms.project.clone(),
        period: [
            era::full_date(terms.period.from),
            era::full_date(terms.period.to),
        ],
        guaranteed: format::yen(line.guaranteed),
        before: None,
        fee: String::new(),
        discount: String::new(),
        adjustment: String::new(),
        paid: String::new(),
        note: Vec::new(),
    };
    match line.charge {
        Charge::Fee(yen) => {
            text.fee = format::yen(yen);
            if let Some((name, off)) = &c.discount {
                text.discount = format::yen(*off);
                text.note = vec![name.clone()];
            }
        }
        Charge::Adjustment(kind, yen) => {
            text.reason = if cancelled { "解除" } else { "変更" };
            text.adjustment = format::yen(yen);
            if before.amount != terms.amount {
                text.before = Some(format::yen(before.amount));
            }
            if kind == AdjustmentKind::Returned {
                text.paid = format::yen(paid_before(c, line.date));
            }
            text.note = change_note(c, &before, &terms, cancelled, line.date);
        }
    }
    text
}

/// 納付済みの保証料 before `date`: the fee after its discount, with the additions, less
/// the returns, dated before it.
fn paid_before(c: &Certificate, date: NaiveDate) -> u64 {
    let mut paid = c.net_fee().unwrap_or(0);
    for a in c.adjustments.iter().filter(|a| a.date < date) {
        match a.kind {
            AdjustmentKind::Added => paid += a.amount,
            AdjustmentKind::Returned => paid = paid.saturating_sub(a.amount),
        }
    }
    paid
}

/// What a change did, in words: the basis of its 追加 or 返還, in unbreakable pieces.
fn change_note(
    c: &Certificate,
    before: &Terms,
    after: &Terms,
    cancelled: bool,
    date: NaiveDate,
) -> Vec<String> {
    let on = era::full_date(date);
    if cancelled {
        let rest = date.succ_opt().unwrap_or(date);
        let end = after.period.to;
        if rest > end {
            return vec![format!("{on}に解除"), "（保証期間の終了後）".to_owned()];
        }
        let days = (end - rest).num_days() + 1;
        return vec![
            format!("{on}に解除。"),
            "保証期間の残りは".to_owned(),
            format!("{}から", era::full_date(rest)),
            format!("{}までの", era::full_date(end)),
            format!("{days}日"),
        ];
    }
    let mut parts = Vec::new();
    if before.amount != after.amount {
        let word = if after.amount < before.amount {
            "減額"
        } else {
            "増額"
        };
        parts.extend([
            format!("保証金額の{word}"),
            format!("（{}から", format::yen(before.amount)),
            format!("{}へ）", format::yen(after.amount)),
        ]);
    }
    if before.period.to != after.period.to {
        let word = if after.period.to < before.period.to {
            "短縮"
        } else {
            "延長"
        };
        if !parts.is_empty() {
            parts.push("、".to_owned());
        }
        parts.extend([
            format!("保証期間の{word}"),
            format!("（終期を{}から", era::full_date(before.period.to)),
            format!("{}へ）", era::full_date(after.period.to)),
        ]);
    }
    if parts.is_empty() {
        parts.push(format!("{}の変更", c.record.kind.label()));
    }
    parts
}

/// One statement's cache entry: the PDF's fingerprint, sealed over the inputs
/// ([`crate::certificates::reuse`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheEntry {
    fingerprint: String,
    mac: String,
}

/// Where the statements go, and what they may reuse.
pub struct StatementBuild<'a> {
    pub statements: &'a [Statement<'a>],
    pub template: &'a Template,
    pub guarantor: &'a Guarantor,
    pub rules: &'a FeeRules,
    /// The notices output being replaced (read for reuse).
    pub previous: &'a Path,
    /// The new notices output.
    pub staging: &'a Path,
    /// The auth-key secret, which authenticates the cache.
    pub secret: &'a [u8],
}

/// What the statements build did.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatementReport {
    pub statements: usize,
    pub typeset: usize,
    pub reused: usize,
}

/// Typesets (or carries forward) every statement into `b.staging` and writes the cache.
pub fn build(b: &StatementBuild<'_>) -> Result<StatementReport> {
    if b.statements.is_empty() {
        return Ok(StatementReport::default());
    }
    let previous: BTreeMap<String, CacheEntry> = std::fs::read(b.previous.join(CACHE_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let sealer = Sealer::new(b.secret);
    let mut dirs: Vec<String> = b
        .statements
        .iter()
        .map(|s| format!("{STATEMENTS_DIR}/{}", s.customer.code))
        .collect();
    dirs.dedup();
    for dir in std::iter::once(STATEMENTS_DIR.to_owned()).chain(dirs) {
        let path = b.staging.join(dir);
        create_private_dir(&path).with_context(|| format!("{} を作れません", path.display()))?;
    }
    let results = run_on_workers(b.statements, |s| one(b, &previous, &sealer, s));
    let mut d = Diagnostics::default();
    let mut cache = BTreeMap::new();
    let mut report = StatementReport {
        statements: b.statements.len(),
        ..StatementReport::default()
    };
    for (statement, result) in b.statements.iter().zip(results) {
        match result {
            Ok(Ok((entry, reused))) => {
                if reused {
                    report.reused += 1;
                } else {
                    report.typeset += 1;
                }
                cache.insert(statement.file(), entry);
            }
            Ok(Err(diagnostic)) => d.push(diagnostic),
            Err(e) => return Err(e),
        }
    }
    if !d.is_empty() {
        return Err(InputErrors(d.sorted()).into());
    }
    let mut bytes =
        serde_json::to_vec_pretty(&cache).context("statements/cache.json を作れません")?;
    bytes.push(b'\n');
    let path = b.staging.join(CACHE_FILE);
    write_private(&path, &bytes).with_context(|| format!("{} を書けません", path.display()))?;
    Ok(report)
}

type Outcome =
    Result<std::result::Result<(CacheEntry, bool), crate::common::diagnostics::Diagnostic>>;

/// One statement: carried forward when its cache entry checks out, else typeset.
fn one(
    b: &StatementBuild<'_>,
    previous: &BTreeMap<String, CacheEntry>,
    sealer: &Sealer,
    statement: &Statement<'_>,
) -> Outcome {
    let file = statement.file();
    let inputs = statement
        .inputs(b.guarantor, b.rules)
        .context("保証料計算書の入力を作れません")?;
    let mut material = inputs.to_string().into_bytes();
    material.extend_from_slice(b.template.source().as_bytes());
    let to = b.staging.join(&file);
    if let Some(entry) = previous.get(&file) {
        let parts = [&material[..], entry.fingerprint.as_bytes()];
        let from = b.previous.join(&file);
        let intact = sealer.opens(CACHE_DOMAIN, &parts, &entry.mac)
            && sealer.file_matches(&from, &entry.fingerprint);
        if intact {
            link_or_copy(&from, &to)
                .with_context(|| format!("{file} を前回の出力から引き継げません"))?;
            return Ok(Ok((entry.clone(), true)));
        }
    }
    let ident = file.trim_end_matches(".pdf").replace('/', "-");
    let pdf = match b.template.pdf(&inputs, &ident) {
        Ok(pdf) => pdf,
        Err(diagnostic) => return Ok(Err(diagnostic)),
    };
    write_private(&to, &pdf).with_context(|| format!("{} を書けません", to.display()))?;
    let fingerprint = sealer.fingerprint(&pdf);
    let mac = sealer.seal(CACHE_DOMAIN, &[&material, fingerprint.as_bytes()]);
    Ok(Ok((CacheEntry { fingerprint, mac }, false)))
}
