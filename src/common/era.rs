//! Japanese era dates (和暦): `令和6年4月1日`, with 元年 for the first year of an era.
//!
//! The one place that knows the eras. Dates before 明治 (before the Gregorian calendar was
//! adopted in Japan) have no era form here and are shown as Gregorian `1868年1月1日`.

use chrono::{Datelike, NaiveDate, NaiveDateTime};

/// The time in Japan (JST, UTC+9, no daylight saving) at `t`.
pub fn in_japan(t: chrono::DateTime<chrono::Utc>) -> NaiveDateTime {
    (t + chrono::TimeDelta::hours(9)).naive_utc()
}

/// Now, in whole seconds since the Unix epoch: the one clock of the manifest's times, the
/// daemon's expiry checks and its PDF links.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Today in Japan.
pub fn today_in_japan() -> NaiveDate {
    in_japan(chrono::Utc::now()).date()
}

/// An era (元号) and the first Gregorian day it is used.
struct Era {
    name: &'static str,
    first_day: (i32, u32, u32),
}

/// Newest first, so the first era that started on or before a date is its era.
const ERAS: [Era; 5] = [
    Era {
        name: "令和",
        first_day: (2019, 5, 1),
    },
    Era {
        name: "平成",
        first_day: (1989, 1, 8),
    },
    Era {
        name: "昭和",
        first_day: (1926, 12, 25),
    },
    Era {
        name: "大正",
        first_day: (1912, 7, 30),
    },
    Era {
        name: "明治",
        first_day: (1868, 10, 23),
    },
];

/// The era name and year in that era (1 for 元年) of a date, if it is 明治 or later.
pub fn era_year(date: NaiveDate) -> Option<(&'static str, i32)> {
    let key = (date.year(), date.month(), date.day());
    ERAS.iter()
        .find(|era| era.first_day <= key)
        .map(|era| (era.name, date.year() - era.first_day.0 + 1))
}

fn year_text(name: &str, year: i32) -> String {
    if year == 1 {
        format!("{name}元年")
    } else {
        format!("{name}{year}年")
    }
}

/// `令和6年4月1日`; `1868年1月1日` before 明治.
pub fn full_date(date: NaiveDate) -> String {
    match era_year(date) {
        Some((name, year)) => format!(
            "{}{}月{}日",
            year_text(name, year),
            date.month(),
            date.day()
        ),
        None => format!("{}年{}月{}日", date.year(), date.month(), date.day()),
    }
}

/// `令和6年4月` for the first day of a month (timeline labels).
pub fn year_month(date: NaiveDate) -> String {
    match era_year(date) {
        Some((name, year)) => format!("{}{}月", year_text(name, year), date.month()),
        None => format!("{}年{}月", date.year(), date.month()),
    }
}

/// `令和6年` (the era year a date falls in).
pub fn year(date: NaiveDate) -> String {
    match era_year(date) {
        Some((name, year)) => year_text(name, year),
        None => format!("{}年", date.year()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    #[test]
    fn reiwa_boundary() {
        assert_eq!(full_date(d(2019, 4, 30)), "平成31年4月30日");
        assert_eq!(full_date(d(2019, 5, 1)), "令和元年5月1日");
        assert_eq!(full_date(d(2019, 12, 31)), "令和元年12月31日");
        assert_eq!(full_date(d(2020, 1, 1)), "令和2年1月1日");
        assert_eq!(full_date(d(2024, 4, 1)), "令和6年4月1日");
        assert_eq!(full_date(d(2025, 2, 1)), "令和7年2月1日");
    }

    #[test]
    fn every_era_back_to_meiji() {
        assert_eq!(full_date(d(1989, 1, 7)), "昭和64年1月7日");
        assert_eq!(full_date(d(1989, 1, 8)), "平成元年1月8日");
        assert_eq!(full_date(d(1926, 12, 24)), "大正15年12月24日");
        assert_eq!(full_date(d(1926, 12, 25)), "昭和元年12月25日");
        assert_eq!(full_date(d(1912, 7, 29)), "明治45年7月29日");
        assert_eq!(full_date(d(1912, 7, 30)), "大正元年7月30日");
        assert_eq!(full_date(d(1868, 10, 23)), "明治元年10月23日");
        assert_eq!(full_date(d(1873, 1, 1)), "明治6年1月1日");
        assert_eq!(full_date(d(1868, 10, 22)), "1868年10月22日");
    }

    #[test]
    fn month_and_year_forms() {
        assert_eq!(year_month(d(2019, 5, 1)), "令和元年5月");
        assert_eq!(year_month(d(2022, 9, 1)), "令和4年9月");
        assert_eq!(year(d(2023, 1, 1)), "令和5年");
        assert_eq!(year(d(2019, 1, 1)), "平成31年");
        assert_eq!(era_year(d(2000, 6, 1)), Some(("平成", 12)));
    }
}
