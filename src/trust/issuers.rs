//! The guarantors one verification platform serves (`issuers.toml`): for each, an id, its
//! name, its vault, the public keys trusted for it and the 保証契約番号 it may issue (its
//! number space, as prefixes). Number spaces never overlap, so a number belongs to one
//! guarantor at most and its key is checked once.
//!
//! This is the reader and its checks; every problem is reported at `path:line:column`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::common::diagnostics::{Diagnostic, Diagnostics};
use crate::trust::manifest::Catalog;

/// The id of the one guarantor of a daemon started without `--issuers`.
pub const SINGLE_ID: &str = "default";

/// At most this many public keys per guarantor: the old and the new during a rotation.
const MAX_KEYS: usize = 2;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    issuer: Vec<RawIssuer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    id: Spanned<String>,
    name: Spanned<String>,
    vault: Spanned<String>,
    public_keys: Spanned<Vec<String>>,
    numbers: Spanned<Vec<Spanned<String>>>,
    contact: Spanned<String>,
    keys_page: Spanned<String>,
}

/// One guarantor of the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// Lower-case ASCII letters, digits and hyphens (`higashi`).
    pub id: String,
    /// 保証事業会社名
    pub name: String,
    /// Its vault (a `releases/<seq>` symlink, as docs/deploy.md ships vaults), relative
    /// paths taken from the file's directory.
    pub vault: PathBuf,
    /// The public key files trusted for its manifests: one, or two during a rotation.
    pub public_keys: Vec<PathBuf>,
    /// Its number space: the prefixes of the 保証契約番号 it issues.
    pub number_prefixes: Vec<String>,
    /// Where an orderer asks when its certificates cannot be shown.
    pub contact: String,
    /// Where the guarantor publishes its public keys (the platform's front page links it).
    pub keys_page: String,
}

/// Every guarantor of the platform, in the file's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuers(pub Vec<Issuer>);

impl Issuers {
    /// The guarantor whose number space holds `number` (canonical, 10 digits).
    pub fn of(&self, number: &str) -> Option<&Issuer> {
        self.0.iter().find(|i| i.holds(number))
    }

    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Issuers, Diagnostics> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Diagnostics::from(Diagnostic::file(path, format!("読めません: {e}"))))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Issuers::parse(path, &text, base)
    }

    /// Reads the text of `file`; relative paths are taken from `base`.
    pub fn parse(file: &Path, text: &str, base: &Path) -> Result<Issuers, Diagnostics> {
        let at =
            |offset: usize, message: String| Diagnostic::at_offset(file, text, offset, message);
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            Diagnostics::from(at(
                offset,
                format!("設定に誤りがあります: {}", e.message().trim()),
            ))
        })?;
        let mut d = Diagnostics::default();
        if raw.issuer.is_empty() {
            d.push(Diagnostic::file(
                file,
                "[[issuer]] を一つ以上書いてください",
            ));
        }
        let mut issuers: Vec<Issuer> = Vec::new();
        for r in raw.issuer {
            if let Some(issuer) = issuer(r, &issuers, base, &at, &mut d) {
                issuers.push(issuer);
            }
        }
        match d.is_empty() {
            true => Ok(Issuers(issuers)),
            false => Err(d),
        }
    }
}

impl Issuer {
    /// The one guarantor of a daemon started without `--issuers`: every number is its own,
    /// and its name and contact are the site's (`hosho.toml`).
    pub fn whole_space(vault: PathBuf, public_keys: Vec<PathBuf>) -> Issuer {
        Issuer {
            id: SINGLE_ID.to_owned(),
            name: String::new(),
            vault,
            public_keys,
            number_prefixes: vec![String::new()],
            contact: String::new(),
            keys_page: String::new(),
        }
    }

    /// Whether `number` lies in this guarantor's number space.
    pub fn holds(&self, number: &str) -> bool {
        self.number_prefixes
            .iter()
            .any(|p| number.starts_with(p.as_str()))
    }

    /// The first number of `catalog` outside this guarantor's space, if any: such a
    /// manifest is refused whole (the guarantor fails closed), so that no number is ever
    /// answered by two guarantors.
    pub fn stray_number(&self, catalog: &Catalog) -> Option<String> {
        if self.number_prefixes.iter().any(String::is_empty) {
            return None;
        }
        catalog.find_number(|number| !self.holds(number))
    }
}

/// Whether `id` is lower-case ASCII letters, digits and hyphens, starting with a letter.
fn valid_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// One `[[issuer]]`, checked against those before it; `None` (problems in `d`) if wrong.
fn issuer(
    r: RawIssuer,
    before: &[Issuer],
    base: &Path,
    at: &dyn Fn(usize, String) -> Diagnostic,
    d: &mut Diagnostics,
) -> Option<Issuer> {
    let problems = d.len();
    let id = r.id.get_ref();
    if !valid_id(id) {
        d.push(at(
            r.id.span().start,
            format!(
                "id「{id}」は英小文字で始まる英小文字・数字・ハイフン（32文字まで）にしてください"
            ),
        ));
    } else if before.iter().any(|i| &i.id == id) {
        d.push(at(r.id.span().start, format!("id「{id}」が重複しています")));
    }
    if r.name.get_ref().trim().is_empty() {
        d.push(at(
            r.name.span().start,
            "name（保証事業会社名）を書いてください".to_owned(),
        ));
    }
    let keys = r.public_keys.get_ref();
    if keys.is_empty() || keys.len() > MAX_KEYS {
        d.push(at(r.public_keys.span().start, format!("public_keys には公開鍵のファイルを1つか{MAX_KEYS}つ（鍵の切り替え中の新旧）書いてください")));
    }
    for (field, what, url) in [
        ("contact", "問い合わせ先ページ", &r.contact),
        ("keys_page", "公開鍵を公開しているページ", &r.keys_page),
    ] {
        let text = url.get_ref();
        if !(text.starts_with("https://") || text.starts_with("http://")) {
            d.push(at(
                url.span().start,
                format!("{field}「{text}」は{what}の http(s) の URL で書いてください"),
            ));
        }
    }
    let prefixes = number_space(&r.numbers, before, at, d);
    (d.len() == problems).then(|| Issuer {
        id: id.clone(),
        name: r.name.into_inner(),
        vault: base.join(r.vault.into_inner()),
        public_keys: r
            .public_keys
            .into_inner()
            .iter()
            .map(|k| base.join(k))
            .collect(),
        number_prefixes: prefixes,
        contact: r.contact.into_inner(),
        keys_page: r.keys_page.into_inner(),
    })
}

/// The prefixes of `numbers`: 1 to 10 digits each, at least one, none overlapping another
/// guarantor's (one a prefix of the other).
fn number_space(
    numbers: &Spanned<Vec<Spanned<String>>>,
    before: &[Issuer],
    at: &dyn Fn(usize, String) -> Diagnostic,
    d: &mut Diagnostics,
) -> Vec<String> {
    if numbers.get_ref().is_empty() {
        d.push(at(
            numbers.span().start,
            "numbers に保証契約番号の先頭の数字を一つ以上書いてください（例: [\"20\"]）".to_owned(),
        ));
    }
    let mut prefixes = Vec::new();
    for n in numbers.get_ref() {
        let p = n.get_ref();
        if p.is_empty() || p.len() > 10 || !p.bytes().all(|b| b.is_ascii_digit()) {
            d.push(at(
                n.span().start,
                format!("numbers の「{p}」は保証契約番号の先頭の数字（1〜10桁）で書いてください"),
            ));
            continue;
        }
        let overlap = before.iter().find_map(|i| {
            let clash = i
                .number_prefixes
                .iter()
                .find(|q| q.starts_with(p.as_str()) || p.starts_with(q.as_str()))?;
            Some((i, clash))
        });
        if let Some((other, clash)) = overlap {
            d.push(at(n.span().start, format!("numbers の「{p}」は {}（{}）の「{clash}」と重なります。保証契約番号がどちらの保証事業会社のものか決まらなくなります", other.name, other.id)));
            continue;
        }
        prefixes.push(p.clone());
    }
    prefixes
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[issuer]]
id = "higashi"
name = "東日本みほん保証株式会社（架空）"
vault = "issuers/higashi/current"
public_keys = ["issuers/higashi/signing.pub"]
numbers = ["10", "11"]
contact = "https://higashi.example.jp/contact/"
keys_page = "https://higashi.example.jp/keys/"

[[issuer]]
id = "nishi"
name = "西日本みほん保証株式会社（架空）"
vault = "/srv/issuers/nishi/current"
public_keys = ["issuers/nishi/signing.pub", "issuers/nishi/signing-new.pub"]
numbers = ["20"]
contact = "https://nishi.example.jp/contact/"
keys_page = "https://nishi.example.jp/keys/"
"#;

    fn parse(text: &str) -> Result<Issuers, Vec<String>> {
        Issuers::parse(Path::new("issuers.toml"), text, Path::new("/etc/hosho"))
            .map_err(|d| d.sorted().iter().map(ToString::to_string).collect())
    }

    #[test]
    fn each_number_belongs_to_one_guarantor_at_most() {
        let issuers = parse(GOOD).expect("valid");
        assert_eq!(issuers.0.len(), 2);
        assert_eq!(
            issuers.of("1070000001").map(|i| i.id.as_str()),
            Some("higashi")
        );
        assert_eq!(
            issuers.of("1170000001").map(|i| i.id.as_str()),
            Some("higashi")
        );
        assert_eq!(
            issuers.of("2070004426").map(|i| i.id.as_str()),
            Some("nishi")
        );
        assert!(issuers.of("3070004426").is_none());
        let higashi = &issuers.0[0];
        assert_eq!(
            higashi.vault,
            Path::new("/etc/hosho/issuers/higashi/current")
        );
        assert_eq!(issuers.0[1].vault, Path::new("/srv/issuers/nishi/current"));
        assert_eq!(issuers.0[1].public_keys.len(), 2);
    }

    #[test]
    fn every_problem_is_reported_at_its_line() {
        let bad = GOOD
            .replace("id = \"nishi\"", "id = \"Nishi\"")
            .replace("numbers = [\"20\"]", "numbers = [\"1\", \"2x\"]")
            .replace("contact = \"https://nishi", "contact = \"mailto:nishi");
        assert_eq!(
            parse(&bad).expect_err("invalid"),
            [
                "issuers.toml:12:6: id「Nishi」は英小文字で始まる英小文字・数字・ハイフン（32文字まで）にしてください",
                "issuers.toml:16:12: numbers の「1」は 東日本みほん保証株式会社（架空）（higashi）の「10」と重なります。保証契約番号がどちらの保証事業会社のものか決まらなくなります",
                "issuers.toml:16:17: numbers の「2x」は保証契約番号の先頭の数字（1〜10桁）で書いてください",
                "issuers.toml:17:11: contact「mailto:nishi.example.jp/contact/」は問い合わせ先ページの http(s) の URL で書いてください",
            ]
        );
        let twice = format!(
            "{GOOD}{}",
            &GOOD[GOOD.find("[[issuer]]\nid = \"nishi\"").unwrap_or(0)..]
                .replace("\"20\"", "\"30\"")
        );
        let errors = parse(&twice).expect_err("duplicate id");
        assert_eq!(errors, ["issuers.toml:20:6: id「nishi」が重複しています"]);
        let three_keys = GOOD.replace("\"issuers/higashi/signing.pub\"]", "\"a\", \"b\", \"c\"]");
        assert_eq!(
            parse(&three_keys).expect_err("three keys"),
            ["issuers.toml:6:15: public_keys には公開鍵のファイルを1つか2つ（鍵の切り替え中の新旧）書いてください"]
        );
        assert_eq!(
            parse("").expect_err("none"),
            ["issuers.toml:1:1: [[issuer]] を一つ以上書いてください"]
        );
    }

    #[test]
    fn a_manifest_with_a_number_outside_the_space_is_found_out() {
        use crate::trust::manifest::{self, Limits};
        use crate::trust::testing::{write_vault, ITERATIONS};
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = dir.path().join("vault");
        let key = write_vault(&vault, &dir.path().join("keys"), 1, 2_000_000_000);
        let limits = Limits {
            min_iterations: ITERATIONS,
            ..Limits::default()
        };
        let catalog = manifest::read_verified(&vault, &[key], limits).expect("trusted");
        // The test vault holds 2070004426, 2070004427 and 2070004428.
        let issuers = parse(GOOD).expect("valid");
        let (higashi, nishi) = (&issuers.0[0], &issuers.0[1]);
        assert_eq!(nishi.stray_number(&catalog), None);
        assert_eq!(
            higashi.stray_number(&catalog).as_deref(),
            Some("2070004426")
        );
        let narrow = Issuer {
            number_prefixes: vec!["207000442".to_owned(), "2070004428".to_owned()],
            ..nishi.clone()
        };
        assert_eq!(narrow.stray_number(&catalog), None);
        let narrower = Issuer {
            number_prefixes: vec!["2070004426".to_owned(), "2070004428".to_owned()],
            ..nishi.clone()
        };
        assert_eq!(
            narrower.stray_number(&catalog).as_deref(),
            Some("2070004427")
        );
    }
}
