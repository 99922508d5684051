//! Part 4, a platform (`hosho serve --issuers`): three guarantors of HOSHO_BENCH_ENTRIES
//! (default 1,000,000) synthetic entries each, and the demo's vault as a fourth with its 12
//! real certificates.
//!
//! - Start (spawn to listening) and resident memory, median of 3 starts.
//! - Rate-limited refusals (64 connections) and verifications (8 connections) on the
//!   platform against the demo served alone, alternating, medians of 3 rounds.
//! - The p99 of the demo guarantor's verifications while another guarantor's manifest is
//!   shipped and reloaded again and again, against the p99 without reloads.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{lua, median, seconds, signed_manifest, wrk, Daemon, Load};

/// (id, number prefix, first number) of the three large guarantors.
const LARGE: [(&str, &str, u64); 3] = [
    ("ichi", "1", 1_000_000_000),
    ("san", "3", 3_000_000_000),
    ("go", "5", 5_000_000_000),
];

fn entries() -> usize {
    std::env::var("HOSHO_BENCH_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// Milliseconds of a wrk latency (`812.00us`, `12.34ms`, `1.02s`).
fn millis(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

/// The platform's directory: each large guarantor's `releases/<seq>` with its `vault` link,
/// the demo's vault and key, and `issuers.toml`.
fn write_platform(demo: &Path, work: &Path, n: usize) -> PathBuf {
    let dir = work.join("platform");
    let mut toml = String::new();
    for (id, prefix, first) in LARGE {
        let release = dir.join(id).join("releases/1");
        let keys = dir.join(id).join("keys");
        if !release.join("manifest.json").exists() {
            signed_manifest(&release, &keys, n, 1, first);
        }
        link(&dir.join(id), &release);
        toml.push_str(&issuer(id, prefix, &dir.join(id).join("vault"), &keys));
    }
    toml.push_str(&issuer(
        "demo",
        "2",
        &demo.join("vault"),
        &demo.join("keys"),
    ));
    let receipt_key = dir.join("receipt-key.pk8");
    if !receipt_key.exists() {
        std::fs::copy(demo.join("keys/service.pk8"), &receipt_key).expect("service key");
    }
    std::fs::write(dir.join("issuers.toml"), toml).expect("issuers.toml");
    dir
}

fn issuer(id: &str, prefix: &str, vault: &Path, keys: &Path) -> String {
    format!(
        "[[issuer]]\nid = \"{id}\"\nname = \"{id}（ベンチマーク）\"\nvault = \"{}\"\n\
         public_keys = [\"{}\"]\nnumbers = [\"{prefix}\"]\n\
         contact = \"https://{id}.example.jp/\"\nkeys_page = \"https://{id}.example.jp/keys/\"\n\n",
        vault.display(),
        keys.join("signing.pub").display()
    )
}

/// Points `dir/vault` at `release`, atomically (ln -sfn, mv -T).
fn link(dir: &Path, release: &Path) {
    let new = dir.join("vault.new");
    let _ = std::fs::remove_file(&new);
    std::os::unix::fs::symlink(release, &new).expect("symlink");
    std::fs::rename(&new, dir.join("vault")).expect("rename");
}

/// The platform's daemon with `extra` arguments, signing receipts with the demo's service
/// key as the demo alone does.
fn platform_daemon(dir: &Path, extra: &[&str]) -> Daemon {
    let file = dir.join("issuers.toml");
    let state = dir.join("state");
    let receipt_key = dir.join("receipt-key.pk8");
    let mut args = vec![
        "--issuers",
        file.to_str().expect("utf-8"),
        "--state",
        state.to_str().expect("utf-8"),
        "--receipt-key",
        receipt_key.to_str().expect("utf-8"),
    ];
    args.extend(extra);
    Daemon::start(dir, &args)
}

pub(super) fn figures(demo: &Path, work: &Path) {
    let n = entries();
    let dir = write_platform(demo, work, n);
    // A fresh state: a kept one (HOSHO_BENCH_DIR) remembers the releases of the last run.
    let _ = std::fs::remove_dir_all(dir.join("state"));
    super::common::settle();
    start_and_memory(&dir, n);
    let limited = ["--limit-address", "1/day+1"];
    let open = super::OPEN_LIMITS;
    throughput(demo, &dir, work, &limited, &open);
    refusal_times(&dir, &open, n);
    reload_isolation(&dir, work, &open, n);
}

/// How long a refusal takes, one request at a time, by where the number falls: a wrong key
/// for a number of the demo guarantor and of a large one, an unknown number in a large
/// guarantor's space, a number in no guarantor's space. Medians and 90th percentiles of 200
/// each, the four kinds interleaved.
fn refusal_times(dir: &Path, open: &[&str], n: usize) {
    let d = platform_daemon(dir, open);
    let large = format!("a wrong key, a number of `ichi` ({n} entries)");
    let kinds = [
        ("a wrong key, the demo guarantor's number", "2070004426"),
        (large.as_str(), "1000000007"),
        ("an unknown number in `ichi`'s space", "1999999999"),
        ("a number in no guarantor's space", "9000000001"),
    ];
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut bodies: Vec<std::collections::BTreeSet<String>> = vec![Default::default(); kinds.len()];
    for _ in 0..200 {
        for (i, (_, number)) in kinds.iter().enumerate() {
            let body = format!(r#"{{"number":"{number}","key":"0000000000"}}"#);
            let started = Instant::now();
            let mut answer = agent
                .post(&d.url("/api/verify"))
                .header("content-type", "application/json")
                .send(body.as_bytes())
                .expect("answer");
            times[i].push(started.elapsed().as_secs_f64() * 1000.0);
            let text = answer.body_mut().read_to_string().unwrap_or_default();
            bodies[i].insert(format!("{} {text}", answer.status()));
        }
    }
    println!("\n## One refusal, wherever the number falls (one request at a time, 200 each, interleaved)");
    println!("| the number | median | 90th percentile | answer |");
    println!("|---|---:|---:|---|");
    for ((what, _), (t, b)) in kinds.iter().zip(times.into_iter().zip(bodies)) {
        let mut sorted = t.clone();
        sorted.sort_by(f64::total_cmp);
        let p90 = sorted[sorted.len() * 9 / 10];
        let answers: Vec<String> = b
            .into_iter()
            .map(|a| a.trim().replace('|', "\\|"))
            .collect();
        println!(
            "| {what} | {:.2} ms | {p90:.2} ms | `{}` |",
            median(t),
            answers.join("`, `")
        );
    }
}

fn start_and_memory(dir: &Path, n: usize) {
    let mut starts = Vec::new();
    let mut d = platform_daemon(dir, &[]);
    starts.push(d.started_in.as_secs_f64());
    for _ in 0..2 {
        drop(d);
        d = platform_daemon(dir, &[]);
        starts.push(d.started_in.as_secs_f64());
    }
    let (rss, hwm) = d.memory();
    println!(
        "\n## A platform: three guarantors of {n} entries each and the demo's 12 (`--issuers`)"
    );
    println!(
        "start (spawn to listening: three manifests read, checked, indexed, their trees built): {:.2} s (median of {:.2?} s)",
        median(starts.clone()),
        starts
    );
    println!("resident memory after start: {rss:.0} MiB (peak {hwm:.0} MiB)");
}

/// wrk against `url` with the body of `script`: `rounds` of (platform, alone) in turn.
fn alternate(platform: &str, alone: &str, connections: u32, script: &Path) -> (Load, Load) {
    let (mut on_platform, mut by_itself) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        on_platform.push(wrk(platform, connections, Some(script)));
        by_itself.push(wrk(alone, connections, Some(script)));
    }
    let pick = |mut runs: Vec<Load>| {
        runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        runs.swap_remove(1)
    };
    (pick(on_platform), pick(by_itself))
}

fn throughput(demo: &Path, dir: &Path, work: &Path, limited: &[&str], open: &[&str]) {
    let scripts = work.join("platform-scripts");
    std::fs::create_dir_all(scripts.join("refusal")).expect("mkdir");
    std::fs::create_dir_all(scripts.join("valid")).expect("mkdir");
    let refusal = lua(
        &scripts.join("refusal"),
        r#"{"number":"2070009999","key":"0000000000"}"#,
    );
    let valid = lua(
        &scripts.join("valid"),
        r#"{"number":"2070004426","key":"332E1E7K9Q"}"#,
    );
    let (platform, alone) = (platform_daemon(dir, limited), Daemon::start(demo, limited));
    let (p, a) = alternate(
        &platform.url("/api/verify"),
        &alone.url("/api/verify"),
        64,
        &refusal,
    );
    drop((platform, alone));
    println!("\n| the demo guarantor's numbers | alone: requests/s | platform: requests/s | platform/alone | alone p99 | platform p99 |");
    println!("|---|---:|---:|---:|---:|---:|");
    row("rate-limited refusals (429), 64 connections", &a, &p);
    let (platform, alone) = (platform_daemon(dir, open), Daemon::start(demo, open));
    let (p, a) = alternate(
        &platform.url("/api/verify"),
        &alone.url("/api/verify"),
        8,
        &valid,
    );
    drop((platform, alone));
    row(
        "verifications (200, 100,000 PBKDF2 iterations), 8 connections",
        &a,
        &p,
    );
}

fn row(what: &str, alone: &Load, platform: &Load) {
    println!(
        "| {what} | {:.1} | {:.1} | {:.1}% | {} | {} |",
        alone.rps,
        platform.rps,
        100.0 * platform.rps / alone.rps,
        alone.p99,
        platform.p99
    );
}

/// The demo guarantor's verifications without reloads, then while `go` ships release after
/// release (each a full manifest to read, check and index).
fn reload_isolation(dir: &Path, work: &Path, open: &[&str], n: usize) {
    let (id, _, first) = LARGE[2];
    let releases: Vec<PathBuf> = (2..=5)
        .map(|seq| {
            let release = dir.join(id).join(format!("releases/{seq}"));
            if !release.join("manifest.json").exists() {
                signed_manifest(&release, &dir.join(id).join("keys"), n, seq, first);
            }
            release
        })
        .collect();
    // A fresh state: the releases above are newer than anything it saw.
    let _ = std::fs::remove_dir_all(dir.join("state"));
    link(&dir.join(id), &dir.join(id).join("releases/1"));
    super::common::settle();
    let d = platform_daemon(dir, open);
    let script_dir = work.join("platform-scripts/valid");
    let script = script_dir.join("post.lua");
    let before = wrk(&d.url("/api/verify"), 4, Some(&script));
    let (stop, shipper) = ship_in_turn(dir.join(id), releases, d.url("/healthz"));
    let during = wrk(&d.url("/api/verify"), 4, Some(&script));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reloads, took) = shipper.join().expect("shipper");
    println!(
        "\n## One guarantor reloads while another answers ({} s of verifications, 4 connections, the demo guarantor's number)",
        seconds()
    );
    println!("| | verifications/s | p50 | p99 |");
    println!("|---|---:|---:|---:|");
    println!(
        "| no reload | {:.1} | {} | {} |",
        before.rps, before.p50, before.p99
    );
    println!(
        "| `{id}` reloading ({reloads} reloads of {n} entries, each {}) | {:.1} | {} | {} |",
        took.iter()
            .map(|t| format!("{:.2} s", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        during.rps,
        during.p50,
        during.p99
    );
    println!(
        "p99 during reloads / before: {:.2}× (non-2xx: {} before, {} during)",
        millis(&during.p99) / millis(&before.p99),
        before.non_2xx,
        during.non_2xx
    );
}

/// Swaps `dir/vault` to each of `releases` in turn, waiting for the daemon to serve each
/// (its seq in `/healthz`), until told to stop: how many were served, and how long each took
/// from the swap.
type Shipper = std::thread::JoinHandle<(usize, Vec<Duration>)>;

fn ship_in_turn(
    dir: PathBuf,
    releases: Vec<PathBuf>,
    health: String,
) -> (std::sync::Arc<std::sync::atomic::AtomicBool>, Shipper) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = std::sync::Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut took = Vec::new();
        // Let the answers settle before the first swap.
        std::thread::sleep(Duration::from_millis(500));
        for (i, release) in releases.iter().enumerate() {
            if stopping.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let started = Instant::now();
            link(&dir, release);
            let seq = (i + 2) as u64;
            while served_seq(&health) != Some(seq) && started.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(20));
            }
            took.push(started.elapsed());
        }
        (took.len(), took)
    });
    (stop, handle)
}

/// The seq `/healthz` reports for the guarantor `go`.
fn served_seq(url: &str) -> Option<u64> {
    let text = ureq::get(url)
        .call()
        .ok()?
        .body_mut()
        .read_to_string()
        .ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["issuers"]
        .as_array()?
        .iter()
        .find(|i| i["id"] == "go")?["seq"]
        .as_u64()
}
