//! The adoption timeline: cumulative adopters by month, drawn as an inline SVG at build time
//! (readable without JavaScript) with the same figures as a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::common::era;
use crate::common::format::escape_markup;
use crate::site::adopters::AdopterTable;

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

/// The plot area: months across, the cumulative count up.
struct Plot {
    first: NaiveDate,
    last: NaiveDate,
    span: f64,
    step: usize,
    y_max: f64,
    width: f64,
    height: f64,
}

impl Plot {
    fn new(first: NaiveDate, last: NaiveDate, max: usize) -> Plot {
        let step = nice_step(max.max(1));
        Plot {
            first,
            last,
            span: months_between(first, last).max(1) as f64,
            step,
            y_max: (max.max(1).div_ceil(step) * step) as f64,
            width: WIDTH - LEFT - RIGHT,
            height: HEIGHT - TOP - BOTTOM,
        }
    }

    fn x(&self, m: NaiveDate) -> f64 {
        LEFT + self.width * months_between(self.first, m) as f64 / self.span
    }

    fn y(&self, n: usize) -> f64 {
        TOP + self.height * (1.0 - n as f64 / self.y_max)
    }

    /// Horizontal grid lines and the count axis.
    fn grid(&self, s: &mut String) {
        let mut n = 0;
        while n as f64 <= self.y_max {
            let yy = self.y(n);
            let _ = write!(
                s,
                "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\"/>\
<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{n}</text>",
                WIDTH - RIGHT,
                LEFT - 8.0,
                yy + 4.0
            );
            n += self.step;
        }
    }

    /// Year ticks: January of every year in range, and the first month unless a January
    /// follows so closely that the two labels would overlap.
    fn year_ticks(&self, s: &mut String) {
        let mut tick = self.first;
        let label_first = self.first.month() == 1 || 13 - self.first.month() > 4;
        let bottom = TOP + self.height;
        while tick <= self.last {
            if tick.month() == 1 || (tick == self.first && label_first) {
                let xx = self.x(tick);
                let _ = write!(
                    s,
                    "<line class=\"tick\" x1=\"{xx:.1}\" y1=\"{bottom:.1}\" x2=\"{xx:.1}\" y2=\"{:.1}\"/>\
<text class=\"axis\" x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                    bottom + 6.0,
                    bottom + 22.0,
                    escape_markup(&era::year_month(tick))
                );
            }
            tick = tick
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(self.last + chrono::Days::new(1));
        }
    }

    /// The step line and a point with a tooltip for every month with adoptions.
    fn step_line(&self, months: &[TimelineMonth], s: &mut String) {
        let mut d = format!("M{:.1} {:.1}", self.x(self.first), self.y(0));
        let mut previous = 0;
        for m in months {
            let _ = write!(
                d,
                " V{:.1} H{:.1} V{:.1}",
                self.y(previous),
                self.x(m.month),
                self.y(m.total)
            );
            previous = m.total;
        }
        let _ = write!(s, "<path class=\"line\" d=\"{d}\"/>");
        for m in months {
            let _ = write!(
                s,
                "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>{}: {}（累計{}団体）</title></circle>",
                self.x(m.month),
                self.y(m.total),
                escape_markup(&m.label),
                escape_markup(&m.names.join("、")),
                m.total
            );
        }
    }
}

/// A step line of the cumulative count with month ticks labelled by era year.
fn draw(months: &[TimelineMonth]) -> String {
    let (Some(first), Some(last)) = (months.first(), months.last()) else {
        return String::new();
    };
    let plot = Plot::new(first.month, last.month, last.total);
    let desc = format!(
        "運用開始日が分かっている発注者では、{}に最初の運用開始があり、{}までに累計{}団体が電子保証を導入しています（運用開始日の記載がない発注者は数えていません）。",
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
    plot.grid(&mut s);
    plot.year_ticks(&mut s);
    plot.step_line(months, &mut s);
    let _ = write!(
        s,
        "<text class=\"axis-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">運用開始月</text></svg>",
        LEFT + plot.width / 2.0,
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
    use crate::common::config::Config;
    use crate::common::diagnostics::Diagnostics;

    #[test]
    fn cumulative_by_month() {
        let mut d = Diagnostics::default();
        let t = crate::site::adopters::parse_adopter_table(
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
        assert!(tl.svg.contains(
            "累計3団体が電子保証を導入しています（運用開始日の記載がない発注者は数えていません）"
        ));
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
