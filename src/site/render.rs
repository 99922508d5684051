//! Tera templates: the built-in theme (this repository's `templates/`, embedded in the
//! binary) overridden file by file by the site's own `templates/`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use tera::{Context, Tera, Value};

use crate::common::diagnostics::{Diagnostic, Diagnostics};
use crate::common::root::TEMPLATES_DIR;
use crate::common::walk::{self, Walk};
use crate::common::{era, format};

/// The built-in theme, so a site needs only the templates it changes.
const BUILT_IN: [(&str, &str); 16] = [
    ("base.html", include_str!("../../templates/base.html")),
    ("macros.html", include_str!("../../templates/macros.html")),
    ("index.html", include_str!("../../templates/index.html")),
    ("page.html", include_str!("../../templates/page.html")),
    ("section.html", include_str!("../../templates/section.html")),
    ("qa.html", include_str!("../../templates/qa.html")),
    ("fees.html", include_str!("../../templates/fees.html")),
    ("orderer.html", include_str!("../../templates/orderer.html")),
    (
        "adopters.html",
        include_str!("../../templates/adopters.html"),
    ),
    (
        "adopter_table.html",
        include_str!("../../templates/adopter_table.html"),
    ),
    ("404.html", include_str!("../../templates/404.html")),
    ("atom.xml", include_str!("../../templates/atom.xml")),
    ("sitemap.xml", include_str!("../../templates/sitemap.xml")),
    // The daemon's pages (hosho serve).
    ("verify.html", include_str!("../../templates/verify.html")),
    (
        "verify_certificate.html",
        include_str!("../../templates/verify_certificate.html"),
    ),
    (
        "verify_message.html",
        include_str!("../../templates/verify_message.html"),
    ),
];

/// Where a template came from, to point at it in messages.
#[derive(Debug, Clone)]
struct TemplateSource {
    file: PathBuf,
    text: String,
}

pub struct Renderer {
    tera: Tera,
    sources: HashMap<String, TemplateSource>,
}

/// The templates found, and the renderer when all of them are valid.
pub struct LoadedTemplates {
    pub names: std::collections::BTreeSet<String>,
    pub renderer: Option<Renderer>,
}

impl Renderer {
    /// Loads the built-in theme and the site's templates; problems go to `diagnostics`.
    pub fn load(root: &Path, diagnostics: &mut Diagnostics) -> LoadedTemplates {
        let mut sources: BTreeMap<String, TemplateSource> = BUILT_IN
            .iter()
            .map(|(name, text)| {
                let source = TemplateSource {
                    file: PathBuf::from(format!("(組み込み) {TEMPLATES_DIR}/{name}")),
                    text: (*text).to_owned(),
                };
                ((*name).to_owned(), source)
            })
            .collect();
        for file in walk::files(root, TEMPLATES_DIR, Walk::default(), diagnostics) {
            let is_tera = file
                .abs
                .extension()
                .is_some_and(|x| x == "html" || x == "xml");
            if !is_tera {
                continue;
            }
            match std::fs::read_to_string(&file.abs) {
                Ok(text) => {
                    let source = TemplateSource {
                        file: file.rel,
                        text,
                    };
                    sources.insert(file.name, source);
                }
                Err(e) => diagnostics.push(Diagnostic::file(file.rel, format!("読めません: {e}"))),
            }
        }
        let names = sources.keys().cloned().collect();
        let mut tera = Tera::default();
        tera.set_escape_fn(format::escape_markup);
        register_filters(&mut tera);
        // Parse one by one first, so every broken template is reported, not just the first.
        let mut ok = true;
        for (name, source) in &sources {
            if let Err(e) = tera::Template::new(name, None, &source.text) {
                ok = false;
                diagnostics.push(template_diagnostic(
                    source,
                    &e,
                    "テンプレートの書き方に誤りがあります",
                ));
            }
        }
        if !ok {
            return LoadedTemplates {
                names,
                renderer: None,
            };
        }
        let all = sources.iter().map(|(n, s)| (n.as_str(), s.text.as_str()));
        if let Err(e) = tera.add_raw_templates(all) {
            diagnostics.push(Diagnostic::file(
                TEMPLATES_DIR,
                format!("テンプレートを読み込めません: {}", chain(&e)),
            ));
            return LoadedTemplates {
                names,
                renderer: None,
            };
        }
        let renderer = Renderer {
            tera,
            sources: sources.into_iter().collect(),
        };
        LoadedTemplates {
            names,
            renderer: Some(renderer),
        }
    }

    /// The file a template comes from (for messages).
    pub fn template_file(&self, name: &str) -> PathBuf {
        self.sources.get(name).map_or_else(
            || PathBuf::from(TEMPLATES_DIR).join(name),
            |s| s.file.clone(),
        )
    }

    /// Line and column of the first occurrence of `needle` in a template, if any.
    pub fn find_in_template(&self, name: &str, needle: &str) -> Option<(usize, usize)> {
        let source = self.sources.get(name)?;
        let at = source.text.find(needle)?;
        Some(crate::common::diagnostics::line_column(&source.text, at))
    }

    /// Registers a function templates can call (`{{ adopter_tables() }}`).
    pub fn register_data(&mut self, name: &str, value: Value) {
        self.tera
            .register_function(name, move |_: &HashMap<String, Value>| Ok(value.clone()));
    }

    /// Renders `template`; `for_what` names the page in the message on failure.
    pub fn render(
        &self,
        template: &str,
        context: &Context,
        for_what: &str,
    ) -> Result<String, Diagnostic> {
        self.tera.render(template, context).map_err(|e| {
            let file = self.template_file(template);
            Diagnostic::file(file, format!("{for_what} を描画できません: {}", chain(&e)))
        })
    }
}

/// The whole cause chain of a tera error on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ").replace('\n', " ")
}

/// A tera parse error at the `--> line:column` its parser reports.
fn template_diagnostic(source: &TemplateSource, e: &tera::Error, what: &str) -> Diagnostic {
    let full = {
        let mut parts = vec![e.to_string()];
        let mut s = std::error::Error::source(e);
        while let Some(inner) = s {
            parts.push(inner.to_string());
            s = inner.source();
        }
        parts.join("\n")
    };
    let position = full.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix("--> ")?;
        let (line, column) = rest.trim().split_once(':')?;
        Some((line.parse().ok()?, column.parse().ok()?))
    });
    let expected = full
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("= "))
        .collect::<Vec<_>>()
        .join(" ");
    let detail = if expected.is_empty() {
        chain(e)
    } else {
        expected
    };
    let (line, column) = position.unwrap_or((1, 1));
    Diagnostic::new(&source.file, line, column, format!("{what}: {detail}"))
}

fn date_arg(value: &Value, filter: &str) -> tera::Result<NaiveDate> {
    value
        .as_str()
        .and_then(crate::common::yaml::parse_iso_date)
        .ok_or_else(|| {
            tera::Error::msg(format!("{filter}: YYYY-MM-DD の日付が必要です（{value}）"))
        })
}

fn register_filters(tera: &mut Tera) {
    tera.register_filter("wareki", |v: &Value, _: &HashMap<String, Value>| {
        Ok(Value::String(era::full_date(date_arg(v, "wareki")?)))
    });
    tera.register_filter("wareki_month", |v: &Value, _: &HashMap<String, Value>| {
        Ok(Value::String(era::year_month(date_arg(v, "wareki_month")?)))
    });
    tera.register_filter("yen", |v: &Value, _: &HashMap<String, Value>| {
        let n = v
            .as_u64()
            .ok_or_else(|| tera::Error::msg(format!("yen: 0 以上の整数が必要です（{v}）")))?;
        Ok(Value::String(format::yen(n)))
    });
    tera.register_filter("digits", |v: &Value, _: &HashMap<String, Value>| {
        let n = v
            .as_u64()
            .ok_or_else(|| tera::Error::msg(format!("digits: 0 以上の整数が必要です（{v}）")))?;
        Ok(Value::String(format::group_digits(n)))
    });
    tera.register_filter("maru", |v: &Value, _: &HashMap<String, Value>| {
        let b = v
            .as_bool()
            .ok_or_else(|| tera::Error::msg(format!("maru: true か false が必要です（{v}）")))?;
        Ok(Value::String(format::maru(b).to_owned()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_show_era_dates_yen_and_maru() {
        let mut tera = Tera::default();
        tera.set_escape_fn(format::escape_markup);
        register_filters(&mut tera);
        tera.add_raw_template(
            "t",
            "{{ d | wareki }} {{ d | wareki_month }} {{ n | yen }} {{ b | maru }}",
        )
        .expect("valid template");
        let mut c = Context::new();
        c.insert("d", "2019-05-01");
        c.insert("n", &100_000_000u64);
        c.insert("b", &true);
        assert_eq!(
            tera.render("t", &c).expect("renders"),
            "令和元年5月1日 令和元年5月 100,000,000円 ○"
        );
    }

    #[test]
    fn template_errors_point_at_line_and_column() {
        let source = TemplateSource {
            file: PathBuf::from("templates/page.html"),
            text: "<p>\n{{ page.title }\n</p>".to_owned(),
        };
        let e = tera::Template::new("page.html", None, &source.text).expect_err("broken");
        let d = template_diagnostic(&source, &e, "テンプレートの書き方に誤りがあります");
        assert_eq!((d.line, d.column), (2, 15), "{d}");
        assert!(
            d.to_string()
                .starts_with("templates/page.html:2:15: テンプレートの書き方に誤りがあります: "),
            "{d}"
        );
    }
}
