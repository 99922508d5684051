//! The adoption timeline: cumulative adopters by month, drawn as an inline SVG at build time
//! (readable without JavaScript) with the same figures as a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::data::AdopterTable;
use crate::era;
use crate::format::escape_markup;

/// One month in which adopters started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineMonth {
    /// First day of the month, ISO.
    pub month: NaiveDate,
    /// `令和6年4月`
    pub label: String,
    /// 発注者名 starting that month, in table order.
    pub names: Vec<String>,
    /// 累計
    pub total: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub months: Vec<TimelineMonth>,
    pub total: usize,
    /// The chart as inline SVG markup (empty when no adopter has a start date).
    pub svg: String,
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

fn months_between(a: NaiveDate, b: NaiveDate) -> i32 {
    (b.year() - a.year()) * 12 + b.month() as i32 - a.month() as i32
}

/// Builds the timeline of every dated adopter in `tables`.
pub fn build(tables: &[AdopterTable]) -> Timeline {
    let mut by_month: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
    for table in tables {
        for a in &table.adopters {
            if let Some(start) = a.start {
                by_month
                    .entry(first_of_month(start))
                    .or_default()
                    .push(a.name.clone());
            }
        }
    }
    let mut total = 0;
    let months: Vec<TimelineMonth> = by_month
        .into_iter()
        .map(|(month, names)| {
            total += names.len();
            TimelineMonth {
                month,
                label: era::year_month(month),
                names,
                total,
            }
        })
        .collect();
    let svg = draw(&months);
    Timeline { months, total, svg }
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 52.0;

/// A step line of the cumulative count with month ticks labelled by era year.
fn draw(months: &[TimelineMonth]) -> String {
    let (Some(first), Some(last)) = (months.first(), months.last()) else {
        return String::new();
    };
    let span = months_between(first.month, last.month).max(1) as f64;
    let max = last.total.max(1);
    let step = nice_step(max);
    let y_max = (max.div_ceil(step) * step) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |m: NaiveDate| LEFT + plot_w * months_between(first.month, m) as f64 / span;
    let y = |n: usize| TOP + plot_h * (1.0 - n as f64 / y_max);

    let desc = format!(
        "{}に最初の導入があり、{}までに累計{}団体が電子保証を導入しています。",
        first.label, last.label, last.total
    );
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"timeline\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-labelledby=\"timeline-title timeline-desc\" xmlns=\"http://www.w3.org/2000/svg\">\
<title id=\"timeline-title\">電子保証の導入発注者数（累計）の推移</title>\
<desc id=\"timeline-desc\">{}</desc>",
        escape_markup(&desc)
    );
    // Horizontal grid and the count axis.
    let mut n = 0;
    while n as f64 <= y_max {
        let yy = y(n);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/>\
<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{n}</text>",
            WIDTH - RIGHT,
            LEFT - 8.0,
            yy + 4.0
        );
        n += step;
    }
    // Year ticks: January of every year in range, and the first month unless a January
    // follows so closely that the two labels would overlap.
    let mut tick = first.month;
    let label_first = first.month.month() == 1 || 13 - first.month.month() > 4;
    while tick <= last.month {
        if tick.month() == 1 || (tick == first.month && label_first) {
            let xx = x(tick);
            let _ = write!(
                s,
                "<line class=\"tick\" x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\"/>\
<text class=\"axis\" x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                TOP + plot_h,
                TOP + plot_h + 6.0,
                TOP + plot_h + 22.0,
                escape_markup(&era::year_month(tick))
            );
        }
        tick = tick
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(last.month + chrono::Days::new(1));
    }
    // The step line.
    let mut d = format!("M{:.1} {:.1}", x(first.month), y(0));
    let mut previous = 0;
    for m in months {
        let _ = write!(
            d,
            " V{:.1} H{:.1} V{:.1}",
            y(previous),
            x(m.month),
            y(m.total)
        );
        previous = m.total;
    }
    let _ = write!(s, "<path class=\"line\" d=\"{d}\"/>");
    for m in months {
        let _ = write!(
            s,
            "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>{}: {}（累計{}団体）</title></circle>",
            x(m.month),
            y(m.total),
            escape_markup(&m.label),
            escape_markup(&m.names.join("、")),
            m.total
        );
    }
    let _ = write!(
        s,
        "<text class=\"axis-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">運用開始月</text></svg>",
        LEFT + plot_w / 2.0,
        HEIGHT - 8.0
    );
    s
}

/// A grid step giving at most about six lines: 1, 2, 5, 10, 20, 50, …
fn nice_step(max: usize) -> usize {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if max.div_ceil(step * m) <= 6 {
                return step * m;
            }
        }
        step *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::diagnostics::Diagnostics;

    #[test]
    fn cumulative_by_month() {
        let mut d = Diagnostics::default();
        let t = crate::data::parse_adopter_table(
            std::path::Path::new("t.yaml"),
            "t",
            "title: t\nas_of: 2025-02-01\nadopters:\n  - {name: A県, category: 県, start: 2023-04-01}\n  - {name: B町, category: 市町村, start: 2022-09-09}\n  - {name: C村, category: 市町村, start: 2023-04-20}\n  - {name: D市, category: 市町村}\n",
            &Config::default_for_test(),
            &mut d,
        )
        .expect("valid");
        let tl = build(&[t]);
        let rows: Vec<(String, Vec<String>, usize)> = tl
            .months
            .iter()
            .map(|m| (m.label.clone(), m.names.clone(), m.total))
            .collect();
        assert_eq!(
            rows,
            [
                ("令和4年9月".to_owned(), vec!["B町".to_owned()], 1),
                (
                    "令和5年4月".to_owned(),
                    vec!["A県".to_owned(), "C村".to_owned()],
                    3
                ),
            ]
        );
        assert_eq!(tl.total, 3);
        assert!(tl.svg.starts_with("<svg class=\"timeline\""));
        assert!(tl.svg.contains("令和5年1月"), "January ticks are labelled");
        assert!(tl
            .svg
            .contains("<title>令和5年4月: A県、C村（累計3団体）</title>"));
        assert!(tl.svg.contains("累計3団体が電子保証を導入"));
    }

    #[test]
    fn empty_without_dates() {
        assert!(build(&[]).svg.is_empty());
    }

    #[test]
    fn grid_steps() {
        assert_eq!(nice_step(3), 1);
        assert_eq!(nice_step(19), 5);
        assert_eq!(nice_step(2000), 500);
    }
}
