//! `cargo bench --bench daemon`: the verification daemon under load, all in one run on this
//! machine, with wrk (Debian's `wrk`) as the load generator on 127.0.0.1.
//!
//! 1. A hyper hello-world built here, against the daemon's rate-limited refusals
//!    (`POST /api/verify` once the per-address budget is spent) and `GET /healthz`:
//!    requests per second and p50/p99 at 64 connections.
//! 2. Verification with the default KDF (100,000 PBKDF2 iterations): throughput and p99,
//!    against the bare KDF on as many threads as the daemon's pool.
//! 3. A signed manifest of 1,000,000 entries: time to start (read, check the signature,
//!    index, build the Merkle tree), resident memory, and the time to hot-reload it while
//!    serving; then, in process, what a 確認記録 costs beyond the check, and checking one.
//!
//! 4. A platform of three guarantors of 1,000,000 entries and the demo's (`--issuers`,
//!    `daemon/platform.rs`): start and memory; refusals and verification against the demo
//!    alone; an answer's p99 while another guarantor's manifest reloads.
//!
//! Settings: HOSHO_BENCH_SECONDS (default 10) per wrk run; HOSHO_BENCH_ENTRIES (default
//! 1000000) for parts 3 and 4; HOSHO_BENCH_ONLY_MANIFEST (parts 3 and 4),
//! HOSHO_BENCH_ONLY_PLATFORM (part 4).

mod common;
#[path = "daemon/platform.rs"]
mod platform;

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hosho::common::config::DEFAULT_KDF_ITERATIONS;
use hosho::common::hex::sha256_hex;
use hosho::trust::manifest::{self, Entry, Header, Kind, Manifest, Status};

fn seconds() -> u64 {
    std::env::var("HOSHO_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

/// What wrk measured.
#[derive(Debug, Clone)]
struct Load {
    rps: f64,
    p50: String,
    p99: String,
    non_2xx: u64,
    requests: u64,
}

fn wrk(url: &str, connections: u32, script: Option<&Path>) -> Load {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "--latency"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", seconds()));
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("wrk: install it with `apt-get install wrk`");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |prefix: &str| -> String {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_owned()))
            .unwrap_or_default()
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Load {
        rps: field("Requests/sec:").parse().unwrap_or(0.0),
        p50: field("50%"),
        p99: field("99%"),
        non_2xx: field("Non-2xx or 3xx responses:").parse().unwrap_or(0),
        requests,
    }
}

/// A hyper 1.x hello-world on the same runtime settings as the daemon.
fn hello_world() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_req| async {
                        Ok::<_, Infallible>(hyper::Response::new(http_body_util::Full::new(
                            hyper::body::Bytes::from_static(b"Hello, World!"),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    rx.recv().expect("hello-world address")
}

/// Limits no measurement reaches, and a KDF queue that holds every connection's request.
const OPEN_LIMITS: [&str; 8] = [
    "--limit-address",
    "1000000/s+1000000",
    "--limit-number",
    "1000000/s+1000000",
    "--limit-failures",
    "1000000/s+1000000",
    "--kdf-queue",
    "256",
];

/// `hosho serve --no-build`, with its address once it listens.
struct Daemon {
    child: Child,
    addr: String,
    started_in: Duration,
}

impl Daemon {
    fn start(root: &Path, args: &[&str]) -> Daemon {
        let started = Instant::now();
        let mut child = Command::new(common::hosho_bin())
            .args(["serve", "--no-build", "--listen", "127.0.0.1:0", "--root"])
            .arg(root)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("HOSHO_BENCH_LOG").unwrap_or_else(|_| "hosho=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("hosho serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("hosho serve exited")
                .expect("stdout line");
            if let Some(rest) = line.strip_prefix("確認サービスを起動しました: http://")
            {
                break rest.split('/').next().expect("address").to_owned();
            }
        };
        let started_in = started.elapsed();
        std::thread::spawn(move || for _ in lines {});
        Daemon {
            child,
            addr,
            started_in,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// (VmRSS, VmHWM) in MiB.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let kib = |key: &str| -> f64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
    }

    fn hangup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -HUP");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lua(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("post.lua");
    std::fs::write(
        &path,
        format!(
            "wrk.method = \"POST\"\nwrk.body = '{body}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
        ),
    )
    .expect("write lua");
    path
}

fn demo_root(work: &Path) -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = work.join("demo");
    std::fs::create_dir_all(&root).expect("mkdir");
    for dir in ["content", "data", "templates", "assets"] {
        let status = Command::new("cp")
            .arg("-r")
            .arg(repo.join(dir))
            .arg(&root)
            .status()
            .expect("cp");
        assert!(status.success());
    }
    std::fs::copy(repo.join("hosho.toml"), root.join("hosho.toml")).expect("copy");
    let status = Command::new(common::hosho_bin())
        .args(["build", "--root"])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("hosho build");
    assert!(status.success(), "demo build");
    root
}

/// CPU seconds (user + system) a process has used so far (`/proc/PID/stat`, USER_HZ 100).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The bare KDF on `workers` threads: verifications per second and CPU seconds per one.
fn bare_kdf(workers: usize, iterations: u32) -> (f64, f64) {
    let salt = [7u8; manifest::SALT_LEN];
    let verifier = manifest::make_verifier("332E1E7K9Q", &salt, iterations);
    let per_worker = 100usize;
    let cpu_before = cpu_seconds("self");
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                for _ in 0..per_worker {
                    let ok = ring::pbkdf2::verify(
                        ring::pbkdf2::PBKDF2_HMAC_SHA256,
                        std::num::NonZeroU32::new(iterations).expect("iterations"),
                        &salt,
                        b"332E1E7K9Q",
                        &verifier,
                    );
                    assert!(ok.is_ok());
                }
            });
        }
    });
    let n = (workers * per_worker) as f64;
    (
        n / started.elapsed().as_secs_f64(),
        (cpu_seconds("self") - cpu_before) / n,
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A signed manifest of `n` synthetic entries in `vault`, and its public key file.
fn big_manifest(work: &Path, n: usize, seq: u64) -> (PathBuf, PathBuf) {
    let vault = work.join("big-vault");
    let public = signed_manifest(&vault, &work.join("big-keys"), n, seq, 1_000_000_000);
    (vault, public)
}

/// Signs a manifest of `n` synthetic entries numbered from `first` into `vault` with the
/// key in `keys_dir` (made when missing); its public key file.
fn signed_manifest(vault: &Path, keys_dir: &Path, n: usize, seq: u64, first: u64) -> PathBuf {
    if !keys_dir.join("signing.pub").exists() {
        hosho::trust::keys::generate(keys_dir).expect("keys");
    }
    let keys = hosho::trust::keys::load(keys_dir).expect("load keys");
    std::fs::create_dir_all(vault).expect("mkdir");
    let hex = |i: usize, tag: u8, len: usize| {
        let mut seed = i.to_le_bytes().to_vec();
        seed.push(tag);
        let d = sha256_hex(&seed);
        d[..len * 2].to_owned()
    };
    let entries = (0..n)
        .map(|i| Entry {
            number: format!("{}", first + i as u64),
            kind: Kind::Advance,
            status: Status::Valid,
            pdf_sha256: hex(i, 1, 32),
            record_sha256: hex(i, 2, 32),
            salt: hex(i, 3, 16),
            verifier: hex(i, 4, 32),
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let header = Header::new(
        seq,
        now,
        now + 35 * 86_400,
        &keys.public.id,
        DEFAULT_KDF_ITERATIONS,
    );
    let signed = Manifest::new(header, entries)
        .signed(&keys.key_pair, &keys.public.id)
        .expect("sign");
    let (bytes, sig) = (signed.manifest, signed.signature);
    // Written aside and renamed, as a deployment would.
    let tmp = vault.join(".manifest.json.new");
    std::fs::write(&tmp, &bytes).expect("write");
    std::fs::rename(&tmp, vault.join("manifest.json")).expect("rename");
    std::fs::write(vault.join("manifest.json.sig"), sig).expect("write sig");
    keys_dir.join("signing.pub")
}

fn healthz_seq(d: &Daemon) -> Option<u64> {
    let text = ureq::get(&d.url("/healthz"))
        .call()
        .ok()?
        .body_mut()
        .read_to_string()
        .ok()?;
    serde_json::from_str::<serde_json::Value>(&text).ok()?["seq"].as_u64()
}

fn main() {
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is missing: apt-get install wrk (scripts/bench installs it)");
        std::process::exit(1);
    }
    // HOSHO_BENCH_DIR keeps the generated files (to look at them afterwards).
    let temporary = tempfile::tempdir().expect("tempdir");
    let work = std::env::var_os("HOSHO_BENCH_DIR")
        .map_or_else(|| temporary.path().to_owned(), PathBuf::from);
    std::fs::create_dir_all(&work).expect("work directory");
    let root = demo_root(&work);
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    println!(
        "# hosho daemon bench: {cores} cores, wrk -t1, {} s per run",
        seconds()
    );

    if std::env::var_os("HOSHO_BENCH_ONLY_PLATFORM").is_some() {
        platform::figures(&root, &work);
        return;
    }
    let only_manifest = std::env::var_os("HOSHO_BENCH_ONLY_MANIFEST").is_some();
    // 1. Refusals and /healthz against hello-world, 64 connections.
    if !only_manifest {
        load_figures(&root, &work, cores);
    }
    manifest_figures(&work);
    receipt_figures(&root, &work);
    if !only_manifest {
        platform::figures(&root, &work);
    }
}

/// A `redis-server` on a free loopback port, for the shared limits; `None` without one.
struct RedisServer(std::process::Child, u16);

impl RedisServer {
    fn start() -> Option<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                // Working in /tmp: never loading a dump.rdb left in the repository.
                "--dir",
                "/tmp",
                "--dbfilename",
                "hosho-bench-redis.rdb",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(RedisServer(child, port));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn print_row(name: &str, load: &Load, hello: &Load) {
    println!(
        "| {name} | {:.0} | {} | {} | {:.0}% |",
        load.rps,
        load.p50,
        load.p99,
        100.0 * load.rps / hello.rps
    );
}

fn load_figures(root: &Path, work: &Path, cores: usize) {
    let hello = hello_world();
    let limited = Daemon::start(root, &["--limit-address", "1/day+1"]);
    let redis = RedisServer::start();
    let url = redis
        .as_ref()
        .map(|r| format!("redis://127.0.0.1:{}/", r.1));
    let shared = url
        .as_ref()
        .map(|url| Daemon::start(root, &["--limit-address", "1/day+1", "--limits", url]));
    // Refused by the failure budget, which only Redis can tell: a round trip each.
    let by_failures = url.as_ref().map(|url| {
        let generous = "1000000/s+1000000";
        let args = ["--limit-address", generous, "--limit-failures", "1/day+1"];
        Daemon::start(root, &[&args[..], &["--limits", url]].concat())
    });
    let refusal_script = lua(work, r#"{"number":"2070009999","key":"0000000000"}"#);
    // Three rounds in turn, medians reported: this machine's throughput drifts between runs.
    let mut rounds: [Vec<Load>; 5] = Default::default();
    for _ in 0..3 {
        rounds[0].push(wrk(&format!("http://{hello}/"), 64, None));
        rounds[1].push(wrk(&limited.url("/api/verify"), 64, Some(&refusal_script)));
        rounds[2].push(wrk(&limited.url("/healthz"), 64, None));
        if let (Some(shared), Some(by_failures)) = (&shared, &by_failures) {
            rounds[3].push(wrk(&shared.url("/api/verify"), 64, Some(&refusal_script)));
            let url = by_failures.url("/api/verify");
            rounds[4].push(wrk(&url, 64, Some(&refusal_script)));
        }
    }
    drop((limited, shared, by_failures, redis));
    let [h, r, z, s, f] = rounds.map(|mut runs| {
        runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        (!runs.is_empty()).then(|| runs.swap_remove(runs.len() / 2))
    });
    let (h, r, z) = (h.expect("hello"), r.expect("refusals"), z.expect("healthz"));
    println!("\n## 64 connections (medians of 3 rounds)");
    println!("| server | requests/s | p50 | p99 | vs hello-world |");
    println!("|---|---:|---:|---:|---:|");
    print_row("hyper hello-world", &h, &h);
    print_row(
        "hosho: rate-limited POST /api/verify (429), limits in memory",
        &r,
        &h,
    );
    if let (Some(s), Some(f)) = (&s, &f) {
        print_row("hosho: the same, limits shared in Redis", s, &h);
        print_row(
            "hosho: refused by the failure budget in Redis (a round trip each)",
            f,
            &h,
        );
    }
    print_row("hosho: GET /healthz", &z, &h);
    println!(
        "(refusals: {} of {} answers were 429)",
        r.non_2xx, r.requests
    );
    if s.is_none() {
        println!("(redis-server is missing: apt-get install redis-server for the shared figure)");
    }

    // 2. Verification with the default KDF, against the bare KDF.
    let open = Daemon::start(root, &OPEN_LIMITS);
    let valid_script = lua(work, r#"{"number":"2070004426","key":"332E1E7K9Q"}"#);
    // Three rounds, bare KDF and daemon in turn, so the machine's drift hits both alike.
    // Throughput is wall-clock; CPU per verification (the daemon's own, from /proc) is
    // immune to other load on the machine.
    let pid = open.child.id().to_string();
    let (mut bare_rates, mut bare_cpus, mut rates, mut cpus) = (vec![], vec![], vec![], vec![]);
    let mut last = None;
    for _ in 0..3 {
        let (rate, cpu) = bare_kdf(cores, DEFAULT_KDF_ITERATIONS);
        bare_rates.push(rate);
        bare_cpus.push(cpu);
        let cpu_before = cpu_seconds(&pid);
        let v = wrk(&open.url("/api/verify"), 8, Some(&valid_script));
        let served = v.requests.max(1) as f64;
        cpus.push((cpu_seconds(&pid) - cpu_before) / served);
        rates.push(v.rps);
        last = Some(v);
    }
    drop(open);
    let v = last.expect("three rounds");
    let (bare, bare_cpu, rate, cpu) = (
        median(bare_rates),
        median(bare_cpus),
        median(rates),
        median(cpus),
    );
    println!("\n## Verification (100,000 PBKDF2 iterations, {cores} KDF workers, 8 connections; medians of 3 rounds)");
    println!("| | verifications/s | CPU per verification | p50 | p99 |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| bare KDF (`ring::pbkdf2::verify`), {cores} threads | {bare:.1} | {:.2} ms | | |",
        bare_cpu * 1000.0
    );
    println!(
        "| hosho POST /api/verify | {rate:.1} | {:.2} ms | {} | {} |",
        cpu * 1000.0,
        v.p50,
        v.p99
    );
    println!(
        "daemon overhead over the bare KDF: {:.1}% in CPU per verification, {:.1}% in throughput (non-2xx answers: {})",
        100.0 * (cpu / bare_cpu - 1.0),
        100.0 * (1.0 - rate / bare),
        v.non_2xx
    );
}

/// The cost of a 確認記録 beyond the check, in process on the big manifest: the proof, the
/// service's signature, the JSON and the page's Base64; and of checking one.
fn receipt_figures(root: &Path, work: &Path) {
    use base64::Engine as _;
    use hosho::trust::receipt::{self, Receipt};
    let vault = work.join("big-vault");
    let public = hosho::trust::keys::load_public(&work.join("big-keys/signing.pub")).expect("key");
    let limits = manifest::Limits::default();
    let catalog =
        manifest::read_verified(&vault, std::slice::from_ref(&public), limits).expect("catalog");
    let keys = work.join("service-keys");
    if !keys.join("service.pk8").exists() {
        hosho::trust::keys::generate_service(&keys).expect("service key");
    }
    let service = hosho::trust::keys::load_service(&keys.join("service.pk8")).expect("service");
    let record = std::fs::read(root.join("vault/records/2070004426.json")).expect("record");
    let n = catalog.len();
    let numbers: Vec<String> = (0..1000)
        .map(|i| format!("{}", 1_000_000_000 + (i * 7919) % n))
        .collect();
    let now = catalog.header().issued_at + 60;
    let mut make = Vec::new();
    for number in &numbers {
        let started = Instant::now();
        let inclusion = catalog.inclusion(number).expect("in the tree");
        let made = Receipt::make(
            &inclusion,
            &record,
            now,
            "https://example.jp/verify/",
            (&service.key_pair, &service.public),
        )
        .expect("receipt");
        let bytes = made.to_bytes().expect("json");
        let page = base64::engine::general_purpose::STANDARD.encode(&bytes);
        make.push(started.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(page);
    }
    // Checking one: a receipt of the demo, whose record is its leaf's.
    let demo_key = hosho::trust::keys::load_public(&root.join("keys/signing.pub")).expect("key");
    let demo =
        manifest::read_verified(&root.join("vault"), std::slice::from_ref(&demo_key), limits)
            .expect("the demo's manifest");
    let inclusion = demo.inclusion("2070004426").expect("in the tree");
    let service_keys = (&service.key_pair, &service.public);
    let at = demo.header().issued_at + 60;
    let made = Receipt::make(
        &inclusion,
        &record,
        at,
        "https://example.jp/verify/",
        service_keys,
    )
    .expect("receipt");
    let bytes = made.to_bytes().expect("json");
    let check: Vec<f64> = (0..1000)
        .map(|_| {
            let started = Instant::now();
            let trusted = (
                std::slice::from_ref(&demo_key),
                std::slice::from_ref(&service.public),
            );
            receipt::verify(&bytes, trusted.0, trusted.1).expect("valid");
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    println!("\n## 確認記録 (receipts), {n}-entry manifest, 1,000 receipts");
    println!(
        "make (proof, Ed25519 signature, JSON, Base64 for the page): median {:.0} µs, max {:.0} µs",
        median(make.clone()),
        make.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "verify (both signatures, hashes, proof; a demo receipt): median {:.0} µs",
        median(check)
    );
}

/// 3. A million entries: start, memory, hot reload while serving.
fn manifest_figures(work: &Path) {
    let n: usize = std::env::var("HOSHO_BENCH_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let (vault, public) = big_manifest(work, n, 1);
    let size = std::fs::metadata(vault.join("manifest.json")).map_or(0, |m| m.len());
    common::settle();
    let state = work.join("big-state");
    let args = [
        "--vault",
        vault.to_str().expect("utf-8"),
        "--public-key",
        public.to_str().expect("utf-8"),
        "--state",
        state.to_str().expect("utf-8"),
    ];
    // Three starts, the median reported; the last daemon stays up for the reload.
    let mut starts = Vec::new();
    let mut big = Daemon::start(work, &args);
    starts.push(big.started_in.as_secs_f64());
    for _ in 0..2 {
        drop(big);
        big = Daemon::start(work, &args);
        starts.push(big.started_in.as_secs_f64());
    }
    let (rss, hwm) = big.memory();
    println!(
        "\n## A signed manifest of {n} entries ({:.0} MiB)",
        size as f64 / 1048576.0
    );
    println!(
        "start (spawn to listening: read, signature, index): {:.2} s (median of {:.2?} s)",
        median(starts.clone()),
        starts
    );
    println!("resident memory after start: {rss:.0} MiB (peak {hwm:.0} MiB)");
    big_manifest(work, n, 2);
    let reload_started = Instant::now();
    big.hangup();
    let mut answered = 0u32;
    let mut slowest = Duration::ZERO;
    loop {
        let asked = Instant::now();
        let seq = healthz_seq(&big);
        slowest = slowest.max(asked.elapsed());
        answered += 1;
        if seq == Some(2) {
            break;
        }
        assert!(
            reload_started.elapsed() < Duration::from_secs(60),
            "no reload"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let reload_took = reload_started.elapsed();
    println!(
        "hot reload (SIGHUP to serving the new manifest): {:.2} s; /healthz answered {answered} times meanwhile, slowest {:.1} ms",
        reload_took.as_secs_f64(),
        slowest.as_secs_f64() * 1000.0
    );
    // The old manifest is freed as the swap completes; read memory once that settled.
    std::thread::sleep(Duration::from_secs(1));
    let (rss, hwm) = big.memory();
    println!(
        "resident memory after reload: {rss:.0} MiB (peak {hwm:.0} MiB, while the old and the new manifest were both held)"
    );
}
