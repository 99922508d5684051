//! 保証料 rules (`[fees]` in hosho.toml, `docs/hosho-toml.md`): the rates a guarantor
//! publishes, and the one function that turns a 保証金額 into a 保証料 ([`FeeRules::fee`]). The
//! 保証料計算書 and the site's 保証料の目安 page both use it, so they cannot disagree.
//!
//! Only 中間前払金保証 has a built-in rate: 0.065% of the guaranteed amount, as the
//! guarantors publish it (1,000万円 → 6,500円). Every other kind has a fee only when the
//! guarantor configures rate bands for it; hosho invents none.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::common::certificate::Kind;

/// The built-in rate of 中間前払金保証: 0.065%.
pub const INTERIM_ADVANCE_RATE: Rate = Rate(65_000);

/// A rate held exactly: hundred-millionths of the amount (0.065% = 65,000), written as a
/// percentage with at most six decimals (`"0.065%"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rate(u64);

/// Units of [`Rate`] in 100%.
const RATE_SCALE: u128 = 100_000_000;

impl TryFrom<String> for Rate {
    type Error = String;

    fn try_from(text: String) -> Result<Rate, String> {
        let bad = || {
            format!(
                "料率「{text}」は \"0.065%\" のように、小数点以下6桁までの百分率で書いてください"
            )
        };
        let number = text.trim().strip_suffix('%').ok_or_else(bad)?;
        if number.ends_with('.') {
            return Err(bad());
        }
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (!fraction.is_empty() && !digits(fraction)) || fraction.len() > 6 {
            return Err(bad());
        }
        let whole: u64 = whole.parse().map_err(|_| bad())?;
        let fraction: u64 = format!("{fraction:0<6}").parse().map_err(|_| bad())?;
        let units = whole
            .checked_mul(1_000_000)
            .and_then(|w| w.checked_add(fraction))
            .filter(|u| u128::from(*u) <= RATE_SCALE)
            .ok_or_else(|| format!("料率「{text}」は 100% 以下にしてください"))?;
        Ok(Rate(units))
    }
}

impl From<Rate> for String {
    fn from(rate: Rate) -> String {
        let (whole, fraction) = (rate.0 / 1_000_000, rate.0 % 1_000_000);
        let fraction = format!("{fraction:06}");
        let fraction = fraction.trim_end_matches('0');
        if fraction.is_empty() {
            format!("{whole}%")
        } else {
            format!("{whole}.{fraction}%")
        }
    }
}

impl Rate {
    /// `amount` × rate, yen below one cut off (円未満切り捨て).
    pub fn of(self, amount: u64) -> u64 {
        let fee = u128::from(amount) * u128::from(self.0) / RATE_SCALE;
        u64::try_from(fee).unwrap_or(u64::MAX)
    }

    /// Hundred-millionths of the amount (what the calculator script computes with).
    pub fn units(self) -> u64 {
        self.0
    }
}

/// One band of a rate table: the rate for guaranteed amounts up to `up_to` yen (inclusive),
/// above the band before it; the last band may leave `up_to` out (no upper limit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<u64>,
    pub rate: Rate,
}

/// The 保証料 of one kind: the band the whole 保証金額 falls in gives the rate for all of
/// it; the result is at least `minimum`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateTable {
    pub bands: Vec<Band>,
    /// 最低保証料 (yen)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<u64>,
}

impl RateTable {
    /// A flat rate for any amount.
    pub fn flat(rate: Rate) -> RateTable {
        RateTable {
            bands: vec![Band { up_to: None, rate }],
            minimum: None,
        }
    }

    /// The band `amount` falls in.
    pub fn band(&self, amount: u64) -> Option<&Band> {
        self.bands
            .iter()
            .find(|band| band.up_to.is_none_or(|limit| amount <= limit))
    }

    /// What is wrong with the table, in words, if anything.
    fn problem(&self) -> Option<String> {
        if self.bands.is_empty() {
            return Some("bands に料率を一つ以上書いてください".to_owned());
        }
        let limits: Vec<Option<u64>> = self.bands.iter().map(|b| b.up_to).collect();
        let open = limits.iter().position(Option::is_none);
        if open.is_some_and(|i| i + 1 != limits.len()) {
            return Some("up_to を書かない帯（上限なし）は最後に一つだけ置いてください".to_owned());
        }
        let bounded: Vec<u64> = limits.iter().flatten().copied().collect();
        if bounded.windows(2).any(|w| w[0] >= w[1]) {
            return Some("bands の up_to は小さい順に、重ならないように書いてください".to_owned());
        }
        None
    }
}

/// A day some months after a statement's month (支払期限, 返還日), written as the
/// guarantors write it: `当月末日`, `翌月末日`, `翌々月末日`, `翌月15日`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DueRule {
    /// 0 (当月), 1 (翌月) or 2 (翌々月).
    months_after: u32,
    /// The day of that month; `None` is its last day (末日).
    day: Option<u32>,
}

const MONTH_WORDS: [&str; 3] = ["当月", "翌月", "翌々月"];

impl TryFrom<String> for DueRule {
    type Error = String;

    fn try_from(text: String) -> Result<DueRule, String> {
        let bad = || {
            format!(
                "期日「{text}」は「翌月末日」「翌月25日」のように、当月・翌月・翌々月と末日または日（1〜28日）で書いてください"
            )
        };
        let trimmed = text.trim();
        let (months_after, rest) = MONTH_WORDS
            .iter()
            .zip(0u32..)
            .find_map(|(word, n)| trimmed.strip_prefix(word).map(|rest| (n, rest)))
            .ok_or_else(bad)?;
        let day = match rest {
            "末日" => None,
            _ => {
                let digits = rest.strip_suffix('日').ok_or_else(bad)?;
                let day: u32 = digits.parse().map_err(|_| bad())?;
                Some(day).filter(|d| (1..=28).contains(d)).ok_or_else(bad)?;
                Some(day)
            }
        };
        Ok(DueRule { months_after, day })
    }
}

impl From<DueRule> for String {
    fn from(rule: DueRule) -> String {
        let month = MONTH_WORDS[rule.months_after as usize];
        match rule.day {
            None => format!("{month}末日"),
            Some(day) => format!("{month}{day}日"),
        }
    }
}

impl DueRule {
    /// The date for the statement of the month that starts on `month`.
    pub fn date(self, month: NaiveDate) -> NaiveDate {
        let first = month.with_day(1).unwrap_or(month);
        let target = first
            .checked_add_months(Months::new(self.months_after))
            .unwrap_or(first);
        match self.day {
            Some(day) => target.with_day(day).unwrap_or(target),
            None => target
                .checked_add_months(Months::new(1))
                .and_then(|next| next.pred_opt())
                .unwrap_or(target),
        }
    }
}

/// 振込先: the guarantor's account that 保証料 are paid into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// 金融機関名
    pub bank: String,
    /// 支店名
    pub branch: String,
    /// 預金種目: 普通 or 当座.
    #[serde(rename = "type")]
    pub kind: String,
    /// 口座番号: seven digits.
    pub number: String,
    /// 口座名義 (in katakana, as the bank holds it).
    pub holder: String,
}

impl Account {
    fn problem(&self) -> Option<String> {
        if !["普通", "当座"].contains(&self.kind.as_str()) {
            return Some(format!(
                "[fees.account] の type「{}」は 普通 か 当座 で書いてください",
                self.kind
            ));
        }
        let digits = self.number.len() == 7 && self.number.bytes().all(|b| b.is_ascii_digit());
        if !digits {
            return Some(format!(
                "[fees.account] の number「{}」は半角数字7桁で書いてください",
                self.number
            ));
        }
        let empty = [&self.bank, &self.branch, &self.holder]
            .iter()
            .any(|s| s.trim().is_empty());
        empty.then(|| "[fees.account] の bank・branch・holder を書いてください".to_owned())
    }
}

/// A fixed amount off the 保証料 of each guarantee that meets its conditions (the flyer's
/// e-Net保証割引: 200円 off 前払金保証 applied for through e-Net, 保証金額 300万円 or more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discount {
    /// 割引の名称, printed on the statement and the 保証料の目安 page.
    pub name: String,
    /// The kinds it applies to.
    pub kinds: Vec<String>,
    /// The 申込方法 it applies to: a certificate's `applied_via`.
    pub applied_via: String,
    /// The least 保証金額 it applies to (yen, inclusive).
    #[serde(default)]
    pub min_amount: u64,
    /// The amount off (yen).
    pub yen: u64,
}

impl Discount {
    fn problem(&self) -> Option<String> {
        if let Some(kind) = self.kinds.iter().find(|k| Kind::parse(k).is_none()) {
            return Some(format!(
                "[[fees.discounts]]「{}」の kinds の「{kind}」は区分ではありません",
                self.name
            ));
        }
        let incomplete = self.kinds.is_empty() || self.yen == 0 || self.name.trim().is_empty();
        incomplete.then(|| {
            "[[fees.discounts]] には name・kinds・applied_via と1円以上の yen を書いてください"
                .to_owned()
        })
    }

    /// Whether it applies to a guarantee of `kind` for `amount` yen applied for via `via`.
    pub fn applies(&self, kind: Kind, via: Option<&str>, amount: u64) -> bool {
        via == Some(self.applied_via.as_str())
            && amount >= self.min_amount
            && self.kinds.iter().any(|k| k == kind.label())
    }
}

/// The fee rules: one rate table per kind, 中間前払金保証's built in unless configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeeRules {
    /// By kind, in [`Kind::ALL`] order of their labels.
    pub rates: BTreeMap<String, RateTable>,
    /// 支払条件, printed on every 保証料計算書.
    pub payment_terms: Option<String>,
    /// The kinds hosho.toml gives rates for (the others' rates are built in, or none).
    pub configured: Vec<String>,
    /// 振込先, printed on every 保証料計算書.
    pub account: Option<Account>,
    /// 支払期限 of a 保証料計算書.
    pub due: Option<DueRule>,
    /// 返還日 of a 保証料返還計算書.
    pub return_due: Option<DueRule>,
    /// 割引, in the order written; the first that applies is taken.
    pub discounts: Vec<Discount>,
}

/// `[fees]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFees {
    #[serde(default)]
    rates: BTreeMap<String, RateTable>,
    #[serde(default)]
    payment_terms: Option<String>,
    #[serde(default)]
    account: Option<Account>,
    #[serde(default)]
    due: Option<DueRule>,
    #[serde(default)]
    return_due: Option<DueRule>,
    #[serde(default)]
    discounts: Vec<Discount>,
}

impl FeeRules {
    /// The rules of `raw`, with the built-in rate of 中間前払金保証 when it has none.
    pub fn from_raw(raw: RawFees) -> Result<FeeRules, String> {
        let mut rates = BTreeMap::new();
        let configured = raw.rates.keys().cloned().collect();
        for (kind, table) in raw.rates {
            if Kind::parse(&kind).is_none() {
                return Err(format!(
                    "[fees.rates] の「{kind}」は区分ではありません。{}のいずれかを書いてください",
                    Kind::labels()
                ));
            }
            if let Some(problem) = table.problem() {
                return Err(format!("[fees.rates.\"{kind}\"] の {problem}"));
            }
            rates.insert(kind, table);
        }
        let interim = Kind::InterimAdvance.label().to_owned();
        rates
            .entry(interim)
            .or_insert_with(|| RateTable::flat(INTERIM_ADVANCE_RATE));
        let problems = raw.account.as_ref().and_then(Account::problem);
        let problems = problems.or_else(|| raw.discounts.iter().find_map(Discount::problem));
        if let Some(problem) = problems {
            return Err(problem);
        }
        Ok(FeeRules {
            rates,
            payment_terms: raw.payment_terms,
            configured,
            account: raw.account,
            due: raw.due,
            return_due: raw.return_due,
            discounts: raw.discounts,
        })
    }

    /// The discount a guarantee of `kind` for `amount` yen applied for via `via` receives.
    pub fn discount(&self, kind: Kind, via: Option<&str>, amount: u64) -> Option<&Discount> {
        self.discounts.iter().find(|d| d.applies(kind, via, amount))
    }

    /// The rate table of `kind`, if the guarantor has one.
    pub fn table(&self, kind: Kind) -> Option<&RateTable> {
        self.rates.get(kind.label())
    }

    /// The 保証料 of a guarantee of `kind` for `amount` yen, or `None` when no rule covers it.
    pub fn fee(&self, kind: Kind, amount: u64) -> Option<u64> {
        let table = self.table(kind)?;
        let fee = table.band(amount)?.rate.of(amount);
        Some(table.minimum.map_or(fee, |minimum| fee.max(minimum)))
    }
}

impl Default for FeeRules {
    fn default() -> Self {
        FeeRules::from_raw(RawFees::default()).unwrap_or(FeeRules {
            rates: BTreeMap::new(),
            payment_terms: None,
            configured: Vec::new(),
            account: None,
            due: None,
            return_due: None,
            discounts: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        Rate::try_from(text.to_owned()).expect(text)
    }

    #[test]
    fn rates_are_exact_percentages() {
        assert_eq!(rate("0.065%").units(), 65_000);
        assert_eq!(rate("1%").units(), 1_000_000);
        assert_eq!(rate("0.000001%").units(), 1);
        assert_eq!(String::from(rate("0.0650%")), "0.065%");
        assert_eq!(String::from(rate("2%")), "2%");
        for bad in ["0.065", "abc%", "0.0000001%", "101%", "-1%", ".5%", "1.%"] {
            assert!(Rate::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn interim_advance_is_built_in_as_the_guarantors_publish_it() {
        let rules = FeeRules::default();
        // 1,000万円 → 6,500円.
        assert_eq!(rules.fee(Kind::InterimAdvance, 10_000_000), Some(6_500));
        // Yen below one are cut off: 16,940,000 × 0.065% = 11,011.
        assert_eq!(rules.fee(Kind::InterimAdvance, 16_940_000), Some(11_011));
        assert_eq!(rules.fee(Kind::InterimAdvance, 1_999), Some(1));
        // No rate is invented for the others.
        assert_eq!(rules.fee(Kind::Advance, 10_000_000), None);
        assert_eq!(rules.fee(Kind::Contract, 10_000_000), None);
    }

    #[test]
    fn the_band_of_the_whole_amount_gives_the_rate_and_the_minimum_holds() {
        let raw: RawFees = toml::from_str(
            r#"
            [rates."前払金保証"]
            bands = [{up_to = 10000000, rate = "0.2%"}, {up_to = 50000000, rate = "0.15%"}, {rate = "0.1%"}]
            minimum = 5000
            "#,
        )
        .expect("toml");
        let rules = FeeRules::from_raw(raw).expect("rules");
        assert_eq!(rules.fee(Kind::Advance, 1_000_000), Some(5_000));
        assert_eq!(rules.fee(Kind::Advance, 10_000_000), Some(20_000));
        assert_eq!(rules.fee(Kind::Advance, 10_000_001), Some(15_000));
        assert_eq!(rules.fee(Kind::Advance, 60_000_000), Some(60_000));
        assert_eq!(rules.fee(Kind::InterimAdvance, 10_000_000), Some(6_500));
    }

    #[test]
    fn tables_that_cannot_be_read_one_way_are_refused() {
        let refused = |text: &str| {
            let raw: RawFees = toml::from_str(text).expect("toml");
            FeeRules::from_raw(raw).expect_err(text)
        };
        assert!(
            refused("[rates.\"保証\"]\nbands = [{rate = \"1%\"}]").contains("区分ではありません")
        );
        assert!(refused("[rates.\"契約保証\"]\nbands = []").contains("一つ以上"));
        assert!(refused(
            "[rates.\"契約保証\"]\nbands = [{rate = \"1%\"}, {up_to = 5, rate = \"1%\"}]"
        )
        .contains("最後に一つだけ"));
        assert!(refused(
            "[rates.\"契約保証\"]\nbands = [{up_to = 9, rate = \"1%\"}, {up_to = 5, rate = \"1%\"}]"
        )
        .contains("小さい順"));
        // Bounded bands only: amounts above the last have no fee.
        let raw: RawFees =
            toml::from_str("[rates.\"契約保証\"]\nbands = [{up_to = 100, rate = \"1%\"}]")
                .expect("toml");
        let rules = FeeRules::from_raw(raw).expect("rules");
        assert_eq!(rules.fee(Kind::Contract, 101), None);
    }

    #[test]
    fn due_dates_are_written_as_guarantors_write_them() {
        let rule = |text: &str| DueRule::try_from(text.to_owned()).expect(text);
        let oct = NaiveDate::from_ymd_opt(2024, 10, 1).expect("date");
        let jan = NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
        assert_eq!(rule("翌月末日").date(oct), day(2024, 11, 30));
        assert_eq!(rule("当月末日").date(oct), day(2024, 10, 31));
        assert_eq!(rule("翌々月末日").date(oct), day(2024, 12, 31));
        assert_eq!(rule("翌月末日").date(jan), day(2024, 2, 29));
        assert_eq!(rule("翌月25日").date(oct), day(2024, 11, 25));
        assert_eq!(rule("翌々月10日").date(day(2024, 11, 1)), day(2025, 1, 10));
        assert_eq!(String::from(rule("翌月25日")), "翌月25日");
        assert_eq!(String::from(rule("翌々月末日")), "翌々月末日");
        for bad in ["来月末日", "翌月", "翌月31日", "翌月0日", "翌月末", "末日"] {
            assert!(DueRule::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    fn demo_rules() -> FeeRules {
        let raw: RawFees = toml::from_str(
            r#"
            due = "翌月末日"
            [account]
            bank = "みほん銀行"
            branch = "本店営業部"
            type = "普通"
            number = "0123456"
            holder = "ミホン"
            [[discounts]]
            name = "e-Net保証割引"
            kinds = ["前払金保証"]
            applied_via = "e-Net"
            min_amount = 3000000
            yen = 200
            "#,
        )
        .expect("toml");
        FeeRules::from_raw(raw).expect("rules")
    }

    #[test]
    fn a_discount_applies_only_to_its_kind_channel_and_amounts() {
        let rules = demo_rules();
        let found = |kind, via, amount| rules.discount(kind, via, amount).map(|d| d.yen);
        assert_eq!(found(Kind::Advance, Some("e-Net"), 3_000_000), Some(200));
        assert_eq!(found(Kind::Advance, Some("e-Net"), 2_999_999), None);
        assert_eq!(found(Kind::Advance, None, 30_000_000), None);
        assert_eq!(found(Kind::Advance, Some("窓口"), 30_000_000), None);
        assert_eq!(found(Kind::InterimAdvance, Some("e-Net"), 30_000_000), None);
        assert_eq!(
            rules.due,
            Some(DueRule {
                months_after: 1,
                day: None
            })
        );
    }

    #[test]
    fn accounts_and_discounts_that_cannot_be_paid_from_are_refused() {
        let refused = |text: &str| {
            let raw: RawFees = toml::from_str(text).expect("toml");
            FeeRules::from_raw(raw).expect_err(text)
        };
        let account = |kind: &str, number: &str| {
            format!("[account]\nbank = \"b\"\nbranch = \"c\"\ntype = \"{kind}\"\nnumber = \"{number}\"\nholder = \"h\"")
        };
        assert!(refused(&account("貯蓄", "0123456")).contains("普通 か 当座"));
        assert!(refused(&account("普通", "123456")).contains("7桁"));
        assert!(refused(&account("普通", "１２３４５６７")).contains("7桁"));
        let discount = |kinds: &str, yen: u64| {
            format!("[[discounts]]\nname = \"n\"\nkinds = {kinds}\napplied_via = \"e-Net\"\nyen = {yen}")
        };
        assert!(refused(&discount("[\"保証\"]", 200)).contains("区分ではありません"));
        assert!(refused(&discount("[]", 200)).contains("1円以上"));
        assert!(refused(&discount("[\"前払金保証\"]", 0)).contains("1円以上"));
    }
}
