//! `hosho serve` over a real socket on 127.0.0.1, with a real HTTP client (ureq) and, where
//! the test is about bytes on the wire, a raw TCP stream. Every test starts its own daemon on
//! a copy of the demo site built once.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{copy_dir, SiteDir};

/// The demo site, built once; tests copy it.
fn built_demo() -> &'static Path {
    static BUILT: OnceLock<SiteDir> = OnceLock::new();
    &BUILT
        .get_or_init(|| {
            let site = SiteDir::demo();
            site.build();
            site
        })
        .root
}

/// A private copy of the built demo (site, vault, keys).
pub(crate) struct Root {
    _tmp: tempfile::TempDir,
    pub(crate) path: PathBuf,
}

impl Root {
    pub(crate) fn new() -> Root {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("site");
        copy_dir(built_demo(), &path);
        Root { _tmp: tmp, path }
    }

    fn vault(&self, rel: &str) -> PathBuf {
        self.path.join("vault").join(rel)
    }

    pub(crate) fn key_of(&self, number: &str) -> String {
        let secret = fs::read(self.path.join("keys/authkey.secret")).expect("secret");
        hosho::trust::authkey::derive_key(&secret, number)
    }

    /// Rewrites the manifest through `change` and signs it again with the site's key.
    fn resign(&self, change: impl FnOnce(&mut Value)) {
        self.resign_in(&self.path.join("vault"), change);
    }

    /// Changes the manifest of the vault in `dir` and signs it again with the root's key,
    /// as a build signs (format 3: the tree's root recomputed and its head signed).
    fn resign_in(&self, dir: &Path, change: impl FnOnce(&mut Value)) {
        use hosho::trust::manifest::{Entry, Header, Manifest};
        let path = dir.join("manifest.json");
        let mut manifest: Value =
            serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
        change(&mut manifest);
        let entries: Vec<Entry> =
            serde_json::from_value(manifest["entries"].take()).expect("entries");
        manifest.as_object_mut().expect("object").remove("entries");
        let header: Header = serde_json::from_value(manifest).expect("header");
        let keys = hosho::trust::keys::load(&self.path.join("keys")).expect("keys");
        let signed = Manifest::new(header, entries)
            .signed(&keys.key_pair, &keys.public.id)
            .expect("sign");
        fs::write(&path, signed.manifest).expect("write");
        fs::write(dir.join("manifest.json.sig"), signed.signature).expect("write");
    }

    /// Rewrites the vault's manifest in format 1 (no tree), as hosho wrote it before the
    /// tree, signed with the root's key.
    fn to_format_1(&self) {
        let path = self.vault("manifest.json");
        let mut manifest: Value =
            serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
        let object = manifest.as_object_mut().expect("object");
        object.insert("format".to_owned(), Value::from(1));
        object.remove("size");
        object.remove("root");
        let bytes = serde_json::to_vec(&manifest).expect("json");
        let keys = hosho::trust::keys::load(&self.path.join("keys")).expect("keys");
        let sig =
            hosho::trust::manifest::sign(&bytes, &keys.key_pair, &keys.public.id).expect("sign");
        fs::write(&path, bytes).expect("write");
        fs::write(self.vault("manifest.json.sig"), sig).expect("write");
    }

    fn seq(&self) -> u64 {
        let m: Value =
            serde_json::from_slice(&fs::read(self.vault("manifest.json")).expect("read"))
                .expect("json");
        m["seq"].as_u64().expect("seq")
    }

    /// `hosho serve --no-build` that is expected to refuse to start.
    fn refused_start(&self) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_hosho"))
            .args(["serve", "--no-build", "--listen", "127.0.0.1:0", "--root"])
            .arg(&self.path)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("run hosho");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A running `hosho serve`, killed when dropped.
pub(crate) struct Daemon {
    child: Child,
    pub(crate) base: String,
    pub(crate) addr: String,
    /// What it printed on standard output when it started.
    pub(crate) banner: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Daemon {
    /// `hosho serve --no-build` on `root`.
    pub(crate) fn start(root: &Root, args: &[&str]) -> Daemon {
        let mut all = vec!["--no-build"];
        all.extend(args);
        Daemon::launch(&root.path, &all)
    }

    /// `hosho serve ARGS` on `root`, on a free port.
    pub(crate) fn launch(root: &Path, args: &[&str]) -> Daemon {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hosho"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--root"])
            .arg(root)
            .args(args);
        Daemon::spawn(command)
    }

    /// Runs `command` (a `hosho serve`) until it says where it listens.
    pub(crate) fn spawn(mut command: Command) -> Daemon {
        let mut child = command
            .env("RUST_LOG", "hosho=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hosho serve");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            text
        });
        let mut lines = BufReader::new(stdout).lines();
        let (mut addr, mut banner) = (None, Vec::new());
        loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!(
                    "hosho serve did not start: {}",
                    stderr.join().unwrap_or_default()
                );
            };
            if let Some(rest) = line.strip_prefix("確認サービスを起動しました: http://")
            {
                addr = rest.split('/').next().map(str::to_owned);
            }
            let last = line.starts_with("止めるには");
            banner.push(line);
            if last {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let addr = addr.expect("address");
        Daemon {
            child,
            base: format!("http://{addr}"),
            addr,
            banner,
            stderr: Some(stderr),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A URL on the admin listener (`--admin-listen 127.0.0.1:0`).
    pub(crate) fn admin_url(&self, path: &str) -> String {
        let line = self
            .banner
            .iter()
            .find_map(|l| l.strip_prefix("運用者向け: http://"))
            .expect("started with --admin-listen");
        let addr = line.split('/').next().expect("address");
        format!("http://{addr}{path}")
    }

    pub(crate) fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        assert_eq!(send_signal(pid, signal), 0);
    }

    /// Waits for the process to exit; its exit code and stderr.
    pub(crate) fn wait(mut self, limit: Duration) -> (i32, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let log = self
                    .stderr
                    .take()
                    .map(|h| h.join().unwrap_or_default())
                    .unwrap_or_default();
                return (status.code().unwrap_or(-1), log);
            }
            assert!(started.elapsed() < limit, "hosho serve did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn send_signal(pid: i32, signal: i32) -> i32 {
    // `kill(1)` rather than libc, so the test crate needs no unsafe code.
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    if status.success() {
        0
    } else {
        1
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// Status, headers (lower-case names) and body of one response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    fn from(mut r: ureq::http::Response<ureq::Body>) -> Reply {
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = r
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .expect("body");
        Reply {
            status: r.status().as_u16(),
            headers,
            body,
        }
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("json {e}: {}", self.text()))
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// Every response carries these.
    fn assert_secure(&self) {
        assert_eq!(self.header("cache-control"), "no-store", "{self:?}");
        assert_eq!(self.header("referrer-policy"), "no-referrer");
        assert_eq!(self.header("x-content-type-options"), "nosniff");
        let csp = self.header("content-security-policy");
        assert!(csp.starts_with("default-src 'none';"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    }

    /// Headers other than the date, which differs between two otherwise equal replies.
    fn headers_but_date(&self) -> BTreeMap<String, String> {
        let mut h = self.headers.clone();
        h.remove("date");
        h
    }
}

pub(crate) fn get(url: &str) -> Reply {
    Reply::from(agent().get(url).call().expect("GET"))
}

pub(crate) fn post(url: &str, content_type: &str, body: &str) -> Reply {
    Reply::from(
        agent()
            .post(url)
            .header("content-type", content_type)
            .send(body)
            .expect("POST"),
    )
}

pub(crate) fn api(d: &Daemon, number: &str, key: &str) -> Reply {
    let body = serde_json::json!({"number": number, "key": key}).to_string();
    post(&d.url("/api/verify"), "application/json", &body)
}

pub(crate) fn form(d: &Daemon, number: &str, key: &str) -> Reply {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("number", number)
        .append_pair("key", key)
        .finish();
    post(
        &d.url("/verify/"),
        "application/x-www-form-urlencoded",
        &body,
    )
}

/// A raw request; the whole answer as text (the connection is closed after it).
fn raw(d: &Daemon, request: &str) -> String {
    let mut stream = TcpStream::connect(&d.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn valid_changed_and_cancelled_certificates_over_the_api() {
    let root = Root::new();
    let d = Daemon::start(&root, &[]);

    // 全角 number, spaced lower-case key.
    let r = api(&d, "２０７０００４４２６", "332 e1e 7k9q");
    assert_eq!(r.status, 200, "{}", r.text());
    r.assert_secure();
    assert_eq!(r.header("content-type"), "application/json");
    let v = r.json();
    assert_eq!(v["status"], "valid");
    let c = &v["certificate"];
    assert_eq!(c["number"], "2070004426");
    assert_eq!(c["kind"], "前払金保証");
    assert_eq!(c["issued"], "2022-05-10");
    assert_eq!(c["current"]["amount"], 40_000_000);
    assert_eq!(c["current"]["period"]["to"], "2023-03-31");
    assert_eq!(c["period_ended"], true);
    assert_eq!(c["contractor"]["name"], "株式会社みほん建設");
    assert_eq!(c["changes"], serde_json::json!([]));
    assert!(c.get("format").is_none());
    assert_eq!(v["manifest"]["seq"], root.seq());

    // The PDF through its token: the exact file the manifest names.
    let pdf_url = v["pdf"].as_str().expect("pdf link");
    assert!(
        pdf_url.starts_with("/certificates/") && pdf_url.len() == 14 + 92,
        "{pdf_url}"
    );
    let pdf = get(&d.url(pdf_url));
    assert_eq!(pdf.status, 200);
    pdf.assert_secure();
    assert_eq!(pdf.header("content-type"), "application/pdf");
    assert!(pdf.body.starts_with(b"%PDF-"));
    assert_eq!(
        pdf.body,
        fs::read(root.vault("certificates/2070004426.pdf")).expect("pdf")
    );

    let changed = api(&d, "2070310002", &root.key_of("2070310002"));
    assert_eq!(changed.status, 200, "{}", changed.text());
    let v = changed.json();
    assert_eq!(v["status"], "changed");
    let changes = v["certificate"]["changes"].as_array().expect("changes");
    assert!(!changes.is_empty());
    assert!(
        changes[0]["date"].as_str().is_some_and(|d| d.len() == 10),
        "{changes:?}"
    );

    let cancelled = api(&d, "2070310004", &root.key_of("2070310004"));
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    assert_eq!(cancelled.json()["status"], "cancelled");

    // An unknown token is no file.
    let gone = get(&d.url("/certificates/00000000000000000000000000000000"));
    assert_eq!(gone.status, 404);
    gone.assert_secure();
}

#[test]
fn wrong_key_and_unknown_number_get_byte_identical_refusals() {
    let root = Root::new();
    let d = Daemon::start(&root, &[]);
    let wrong = api(&d, "2070004426", "332E1E7K9R");
    let unknown = api(&d, "2070009999", "332E1E7K9Q");
    for r in [&wrong, &unknown] {
        assert_eq!(r.status, 404);
        r.assert_secure();
        assert_eq!(r.text(), "{\"error\":\"not_found\"}\n");
    }
    assert_eq!(wrong.headers_but_date(), unknown.headers_but_date());

    let wrong = form(&d, "2070004426", "332E1E7K9R");
    let unknown = form(&d, "2070009999", "332E1E7K9Q");
    assert_eq!(wrong.status, 404);
    crate::support::assert_japanese_spacing(&wrong.text(), "the refusal");
    // The same page but for the number each typed, kept in its field: what the page says
    // depends on what was typed, never on what exists.
    let typed = |page: &str, number: &str| {
        let field = format!("value=\"{number}\"");
        assert_eq!(
            page.matches(&field).count(),
            1,
            "{number} kept once: {page}"
        );
        page.replace(&field, "value=\"…\"")
    };
    assert_eq!(
        typed(&wrong.text(), "2070004426"),
        typed(&unknown.text(), "2070009999")
    );
    assert_eq!(wrong.headers_but_date(), unknown.headers_but_date());
    let page = wrong.text();
    assert!(page.contains("電子証書を表示できませんでした"), "{page}");
    // The key is never echoed; the number appears only in its field.
    assert!(!page.contains("332E1E7K9") && page.matches("2070004426").count() == 1);

    // The audit log has every attempt, and never a key (written out at shutdown).
    d.signal(15);
    let (code, log) = d.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "{log}");
    let audit = fs::read_to_string(root.path.join("state/audit.jsonl")).expect("audit log");
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 4, "{audit}");
    for line in &lines {
        assert_eq!(line["outcome"], "not_found");
        assert_eq!(line["client"], "127.0.0.1");
        assert!(line["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(line.as_object().map(|o| o.len()), Some(4), "{line}");
    }
    assert_eq!(lines[0]["number"], "2070004426");
    assert_eq!(lines[1]["number"], "2070009999");
    assert!(
        !audit.contains("332E1E7K9") && !audit.to_lowercase().contains("key"),
        "{audit}"
    );
}

#[test]
fn the_form_and_the_certificate_pages() {
    let root = Root::new();
    let d = Daemon::start(&root, &[]);
    let page = get(&d.url("/verify/"));
    assert_eq!(page.status, 200);
    page.assert_secure();
    let html = page.text();
    for fact in [
        "<html lang=\"ja\">",
        "<label for=\"number\">保証契約番号 <span class=\"required\">※必須</span></label>",
        "<label for=\"key\">認証キー <span class=\"required\">※必須</span></label>",
        "10桁の数字です（XXXXXXXXXXの形）",
        "英数字10文字です（XXX&nbsp;XXX&nbsp;XXXXの形）",
        "method=\"post\" action=\"/verify/\"",
    ] {
        assert!(html.contains(fact), "{fact}");
    }
    assert!(!html.contains("<script"), "the form needs no script");
    let css = get(&d.url("/verify/assets/verify.css"));
    assert_eq!(css.status, 200);
    assert!(css.text().contains("@media print"));

    crate::support::assert_japanese_spacing(&html, "the form");
    let valid = form(&d, "２０７　０００　４４２６", "３３２－ｅ１ｅ－７Ｋ９Ｑ");
    assert_eq!(valid.status, 200, "{}", valid.text());
    crate::support::assert_japanese_spacing(&valid.text(), "the certificate page");
    valid.assert_secure();
    let html = valid.text();
    for fact in [
        "電子証書（閲覧用）",
        "<th scope=\"row\">保証契約番号</th><td>2070004426</td>",
        "令和4年5月10日",
        "40,000,000円",
        "保証期間満了",
        "保証期間は令和5年3月31日に満了しました。",
        "西日本建設業保証株式会社が電子署名した最新の記録（令和",
        "株式会社みほん建設",
        "href=\"/certificates/",
        // Issued by 大阪支店 (`office:`): its own address and telephone.
        "本社　大阪府大阪市西区立売堀二丁目1番2号<br>大阪支店　大阪府大阪市西区立売堀二丁目1番2号<br>電話　06-6543-2711",
    ] {
        assert!(html.contains(fact), "{fact}:\n{html}");
    }

    let changed = form(&d, "2070310002", &root.key_of("2070310002"));
    assert_eq!(changed.status, 200);
    let html = changed.text();
    assert!(html.contains("（変更）"), "{html}");
    assert!(
        html.contains("<caption>変更履歴（古い順）</caption>"),
        "{html}"
    );
    assert!(html.contains("→"), "{html}");
    // The 変更日 beside the 発行日, and the 工期.
    assert!(
        html.contains("<th scope=\"row\">変更日</th><td><time datetime=\"2024-12-10\">令和6年12月10日</time></td>"),
        "{html}"
    );
    assert!(html.contains("<th scope=\"row\">工期</th>"), "{html}");

    let cancelled = form(&d, "2070310004", &root.key_of("2070310004"));
    let html = cancelled.text();
    assert!(html.contains("解除（保証の効力はありません）"), "{html}");
    assert!(
        html.contains(
            "この保証契約は<time datetime=\"2024-09-30\">令和6年9月30日</time>に解除されています"
        ),
        "{html}"
    );
    assert!(
        html.contains("<th scope=\"row\">解除日</th><td><time datetime=\"2024-09-30\">令和6年9月30日</time></td>"),
        "{html}"
    );
}

#[test]
fn limits_per_contract_number_and_per_address() {
    let root = Root::new();
    let d = Daemon::start(
        &root,
        &[
            "--limit-number",
            "3/day+3",
            "--limit-address",
            "1000/day+1000",
        ],
    );
    for _ in 0..3 {
        assert_eq!(api(&d, "2070009999", "0000000000").status, 404);
    }
    // A number that does not exist is limited like one that does.
    let limited = api(&d, "2070009999", "0000000000");
    assert_eq!(limited.status, 429, "{}", limited.text());
    limited.assert_secure();
    let retry: u64 = limited
        .header("retry-after")
        .parse()
        .expect("Retry-After seconds");
    assert!(retry > 60, "{retry}");
    assert_eq!(limited.json()["error"], "rate_limited");
    // Even the right key waits now; other numbers do not.
    assert_eq!(api(&d, "2070004426", "332E1E7K9Q").status, 200);
    for _ in 0..3 {
        api(&d, "2070004426", "0000000000");
    }
    assert_eq!(api(&d, "2070004426", "332E1E7K9Q").status, 429);
    let page = form(&d, "2070004426", "332E1E7K9Q");
    assert_eq!(page.status, 429);
    assert!(page
        .text()
        .contains("しばらく時間をおいてからお試しください"));

    let d = Daemon::start(&root, &["--limit-address", "4/day+4"]);
    for n in 0..4 {
        assert_eq!(api(&d, &format!("207000900{n}"), "0000000000").status, 404);
    }
    let limited = api(&d, "2070009005", "0000000000");
    assert_eq!(limited.status, 429);
    assert!(limited
        .header("retry-after")
        .parse::<u64>()
        .is_ok_and(|s| s > 60));
    // /healthz is never limited.
    assert_eq!(get(&d.url("/healthz")).status, 200);
}

#[test]
fn malformed_requests_get_json_errors() {
    let root = Root::new();
    let d = Daemon::start(&root, &[]);
    let big = format!("{{\"number\":\"{}\",\"key\":\"x\"}}", "1".repeat(10_000));
    let cases = [
        (
            post(&d.url("/api/verify"), "application/json", &big),
            413,
            "too_large",
        ),
        (
            post(&d.url("/api/verify"), "application/json", "{\"number\":"),
            400,
            "bad_request",
        ),
        (
            post(&d.url("/api/verify"), "application/json", "[1,2]"),
            400,
            "bad_request",
        ),
        (
            post(&d.url("/api/verify"), "text/plain", "{}"),
            415,
            "unsupported_media_type",
        ),
        (get(&d.url("/api/verify")), 405, "method_not_allowed"),
    ];
    for (r, status, code) in &cases {
        assert_eq!(r.status, *status, "{code}: {}", r.text());
        r.assert_secure();
        assert_eq!(r.json()["error"], *code);
    }
    assert_eq!(cases[4].0.header("allow"), "POST");
    // A body larger than declared, sent chunked, is cut off too.
    let request = format!(
        "POST /api/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    assert!(raw(&d, &request).starts_with("HTTP/1.1 413"));
    // Nonsense on the wire is answered, and the daemon lives on.
    assert!(raw(&d, "GARBAGE\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert_eq!(get(&d.url("/healthz")).status, 200);
}

#[test]
fn healthz_reports_the_manifest() {
    let root = Root::new();
    let d = Daemon::start(&root, &["--admin-listen", "127.0.0.1:0"]);
    let r = get(&d.url("/healthz"));
    assert_eq!(r.status, 200);
    r.assert_secure();
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["seq"], root.seq());
    // The public health tells nothing of the pool, the limiters or the manifest's contents.
    assert!(
        v.get("entries").is_none() && v.get("kdf_pool").is_none() && v.get("limiter").is_none()
    );
    // The admin listener has the details, and the metrics.
    let detail = get(&d.admin_url("/healthz")).json();
    assert_eq!(detail["entries"], 12);
    let sha = hosho::common::hex::sha256_hex(&fs::read(root.vault("manifest.json")).expect("read"));
    assert_eq!(detail["manifest_sha256"], sha);
    let metrics = get(&d.admin_url("/metrics")).text();
    assert!(
        metrics.contains(&format!(
            "hosho_manifest_seq{{issuer=\"default\"}} {}",
            root.seq()
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("hosho_manifest_entries{issuer=\"default\"} 12"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hosho_issuer_in_service{issuer=\"default\"} 1"),
        "{metrics}"
    );
    // Nothing of the admin listener is on the public one.
    assert_eq!(get(&d.url("/metrics")).status, 404);
}

#[test]
fn the_preview_refuses_traversal_and_symlinks() {
    let root = Root::new();
    fs::write(root.path.join("secret.txt"), "SECRET").expect("write");
    std::os::unix::fs::symlink(
        root.path.join("secret.txt"),
        root.path.join("site-out/link.txt"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(&root.path, root.path.join("site-out/up")).expect("symlink");
    let d = Daemon::start(
        &root,
        &[
            "--site",
            root.path.join("site-out").to_str().expect("utf-8"),
        ],
    );
    let home = get(&d.url("/"));
    assert_eq!(home.status, 200);
    home.assert_secure();
    assert!(home.text().contains("電子保証"));
    assert_eq!(get(&d.url("/qa")).status, 301);
    for path in [
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/qa/..%2f..%2fsecret.txt",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/link.txt",
        "/up/secret.txt",
        "/up/keys/authkey.secret",
        "/.hosho-output",
    ] {
        let answer = raw(
            &d,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        assert!(answer.starts_with("HTTP/1.1 404"), "{path}: {answer}");
        assert!(!answer.contains("SECRET"), "{path}");
        assert!(answer.contains("no-store"), "{path}");
    }
}

#[test]
fn a_client_that_sends_nothing_is_dropped() {
    let root = Root::new();
    let d = Daemon::start(&root, &["--request-timeout", "1"]);
    for partial in ["", "GET /healthz HTTP/1.1\r\nHost: x\r\n"] {
        let mut stream = TcpStream::connect(&d.addr).expect("connect");
        stream.write_all(partial.as_bytes()).expect("write");
        stream
            .set_read_timeout(Some(Duration::from_secs(8)))
            .expect("timeout");
        let started = Instant::now();
        let mut out = Vec::new();
        let read = stream.read_to_end(&mut out);
        assert!(
            read.is_ok(),
            "{partial:?}: the daemon kept the connection: {read:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    }
    // A body that never comes is answered 408 after the timeout.
    let mut stream = TcpStream::connect(&d.addr).expect("connect");
    stream
        .write_all(b"POST /api/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{")
        .expect("write");
    stream
        .set_read_timeout(Some(Duration::from_secs(8)))
        .expect("timeout");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(get(&d.url("/healthz")).status, 200);
}

#[test]
fn bad_manifests_refuse_start_up() {
    let flip = |root: &Root, rel: &str, at: usize| {
        let path = root.vault(rel);
        let mut bytes = fs::read(&path).expect("read");
        bytes[at] ^= 0x01;
        fs::write(&path, bytes).expect("write");
    };
    let root = Root::new();
    flip(&root, "manifest.json", 300);
    let (code, err) = root.refused_start();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("起動しません") && err.contains("署名が正しくありません"),
        "{err}"
    );

    let root = Root::new();
    flip(&root, "manifest.json.sig", 70);
    let (code, err) = root.refused_start();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("署名"), "{err}");

    let root = Root::new();
    fs::remove_file(root.vault("manifest.json.sig")).expect("unsign");
    let (code, err) = root.refused_start();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("manifest.json.sig を読めません"), "{err}");

    let root = Root::new();
    root.resign(|m| m["expires_at"] = Value::from(1_000_000_000u64));
    let (code, err) = root.refused_start();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("有効期限"), "{err}");

    let root = Root::new();
    fs::create_dir_all(root.path.join("state")).expect("mkdir");
    fs::write(
        root.path.join("state/high-water"),
        format!("{}\n", root.seq() + 1),
    )
    .expect("write");
    let (code, err) = root.refused_start();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("巻き戻し"), "{err}");

    let root = Root::new();
    root.resign(|m| m["entries"][0]["salt"] = Value::from("zz"));
    let (code, err) = root.refused_start();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("形式が正しくありません"), "{err}");

    // Signed by another key.
    let root = Root::new();
    let other = tempfile::tempdir().expect("tempdir");
    let keys = other.path().join("k");
    let status = Command::new(env!("CARGO_BIN_EXE_hosho"))
        .args(["keygen", "--keys"])
        .arg(&keys)
        .output()
        .expect("keygen");
    assert!(status.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_hosho"))
        .args([
            "serve",
            "--no-build",
            "--listen",
            "127.0.0.1:0",
            "--public-key",
        ])
        .arg(keys.join("signing.pub"))
        .arg("--root")
        .arg(&root.path)
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("信頼する公開鍵にありません"));
}

fn healthz_seq(d: &Daemon) -> u64 {
    get(&d.url("/healthz")).json()["seq"].as_u64().expect("seq")
}

#[test]
fn reloads_only_a_manifest_that_passes_every_check() {
    let root = Root::new();
    let d = Daemon::start(&root, &["--admin-listen", "127.0.0.1:0"]);
    let first = root.seq();
    assert_eq!(healthz_seq(&d), first);

    // A tampered manifest: refused, the old one keeps serving.
    let good = fs::read(root.vault("manifest.json")).expect("read");
    let mut bad = good.clone();
    bad[300] ^= 0x01;
    fs::write(root.vault("manifest.json"), &bad).expect("write");
    d.signal(1); // SIGHUP
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(healthz_seq(&d), first);
    assert_eq!(api(&d, "2070004426", "332E1E7K9Q").status, 200);

    // A rolled-back one (signed, but a lower seq): refused too.
    fs::write(root.vault("manifest.json"), &good).expect("restore");
    root.resign(|m| m["seq"] = Value::from(first - 1));
    d.signal(1);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(healthz_seq(&d), first);

    // A good new one is picked up by the file watch alone.
    root.resign(|m| m["seq"] = Value::from(first + 5));
    let started = Instant::now();
    while healthz_seq(&d) != first + 5 {
        assert!(started.elapsed() < Duration::from_secs(10), "not reloaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The high-water mark holds the sequence number and the manifest's SHA-256.
    let saved = fs::read_to_string(root.path.join("state/high-water")).expect("high-water");
    let sha = hosho::common::hex::sha256_hex(&fs::read(root.vault("manifest.json")).expect("read"));
    assert_eq!(saved, format!("{} {sha}\n", first + 5));
    assert_eq!(api(&d, "2070004426", "332E1E7K9Q").status, 200);

    // The same sequence number with other bytes (correctly signed): refused.
    root.resign(|m| m["issued_at"] = Value::from(1_000u64));
    d.signal(1);
    std::thread::sleep(Duration::from_millis(800));
    let health = get(&d.admin_url("/healthz")).json();
    assert_eq!(health["manifest_sha256"].as_str(), Some(sha.as_str()));
    drop(d);
    let (code, err) = root.refused_start();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("差し替えは受け付けません"), "{err}");
}

#[test]
fn a_vault_of_format_1_keeps_serving_and_the_next_build_writes_format_3() {
    let root = Root::new();
    root.to_format_1();
    let first = root.seq();
    let key = "332E1E7K9Q";
    let d = Daemon::start(&root, &[]);
    assert_eq!(healthz_seq(&d), first);
    assert_eq!(api(&d, "2070004426", key).status, 200);
    assert_eq!(api(&d, "2070004426", "332E1E7K9R").status, 404);
    drop(d);
    let verify = Command::new(env!("CARGO_BIN_EXE_hosho"))
        .args(["verify", "2070004426", key, "--root"])
        .arg(&root.path)
        .output()
        .expect("hosho verify");
    assert!(verify.status.success(), "{verify:?}");
    // The upgrade's first build writes format 3 above the high-water mark of format 1.
    let build = Command::new(env!("CARGO_BIN_EXE_hosho"))
        .args(["build", "--root"])
        .arg(&root.path)
        .output()
        .expect("hosho build");
    assert!(build.status.success(), "{build:?}");
    let manifest: Value =
        serde_json::from_slice(&fs::read(root.vault("manifest.json")).expect("read"))
            .expect("json");
    assert_eq!(manifest["format"], 3);
    assert!(manifest["root"].is_string() && manifest["size"].is_u64());
    assert!(root.seq() > first);
    let d = Daemon::start(&root, &[]);
    assert_eq!(healthz_seq(&d), root.seq());
    assert_eq!(api(&d, "2070004426", key).status, 200);
}

#[test]
fn a_manifest_that_expires_while_serving_answers_503() {
    let root = Root::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    root.resign(|m| m["expires_at"] = Value::from(now + 2));
    let d = Daemon::start(&root, &[]);
    std::thread::sleep(Duration::from_millis(3100));
    let r = api(&d, "2070004426", "332E1E7K9Q");
    assert_eq!(r.status, 503);
    r.assert_secure();
    assert_eq!(r.json()["error"], "manifest_expired");
    let page = form(&d, "2070004426", "332E1E7K9Q");
    assert_eq!(page.status, 503);
    assert!(page.text().contains("ただいま電子証書を確認できません"));
    let h = get(&d.url("/healthz"));
    assert_eq!(h.status, 503);
    assert_eq!(h.json()["status"], "expired");
}

#[test]
fn a_tampered_pdf_or_record_is_not_served() {
    let root = Root::new();
    let d = Daemon::start(&root, &[]);
    let v = api(&d, "2070004426", "332E1E7K9Q").json();
    let link = v["pdf"].as_str().expect("link").to_owned();
    let pdf = root.vault("certificates/2070004426.pdf");
    let mut bytes = fs::read(&pdf).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    fs::write(&pdf, &bytes).expect("write");
    let r = get(&d.url(&link));
    assert_eq!(r.status, 503);
    r.assert_secure();
    assert!(!r.body.starts_with(b"%PDF"));
    let again = api(&d, "2070004426", "332E1E7K9Q");
    assert_eq!(again.status, 503);
    assert_eq!(again.json()["error"], "unavailable");

    let record = root.vault("records/2070310002.json");
    let text = fs::read_to_string(&record)
        .expect("read")
        .replace("株式会社", "有限会社");
    fs::write(&record, text).expect("write");
    assert_eq!(
        api(&d, "2070310002", &root.key_of("2070310002")).status,
        503
    );
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    let root = Root::new();
    let d = Daemon::start(&root, &[]);
    let body = "{\"number\":\"2070004426\",\"key\":\"332E1E7K9Q\"}";
    let mut stream = TcpStream::connect(&d.addr).expect("connect");
    stream
        .write_all(
            format!(
                "POST /api/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                body.len(),
                &body[..10]
            )
            .as_bytes(),
        )
        .expect("write");
    std::thread::sleep(Duration::from_millis(300));
    d.signal(15); // SIGTERM while the body is still coming
    std::thread::sleep(Duration::from_millis(300));
    // New connections are no longer accepted...
    assert!(TcpStream::connect(&d.addr).is_err());
    // ...but the request in flight completes.
    stream
        .write_all(&body.as_bytes()[10..])
        .expect("rest of body");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"status\":\"valid\""), "{answer}");
    let (code, log) = d.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("処理中の確認がすべて終わりました"), "{log}");
}

#[test]
fn connections_over_the_cap_are_closed_and_the_daemon_goes_on() {
    let root = Root::new();
    let d = Daemon::start(&root, &["--max-connections", "2", "--request-timeout", "5"]);
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&d.addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // The third is accepted and closed at once, without an answer.
    let mut third = TcpStream::connect(&d.addr).expect("connect");
    third
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let _ = third.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut out = Vec::new();
    let started = Instant::now();
    let _ = third.read_to_end(&mut out);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(idle);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(get(&d.url("/healthz")).status, 200);
}

#[test]
fn a_full_kdf_pool_answers_503_at_once_and_healthz_stays_fast() {
    let root = Root::new();
    let d = Daemon::start(
        &root,
        &[
            "--kdf-workers",
            "1",
            "--kdf-queue",
            "0",
            "--limit-address",
            "1000/min+1000",
        ],
    );
    let url = d.url("/api/verify");
    let attempts: Vec<_> = (0..10)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let body = format!("{{\"number\":\"20700099{i:02}\",\"key\":\"0000000000\"}}");
                let started = Instant::now();
                let r = post(&url, "application/json", &body);
                (r, started.elapsed())
            })
        })
        .collect();
    let started = Instant::now();
    let health = get(&d.url("/healthz"));
    assert_eq!(health.status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let answers: Vec<(Reply, Duration)> = attempts
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    let busy: Vec<_> = answers.iter().filter(|(r, _)| r.status == 503).collect();
    assert!(
        !busy.is_empty(),
        "{:?}",
        answers.iter().map(|(r, _)| r.status).collect::<Vec<_>>()
    );
    for (r, _) in &busy {
        r.assert_secure();
        assert_eq!(r.json()["error"], "busy");
        assert_eq!(r.header("retry-after"), "1");
    }
    assert!(answers
        .iter()
        .all(|(r, _)| r.status == 503 || r.status == 404));
}

#[test]
fn a_number_and_key_to_try_are_printed_only_with_development_keys() {
    // Built with the development keys a fresh checkout gets: the banner offers a try.
    let root = Root::new();
    let dev = Daemon::launch(&root.path, &[]);
    assert!(
        dev.banner
            .iter()
            .any(|l| l.starts_with("お試しください: 保証契約番号 ")),
        "{:?}",
        dev.banner
    );
    let dev_signs = dev
        .banner
        .iter()
        .any(|l| l.starts_with("確認記録（電子ファイル）に署名します: 確認サービスの鍵 ID "));
    drop(dev);
    // The same site with keys from `hosho keygen`: no key is printed.
    let root = Root::new();
    fs::remove_dir_all(root.path.join("keys")).expect("rm keys");
    let keygen = Command::new(env!("CARGO_BIN_EXE_hosho"))
        .args(["keygen", "--root"])
        .arg(&root.path)
        .output()
        .expect("keygen");
    assert!(keygen.status.success());
    let production = Daemon::launch(&root.path, &[]);
    assert!(
        !production
            .banner
            .iter()
            .any(|l| l.contains("お試しください")),
        "{:?}",
        production.banner
    );
    assert!(production
        .banner
        .iter()
        .any(|l| l.starts_with("確認サービスを起動しました")));
    // Development keys come with a service key that signs receipts; keygen's do not.
    assert!(dev_signs, "the development banner names the receipt key");
    assert!(
        production
            .banner
            .iter()
            .any(|l| l.starts_with("確認記録（電子ファイル）は出しません")),
        "{:?}",
        production.banner
    );
}

#[test]
fn only_a_built_public_site_is_previewed() {
    // A vault, the notices or the site root itself is never served as a site.
    let root = Root::new();
    for site in ["vault", "notices", "."] {
        let out = Command::new(env!("CARGO_BIN_EXE_hosho"))
            .args([
                "serve",
                "--no-build",
                "--listen",
                "127.0.0.1:0",
                "--site",
                site,
                "--root",
            ])
            .arg(&root.path)
            .current_dir(&root.path)
            .stdin(Stdio::null())
            .output()
            .expect("serve");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "--site {site}: {err}");
        assert!(err.contains("プレビューしません"), "--site {site}: {err}");
    }
}

#[test]
fn the_audit_log_stays_small_under_a_flood_and_reopens_on_sigusr1() {
    let root = Root::new();
    let d = Daemon::start(&root, &["--limit-address", "2/day+2"]);
    let audit = root.path.join("state/audit.jsonl");
    for _ in 0..2 {
        assert_eq!(api(&d, "2070004426", "0000000000").status, 404);
    }
    // A flood of refused attempts from one client.
    let flood = 2_000;
    for _ in 0..flood {
        assert_eq!(api(&d, "2070004426", "0000000000").status, 429);
    }
    // Rotated away as logrotate does, then SIGUSR1: the daemon writes to a new file.
    std::thread::sleep(Duration::from_millis(300));
    fs::rename(&audit, root.path.join("state/audit.jsonl.1")).expect("rotate");
    d.signal(10); // SIGUSR1
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(api(&d, "2070004427", "0000000000").status, 429);
    d.signal(15);
    let (code, _) = d.wait(Duration::from_secs(10));
    assert_eq!(code, 0);
    let rotated = fs::read_to_string(root.path.join("state/audit.jsonl.1")).expect("rotated");
    let current = fs::read_to_string(&audit).expect("reopened");
    let lines: Vec<Value> = rotated
        .lines()
        .chain(current.lines())
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    // Two checks with a line each; the refusals counted per minute, not a line each.
    let checked = lines.iter().filter(|l| l.get("count").is_none()).count();
    let refused: u64 = lines.iter().filter_map(|l| l["count"].as_u64()).sum();
    assert_eq!((checked, refused), (2, flood + 1), "{lines:?}");
    let bytes = rotated.len() + current.len();
    assert!(
        lines.len() <= 6 && bytes < 2_000,
        "{} lines, {bytes} bytes",
        lines.len()
    );
    println!(
        "audit log after {flood} refusals: {} lines, {bytes} bytes",
        lines.len()
    );
    assert!(current.contains("rate_limited_address"), "{current}");
}

#[test]
fn malformed_keys_are_tallied_not_written_a_line_each() {
    let root = Root::new();
    let d = Daemon::start(&root, &["--limit-address", "100000/day+100000"]);
    let flood = 3_000;
    for _ in 0..flood {
        // A well-formed number, a key that cannot be one (nine characters).
        assert_eq!(api(&d, "2070004426", "332E1E7K9").status, 404);
    }
    // Malformed keys spent no failure budget: the right key still opens the number.
    assert_eq!(api(&d, "2070004426", "332E1E7K9Q").status, 200);
    d.signal(15);
    let (code, _) = d.wait(Duration::from_secs(10));
    assert_eq!(code, 0);
    let text = fs::read_to_string(root.path.join("state/audit.jsonl")).expect("audit");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let checked = lines.iter().filter(|l| l.get("count").is_none()).count();
    let refused: u64 = lines.iter().filter_map(|l| l["count"].as_u64()).sum();
    assert_eq!((checked, refused), (1, flood), "{lines:?}");
    assert!(lines.len() <= 3, "{} lines", lines.len());
}

#[test]
fn concurrent_wrong_keys_from_one_network_reach_the_kdf_at_most_the_budget() {
    let root = Root::new();
    let d = Daemon::start(
        &root,
        &[
            "--limit-address",
            "1000/day+1000",
            "--limit-failures",
            "5/day+5",
            "--kdf-workers",
            "1",
        ],
    );
    let url = d.url("/api/verify");
    let answers: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let url = url.clone();
                s.spawn(move || {
                    let body = serde_json::json!({"number": "2070004426", "key": "0000000000"});
                    post(&url, "application/json", &body.to_string()).status
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let reached = answers.iter().filter(|s| **s == 404).count();
    assert_eq!(reached, 5, "{answers:?}");
    assert_eq!(
        answers.iter().filter(|s| **s == 429).count(),
        15,
        "{answers:?}"
    );
}

/// A blocking connection to `to` from the loopback address `from` (127.0.0.2, 127.0.0.3, …).
pub(crate) fn connect_from(from: &str, to: &str) -> std::io::Result<TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let _entered = runtime.enter();
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(format!("{from}:0").parse().expect("address"))?;
    let to: std::net::SocketAddr = to.parse().expect("address");
    let stream = runtime.block_on(socket.connect(to))?.into_std()?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// One GET over `stream`: the status line.
fn status_line(mut stream: TcpStream, path: &str) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn an_idle_connection_flood_from_one_address_does_not_stop_another() {
    let root = Root::new();
    let d = Daemon::start(
        &root,
        &[
            "--max-connections",
            "100",
            "--max-connections-per-address",
            "10",
        ],
    );
    // 150 idle connections from one address: 10 are held, the rest closed at once.
    let flood: Vec<TcpStream> = (0..150)
        .filter_map(|_| connect_from("127.0.0.2", &d.addr).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let held = flood
        .iter()
        .filter(|s| {
            s.set_nonblocking(true).expect("nonblocking");
            let mut byte = [0u8; 1];
            // A closed connection reads 0 bytes; an open idle one would block.
            matches!((&**s).read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .count();
    assert_eq!(held, 10, "connections the daemon kept from 127.0.0.2");
    // Another client is served at once.
    let other = connect_from("127.0.0.3", &d.addr).expect("connect");
    assert_eq!(status_line(other, "/healthz"), "HTTP/1.1 200 OK");
    drop(flood);
}

#[test]
fn the_connection_limit_stays_below_the_open_file_limit() {
    let root = Root::new();
    // A hard limit of 600 open files: 1,024 connections would not fit beside the files.
    let mut command = Command::new("sh");
    command
        .args(["-c", "ulimit -n 600 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_hosho"))
        .args(["serve", "--no-build", "--listen", "127.0.0.1:0", "--root"])
        .arg(&root.path);
    let d = Daemon::spawn(command);
    assert_eq!(get(&d.url("/healthz")).status, 200);
    d.signal(15);
    let (code, log) = d.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("開けるファイル数の上限が 600 のため、同時接続の上限を 344 にしました"),
        "{log}"
    );
}

/// `POST /api/verify` over a connection from the loopback address `from`: the status code.
fn api_from(d: &Daemon, from: &str, number: &str, key: &str) -> u16 {
    api_via(&d.addr, from, number, key, "")
}

#[test]
fn while_one_network_attacks_a_number_the_right_key_from_another_succeeds() {
    let root = Root::new();
    let d = Daemon::start(
        &root,
        &[
            "--limit-number",
            "3/day+3",
            "--limit-failures",
            "100/day+100",
        ],
    );
    // Three networks spend the number's ceiling with wrong keys.
    for from in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        assert_eq!(api_from(&d, from, "2070004426", "0000000000"), 404);
    }
    // They wait now, whatever key they send.
    assert_eq!(api_from(&d, "127.0.0.2", "2070004426", "0000000000"), 429);
    assert_eq!(api_from(&d, "127.0.0.3", "2070004426", "332E1E7K9Q"), 429);
    // The orderer's office, which has given no wrong key, opens the certificate.
    assert_eq!(api_from(&d, "127.0.0.9", "2070004426", "332E1E7K9Q"), 200);
    // An attacker on a fresh network gets one guess, then waits like the others.
    assert_eq!(api_from(&d, "127.0.0.5", "2070004426", "0000000000"), 404);
    assert_eq!(api_from(&d, "127.0.0.5", "2070004426", "0000000000"), 429);
}

/// A real `redis-server` (Debian's, installed by scripts/test) on a loopback port, stopped
/// when dropped.
pub(crate) struct Redis {
    child: Child,
    port: u16,
    /// Its `requirepass`, if it asks for a password.
    password: Option<String>,
    /// Its working directory: a Redis started in the test's directory would load a
    /// `dump.rdb` another one left there (a replica writes one on every full sync).
    _dir: tempfile::TempDir,
}

impl Redis {
    pub(crate) fn start(port: u16) -> Redis {
        Redis::start_with(port, None)
    }

    /// A Redis that asks for `password` (`requirepass`), or for none.
    pub(crate) fn start_with(port: u16, password: Option<&str>) -> Redis {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path());
        if let Some(password) = password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/test installs it)");
        wait_for_port(port, "redis-server");
        Redis {
            child,
            port,
            password: password.map(str::to_owned),
            _dir: dir,
        }
    }

    /// A Redis that has been in service: replicas find an epoch in it, so they count there
    /// at once instead of strictly for the settling time of a Redis that starts empty.
    pub(crate) fn in_service(self) -> Redis {
        self.cli(&["SET", "hosho:epoch", "1"]);
        self
    }

    /// What `redis-cli` prints for `args`, with the password if it asks for one.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        redis_cli_as(self.port, self.password.as_deref(), args)
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

/// What `redis-cli -p PORT ARGS…` prints.
pub(crate) fn redis_cli(port: u16, args: &[&str]) -> String {
    redis_cli_as(port, None, args)
}

/// What `redis-cli -p PORT [-a PASSWORD] ARGS…` prints: with the password of a Redis or
/// sentinel that asks for one.
pub(crate) fn redis_cli_as(port: u16, password: Option<&str>, args: &[&str]) -> String {
    let mut command = Command::new("redis-cli");
    command.args(["-p", &port.to_string()]);
    if let Some(password) = password {
        command.args(["-a", password, "--no-auth-warning"]);
    }
    let out = command.args(args).output().expect("redis-cli");
    assert!(out.status.success(), "redis-cli {args:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A secret's file (a key, a password) `name` in `dir` holding `text`, with `mode`.
pub(crate) fn secret_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).expect("write a secret file");
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

/// Waits until something listens on 127.0.0.1:`port` (at most 10 s).
pub(crate) fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Daemon {
    /// A replica on `root` sharing its limits in `redis`, with its own state directory.
    fn replica(root: &Root, redis: &Redis, state: &str, extra: &[&str]) -> Daemon {
        let state = root.path.join(state);
        let url = redis.url();
        let mut args = vec!["--limits", &url, "--state", state.to_str().expect("utf-8")];
        args.extend(extra);
        Daemon::start(root, &args)
    }
}

/// The detailed health's status, from the admin listener.
pub(crate) fn admin_status(d: &Daemon) -> String {
    get(&d.admin_url("/healthz")).json()["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Two replicas on `root` sharing `redis` (4 wrong keys a day per network and number), with
/// the admin listener and `extra`.
fn two_replicas(root: &Root, redis: &Redis, extra: &[&str]) -> (Daemon, Daemon) {
    let mut args = vec![
        "--limit-failures",
        "4/day+4",
        "--admin-listen",
        "127.0.0.1:0",
    ];
    args.extend(extra);
    (
        Daemon::replica(root, redis, "state-a", &args),
        Daemon::replica(root, redis, "state-b", &args),
    )
}

/// Wrong keys spread over both replicas spend one budget: after four, both refuse.
fn spend_one_budget(a: &Daemon, b: &Daemon) {
    for d in [a, b, a, b] {
        assert_eq!(api(d, "2070004426", "0000000000").status, 404);
    }
    assert_eq!(api(a, "2070004426", "0000000000").status, 429);
    assert_eq!(api(b, "2070004426", "0000000000").status, 429);
}

#[test]
fn replicas_share_their_budgets_in_a_redis_that_asks_for_a_password_never_shown() {
    const PASSWORD: &str = "s3cret-for-redis";
    let redis = Redis::start_with(free_port(), Some(PASSWORD)).in_service();
    let root = Root::new();
    let file = secret_file(
        &root.path,
        "redis.password",
        &format!("{PASSWORD}\n"),
        0o400,
    );
    let file = file.display().to_string();
    let (a, b) = two_replicas(&root, &redis, &["--limits-password-file", &file]);
    spend_one_budget(&a, &b);
    assert_eq!(
        (admin_status(&a), admin_status(&b)),
        ("ok".into(), "ok".into())
    );
    assert_ne!(
        redis.cli(&["DBSIZE"]).trim(),
        "1",
        "the budgets are in Redis"
    );
    // The password is on no command line, and in no log line.
    let pid = a.child.id();
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert!(!String::from_utf8_lossy(&cmdline).contains(PASSWORD));
    for d in [a, b] {
        d.signal(15);
        let (_, log) = d.wait(Duration::from_secs(40));
        assert!(!log.contains(PASSWORD), "{log}");
    }
}

#[test]
fn replicas_share_their_budgets_in_redis_and_survive_its_outage() {
    let redis = Redis::start(free_port()).in_service();
    let root = Root::new();
    let (a, b) = two_replicas(&root, &redis, &[]);
    spend_one_budget(&a, &b);
    assert_eq!(admin_status(&a), "ok");
    // Redis stops: verification goes on with each replica's own budgets, reported degraded.
    let port = redis.port;
    let b_failures = redis_failures(&b);
    drop(redis);
    assert_eq!(api(&a, "2070004427", "0000000000").status, 404);
    let started = Instant::now();
    assert_eq!(api(&a, "2070310001", "0000000000").status, 404);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no request waits long on Redis"
    );
    assert_eq!(admin_status(&a), "degraded");
    let metrics = get(&a.admin_url("/metrics")).text();
    assert!(metrics.contains("hosho_limits_redis_up 0"), "{metrics}");
    // Redis comes back: the replica returns to it by itself.
    let _redis = Redis::start(port);
    let started = Instant::now();
    while admin_status(&a) != "ok" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not back on Redis"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(get(&a.admin_url("/metrics"))
        .text()
        .contains("hosho_limits_redis_up 1"));
    // It came back empty (no persistence): b noticed without a request of its own, and
    // for the settling time (60 s) a network gets one guess per number at most.
    // (b's status may still read ok from before it noticed: it has noticed once it counted
    // Redis as lost, by the outage or by the new epoch, and is back once it reads ok again.)
    let started = Instant::now();
    while redis_failures(&b) == b_failures || admin_status(&b) != "ok" {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "b not back on Redis"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(api(&b, "2070004428", "0000000000").status, 404);
    assert_eq!(
        api(&a, "2070004428", "0000000000").status,
        429,
        "strict while settling"
    );
    // A right key is let in strictly too, held while it is checked, and the hold is given
    // back in Redis once it proves right: the same network goes on at once, on either.
    for d in [&a, &b, &a] {
        let status = api_via(&d.addr, "127.0.0.8", "2070004426", "332E1E7K9Q", "");
        assert_eq!(status, 200, "the hold was given back");
    }
    // Once settled, the budgets the replicas copied in are whole in Redis: the spent one is
    // spent still, on both, and the right key from elsewhere opens the number. (The
    // settling time is ended here by deleting its key, as its expiry would a minute later.)
    let ttl = redis_cli(port, &["PTTL", "hosho:settling"]);
    let ttl: u64 = ttl.trim().parse().expect("a settling time");
    assert!(
        ttl > 50_000 && ttl <= 60_000,
        "settling for a minute: {ttl} ms"
    );
    redis_cli(port, &["DEL", "hosho:settling"]);
    assert_eq!(api(&a, "2070004426", "0000000000").status, 429);
    assert_eq!(api(&b, "2070004426", "0000000000").status, 429);
    assert_eq!(
        api(&a, "2070004429", "0000000000").status,
        404,
        "not strict any more"
    );
    assert_eq!(api(&b, "2070004429", "0000000000").status, 404);
    let other = api_via(&b.addr, "127.0.0.7", "2070004426", "332E1E7K9Q", "");
    assert_eq!(other, 200, "the right key from elsewhere");
    // Right keys cost nothing in Redis: more of them than the failure budget (4) all open.
    for d in [&a, &b, &a, &b, &a, &b] {
        let status = api_via(&d.addr, "127.0.0.7", "2070004426", "332E1E7K9Q", "");
        assert_eq!(status, 200, "each right key's reservation was given back");
    }
    // The epoch the replicas wrote reads back the same from every script: neither replica
    // keeps finding it changed (a 64-bit epoch once came back altered by Lua's doubles).
    for d in [&a, &b] {
        let failures = redis_failures(d);
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(admin_status(d), "ok");
        assert_eq!(
            redis_failures(d),
            failures,
            "Redis found changed again and again"
        );
    }
}

/// `hosho_limits_redis_failures_total` of a replica.
fn redis_failures(d: &Daemon) -> u64 {
    let metrics = get(&d.admin_url("/metrics")).text();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("hosho_limits_redis_failures_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("redis failures")
}

#[test]
fn a_vault_shipped_beside_the_old_one_and_swapped_by_a_symlink_is_followed() {
    let root = Root::new();
    // The layout of docs/deploy.md: releases/N, and `vault` a symlink to the current one.
    let releases = root.path.join("releases");
    fs::create_dir_all(&releases).expect("mkdir");
    fs::rename(root.path.join("vault"), releases.join("1")).expect("move");
    std::os::unix::fs::symlink(releases.join("1"), root.path.join("vault")).expect("link");
    let d = Daemon::start(&root, &["--limit-address", "100000/day+100000"]);
    let first = root.seq();
    // The next vault is copied in full beside the live one (a half-copied one is never linked).
    copy_dir(&releases.join("1"), &releases.join("2"));
    root.resign_in(&releases.join("2"), |m| m["seq"] = Value::from(first + 1));
    // Requests go on while the symlink is swapped atomically (a new link renamed over it).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let (stop, url) = (std::sync::Arc::clone(&stop), d.url("/api/verify"));
        std::thread::spawn(move || {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = serde_json::json!({"number": "2070004426", "key": "332E1E7K9Q"});
                statuses.push(post(&url, "application/json", &body.to_string()).status);
            }
            statuses
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    std::os::unix::fs::symlink(releases.join("2"), root.path.join("vault.new")).expect("link");
    fs::rename(root.path.join("vault.new"), root.path.join("vault")).expect("swap");
    let started = Instant::now();
    while healthz_seq(&d) != first + 1 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the swap was not followed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses = checker.join().expect("checker");
    assert!(
        statuses.len() > 10 && statuses.iter().all(|s| *s == 200),
        "{statuses:?}"
    );
    // The old release can go once the new one serves.
    fs::remove_dir_all(releases.join("1")).expect("rm");
    assert_eq!(api(&d, "2070004426", "332E1E7K9Q").status, 200);
}

/// `POST /api/verify` through `to` from the loopback address `from`, with extra headers: the
/// status code.
pub(crate) fn api_via(to: &str, from: &str, number: &str, key: &str, headers: &str) -> u16 {
    let mut stream = connect_from(from, to).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = format!("{{\"number\":\"{number}\",\"key\":\"{key}\"}}");
    let request = format!(
        "POST /api/verify HTTP/1.1\r\nHost: hosho.test\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_forgotten_proxy_on_loopback_is_warned_of() {
    let root = Root::new();
    let warning = "信頼するプロキシ（--trusted-proxy）の指定がありません";
    for (args, warned) in [
        (&[][..], true),
        (&["--trusted-proxy", "127.0.0.1"][..], false),
    ] {
        let d = Daemon::start(&root, args);
        d.signal(15);
        let (code, log) = d.wait(Duration::from_secs(10));
        assert_eq!(code, 0, "{log}");
        assert_eq!(log.contains(warning), warned, "{args:?}: {log}");
    }
}

/// The backquoted names in the row of docs/http.md's admin table that starts with `row`.
fn documented_row(row: &str) -> String {
    let http =
        fs::read_to_string(crate::support::repo_root().join("docs/http.md")).expect("http.md");
    http.lines()
        .find(|l| l.starts_with(row))
        .unwrap_or_else(|| panic!("docs/http.md has no row {row}"))
        .to_owned()
}

/// The metric names of an OpenMetrics text: samples by family (a histogram's `_bucket`,
/// `_sum` and `_count` as the histogram).
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let histograms: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" histogram"))
        .collect();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|name| {
            let family = histograms.iter().find(|h| {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name == format!("{h}{s}"))
            });
            family.map_or(name, |h| *h).to_owned()
        })
        .collect()
}

/// The field paths of a JSON value (`kdf_pool.workers`), or of the doc's shorthand for one
/// (`{"status","kdf_pool":{"workers"}}`).
fn json_fields(value: &Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    if let Value::Object(map) = value {
        for (name, inner) in map {
            let path = format!("{prefix}{name}");
            match inner {
                Value::Object(_) => json_fields(inner, &format!("{path}."), out),
                _ => {
                    out.insert(path);
                }
            }
        }
    }
}

fn documented_fields(shorthand: &str) -> std::collections::BTreeSet<String> {
    // `"a","b":{"c"},"d":"x"` → `"a":0,"b":{"c":0},"d":"x"`: JSON with the same fields.
    let mut json = String::new();
    let mut chars = shorthand.chars().peekable();
    let (mut in_string, mut is_value) = (false, false);
    while let Some(c) = chars.next() {
        json.push(c);
        match c {
            ':' if !in_string => is_value = true,
            ',' | '{' if !in_string => is_value = false,
            '"' => {
                in_string = !in_string;
                if !in_string && !is_value && chars.peek() != Some(&':') {
                    json.push_str(":0");
                }
            }
            _ => {}
        }
    }
    let value: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let mut out = std::collections::BTreeSet::new();
    json_fields(&value, "", &mut out);
    out
}

#[test]
fn docs_http_names_every_metric_and_health_field_of_the_admin_listener() {
    let redis = Redis::start(free_port()).in_service();
    let root = Root::new();
    let d = Daemon::replica(&root, &redis, "state", &["--admin-listen", "127.0.0.1:0"]);
    // One attempt of each kind, so that every labelled family has a sample.
    assert_eq!(api(&d, "2070004426", "332E1E7K9Q").status, 200);
    assert_eq!(api(&d, "2070004426", "0000000000").status, 404);
    let text = get(&d.admin_url("/metrics")).text();
    let served = metric_names(&text);
    let row = documented_row("| `GET /metrics` |");
    let mut documented = std::collections::BTreeSet::new();
    for written in row.split('`').filter(|s| s.starts_with("hosho_")) {
        // `name{label}`: the samples carry that label.
        let (name, label) = written.split_once('{').unwrap_or((written, ""));
        if let Some(label) = label.strip_suffix('}') {
            assert!(
                text.contains(&format!("{name}{{{label}=")),
                "{name} has no {label}: {text}"
            );
        }
        documented.insert(name.to_owned());
    }
    assert_eq!(
        documented, served,
        "docs/http.md's metrics and the daemon's"
    );
    let row = documented_row("| `GET /healthz` | `{");
    let shorthand = row.split('`').nth(3).expect("the fields in backquotes");
    let mut served = std::collections::BTreeSet::new();
    json_fields(&get(&d.admin_url("/healthz")).json(), "", &mut served);
    assert_eq!(
        documented_fields(shorthand),
        served,
        "docs/http.md's health fields"
    );
    // The public /healthz, too: status, seq and expires_at, and nothing more.
    let row = documented_row("| `GET /healthz` | 200 |");
    let shorthand = row.split('`').nth(3).expect("the fields in backquotes");
    let mut public = std::collections::BTreeSet::new();
    json_fields(&get(&d.url("/healthz")).json(), "", &mut public);
    assert_eq!(
        documented_fields(shorthand),
        public,
        "docs/http.md's public health fields"
    );
}

#[test]
fn a_client_whose_attempts_are_spent_is_refused_before_its_body_and_the_connection_goes_on() {
    let root = Root::new();
    let d = Daemon::start(&root, &["--limit-address", "1/day+1"]);
    assert_eq!(api(&d, "2070009999", "0000000000").status, 404);
    // Three requests on one connection: two refused at once (their bodies never read by
    // the daemon's code, drained by hyper), then one that needs no body.
    let mut stream = TcpStream::connect(&d.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = r#"{"number":"2070004426","key":"332E1E7K9Q"}"#;
    let post = format!(
        "POST /api/verify HTTP/1.1\r\nHost: hosho.test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let form = "number=2070004426&key=332E1E7K9Q";
    let form_post = format!(
        "POST /verify/ HTTP/1.1\r\nHost: hosho.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    let get = "GET /healthz HTTP/1.1\r\nHost: hosho.test\r\nConnection: close\r\n\r\n";
    stream
        .write_all(format!("{post}{form_post}{get}").as_bytes())
        .expect("write");
    let mut answers = String::new();
    let _ = stream.read_to_string(&mut answers);
    let statuses: Vec<&str> = answers
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &answers[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["429", "429", "200"], "{answers}");
    assert!(answers.contains("\"error\":\"rate_limited\""), "{answers}");
    // Counted like any refusal: the minute's tally, written out at shutdown.
    d.signal(15);
    let (code, log) = d.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "{log}");
    let audit = fs::read_to_string(root.path.join("state/audit.jsonl")).unwrap_or_default();
    let tally = audit
        .lines()
        .find(|l| l.contains("\"outcome\":\"rate_limited_address\""));
    assert!(tally.is_some_and(|l| l.contains("\"count\":2")), "{audit}");
}

#[test]
fn the_demo_offers_a_certificate_that_is_valid_today_to_try() {
    let site = crate::support::SiteDir::demo();
    let d = Daemon::launch(&site.root, &[]);
    let offer = d
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("お試しください: 保証契約番号 "))
        .expect("a number and key to try");
    let (number, key) = offer.split_once(" ／ 認証キー ").expect("number ／ key");
    let found = api(&d, number, key);
    assert_eq!(found.status, 200, "{}", found.text());
    let json = found.json();
    assert_eq!(json["status"], "valid", "{json}");
    assert_eq!(json["certificate"]["period_ended"], false, "{json}");
    // And it stays valid for years, so the demo does not turn red with the calendar.
    let to = json["certificate"]["current"]["period"]["to"]
        .as_str()
        .unwrap_or_default();
    assert!(to >= "2030-01-01", "{to}");
    // A multi-year contract: the page shows 総額 and 対象額, as the PDF does.
    let page = form(&d, number, key);
    assert_eq!(page.status, 200);
    let html = page.text();
    for row in [
        "<th scope=\"row\">請負金額（総額）</th><td class=\"amount\">330,000,000円</td>",
        "<th scope=\"row\">請負金額（対象額）</th><td class=\"amount\">120,000,000円</td>",
    ] {
        assert!(html.contains(row), "{row}\n{html}");
    }
}
