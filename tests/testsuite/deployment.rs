//! The deployment of docs/deploy.md, run as written: the nginx files of dist/nginx/ (only ports and paths
//! substituted) in Debian's nginx with TLS, two replicas sharing Redis and a link key, the
//! spoofing it must defeat, the PDF links, the form post on a port other than 443, and the
//! rolling restart under load.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::daemon::{connect_from, free_port, secret_file, wait_for_port, Daemon, Redis, Root};
use crate::support::repo_root;

/// The name the nginx site of dist/nginx/ serves, and its certificate's.
const SERVER_NAME: &str = "denshi-hosho.example.jp";

/// The nginx files of `dist/nginx/` (installed under /usr/share/doc/hosho/examples/nginx/,
/// docs/deploy.md), by name, in name order.
fn documented_nginx_files() -> Vec<(String, String)> {
    let dir = repo_root().join("dist/nginx");
    let mut files: Vec<(String, String)> = fs::read_dir(&dir)
        .expect("dist/nginx")
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, fs::read_to_string(&path).expect("an nginx file"))
        })
        .collect();
    files.sort();
    files
}

/// Replaces `from` (which must be there) by `to`.
fn substitute(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "dist/nginx/ no longer has `{from}`");
    text.replace(from, to)
}

/// Debian's nginx with the configuration of dist/nginx/ (docs/deploy.md), TLS with a certificate made for the
/// test, on a loopback port; stopped when dropped.
pub(crate) struct DeployedNginx {
    child: Child,
    pub(crate) port: u16,
    tls: Arc<rustls::ClientConfig>,
    dir: tempfile::TempDir,
}

impl DeployedNginx {
    /// Proxies to the two `replicas` and serves `site` as the public site.
    pub(crate) fn start(replicas: [&str; 2], site: &Path) -> DeployedNginx {
        DeployedNginx::with_site("hosho", replicas, Some(site))
    }

    /// A platform's nginx (`sites-enabled/hosho-platform`): everything to the two `replicas`.
    pub(crate) fn platform(replicas: [&str; 2]) -> DeployedNginx {
        DeployedNginx::with_site("hosho-platform", replicas, None)
    }

    /// `dist/nginx/<site_file>` as `sites-enabled/`, proxying to `replicas`, serving `site` when
    /// it has a public site.
    fn with_site(site_file: &str, replicas: [&str; 2], site: Option<&Path>) -> DeployedNginx {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let tls = write_certificate(dir.path());
        let here = |name: &str| dir.path().join(name).display().to_string();
        let mut found = false;
        for (name, text) in documented_nginx_files() {
            let text = match name == site_file {
                true => {
                    found = true;
                    site_config(&text, port, replicas, site, &here)
                }
                false => text,
            };
            fs::write(dir.path().join(name), text).expect("write");
        }
        assert!(found, "dist/nginx/ has no {site_file}");
        let main = main_config(dir.path(), site_file);
        fs::write(dir.path().join("nginx.conf"), main).expect("nginx.conf");
        let check = nginx()
            .arg("-t")
            .args(prefix(dir.path()))
            .output()
            .expect("nginx -t");
        assert!(
            check.status.success(),
            "nginx refuses dist/nginx/: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = nginx()
            .args(["-g", "daemon off;"])
            .args(prefix(dir.path()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (scripts/test installs it)");
        wait_for_port(port, "nginx");
        DeployedNginx {
            child,
            port,
            tls,
            dir,
        }
    }

    /// What nginx logged, for a failing assertion.
    pub(crate) fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// One HTTPS request from the loopback address `from`, `Connection: close`.
    pub(crate) fn request(&self, from: &str, head: &str, body: &str) -> Answer {
        let tcp = connect_from(from, &format!("127.0.0.1:{}", self.port)).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let name = rustls::pki_types::ServerName::try_from(SERVER_NAME).expect("name");
        let client =
            rustls::ClientConnection::new(Arc::clone(&self.tls), name).expect("tls client");
        let mut stream = rustls::StreamOwned::new(client, tcp);
        let request = format!(
            "{head}\r\nHost: {SERVER_NAME}:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        );
        stream.write_all(request.as_bytes()).expect("write");
        let mut bytes = Vec::new();
        // nginx may close without close_notify after the answer; what came before counts.
        let _ = stream.read_to_end(&mut bytes);
        Answer::parse(&bytes)
    }

    /// `POST /api/verify` from `from` with extra header lines: the answer.
    pub(crate) fn api(&self, from: &str, number: &str, key: &str, headers: &str) -> Answer {
        let body = serde_json::json!({"number": number, "key": key}).to_string();
        let head = format!("POST /api/verify HTTP/1.1\r\n{headers}Content-Type: application/json");
        self.request(from, &head, &body)
    }

    pub(crate) fn get(&self, from: &str, path: &str) -> Answer {
        self.request(from, &format!("GET {path} HTTP/1.1"), "")
    }
}

impl Drop for DeployedNginx {
    fn drop(&mut self) {
        // SIGTERM, so the master stops its workers too (SIGKILL would leave them running).
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx() -> Command {
    let path = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("nginx");
    let mut command = Command::new(path);
    command.args(["-e", "stderr"]);
    command
}

fn prefix(dir: &Path) -> [std::ffi::OsString; 4] {
    [
        "-p".into(),
        dir.into(),
        "-c".into(),
        dir.join("nginx.conf").into(),
    ]
}

/// The site file of dist/nginx/ with this test's ports, replicas and paths.
fn site_config(
    block: &str,
    port: u16,
    replicas: [&str; 2],
    site: Option<&Path>,
    here: &dyn Fn(&str) -> String,
) -> String {
    let live = format!("/etc/letsencrypt/live/{SERVER_NAME}");
    let mut text = substitute(
        block,
        "server 127.0.0.1:8080 ",
        &format!("server {} ", replicas[0]),
    );
    text = substitute(
        &text,
        "server 10.0.0.12:8080 ",
        &format!("server {} ", replicas[1]),
    );
    text = substitute(&text, "listen 443 ", &format!("listen 127.0.0.1:{port} "));
    text = substitute(&text, "listen [::]:443 ", &format!("listen [::1]:{port} "));
    text = substitute(&text, &format!("{live}/fullchain.pem"), &here("cert.pem"));
    text = substitute(&text, &format!("{live}/privkey.pem"), &here("key.pem"));
    text = substitute(
        &text,
        "/etc/nginx/hosho-proxy.conf",
        &here("hosho-proxy.conf"),
    );
    let Some(site) = site else {
        return text;
    };
    let headers = "/etc/nginx/hosho-site-headers.conf";
    text = substitute(&text, headers, &here("hosho-site-headers.conf"));
    substitute(&text, "/srv/www/site-out", &site.display().to_string())
}

/// The main configuration: Debian's nginx.conf reduced to what runs unprivileged in a
/// directory of its own, including the site file `site_file` of dist/nginx/.
fn main_config(dir: &Path, site_file: &str) -> String {
    let d = dir.display();
    format!(
        "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n sendfile on;\n tcp_nopush on;\n types_hash_max_size 2048;\n\
         include /etc/nginx/mime.types;\n default_type application/octet-stream;\n\
         access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
         include {d}/{site_file};\n}}\n"
    )
}

/// A certificate for [`SERVER_NAME`] in `dir` (cert.pem, key.pem), and a client that trusts
/// it alone.
fn write_certificate(dir: &Path) -> Arc<rustls::ClientConfig> {
    let made = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()]).expect("cert");
    fs::write(dir.join("cert.pem"), made.cert.pem()).expect("cert.pem");
    fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).expect("key.pem");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// An HTTP answer read whole.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    fn parse(bytes: &[u8]) -> Answer {
        let split = bytes.windows(4).position(|w| w == b"\r\n\r\n");
        let (head, body) = match split {
            Some(at) => (&bytes[..at], bytes[at + 4..].to_vec()),
            None => (bytes, Vec::new()),
        };
        let head = String::from_utf8_lossy(head).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Answer { status, head, body }
    }

    /// A header's value (the first of that name).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.head))
    }
}

/// A link key file as deploy.md makes it (64 hex characters, 0400).
pub(crate) fn link_key(dir: &Path) -> PathBuf {
    let path = dir.join("link.key");
    if path.exists() {
        return path;
    }
    secret_file(dir, "link.key", &format!("{}\n", "5a".repeat(32)), 0o400)
}

/// `hosho serve` as deploy.md's unit runs it, on `listen`, with `extra` limits.
fn replica_command(
    root: &Root,
    redis: &Redis,
    state: &str,
    listen: &str,
    extra: &[&str],
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hosho"));
    command
        .args(["serve", "--no-build", "--listen", listen, "--root"])
        .arg(&root.path)
        .arg("--state")
        .arg(root.path.join(state))
        .args([
            "--trusted-proxy",
            "127.0.0.1",
            "--client-header",
            "x-forwarded-for",
        ])
        .args(["--limits", &redis.url(), "--link-key"])
        .arg(link_key(&root.path))
        .args(extra);
    command
}

/// Two replicas of `root` behind the nginx of dist/nginx/.
fn deployment(root: &Root, redis: &Redis, extra: &[&str]) -> (Daemon, Daemon, DeployedNginx) {
    let a = Daemon::spawn(replica_command(
        root,
        redis,
        "state-a",
        "127.0.0.1:0",
        extra,
    ));
    let b = Daemon::spawn(replica_command(
        root,
        redis,
        "state-b",
        "127.0.0.1:0",
        extra,
    ));
    let nginx = DeployedNginx::start([&a.addr, &b.addr], &root.path.join("site-out"));
    (a, b, nginx)
}

#[test]
fn the_documented_nginx_serves_the_site_and_the_daemon_over_tls_with_their_headers() {
    let redis = Redis::start(free_port()).in_service();
    let root = Root::new();
    let (_a, _b, nginx) = deployment(&root, &redis, &[]);
    let home = nginx.get("127.0.0.2", "/");
    assert_eq!(home.status, 200, "{}", nginx.error_log());
    let csp = home
        .header("content-security-policy")
        .expect("the site's CSP");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(
        home.header("strict-transport-security").is_some(),
        "{}",
        home.head
    );
    assert_eq!(home.header("x-content-type-options"), Some("nosniff"));
    let form = nginx.get("127.0.0.2", "/verify/");
    assert_eq!(form.status, 200);
    let csp = form
        .header("content-security-policy")
        .expect("the daemon's CSP");
    assert!(csp.contains("script-src 'none'"), "{csp}");
    assert!(
        form.header("strict-transport-security").is_some(),
        "{}",
        form.head
    );
    let health = nginx.get("127.0.0.2", "/healthz").json();
    assert_eq!(health["status"], "ok");
}

#[test]
fn behind_the_documented_nginx_each_client_has_one_budget_that_no_header_escapes() {
    let redis = Redis::start(free_port()).in_service();
    let root = Root::new();
    let limits = [
        "--limit-address",
        "6/day+6",
        "--limit-failures",
        "4/day+4",
        "--limit-number",
        "100/day+100",
    ];
    let (a, b, nginx) = deployment(&root, &redis, &limits);
    let via =
        |from: &str, key: &str, headers: &str| nginx.api(from, "2070004426", key, headers).status;
    // Wrong keys from one client, spread by nginx over both replicas, spend one budget.
    for _ in 0..4 {
        assert_eq!(via("127.0.0.2", "0000000000", ""), 404);
    }
    assert_eq!(via("127.0.0.2", "0000000000", ""), 429);
    // Spoofing X-Forwarded-For gains the client nothing: nginx appends what it saw.
    assert_eq!(
        via(
            "127.0.0.2",
            "0000000000",
            "X-Forwarded-For: 198.51.100.77\r\n"
        ),
        429
    );
    // Nor does a Forwarded header of its own, fresh every time or naming another client.
    for i in 0..20 {
        let spoof = format!("Forwarded: for=10.9.{i}.1\r\n");
        assert_eq!(via("127.0.0.2", "0000000000", &spoof), 429);
    }
    assert_eq!(
        via("127.0.0.2", "0000000000", "Forwarded: for=127.0.0.3\r\n"),
        429
    );
    // The client it named has its own budgets, and its right key opens the number.
    assert_eq!(via("127.0.0.3", "332E1E7K9Q", ""), 200);
    let audit = ["state-a", "state-b"]
        .map(|s| fs::read_to_string(root.path.join(s).join("audit.jsonl")).unwrap_or_default())
        .concat();
    drop((a, b));
    assert!(
        !audit.contains("\"client\":\"127.0.0.1\""),
        "the proxy is never the client: {audit}"
    );
    assert!(
        !audit.contains("10.9."),
        "a client's own Forwarded is never read: {audit}"
    );
    let blamed = audit
        .lines()
        .filter(|l| l.contains("\"client\":\"127.0.0.3\""));
    assert!(
        blamed.clone().all(|l| l.contains("\"outcome\":\"valid\"")),
        "{audit}"
    );
}

#[test]
fn pdf_links_open_on_every_replica_through_the_documented_round_robin() {
    let redis = Redis::start(free_port()).in_service();
    let root = Root::new();
    let (a, b, nginx) = deployment(&root, &redis, &[]);
    let found = nginx.api("127.0.0.2", "2070004426", "332E1E7K9Q", "");
    assert_eq!(found.status, 200, "{}", found.head);
    let link = found.json()["pdf"].as_str().expect("pdf link").to_owned();
    for _ in 0..20 {
        let pdf = nginx.get("127.0.0.2", &link);
        assert_eq!(pdf.status, 200, "{}\n{}", pdf.head, nginx.error_log());
        assert!(pdf.body.starts_with(b"%PDF"));
    }
    for replica in [&a, &b] {
        let pdf = crate::daemon::get(&replica.url(&link));
        assert_eq!(pdf.status, 200, "{}", replica.addr);
    }
    // A replica with another link key cannot read the link, nor can anyone alter it.
    let other = Daemon::start(&root, &[]);
    assert_eq!(crate::daemon::get(&other.url(&link)).status, 404);
    let altered = format!("{}0", &link[..link.len() - 1]);
    let altered = if altered == link {
        format!("{}1", &link[..link.len() - 1])
    } else {
        altered
    };
    assert_eq!(nginx.get("127.0.0.2", &altered).status, 404);
}

#[test]
fn a_form_post_through_the_proxy_on_a_port_other_than_443_is_accepted() {
    let redis = Redis::start(free_port()).in_service();
    let root = Root::new();
    let (_a, _b, nginx) = deployment(&root, &redis, &[]);
    let post = |origin: &str| {
        let head = format!(
            "POST /verify/ HTTP/1.1\r\nOrigin: {origin}\r\nContent-Type: application/x-www-form-urlencoded"
        );
        nginx
            .request("127.0.0.2", &head, "number=2070004426&key=332E1E7K9Q")
            .status
    };
    assert_eq!(post(&format!("https://{SERVER_NAME}:{}", nginx.port)), 200);
    assert_eq!(post("https://attacker.example"), 403);
    assert_eq!(post(&format!("https://{SERVER_NAME}:1")), 403);
}

#[test]
fn a_rolling_restart_as_documented_answers_every_request_under_load_with_200() {
    let redis = Redis::start(free_port()).in_service();
    let root = Root::new();
    let lenient = ["--limit-address", "1000000/day+1000000"];
    let (a, b, nginx) = deployment(&root, &redis, &lenient);
    let nginx = Arc::new(nginx);
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (2..6)
        .map(|i| {
            let (nginx, stop) = (Arc::clone(&nginx), Arc::clone(&stop));
            std::thread::spawn(move || {
                let from = format!("127.0.0.{i}");
                let mut statuses = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    statuses.push(nginx.api(&from, "2070004426", "332E1E7K9Q", "").status);
                }
                statuses
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // deploy.md: restart one replica, wait until it answers /healthz and 6 s more (nginx's
    // fail_timeout), then the next.
    let mut replicas = Vec::new();
    for (old, state) in [(a, "state-a"), (b, "state-b")] {
        let listen = old.addr.clone();
        old.signal(15);
        let (code, log) = old.wait(Duration::from_secs(40));
        assert_eq!(code, 0, "{log}");
        let new = Daemon::spawn(replica_command(&root, &redis, state, &listen, &lenient));
        assert_eq!(crate::daemon::get(&new.url("/healthz")).status, 200);
        std::thread::sleep(Duration::from_secs(6));
        replicas.push(new);
    }
    stop.store(true, Ordering::Relaxed);
    let statuses: Vec<u16> = load
        .into_iter()
        .flat_map(|t| t.join().expect("load"))
        .collect();
    let refused: Vec<_> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(statuses.len() > 50, "too little load: {}", statuses.len());
    assert!(
        refused.is_empty(),
        "{} of {}: {refused:?}\n{}",
        refused.len(),
        statuses.len(),
        nginx.error_log()
    );
}
