//! The 保証料の目安 page's data (`fee_estimates()` in templates): each configured rate
//! table, and worked examples computed by [`FeeRules::fee`], the function the 保証料計算書
//! uses. The page's calculator script computes with the same rules, which it reads from the
//! page (`rules` below), and is tested against these examples in Chromium.

use serde::Serialize;

use crate::common::certificate::Kind;
use crate::common::fees::{FeeRules, RateTable};
use crate::common::format;

/// Guaranteed amounts the examples are worked for (yen).
const EXAMPLE_AMOUNTS: [u64; 5] = [1_000_000, 5_000_000, 10_000_000, 30_000_000, 100_000_000];

/// One worked example.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Example {
    pub amount: u64,
    pub fee: u64,
    /// The rate applied, as written (`0.065%`).
    pub rate: String,
}

/// One kind with a rate table.
#[derive(Debug, Clone, Serialize)]
pub struct KindRules {
    /// 区分
    pub kind: &'static str,
    /// A short id for HTML (`advance`, `interim-advance`, `contract`).
    pub id: &'static str,
    pub table: RateTable,
    /// Each band as the page reads it: (`1,000万円を超え5,000万円以下`, `0.15%`).
    pub bands: Vec<(String, String)>,
    /// Whether this is hosho's built-in rate (中間前払金保証, not configured).
    pub built_in: bool,
    pub examples: Vec<Example>,
}

/// One `[fees]` discount as the page states it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DiscountText {
    pub name: String,
    /// `前払金保証` (kinds joined with 「・」).
    pub kinds: String,
    /// 申込方法 (`e-Net`).
    pub applied_via: String,
    /// The least 保証金額, as yen (`3,000,000円`), or empty when any amount qualifies.
    pub min_amount: String,
    /// The amount off (`200円`).
    pub yen: String,
}

/// What the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct FeeEstimates {
    /// Kinds with rules, in [`Kind::ALL`] order.
    pub kinds: Vec<KindRules>,
    /// Kinds without rules (their fee is on the guarantor's statement only).
    pub unconfigured: Vec<&'static str>,
    /// The rules as the calculator reads them: kind → {bands: [{up_to, units}], minimum}.
    pub rules_json: String,
    /// The discounts, as the statements apply them.
    pub discounts: Vec<DiscountText>,
}

fn id(kind: Kind) -> &'static str {
    match kind {
        Kind::Advance => "advance",
        Kind::InterimAdvance => "interim-advance",
        Kind::Contract => "contract",
    }
}

/// Each band's range of amounts in words, with its rate.
fn band_texts(table: &RateTable) -> Vec<(String, String)> {
    let mut above: Option<u64> = None;
    table
        .bands
        .iter()
        .map(|band| {
            let range = match (above, band.up_to) {
                (None, None) => "すべての金額".to_owned(),
                (None, Some(to)) => format!("{}以下", format::yen(to)),
                (Some(from), None) => format!("{}を超える額", format::yen(from)),
                (Some(from), Some(to)) => {
                    format!("{}を超え{}以下", format::yen(from), format::yen(to))
                }
            };
            above = band.up_to;
            (range, String::from(band.rate))
        })
        .collect()
}

/// The page's data for `rules`.
pub fn estimates(rules: &FeeRules) -> FeeEstimates {
    let mut kinds = Vec::new();
    let mut unconfigured = Vec::new();
    let mut calculator = serde_json::Map::new();
    for kind in Kind::ALL {
        let Some(table) = rules.table(kind) else {
            unconfigured.push(kind.label());
            continue;
        };
        let examples = EXAMPLE_AMOUNTS
            .iter()
            .filter_map(|&amount| {
                let fee = rules.fee(kind, amount)?;
                let rate = String::from(table.band(amount)?.rate);
                Some(Example { amount, fee, rate })
            })
            .collect();
        let bands: Vec<serde_json::Value> = table
            .bands
            .iter()
            .map(|b| serde_json::json!({"up_to": b.up_to, "units": b.rate.units()}))
            .collect();
        calculator.insert(
            id(kind).to_owned(),
            serde_json::json!({"bands": bands, "minimum": table.minimum}),
        );
        kinds.push(KindRules {
            kind: kind.label(),
            id: id(kind),
            bands: band_texts(table),
            table: table.clone(),
            built_in: !rules.configured.iter().any(|k| k == kind.label()),
            examples,
        });
    }
    let discounts = rules
        .discounts
        .iter()
        .map(|d| DiscountText {
            name: d.name.clone(),
            kinds: d.kinds.join("・"),
            applied_via: d.applied_via.clone(),
            min_amount: match d.min_amount {
                0 => String::new(),
                yen => format::yen(yen),
            },
            yen: format::yen(d.yen),
        })
        .collect();
    FeeEstimates {
        kinds,
        unconfigured,
        rules_json: serde_json::Value::Object(calculator).to_string(),
        discounts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_are_the_statement_function() {
        let rules = FeeRules::default();
        let page = estimates(&rules);
        assert_eq!(page.unconfigured, ["前払金保証", "契約保証"]);
        let interim = &page.kinds[0];
        assert_eq!((interim.kind, interim.built_in), ("中間前払金保証", true));
        let ten_million = interim
            .examples
            .iter()
            .find(|e| e.amount == 10_000_000)
            .expect("example");
        assert_eq!(
            (ten_million.fee, ten_million.rate.as_str()),
            (6_500, "0.065%")
        );
        for e in &interim.examples {
            assert_eq!(Some(e.fee), rules.fee(Kind::InterimAdvance, e.amount));
        }
        assert_eq!(
            page.rules_json,
            r#"{"interim-advance":{"bands":[{"units":65000,"up_to":null}],"minimum":null}}"#
        );
        assert!(page.discounts.is_empty());
    }

    #[test]
    fn discounts_are_stated_as_the_statements_apply_them() {
        let raw: crate::common::fees::RawFees = toml::from_str(
            "[[discounts]]\nname = \"e-Net保証割引\"\nkinds = [\"前払金保証\"]\napplied_via = \"e-Net\"\nmin_amount = 3000000\nyen = 200",
        )
        .expect("toml");
        let page = estimates(&FeeRules::from_raw(raw).expect("rules"));
        assert_eq!(
            page.discounts,
            [DiscountText {
                name: "e-Net保証割引".to_owned(),
                kinds: "前払金保証".to_owned(),
                applied_via: "e-Net".to_owned(),
                min_amount: "3,000,000円".to_owned(),
                yen: "200円".to_owned(),
            }]
        );
    }
}
