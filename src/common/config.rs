//! `hosho.toml`: site settings, the guarantor (保証会社), the adopter categories and the
//! certificate settings (format in `docs/hosho-toml.md`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::common::certificate::Guarantor;
use crate::common::certificate::Office;
use crate::common::diagnostics::Diagnostic;
use crate::common::fees::{FeeRules, RawFees};

pub const CONFIG_FILE: &str = "hosho.toml";

/// PBKDF2 iterations of key verifiers unless `[certificates] kdf_iterations` says otherwise;
/// also the lowest count the daemon accepts unless `--min-kdf-iterations` says otherwise.
pub const DEFAULT_KDF_ITERATIONS: u32 = 100_000;

/// Settings of the adoption tables (導入発注者一覧).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AdoptersConfig {
    /// 区分, in the order the tables show them.
    pub categories: Vec<String>,
    /// What 運用開始日 means when a file does not say (`basis:`); unsaid when neither
    /// says it.
    #[serde(default)]
    pub default_basis: Option<String>,
}

/// Settings of certificates, notices and the signed manifest (`[certificates]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CertificatesConfig {
    /// Where an orderer checks a certificate (printed on every notice and certificate);
    /// `BASE_URL/verify/` when not set.
    #[serde(default)]
    pub verify_url: Option<String>,
    /// PBKDF2 iterations for key verifiers.
    #[serde(default = "default_iterations")]
    pub kdf_iterations: u32,
    /// Days a manifest stays valid after a build; the daemon stops answering after that.
    #[serde(default = "default_valid_days")]
    pub manifest_valid_days: u32,
}

impl Default for CertificatesConfig {
    fn default() -> Self {
        CertificatesConfig {
            verify_url: None,
            kdf_iterations: default_iterations(),
            manifest_valid_days: default_valid_days(),
        }
    }
}

fn default_iterations() -> u32 {
    DEFAULT_KDF_ITERATIONS
}

fn default_valid_days() -> u32 {
    35
}

/// How Markdown is rendered (`[markdown]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MarkdownConfig {
    /// Raw HTML and `javascript:` links pass through (Hugo's `unsafe`); off by default.
    #[serde(default, rename = "unsafe")]
    pub unsafe_html: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    title: String,
    #[serde(default)]
    description: Option<String>,
    base_url: toml::Spanned<String>,
    #[serde(default)]
    banner: Option<String>,
    guarantor: RawGuarantor,
    adopters: AdoptersConfig,
    #[serde(default)]
    certificates: CertificatesConfig,
    #[serde(default)]
    markdown: MarkdownConfig,
    #[serde(default)]
    fees: RawFees,
}

/// `[guarantor]` as written: the company, the office the site speaks for, and the offices
/// that issue certificates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuarantor {
    name: String,
    #[serde(default)]
    branch: Option<String>,
    address: String,
    #[serde(default)]
    tel: Option<String>,
    #[serde(default)]
    fax: Option<String>,
    #[serde(default)]
    offices: Vec<Office>,
}

impl From<RawGuarantor> for Guarantor {
    fn from(g: RawGuarantor) -> Guarantor {
        Guarantor {
            name: g.name,
            branch: g.branch,
            address: g.address,
            tel: g.tel,
            fax: g.fax,
            branch_address: None,
        }
    }
}

/// A problem with a section of hosho.toml, at the line of the section its message names
/// (`[fees.account]`, `[[fees.discounts]]`, `[fees.rates…]`, `[[guarantor.offices]]`), else
/// of `[fees`.
fn at_section(text: &str, message: String) -> Diagnostic {
    let sections = [
        "[fees.account",
        "[[fees.discounts",
        "[fees.rates",
        "[[guarantor.offices",
    ];
    let section = sections
        .into_iter()
        .find(|s| message.contains(s.trim_start_matches('[')));
    let offset = section
        .and_then(|s| text.find(s))
        .or_else(|| text.find("[fees"))
        .unwrap_or(0);
    Diagnostic::at_offset(Path::new(CONFIG_FILE), text, offset, message)
}

/// The offices of `raw`, or what is wrong with them.
fn offices(raw: &RawGuarantor) -> Result<Vec<Office>, String> {
    let mut seen = std::collections::BTreeSet::new();
    for office in &raw.offices {
        if office.name.trim().is_empty() || office.address.trim().is_empty() {
            return Err(
                "[[guarantor.offices]] には name（支店名）と address（所在地）を書いてください"
                    .to_owned(),
            );
        }
        if !seen.insert(office.name.as_str()) {
            return Err(format!(
                "[[guarantor.offices]] の「{}」が二つあります。支店名は一つずつ書いてください",
                office.name
            ));
        }
    }
    Ok(raw.offices.clone())
}

/// The validated site settings.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Config {
    pub title: String,
    pub description: Option<String>,
    /// Absolute URL of the site, always ending in `/`.
    pub base_url: String,
    /// The path part of `base_url` (`/` or `/denshi/`): every internal link starts with it.
    pub base_path: String,
    /// A line shown on every page above the content (e.g. that this is a demo).
    pub banner: Option<String>,
    pub guarantor: Guarantor,
    /// 発行店: the offices a certificate may name in `office:` (`[[guarantor.offices]]`).
    pub offices: Vec<Office>,
    pub adopters: AdoptersConfig,
    pub certificates: CertificatesConfig,
    pub markdown: MarkdownConfig,
    /// 保証料 rules (`[fees]`).
    pub fees: FeeRules,
}

impl Config {
    /// Reads `ROOT/hosho.toml`.
    pub fn load(root: &Path) -> Result<Config, Diagnostic> {
        let path = root.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Diagnostic::file(
                CONFIG_FILE,
                format!("設定ファイルを読めません（{e}）。サイトのルートで実行するか --root で指定してください"),
            )
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Config, Diagnostic> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            Diagnostic::at_offset(
                Path::new(CONFIG_FILE),
                text,
                offset,
                format!("設定に誤りがあります: {}", e.message().trim()),
            )
        })?;
        let url_span = raw.base_url.span();
        let base_url = raw.base_url.into_inner();
        let Some(base_path) = base_path_of(&base_url) else {
            return Err(Diagnostic::at_offset(
                Path::new(CONFIG_FILE),
                text,
                url_span.start,
                format!("base_url「{base_url}」は https://example.jp/ のような http(s) の絶対 URL で書いてください"),
            ));
        };
        if raw.certificates.kdf_iterations < 10_000 {
            return Err(Diagnostic::file(
                CONFIG_FILE,
                "[certificates] kdf_iterations は10000以上にしてください（既定 100000）",
            ));
        }
        if raw.adopters.categories.is_empty() {
            return Err(Diagnostic::file(
                CONFIG_FILE,
                "[adopters] categories に区分を一つ以上書いてください",
            ));
        }
        let fees = FeeRules::from_raw(raw.fees).map_err(|m| at_section(text, m))?;
        let offices = offices(&raw.guarantor).map_err(|m| at_section(text, m))?;
        let base_url = if base_url.ends_with('/') {
            base_url
        } else {
            format!("{base_url}/")
        };
        Ok(Config {
            title: raw.title,
            description: raw.description,
            base_url,
            base_path,
            banner: raw.banner,
            guarantor: raw.guarantor.into(),
            offices,
            adopters: raw.adopters,
            certificates: raw.certificates,
            markdown: raw.markdown,
            fees,
        })
    }

    /// Where orderers verify certificates: `certificates.verify_url`, else `/verify/` on the
    /// site's host, where the daemon's pages are whatever the site's base path.
    pub fn verify_url(&self) -> String {
        self.certificates
            .verify_url
            .clone()
            .unwrap_or_else(|| format!("{}/verify/", origin(&self.base_url)))
    }

    /// How the site's pages link to the verification page: by its path when it is on the
    /// site's own host (so that the preview links to itself), else by its whole URL.
    pub fn verify_link(&self) -> String {
        let url = self.verify_url();
        let own = origin(&url);
        if own.eq_ignore_ascii_case(origin(&self.base_url)) {
            match &url[own.len()..] {
                "" => "/".to_owned(),
                path => path.to_owned(),
            }
        } else {
            url
        }
    }

    /// The absolute URL of a site path (`/adopters/` → `https://…/adopters/`).
    pub fn absolute_url(&self, site_path: &str) -> String {
        format!("{}{}", self.base_url, site_path.trim_start_matches('/'))
    }

    /// A settings value for tests.
    #[cfg(test)]
    pub fn default_for_test() -> Config {
        Self::parse(
            r#"
title = "テスト"
base_url = "https://example.jp/"
[guarantor]
name = "テスト保証株式会社"
address = "東京都千代田区"
[adopters]
categories = ["県", "市町村"]
"#,
        )
        .expect("valid test config")
    }
}

/// `https://host/a/b` → `/a/b/`; `None` unless an absolute http(s) URL with a host.
fn base_path_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if host.is_empty() || host.contains(char::is_whitespace) || path.contains(['?', '#']) {
        return None;
    }
    let path = path.trim_end_matches('/');
    Some(format!("{path}/"))
}

/// `scheme://host[:port]` of an absolute URL (what comes before its path).
fn origin(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    &url[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_from_url() {
        assert_eq!(base_path_of("https://example.jp").as_deref(), Some("/"));
        assert_eq!(base_path_of("https://example.jp/").as_deref(), Some("/"));
        assert_eq!(
            base_path_of("http://example.jp/denshi").as_deref(),
            Some("/denshi/")
        );
        assert_eq!(base_path_of("example.jp"), None);
        assert_eq!(base_path_of("https:///x"), None);
    }

    #[test]
    fn config_errors_point_at_the_line() {
        let text = "title = \"t\"\nbase_url = \"https://e.jp/\"\ncolour = 1\n";
        let err = Config::parse(text).expect_err("unknown key");
        assert_eq!((err.line, err.column), (3, 1));
        assert!(err.message.contains("colour"), "{err}");
        let text = "title = \"t\"\nbase_url = \"e.jp\"\n[guarantor]\nname = \"n\"\naddress = \"a\"\n[adopters]\ncategories = [\"県\"]\n";
        let err = Config::parse(text).expect_err("bad url");
        assert_eq!(err.to_string(), "hosho.toml:2:12: base_url「e.jp」は https://example.jp/ のような http(s) の絶対 URL で書いてください");
    }

    #[test]
    fn the_verification_page_is_linked_by_its_path_on_the_same_host() {
        let mut c = Config::default_for_test();
        assert_eq!(
            c.verify_link(),
            "/verify/",
            "the default, on the site's host"
        );
        c.certificates.verify_url = Some("https://EXAMPLE.jp/check/".to_owned());
        assert_eq!(c.verify_link(), "/check/");
        c.certificates.verify_url = Some("https://example.jp:8443/verify/".to_owned());
        assert_eq!(c.verify_link(), "https://example.jp:8443/verify/");
        c.certificates.verify_url = Some("https://kakunin.example.jp/".to_owned());
        assert_eq!(c.verify_link(), "https://kakunin.example.jp/");
        c.certificates.verify_url = Some("https://example.jp".to_owned());
        assert_eq!(c.verify_link(), "/");
    }

    #[test]
    fn a_site_under_a_base_path_is_verified_at_verify_on_its_host() {
        let text = "title = \"t\"\nbase_url = \"https://Example.jp/denshi/\"\n[guarantor]\nname = \"n\"\naddress = \"a\"\n[adopters]\ncategories = [\"県\"]\n";
        let c = Config::parse(text).expect("config");
        assert_eq!(c.base_path, "/denshi/");
        // Where the documented nginx sends /verify/ to the daemon, not /denshi/verify/.
        assert_eq!(c.verify_url(), "https://Example.jp/verify/");
        assert_eq!(c.verify_link(), "/verify/");
    }

    #[test]
    fn test_config_is_valid() {
        let c = Config::default_for_test();
        assert_eq!(c.base_path, "/");
        assert_eq!(c.absolute_url("/qa/"), "https://example.jp/qa/");
        assert_eq!(c.adopters.default_basis, None);
    }
}
