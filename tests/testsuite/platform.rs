//! The platform of docs/platform.md with real parts: the three fictional guarantors of
//! demo/platform built by the real binary (each with its own keys and number space), shipped
//! as docs/deploy.md ships them (`issuers/<id>/releases/<seq>` and a symlink swapped), two
//! replicas sharing Redis behind the documented nginx; and the README's demo command.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::daemon::{api, form, free_port, get, post, Daemon, Redis};
use crate::deployment::{link_key, DeployedNginx};
use crate::support::repo_root;

/// The guarantors of demo/platform: id, name, and their two numbers.
const GUARANTORS: [(&str, &str, [&str; 2]); 3] = [
    (
        "higashi",
        "東方みほん建設保証株式会社（架空）",
        ["1170300001", "1170300002"],
    ),
    (
        "nishi",
        "西方みほん建設保証株式会社（架空）",
        ["2070500001", "2070500002"],
    ),
    (
        "kita",
        "北方みほん建設信用保証株式会社（架空）",
        ["3170100001", "3170100002"],
    ),
];

/// What the build and the platform write into the demo's directory; never copied.
const OUTPUTS: [&str; 7] = [
    "keys", "vault", "site-out", "notices", "state", "releases", "current",
];

/// A private copy of demo/platform with every guarantor built and shipped once.
struct Platform {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

fn hosho() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hosho"))
}

/// Copies the demo's sources (not what a build or a run left there).
fn copy_sources(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read demo") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if OUTPUTS.iter().any(|o| name == *o) || name.to_string_lossy().starts_with('.') {
            continue;
        }
        let target = to.join(&name);
        match entry.file_type().expect("type").is_dir() {
            true => copy_sources(&entry.path(), &target),
            false => {
                fs::copy(entry.path(), &target).expect("copy");
            }
        }
    }
}

impl Platform {
    fn new() -> Platform {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("platform");
        copy_sources(&repo_root().join("demo/platform"), &dir);
        // Each guarantor's vault as deploy.md ships it: the symlink `current`.
        let toml = fs::read_to_string(dir.join("issuers.toml")).expect("issuers.toml");
        let shipped = GUARANTORS.iter().fold(toml, |t, (id, ..)| {
            t.replace(
                &format!("vault = \"{id}/vault\""),
                &format!("vault = \"{id}/current\""),
            )
        });
        fs::write(dir.join("issuers.toml"), shipped).expect("write");
        let run = hosho()
            .args(["keygen", "--service", "--keys"])
            .arg(dir.join("keys"))
            .output()
            .expect("keygen");
        assert!(run.status.success(), "{run:?}");
        let platform = Platform { _tmp: tmp, dir };
        for (id, ..) in GUARANTORS {
            platform.build(id, &[]);
            platform.ship(id);
        }
        platform
    }

    /// `hosho build` of one guarantor's root, with `extra` arguments.
    fn build(&self, id: &str, extra: &[&str]) {
        let run = hosho()
            .args(["build", "--root"])
            .arg(self.dir.join(id))
            .args(extra)
            .output()
            .expect("build");
        assert!(
            run.status.success(),
            "{id}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }

    /// Copies `id`'s vault to `releases/<seq>` and swaps `current` to it (ln -sfn, mv -T):
    /// the release's directory.
    fn ship(&self, id: &str) -> PathBuf {
        let root = self.dir.join(id);
        let manifest: Value =
            serde_json::from_slice(&fs::read(root.join("vault/manifest.json")).expect("manifest"))
                .expect("json");
        let seq = manifest["seq"].as_u64().expect("seq");
        let release = root.join("releases").join(seq.to_string());
        // A release is never written over (it may be serving).
        assert!(!release.exists(), "{} shipped twice", release.display());
        crate::support::copy_dir(&root.join("vault"), &release);
        self.link(id, &release);
        release
    }

    /// Points `id`'s `current` at `release`, atomically.
    fn link(&self, id: &str, release: &Path) {
        let root = self.dir.join(id);
        let new = root.join("current.new");
        let _ = fs::remove_file(&new);
        std::os::unix::fs::symlink(release, &new).expect("symlink");
        fs::rename(&new, root.join("current")).expect("mv -T");
    }

    fn key_of(&self, id: &str, number: &str) -> String {
        let secret = fs::read(self.dir.join(id).join("keys/authkey.secret")).expect("secret");
        hosho::trust::authkey::derive_key(&secret, number)
    }

    /// `hosho serve --no-build --issuers` of this platform, its state in `state`.
    fn command(&self, state: &str) -> Command {
        let mut command = hosho();
        command
            .args(["serve", "--no-build", "--listen", "127.0.0.1:0", "--root"])
            .arg(&self.dir)
            .arg("--issuers")
            .arg(self.dir.join("issuers.toml"))
            .arg("--state")
            .arg(self.dir.join(state));
        command
    }

    /// The platform on its own, limits in memory.
    fn serve(&self) -> Daemon {
        Daemon::spawn(self.command("state"))
    }

    /// A replica as deploy.md's platform unit runs it.
    fn replica(&self, redis: &Redis, state: &str, extra: &[&str]) -> Daemon {
        let mut command = self.command(state);
        command
            .args(["--trusted-proxy", "127.0.0.1"])
            .args(["--client-header", "x-forwarded-for"])
            .args(["--limits", &redis.url(), "--link-key"])
            .arg(link_key(&self.dir))
            .args(extra);
        Daemon::spawn(command)
    }
}

/// Two replicas of `platform` behind the documented platform nginx.
fn deployment(
    platform: &Platform,
    redis: &Redis,
    extra: &[&str],
) -> (Daemon, Daemon, DeployedNginx) {
    let a = platform.replica(redis, "state-a", extra);
    let b = platform.replica(redis, "state-b", extra);
    let nginx = DeployedNginx::platform([&a.addr, &b.addr]);
    (a, b, nginx)
}

#[test]
fn each_guarantor_answers_through_the_documented_nginx_and_refusals_are_one() {
    let redis = Redis::start(free_port()).in_service();
    let platform = Platform::new();
    let (_a, _b, nginx) = deployment(&platform, &redis, &[]);
    for (id, name, numbers) in GUARANTORS {
        for number in numbers {
            let key = platform.key_of(id, number);
            let answer = nginx.api("127.0.0.2", number, &key, "");
            assert_eq!(answer.status, 200, "{id} {number}: {}", nginx.error_log());
            let json = answer.json();
            assert_eq!(json["issuer"]["id"], id);
            assert_eq!(json["issuer"]["name"], name);
            assert_eq!(json["certificate"]["number"], number);
        }
    }
    // A wrong key for each guarantor's number, an unknown number in a space, a number in
    // none: one answer, byte for byte, for the form and the API.
    let refused: Vec<(Vec<u8>, String)> = [
        "1170300001",
        "2070500001",
        "3170100001",
        "1170399999",
        "4170100001",
    ]
    .iter()
    .map(|number| {
        let api = nginx.api("127.0.0.3", number, "AAAAAAAAAA", "");
        assert_eq!(api.status, 404);
        let body = format!("number={number}&key=AAAAAAAAAA");
        let head = "POST /verify/ HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded";
        let page = nginx.request("127.0.0.3", head, &body);
        assert_eq!(page.status, 404);
        let page = String::from_utf8_lossy(&page.body).replace(number, "NUMBER");
        (api.body, page)
    })
    .collect();
    assert!(refused.windows(2).all(|w| w[0] == w[1]), "{refused:?}");
    // The front page lists the three, the receipt page trusts their keys.
    let front = String::from_utf8_lossy(&nginx.get("127.0.0.2", "/").body).into_owned();
    for (_, name, _) in GUARANTORS {
        assert!(
            front.contains(&format!("<th scope=\"row\">{name}</th>")),
            "{front}"
        );
    }
    assert!(front.contains("すべて架空のもの"), "{front}");
    let receipt_page = nginx.get("127.0.0.2", "/receipt/");
    assert_eq!(receipt_page.status, 200);
}

#[test]
fn limits_hold_per_guarantor_and_number_and_per_client_across_all_guarantors() {
    let redis = Redis::start(free_port()).in_service();
    let platform = Platform::new();
    let limits = ["--limit-address", "9/day+9", "--limit-failures", "3/day+3"];
    let (_a, _b, nginx) = deployment(&platform, &redis, &limits);
    // Wrong keys on nishi's number, spread by nginx over both replicas: one budget.
    for _ in 0..3 {
        assert_eq!(
            nginx
                .api("127.0.0.2", "2070500001", "AAAAAAAAAA", "")
                .status,
            404
        );
    }
    let spent = nginx.api("127.0.0.2", "2070500001", "AAAAAAAAAA", "");
    assert_eq!(spent.status, 429);
    let right = platform.key_of("nishi", "2070500001");
    assert_eq!(nginx.api("127.0.0.2", "2070500001", &right, "").status, 429);
    // The same client's failures on nishi's number hold back no other guarantor's number.
    let higashi = platform.key_of("higashi", "1170300001");
    assert_eq!(
        nginx
            .api("127.0.0.2", "1170300001", "AAAAAAAAAA", "")
            .status,
        404
    );
    assert_eq!(
        nginx.api("127.0.0.2", "1170300001", &higashi, "").status,
        200
    );
    // Attempts per client are one budget across the guarantors: right keys, round the
    // three, until the budget is spent; then every guarantor refuses that client.
    let keys: Vec<(String, String)> = GUARANTORS
        .iter()
        .map(|(id, _, numbers)| (numbers[1].to_owned(), platform.key_of(id, numbers[1])))
        .collect();
    let mut answered = 0;
    for (number, key) in keys.iter().cycle().take(30) {
        match nginx.api("127.0.0.4", number, key, "").status {
            200 => answered += 1,
            429 => break,
            other => panic!("{other}"),
        }
    }
    assert_eq!(
        answered, 9,
        "the burst of --limit-address, over all guarantors"
    );
    for (number, key) in &keys {
        assert_eq!(nginx.api("127.0.0.4", number, key, "").status, 429);
    }
}

/// One guarantor's release that fails a check, and what each replica then does.
#[test]
fn a_guarantor_whose_release_fails_is_refused_alone_and_a_restart_takes_out_only_it() {
    let redis = Redis::start(free_port()).in_service();
    let platform = Platform::new();
    let (a, _b, nginx) = deployment(&platform, &redis, &["--admin-listen", "127.0.0.1:0"]);
    let kita = ("3170100001", platform.key_of("kita", "3170100001"));
    let good = fs::read_link(platform.dir.join("kita/current")).expect("link");
    // kita's next release signed by higashi's key (a manifest of A in B's directory); a
    // second later, so that its seq (the time, as the other key's manifest does not count)
    // names a release of its own.
    std::thread::sleep(Duration::from_millis(1_100));
    let higashi_keys = platform.dir.join("higashi/keys");
    platform.build("kita", &["--keys", &higashi_keys.to_string_lossy()]);
    platform.ship("kita");
    std::thread::sleep(Duration::from_secs(3));
    // Refused on every replica: kita keeps its last good manifest, and its own key.
    for _ in 0..2 {
        assert_eq!(nginx.api("127.0.0.2", kita.0, &kita.1, "").status, 200);
    }
    // A replica that starts now with that release takes kita out of service, alone.
    drop(a);
    let fresh = platform.replica(&redis, "state-c", &[]);
    let line = fresh
        .banner
        .iter()
        .find(|l| l.contains("（kita）"))
        .expect("kita's line");
    assert!(line.contains("確認を止めています"), "{line}");
    let page = form(&fresh, kita.0, &kita.1);
    assert_eq!(page.status, 503);
    let text = page.text();
    assert!(
        text.contains("ただいま北方みほん建設信用保証株式会社（架空）の電子証書を確認できません"),
        "{text}"
    );
    assert!(text.contains("https://kita.example.jp/contact/"), "{text}");
    assert_eq!(
        api(&fresh, kita.0, &kita.1).json()["error"],
        "out_of_service"
    );
    for (id, _, numbers) in &GUARANTORS[..2] {
        let key = platform.key_of(id, numbers[0]);
        assert_eq!(api(&fresh, numbers[0], &key).status, 200, "{id}");
    }
    let health = get(&fresh.url("/healthz")).json();
    assert_eq!(health["status"], "degraded");
    // kita ships its good release again: every replica serves it, the fresh one too.
    platform.link("kita", &good);
    let started = Instant::now();
    while api(&fresh, kita.0, &kita.1).status != 200 {
        if started.elapsed() > Duration::from_secs(10) {
            fresh.signal(15);
            let log = fresh.wait(Duration::from_secs(10)).1;
            panic!("kita did not come back: {log}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // nishi ships a release holding one of higashi's numbers: refused whole.
    let data = platform.dir.join("nishi/data/certificates/nishi.yaml");
    let yaml = fs::read_to_string(&data).expect("yaml");
    let first = yaml.find("- number:").expect("a record");
    let next = first
        + 2
        + yaml[first + 2..]
            .find("- number:")
            .expect("a second record");
    let stray = yaml[first..next].replacen("\"2070500001\"", "\"1170300009\"", 1);
    fs::write(&data, format!("{yaml}{stray}")).expect("write");
    platform.build("nishi", &[]);
    platform.ship("nishi");
    let restarted = platform.replica(&redis, "state-d", &[]);
    assert_eq!(
        api(
            &restarted,
            "1170300009",
            &platform.key_of("nishi", "1170300009")
        )
        .status,
        404
    );
    let nishi = platform.key_of("nishi", "2070500001");
    assert_eq!(
        api(&restarted, "2070500001", &nishi).json()["error"],
        "out_of_service"
    );
    restarted.signal(15);
    let (_, log) = restarted.wait(Duration::from_secs(10));
    assert!(log.contains("1170300009"), "{log}");
    // higashi ships a newer release, which `fresh` serves; then its link is rolled back to
    // the first release: refused on reload, and out of service at a restart on that state.
    let first = fs::read_link(platform.dir.join("higashi/current")).expect("link");
    platform.build("higashi", &[]);
    platform.ship("higashi");
    let higashi = ("1170300001", platform.key_of("higashi", "1170300001"));
    let newest = |d: &Daemon| get(&d.url("/healthz")).json()["issuers"][0]["seq"].clone();
    let before = newest(&fresh);
    let started = Instant::now();
    while newest(&fresh) == before {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "higashi's new release"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let new = newest(&fresh);
    platform.link("higashi", &first);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(api(&fresh, higashi.0, &higashi.1).status, 200);
    assert_eq!(newest(&fresh), new, "the rolled-back release is not served");
    fresh.signal(15);
    let _ = fresh.wait(Duration::from_secs(10));
    let again = platform.replica(&redis, "state-c", &[]);
    assert_eq!(
        api(&again, higashi.0, &higashi.1).json()["error"],
        "out_of_service"
    );
    assert_eq!(api(&again, kita.0, &kita.1).status, 200);
}

/// Builds `id` again with its first record's project renamed `project`, and ships it.
fn ship_changed(
    platform: &Platform,
    id: &str,
    project: &str,
    shipped: &Mutex<Vec<(String, String)>>,
) {
    let data = platform
        .dir
        .join(id)
        .join("data/certificates")
        .join(format!("{id}.yaml"));
    let yaml = fs::read_to_string(&data).expect("yaml");
    let start = yaml.find("  project: ").expect("project") + "  project: ".len();
    let end = start + yaml[start..].find('\n').expect("line");
    fs::write(
        &data,
        format!("{}{project}{}", &yaml[..start], &yaml[end..]),
    )
    .expect("write");
    platform.build(id, &[]);
    let release = platform.ship(id);
    let sha =
        hosho::common::hex::sha256_hex(&fs::read(release.join("manifest.json")).expect("manifest"));
    shipped
        .lock()
        .expect("lock")
        .push((sha, project.to_owned()));
}

#[test]
fn three_guarantors_ship_at_once_under_load_and_no_answer_mixes_two_releases() {
    let redis = Redis::start(free_port()).in_service();
    let platform = Arc::new(Platform::new());
    let open = ["--limit-address", "100000/s+100000"];
    let (_a, _b, nginx) = deployment(&platform, &redis, &open);
    let nginx = Arc::new(nginx);
    // The manifest each release was shipped with, and the project its first record names.
    let shipped = Arc::new(Mutex::new(Vec::new()));
    for (id, ..) in GUARANTORS {
        let data = platform
            .dir
            .join(id)
            .join("data/certificates")
            .join(format!("{id}.yaml"));
        let yaml = fs::read_to_string(data).expect("yaml");
        let project = yaml
            .lines()
            .find_map(|l| l.strip_prefix("  project: "))
            .expect("project");
        let current = platform.dir.join(id).join("current/manifest.json");
        let sha = hosho::common::hex::sha256_hex(&fs::read(current).expect("manifest"));
        shipped
            .lock()
            .expect("lock")
            .push((sha, project.to_owned()));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (nginx, stop, answers, platform) = (
                Arc::clone(&nginx),
                Arc::clone(&stop),
                Arc::clone(&answers),
                Arc::clone(&platform),
            );
            std::thread::spawn(move || {
                let from = format!("127.0.0.{}", 10 + c);
                while !stop.load(Ordering::Relaxed) {
                    for (id, _, numbers) in GUARANTORS {
                        let key = platform.key_of(id, numbers[0]);
                        let a = nginx.api(&from, numbers[0], &key, "");
                        let json = (a.status == 200).then(|| a.json());
                        answers.lock().expect("lock").push((id, a.status, json));
                    }
                }
            })
        })
        .collect();
    // Three rounds, each guarantor shipping on a thread of its own, at once.
    for round in 1..=3 {
        let shippers: Vec<_> = GUARANTORS
            .iter()
            .map(|(id, ..)| {
                let (platform, shipped) = (Arc::clone(&platform), Arc::clone(&shipped));
                let project = format!("{id}見本工事（第{round}回の出荷）");
                std::thread::spawn(move || ship_changed(&platform, id, &project, &shipped))
            })
            .collect();
        for s in shippers {
            s.join().expect("ship");
        }
        std::thread::sleep(Duration::from_millis(2_500));
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client");
    }
    let shipped = shipped.lock().expect("lock").clone();
    let answers = answers.lock().expect("lock");
    assert!(answers.len() > 50, "load: {}", answers.len());
    let mut seen_last = std::collections::BTreeSet::new();
    for (id, status, json) in answers.iter() {
        assert_eq!(*status, 200, "{id}: {}", nginx.error_log());
        let json = json.as_ref().expect("json");
        assert_eq!(json["issuer"]["id"], *id);
        let sha = json["manifest"]["sha256"].as_str().expect("sha");
        let project = &shipped
            .iter()
            .find(|(s, _)| s == sha)
            .unwrap_or_else(|| panic!("{id}: a manifest never shipped: {sha}"))
            .1;
        assert_eq!(
            json["certificate"]["current"]["project"].as_str(),
            Some(project.as_str()),
            "{id}: the record and the manifest of one release"
        );
        if project.contains("第3回") {
            seen_last.insert(*id);
        }
    }
    assert_eq!(
        seen_last.len(),
        3,
        "every guarantor's last release was served: {seen_last:?}"
    );
}

#[test]
fn the_readme_demo_builds_three_fictional_guarantors_and_serves_them_as_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("platform");
    copy_sources(&repo_root().join("demo/platform"), &dir);
    let port = free_port();
    let mut child = Command::new(repo_root().join("scripts/platform-demo"))
        .arg(&dir)
        .env("HOSHO_BIN", env!("CARGO_BIN_EXE_hosho"))
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("scripts/platform-demo");
    let stdout = child.stdout.take().expect("stdout");
    let mut tries = Vec::new();
    use std::io::BufRead as _;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(rest) = line.strip_prefix("お試しください: 保証契約番号 ") {
            let (number, key) = rest.split_once(" ／ 認証キー ").expect("number and key");
            tries.push((number.to_owned(), key.to_owned()));
        }
        if line.starts_with("止めるには") {
            break;
        }
    }
    let base = format!("http://127.0.0.1:{port}");
    let checked = tries
        .iter()
        .map(|(number, key)| {
            let body = serde_json::json!({"number": number, "key": key}).to_string();
            let answer = post(&format!("{base}/api/verify"), "application/json", &body);
            (answer.status == 200).then(|| answer.json())
        })
        .collect::<Vec<_>>();
    let front = get(&format!("{base}/")).text();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        tries.len(),
        3,
        "a number and key of each guarantor: {tries:?}"
    );
    for ((answer, (id, ..)), (number, _)) in checked.iter().zip(GUARANTORS).zip(&tries) {
        let answer = answer
            .as_ref()
            .unwrap_or_else(|| panic!("{id}: {number} not verified"));
        assert_eq!(answer["issuer"]["id"], id);
        // Its receipt verifies against that guarantor's key and the platform's, no other's.
        let receipt = tmp.path().join(format!("{id}.json"));
        fs::write(
            &receipt,
            serde_json::to_vec(&answer["receipt"]).expect("receipt"),
        )
        .expect("write");
        for (other, ..) in GUARANTORS {
            let run = hosho()
                .args(["receipt", "verify", "--public-key"])
                .arg(dir.join(other).join("keys/signing.pub"))
                .arg("--service-key")
                .arg(dir.join("keys/service.pub"))
                .arg(&receipt)
                .output()
                .expect("receipt verify");
            assert_eq!(
                run.status.success(),
                other == id,
                "{id}'s receipt against {other}'s key: {run:?}"
            );
        }
    }
    assert!(
        front.contains("3つの保証事業会社と電子証書はすべて架空のもの"),
        "{front}"
    );
}

#[test]
fn the_platform_pages_pass_axe_and_its_receipt_page_checks_each_guarantors_receipt() {
    use crate::accessibility::{audit, axe_source, submit};
    use crate::receipts::{choose_file, verdict};
    let Some(chromium) = crate::browser::chromium() else {
        eprintln!("HOSHO_SKIP_BROWSER=1: platform pages not checked in a browser");
        return;
    };
    let platform = Platform::new();
    // kita's link points nowhere: its numbers are out of service.
    platform.link("kita", &platform.dir.join("kita/releases/missing"));
    let d = platform.serve();
    let mut b = crate::cdp::Browser::launch(&chromium);
    let axe = axe_source();
    let mut audits = Vec::new();
    b.navigate(&d.url("/"));
    audits.push(audit(&mut b, &axe, "確認サービスのトップページ"));
    b.navigate(&d.url("/verify/"));
    let (number, key) = ("1170300001", platform.key_of("higashi", "1170300001"));
    submit(&mut b, number, &key);
    let said = b.eval("document.querySelector('.check-issuer').innerText");
    assert!(
        said.as_str()
            .unwrap_or_default()
            .contains("東方みほん建設保証株式会社（架空）の公開鍵"),
        "{said}"
    );
    audits.push(audit(&mut b, &axe, "保証事業会社を示す電子証書の表示"));
    b.navigate(&d.url("/verify/"));
    submit(&mut b, "3170100001", &platform.key_of("kita", "3170100001"));
    let heading = b.eval("document.querySelector('h1').innerText");
    assert_eq!(
        heading,
        "ただいま北方みほん建設信用保証株式会社（架空）の電子証書を確認できません"
    );
    audits.push(audit(&mut b, &axe, "一社の確認を止めている画面（503）"));
    b.navigate(&d.url("/receipt/"));
    audits.push(audit(&mut b, &axe, "確認記録の検証（プラットフォーム）"));
    for (id, _, numbers) in &GUARANTORS[..2] {
        let receipt =
            api(&d, numbers[0], &platform.key_of(id, numbers[0])).json()["receipt"].clone();
        let file = platform.dir.join(format!("receipt-{id}.json"));
        fs::write(&file, serde_json::to_vec(&receipt).expect("json")).expect("write");
        b.eval("document.getElementById('receipt-result').textContent = ''");
        choose_file(&mut b, &file);
        assert_eq!(verdict(&mut b), "有効な確認記録です。", "{id}");
    }
    let failed: Vec<String> = audits
        .iter()
        .filter(|a| !a.violations.is_empty() || a.passes == 0)
        .map(|a| format!("{}: {}", a.name, a.violations.join("; ")))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
}
