//! The entry points of the fuzz targets (`fuzz/fuzz_targets/`, cargo-fuzz with libFuzzer)
//! and of the corpus replay in the test suite: one function per parser of untrusted input,
//! each taking the fuzzer's bytes and panicking when a property fails. Not an API.
//!
//! | target | input | property |
//! |---|---|---|
//! | `request_bodies` | a form or JSON body of `POST /verify/`, `/api/verify` | no panic; what is read normalises like the daemon's fold |
//! | `typed_input` | a typed 保証契約番号 or 認証キー | normalising is idempotent and gives only the canonical alphabet |
//! | `client_headers` | `X-Forwarded-For` and `Forwarded` from a trusted proxy | the client is the peer or an address written in the chosen header |
//! | `manifest` | `manifest.json` and its signature, records | nothing but a signed manifest is parsed; a signed one never panics the index |
//! | `yaml_data` | adopter tables, Q&A, certificates, customers, a page's front matter | every problem has a line inside the text |
//! | `markdown` | a page's Markdown | without `unsafe`, no tag, event-handler attribute or script URL in the HTML |

use std::net::IpAddr;
use std::path::Path;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

use crate::common::config::Config;
use crate::common::diagnostics::Diagnostics;
use crate::site::markdown;
use crate::trust::{authkey, manifest};

/// `POST /verify/` and `POST /api/verify` bodies, read as the daemon reads them.
pub fn request_bodies(data: &[u8]) {
    let (number, key) = crate::daemon::form_fields(data);
    typed_input_pair(&number, &key);
    if let Some(request) = crate::daemon::api_fields(data) {
        typed_input_pair(&request.number, &request.key);
    }
    if let Ok(query) = std::str::from_utf8(data) {
        if let Some(number) = crate::daemon::prefilled_number(Some(query)) {
            assert!(authkey::normalise_number(&number).as_deref() == Ok(number.as_str()));
        }
    }
}

fn typed_input_pair(number: &str, key: &str) {
    typed_input(number.as_bytes());
    typed_input(key.as_bytes());
}

/// A 保証契約番号 and a 認証キー as typed.
pub fn typed_input(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(number) = authkey::normalise_number(&text) {
        assert!(number.len() == 10 && number.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(
            authkey::normalise_number(&number).as_deref(),
            Ok(number.as_str())
        );
    }
    if let Ok(key) = authkey::normalise_key(&text) {
        assert_eq!(key.len(), 10);
        assert!(key
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
        assert_eq!(authkey::normalise_key(&key).as_deref(), Ok(key.as_str()));
        let grouped = authkey::group(&key);
        assert_eq!(
            authkey::normalise_key(&grouped).as_deref(),
            Ok(key.as_str())
        );
    }
}

/// The client behind a trusted proxy, from both headers, with either header chosen.
pub fn client_headers(data: &[u8]) {
    use crate::daemon::{ClientHeader, TrustedProxies};
    let mut parts = data.splitn(2, |b| *b == b'\n');
    let (first, second) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let mut headers = HeaderMap::new();
    for (name, value) in [("x-forwarded-for", first), ("forwarded", second)] {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    let peer: IpAddr = [127, 0, 0, 1].into();
    let networks = ["127.0.0.0/8", "10.0.0.0/8", "::1/128"].map(|n| n.parse().ok());
    let networks: Vec<_> = networks.into_iter().flatten().collect();
    for choice in [ClientHeader::XForwardedFor, ClientHeader::Forwarded] {
        let proxies = TrustedProxies::with_header(networks.clone(), choice);
        let client = proxies.client(peer, &headers);
        let other: IpAddr = [192, 0, 2, 9].into();
        assert_eq!(
            proxies.client(other, &headers),
            other,
            "an untrusted peer is the client"
        );
        if client != peer {
            let header = match choice {
                ClientHeader::XForwardedFor => first,
                ClientHeader::Forwarded => second,
            };
            let text = String::from_utf8_lossy(header);
            assert!(
                addresses_in(&text).contains(&client),
                "{client} is not in the chosen header {text:?}"
            );
        }
    }
}

/// Every address written anywhere in `text`, with or without a port, canonical: told apart
/// by a tokenizer of its own rather than the daemon's parser.
fn addresses_in(text: &str) -> Vec<IpAddr> {
    let separators = |c: char| matches!(c, ',' | ';' | '=' | '"' | '[' | ']') || c.is_whitespace();
    text.split(separators)
        .flat_map(|token| [Some(token), token.rsplit_once(':').map(|(host, _)| host)])
        .flatten()
        .filter_map(|t| t.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .collect()
}

/// A fixed signing key for the fuzzer's manifests (a test key, never a real one).
fn fuzz_key() -> (ring::signature::Ed25519KeyPair, manifest::PublicKey) {
    use ring::signature::KeyPair as _;
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[42; 32]);
    let pair = pair.unwrap_or_else(|_| unreachable!("a 32-byte seed is a valid Ed25519 seed"));
    let public = manifest::PublicKey::from_bytes(pair.public_key().as_ref().to_vec());
    (pair, public)
}

/// The manifest reader: first byte 0 splits the rest into a manifest and a signature file
/// (unsigned input must be refused before it is parsed); otherwise the rest is signed with
/// the fuzzer's key first, so the parser and index behind the signature are reached. A
/// record is read from the same bytes.
pub fn manifest(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let (pair, public) = fuzz_key();
    let trusted = std::slice::from_ref(&public);
    let limits = manifest::Limits {
        min_iterations: 1,
        ..manifest::Limits::default()
    };
    if *mode == 0 {
        let at = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        let (body, signature) = (&rest[..at], rest.get(at + 1..).unwrap_or_default());
        let result = manifest::verify(body, signature, trusted, limits);
        if let Err(e) = result {
            assert!(!e.to_string().is_empty());
        }
        return;
    }
    let Ok(signature) = manifest::sign(rest, &pair, &public.id) else {
        return;
    };
    if let Ok(catalog) = manifest::verify(rest, &signature, trusted, limits) {
        for entry in catalog.entries() {
            assert_eq!(
                catalog.entry(&entry.number).map(|e| e.number),
                Some(entry.number.clone())
            );
        }
        let _ = catalog.key_matches(None, "0000000000");
    }
    let _ = serde_json::from_slice::<crate::common::certificate::Record>(rest);
}

/// The smallest site settings the readers need.
fn fuzz_config() -> Config {
    let text = "title = \"t\"\nbase_url = \"https://example.jp/\"\n[guarantor]\nname = \"g\"\naddress = \"a\"\ntel = \"0\"\n\
                [adopters]\ncategories = [\"県\", \"市町村\"]\n";
    Config::parse(text).unwrap_or_else(|e| unreachable!("the fuzz config parses: {e}"))
}

/// Every YAML reader of the site and the certificates, and a page's front matter.
pub fn yaml_data(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = fuzz_config();
    let settings = markdown::Settings::new("/");
    // Lines as YAML (and an editor) counts them: a lone CR breaks a line too.
    let lines = 1 + text.replace("\r\n", "\n").matches(['\n', '\r']).count();
    let mut d = Diagnostics::default();
    crate::site::adopters::parse_adopter_table(Path::new("a.yaml"), "a", text, &config, &mut d);
    crate::site::qa::parse_qa(Path::new("qa.yaml"), text, settings, &mut d);
    let refs = crate::certificates::input::References::built_in();
    let mut warnings = Diagnostics::default();
    crate::certificates::input::parse_file(Path::new("c.yaml"), text, refs, &mut d, &mut warnings);
    crate::certificates::customers::parse(Path::new("customers.yaml"), text, &mut d);
    crate::site::content::parse_page_text(text, Path::new("content/p.md"), settings, &mut d);
    for diagnostic in d.iter().chain(warnings.iter()) {
        let line = diagnostic.line;
        assert!(line <= lines, "line {line} of {lines}: {diagnostic}");
    }
}

/// Markdown to HTML without `unsafe`: no raw tag, no event handler, no script URL.
pub fn markdown(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let rendered = markdown::render(text, markdown::Settings::new("/"));
    if let Some(problem) = script_in(&rendered.html) {
        panic!("{problem} in {:?}", rendered.html);
    }
}

/// Tags pulldown-cmark writes for Markdown; anything else came from raw HTML.
const MARKDOWN_TAGS: &[&str] = &[
    "a",
    "blockquote",
    "br",
    "caption",
    "code",
    "del",
    "div",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "img",
    "input",
    "li",
    "ol",
    "p",
    "pre",
    "section",
    "span",
    "strong",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
];

/// The first thing in `html` that could run a script: a tag Markdown does not write, an
/// `on…` attribute, or a `javascript:`/`vbscript:`/`data:` URL.
pub fn script_in(html: &str) -> Option<String> {
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let end = after.find('>')?;
        let tag = &after[..end];
        rest = &after[end..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if !MARKDOWN_TAGS.contains(&name.as_str()) {
            return Some(format!("tag <{tag}>"));
        }
        if let Some(problem) = attributes(tag).find_map(|(n, v)| bad_attribute(&n, &v)) {
            return Some(problem);
        }
    }
    None
}

/// The `name="value"` pairs of a tag's text (values as pulldown-cmark quotes them).
fn attributes(tag: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let body = tag.split_once(char::is_whitespace).map_or("", |(_, b)| b);
    body.split('"')
        .collect::<Vec<_>>()
        .chunks(2)
        .filter_map(|pair| {
            let name = pair.first()?.trim().trim_end_matches('=').trim();
            let value = pair.get(1).copied().unwrap_or_default();
            (!name.is_empty()).then(|| (name.to_ascii_lowercase(), value.to_owned()))
        })
        .collect::<Vec<_>>()
        .into_iter()
}

fn bad_attribute(name: &str, value: &str) -> Option<String> {
    if name
        .split_whitespace()
        .any(|n| n.starts_with("on") || n == "style" || n == "srcdoc")
    {
        return Some(format!("attribute {name}"));
    }
    if matches!(name, "href" | "src") {
        let decoded = value.replace("&amp;", "&").replace("&#58;", ":");
        let scheme: String = decoded
            .chars()
            .filter(|c| !c.is_whitespace() && !c.is_control())
            .take_while(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        let has_scheme = decoded.contains(':');
        // An image from a data: URL is only an image (an SVG there runs no script), as
        // markdown.rs allows it; a link to one is refused.
        let script = matches!(scheme.as_str(), "javascript" | "vbscript")
            || (scheme == "data" && name == "href");
        if has_scheme && script {
            return Some(format!("{name}={value}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_check_finds_what_it_looks_for() {
        assert_eq!(script_in("<p>a &lt;script&gt;</p>"), None);
        assert!(script_in("<p>a</p><script>x</script>").is_some());
        assert!(script_in("<h2 id=\"a\" onfocus=\"alert(1)\">a</h2>").is_some());
        assert!(script_in("<a href=\"javascript:alert(1)\">a</a>").is_some());
        assert!(script_in("<a href=\" JaVa\tscript:alert(1)\">a</a>").is_some());
        assert_eq!(script_in("<a href=\"/qa/\" title=\"onload\">a</a>"), None);
        assert!(script_in("<a href=\"DATA:text/html,x\">a</a>").is_some());
        assert_eq!(
            script_in("<img src=\"DATA:image/png,x\" alt=\"a\" />"),
            None
        );
    }

    #[test]
    fn the_targets_take_their_seeds() {
        request_bodies(b"number=2070004426&key=332+E1E+7K9Q");
        request_bodies(br#"{"number":"2070004426","key":"332E1E7K9Q"}"#);
        typed_input("２０７０００４４２６".as_bytes());
        client_headers(b"198.51.100.7, 10.0.0.2\nfor=\"[2001:db8::1]:4711\";proto=https");
        manifest(b"\x01{}");
        yaml_data("title: t\nas_of: 2024-04-01\nadopters: []\n".as_bytes());
        markdown(b"## a {#b .c}\n\n[x](/qa/)\n");
    }
}
