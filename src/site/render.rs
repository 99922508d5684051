//! Tera templates: the built-in theme (this repository's `templates/`, embedded in the
//! binary) overridden file by file by the site's own `templates/`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Serialize;
use tera::{Context, Tera, Value};

use crate::common::diagnostics::{Diagnostic, Diagnostics};
use crate::common::fingerprint::Fingerprint;
use crate::common::root::TEMPLATES_DIR;
use crate::common::walk::{self, Walk};
use crate::common::{era, format};
use crate::site::template_uses;

/// The built-in theme, so a site needs only the templates it changes.
const BUILT_IN: [(&str, &str); 19] = [
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
    ("receipt.html", include_str!("../../templates/receipt.html")),
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
    // A platform's own pages (hosho serve --issuers).
    (
        "platform.html",
        include_str!("../../templates/platform.html"),
    ),
    (
        "platform_receipt.html",
        include_str!("../../templates/platform_receipt.html"),
    ),
];

/// Where a template came from, to point at it in messages.
#[derive(Debug, Clone)]
struct TemplateSource {
    file: PathBuf,
    text: String,
}

#[derive(Clone)]
pub struct Renderer {
    tera: Tera,
    sources: HashMap<String, TemplateSource>,
    /// A fingerprint of every template's text: any change renders every file again.
    templates_fingerprint: u64,
    /// For each template, the functions it calls, itself or through what it extends,
    /// includes and imports (read from tera's parse: [`super::template_uses`]).
    calls: BTreeMap<String, BTreeSet<String>>,
    /// A fingerprint of each data function's value ([`Renderer::register_data`]).
    data: BTreeMap<String, u64>,
}

/// The templates found, and the renderer when all of them are valid.
pub struct LoadedTemplates {
    pub names: std::collections::BTreeSet<String>,
    pub renderer: Option<Renderer>,
}

impl Renderer {
    /// Loads the built-in theme and the site's templates; problems go to `diagnostics`.
    /// With `cache` (the last renderer made and the fingerprint of its templates' texts), the
    /// templates are parsed only when a text changed.
    pub fn load(
        root: &Path,
        cache: Option<&mut Option<(u64, Renderer)>>,
        diagnostics: &mut Diagnostics,
    ) -> LoadedTemplates {
        let sources = read_sources(root, diagnostics);
        let names = sources.keys().cloned().collect();
        let fingerprint = sources
            .iter()
            .fold(Fingerprint::new(), |f, (name, source)| {
                f.bytes(name.as_bytes()).bytes(source.text.as_bytes())
            })
            .finish();
        let Some(cache) = cache else {
            let renderer = Renderer::parse(sources, fingerprint, diagnostics);
            return LoadedTemplates { names, renderer };
        };
        if let Some((cached, renderer)) = cache.as_ref() {
            if *cached == fingerprint {
                let renderer = Some(renderer.clone());
                return LoadedTemplates { names, renderer };
            }
        }
        let renderer = Renderer::parse(sources, fingerprint, diagnostics);
        *cache = renderer.clone().map(|r| (fingerprint, r));
        LoadedTemplates { names, renderer }
    }

    /// Parses the templates; `None` (and the problems in `diagnostics`) when one is broken.
    fn parse(
        sources: BTreeMap<String, TemplateSource>,
        templates_fingerprint: u64,
        diagnostics: &mut Diagnostics,
    ) -> Option<Renderer> {
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
            return None;
        }
        let all = sources.iter().map(|(n, s)| (n.as_str(), s.text.as_str()));
        if let Err(e) = tera.add_raw_templates(all) {
            diagnostics.push(Diagnostic::file(
                TEMPLATES_DIR,
                format!("テンプレートを読み込めません: {}", chain(&e)),
            ));
            return None;
        }
        let calls = template_uses::functions_by_template(&tera);
        let renderer = Renderer {
            tera,
            sources: sources.into_iter().collect(),
            templates_fingerprint,
            calls,
            data: BTreeMap::new(),
        };
        Some(renderer)
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

    /// Registers a function templates can call (`{{ adopter_tables() }}`) that returns
    /// `data`; returns the fingerprint of `data`. The value templates see is made on the
    /// first call, so a rebuild that renders no page calling it does not make it. A list
    /// can be asked for its first entries only: `updates(limit=8)`.
    pub fn register_data<T: Serialize + Send + Sync + 'static>(
        &mut self,
        name: &str,
        data: T,
    ) -> u64 {
        let fingerprint = Fingerprint::new().json(&data).finish();
        let value = std::sync::OnceLock::new();
        self.register(name, fingerprint, move |limit| match limit {
            // Serialising plain data cannot fail; an empty value keeps templates working.
            None => Ok(value
                .get_or_init(|| serde_json::to_value(&data).unwrap_or_default())
                .clone()),
            Some(_) => Err(tera::Error::msg("limit は一覧を返す関数にだけ使えます")),
        })
    }

    /// [`Renderer::register_data`] for a list: `name(limit=N)` makes only the first N
    /// entries into values (the home page's 新着情報 of a site with thousands of entries).
    pub fn register_list<T: Serialize + Send + Sync + 'static>(
        &mut self,
        name: &str,
        items: std::sync::Arc<Vec<T>>,
    ) -> u64 {
        let fingerprint = Fingerprint::new().json(&items).finish();
        let value = std::sync::OnceLock::new();
        self.register(name, fingerprint, move |limit| match limit {
            Some(n) => serde_json::to_value(&items[..n.min(items.len())])
                .map_err(|e| tera::Error::msg(e.to_string())),
            None => Ok(value
                .get_or_init(|| serde_json::to_value(&items).unwrap_or_default())
                .clone()),
        })
    }

    /// Registers data function `name` with the fingerprint of its data; `make` gives its
    /// value for a `limit=N`, or without one.
    fn register(
        &mut self,
        name: &str,
        fingerprint: u64,
        make: impl Fn(Option<usize>) -> tera::Result<Value> + Send + Sync + 'static,
    ) -> u64 {
        self.data.insert(name.to_owned(), fingerprint);
        self.tera
            .register_function(name, move |args: &HashMap<String, Value>| {
                make(limit(args)?)
            });
        fingerprint
    }

    /// A fingerprint of what rendering `template` depends on besides its context: every
    /// template's text, and the value of each data function that the template's files call.
    pub fn fingerprint(&self, template: &str) -> u64 {
        let mut f = Fingerprint::new()
            .number(self.templates_fingerprint)
            .bytes(template.as_bytes());
        let called = self.calls.get(template);
        for (name, value) in &self.data {
            if called.is_some_and(|c| c.contains(name)) {
                f = f.bytes(name.as_bytes()).number(*value);
            }
        }
        f.finish()
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

/// The built-in theme's templates, overridden by the site's own `templates/*.html|xml`.
fn read_sources(root: &Path, diagnostics: &mut Diagnostics) -> BTreeMap<String, TemplateSource> {
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
    sources
}

/// The `limit=N` argument of a data function, if given.
fn limit(args: &HashMap<String, Value>) -> tera::Result<Option<usize>> {
    args.get("limit")
        .map(|limit| {
            let n = limit.as_u64().ok_or_else(|| {
                tera::Error::msg(format!("limit には0以上の整数を書いてください（{limit}）"))
            })?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
        .transpose()
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
            .ok_or_else(|| tera::Error::msg(format!("yen: 0以上の整数が必要です（{v}）")))?;
        Ok(Value::String(format::yen(n)))
    });
    tera.register_filter("digits", |v: &Value, _: &HashMap<String, Value>| {
        let n = v
            .as_u64()
            .ok_or_else(|| tera::Error::msg(format!("digits: 0以上の整数が必要です（{v}）")))?;
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
    fn a_template_depends_on_the_data_its_files_call() {
        let source = |text: &str| TemplateSource {
            file: PathBuf::from("t"),
            text: text.to_owned(),
        };
        let sources = BTreeMap::from([
            ("base.html".to_owned(), source("{{ trust() }}")),
            (
                "page.html".to_owned(),
                source(r#"{% extends "base.html" %}{% import 'm.html' as m %}"#),
            ),
            // `qa ()`: tera accepts the space, which a search for `qa(` would miss.
            (
                "m.html".to_owned(),
                source("{# faqa() #}{% macro x() %}{% set x = qa () %}{% endmacro x %}"),
            ),
            ("other.html".to_owned(), source("{{ sections() }}")),
        ]);
        let mut d = Diagnostics::default();
        let mut r = Renderer::parse(sources, 0, &mut d).expect("valid");
        let fingerprints = |r: &Renderer| (r.fingerprint("page.html"), r.fingerprint("other.html"));
        r.register_data("qa", 1);
        let before = fingerprints(&r);
        r.register_data("qa", 2);
        let after = fingerprints(&r);
        assert_ne!(before.0, after.0, "page.html calls qa() through its import");
        assert_eq!(before.1, after.1, "other.html does not");
        r.register_data("sections", 1);
        assert_eq!(r.fingerprint("page.html"), after.0);
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
