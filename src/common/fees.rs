//! 保証料 rules (`[fees]` in hosho.toml, `docs/hosho-toml.md`): the rates a guarantor
//! publishes, and the one function that turns a 保証金額 into a 保証料 ([`FeeRules::fee`]). The
//! 保証料計算書 and the site's 保証料の目安 page both use it, so they cannot disagree.
//!
//! Only 中間前払金保証 has a built-in rate: 0.065% of the guaranteed amount, as the
//! guarantors publish it (1,000万円 → 6,500円). Every other kind has a fee only when the
//! guarantor configures rate bands for it; hosho invents none.

use std::collections::BTreeMap;

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
                "料率「{text}」は \"0.065%\" のように、小数点以下 6 桁までの百分率で書いてください"
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

/// The fee rules: one rate table per kind, 中間前払金保証's built in unless configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeeRules {
    /// By kind, in [`Kind::ALL`] order of their labels.
    pub rates: BTreeMap<String, RateTable>,
    /// 支払条件, printed on every 保証料計算書.
    pub payment_terms: Option<String>,
    /// The kinds hosho.toml gives rates for (the others' rates are built in, or none).
    pub configured: Vec<String>,
}

/// `[fees]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFees {
    #[serde(default)]
    rates: BTreeMap<String, RateTable>,
    #[serde(default)]
    payment_terms: Option<String>,
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
        Ok(FeeRules {
            rates,
            payment_terms: raw.payment_terms,
            configured,
        })
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
}
