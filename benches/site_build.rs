//! `cargo bench --bench site_build`: times `hosho build` on a generated large site root
//! (10,000 Markdown pages of 2–3 KB Japanese text with headings, lists and a table, plus
//! 2,000 orderers in adopter files) and on the demo site, and Hugo (Debian's `hugo`) and
//! Zola on the same Markdown with a minimal layout, in the same run, each rebuilding over
//! its existing output. Prints wall time (median of the timed runs) and peak resident
//! memory of each build process.
//!
//! Zola is not on crates.io: build it from the getzola/zola repository (0.22.1 or newer) with
//! `cargo build --release --locked` and put `zola` on the PATH (or set HOSHO_BENCH_ZOLA to
//! its path); without it the bench says so and skips the comparison.
//!
//! Options (environment): HOSHO_BENCH_PAGES (default 10000), HOSHO_BENCH_RUNS (default 5),
//! HOSHO_BENCH_DIR (where the sites are generated and built; default `/dev/shm/hosho-bench`
//! when /dev/shm exists, so the figures measure the generators rather than the disk, else
//! `target/bench-site`), HOSHO_BENCH_KEEP=1 (keep the generated sites afterwards, e.g. to
//! run `hosho -v build` on them).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[path = "common/mod.rs"]
mod common;
use common::{measure, settle};

/// A small deterministic generator, so every run builds the same site.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() as usize) % items.len()]
    }
}

const SENTENCES: [&str; 12] = [
    "電子保証では、紙の保証証書に代えて、証書の内容を記録した電子証書を受発注者がインターネットで確認します。",
    "受注者は保証契約番号と認証キーを記載したお知らせを発注者へ提出し、発注者はそれを使って電子証書を閲覧します。",
    "前払金保証、中間前払金保証、契約保証の保証証書が対象で、契約保証予約は対象になりません。",
    "証書を受け取りに来店したり郵送したりする必要がなく、提出までの保管や紛失の心配も減ります。",
    "発注者にとっても、契約事務のデジタル化とペーパーレス化が進み、在宅勤務中でも証書を確認できます。",
    "利用にあたって保証料とは別の費用はかからず、これまでどおり保証料のみをお支払いいただきます。",
    "お申込みはインターネット保証サービスから行い、証書の受取方法として電子交付を選びます。",
    "保証契約が締結されると、電子証書と認証キーの登録を知らせるメールが届きます。",
    "提出方法は、電子契約システムへの登録か電子メールへの添付のどちらかを発注者にご確認ください。",
    "運用開始日は発注者ごとに異なり、契約締結日を基準とする場合と入札公告日を基準とする場合があります。",
    "ご不明な点があれば、最寄りの支店までお気軽にお問い合わせください。",
    "画面の内容は印刷や保存ができますが、発注者へ提出するのは認証キー等のお知らせです。",
];

const HEADINGS: [&str; 6] = [
    "概要",
    "対象となる案件",
    "手続きの流れ",
    "ご注意",
    "費用について",
    "お問い合わせ",
];
const CATEGORIES: [&str; 3] = ["県", "政令市", "市町村"];

fn paragraph(rng: &mut Lcg, sentences: usize) -> String {
    (0..sentences)
        .map(|_| rng.pick(&SENTENCES))
        .collect::<Vec<_>>()
        .join("")
}

/// One page body of 2–3 KB: headings, paragraphs, a list, a table and a link.
fn page_body(rng: &mut Lcg, index: usize, total: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}\n", paragraph(rng, 3));
    let _ = writeln!(s, "## {}\n\n{}\n", rng.pick(&HEADINGS), paragraph(rng, 3));
    for i in 1..=4 {
        let _ = writeln!(s, "- 手順{i}：{}", rng.pick(&SENTENCES));
    }
    let _ = writeln!(s, "\n## {}\n", rng.pick(&HEADINGS));
    let _ = writeln!(s, "| 区分 | 対象 | 備考 |\n|---|:-:|---|");
    for kind in ["前払金保証", "中間前払金保証", "契約保証"] {
        let _ = writeln!(s, "| {kind} | ○ | 電子証書で交付します |");
    }
    let _ = writeln!(
        s,
        "\n## {}\n\n{}\n",
        rng.pick(&HEADINGS),
        paragraph(rng, 2 + (index % 3))
    );
    let next = (index % total) + 1;
    let _ = writeln!(
        s,
        "{}\n\n[次のお知らせへ](/articles/page-{next:05}/)",
        paragraph(rng, 2)
    );
    s
}

/// Writes the large site root for hosho, and the same Markdown for Hugo.
fn generate(dir: &Path, pages: usize) -> (PathBuf, PathBuf, PathBuf) {
    let hosho = dir.join("hosho-site");
    let hugo = dir.join("hugo-site");
    let _ = fs::remove_dir_all(dir);
    for d in [
        hosho.join("content/articles"),
        hosho.join("data/adopters"),
        hugo.join("content/articles"),
        hugo.join("layouts/_default"),
    ] {
        fs::create_dir_all(&d).expect("create bench dirs");
    }
    fs::write(
        hosho.join("hosho.toml"),
        "title = \"ベンチマーク\"\nbase_url = \"https://bench.example.jp/\"\n[guarantor]\nname = \"見本保証株式会社\"\naddress = \"東京都\"\n[adopters]\ncategories = [\"県\", \"政令市\", \"市町村\"]\n",
    )
    .expect("write hosho.toml");
    fs::write(
        hosho.join("content/_index.md"),
        "---\ntitle: ベンチマーク\n---\nトップページです。\n",
    )
    .expect("write");
    fs::write(
        hosho.join("content/articles/_index.md"),
        "---\ntitle: お知らせ\nweight: 10\n---\nお知らせの一覧です。\n",
    )
    .expect("write");
    fs::write(
        hugo.join("hugo.toml"),
        "baseURL = \"https://bench.example.jp/\"\nlanguageCode = \"ja\"\ntitle = \"ベンチマーク\"\ndisableKinds = [\"taxonomy\", \"term\"]\n[markup.goldmark.renderer]\nunsafe = true\n",
    )
    .expect("write hugo.toml");
    let layout = |body: &str| {
        format!("<!DOCTYPE html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>{{{{ .Title }}}}</title></head><body><nav><a href=\"/\">トップ</a> <a href=\"/articles/\">お知らせ</a></nav><main><h1>{{{{ .Title }}}}</h1>{body}</main></body></html>\n")
    };
    fs::write(
        hugo.join("layouts/_default/single.html"),
        layout("{{ .Content }}"),
    )
    .expect("write");
    fs::write(
        hugo.join("layouts/_default/list.html"),
        layout("{{ .Content }}<ul>{{ range .Pages }}<li><a href=\"{{ .RelPermalink }}\">{{ .Title }}</a> {{ .Date.Format \"2006-01-02\" }}</li>{{ end }}</ul>"),
    )
    .expect("write");
    fs::write(
        hugo.join("content/_index.md"),
        "---\ntitle: ベンチマーク\n---\nトップページです。\n",
    )
    .expect("write");
    fs::write(
        hugo.join("content/articles/_index.md"),
        "---\ntitle: お知らせ\n---\nお知らせの一覧です。\n",
    )
    .expect("write");

    let zola = dir.join("zola-site");
    fs::create_dir_all(zola.join("content/articles")).expect("mkdir zola");
    fs::create_dir_all(zola.join("templates")).expect("mkdir zola templates");
    fs::write(
        zola.join("config.toml"),
        "base_url = \"https://bench.example.jp/\"\ntitle = \"ベンチマーク\"\ndefault_language = \"ja\"\ncompile_sass = false\nbuild_search_index = false\ngenerate_feeds = false\n[markdown]\nrender_emoji = false\n",
    )
    .expect("write config.toml");
    let zola_layout = |title: &str, body: &str| {
        format!("<!DOCTYPE html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body><nav><a href=\"/\">トップ</a> <a href=\"/articles/\">お知らせ</a></nav><main><h1>{title}</h1>{body}</main></body></html>\n")
    };
    fs::write(
        zola.join("templates/page.html"),
        zola_layout("{{ page.title }}", "{{ page.content | safe }}"),
    )
    .expect("write");
    fs::write(
        zola.join("templates/section.html"),
        zola_layout("{{ section.title }}", "{{ section.content | safe }}<ul>{% for p in section.pages %}<li><a href=\"{{ p.path }}\">{{ p.title }}</a> {{ p.date }}</li>{% endfor %}</ul>"),
    )
    .expect("write");
    fs::write(
        zola.join("templates/index.html"),
        zola_layout("{{ section.title }}", "{{ section.content | safe }}"),
    )
    .expect("write");
    fs::write(
        zola.join("content/_index.md"),
        "---\ntitle: ベンチマーク\n---\nトップページです。\n",
    )
    .expect("write");
    fs::write(
        zola.join("content/articles/_index.md"),
        "---\ntitle: お知らせ\nsort_by: date\n---\nお知らせの一覧です。\n",
    )
    .expect("write");

    let mut rng = Lcg(20250201);
    let mut bytes = 0usize;
    for i in 1..=pages {
        let day = 1 + (i % 28);
        let month = 1 + (i / 28) % 12;
        let year = 2019 + (i / 336) % 7;
        let front = format!(
            "---\ntitle: 第{i}回 電子保証のお知らせ\ndate: {year}-{month:02}-{day:02}\n---\n"
        );
        let page = format!("{front}{}", page_body(&mut rng, i, pages));
        bytes += page.len();
        let name = format!("page-{i:05}.md");
        fs::write(hosho.join("content/articles").join(&name), &page).expect("write page");
        fs::write(hugo.join("content/articles").join(&name), &page).expect("write page");
        fs::write(zola.join("content/articles").join(&name), &page).expect("write page");
    }
    let mut orderers = 0;
    for file in 0..20 {
        let mut y = format!("title: 架空県{file:02}の自治体\nas_of: 2025-02-01\nadopters:\n");
        for row in 0..100 {
            orderers += 1;
            let category = CATEGORIES[(row % 7).min(2)];
            let date = format!("{}-{:02}-{:02}", 2022 + row % 4, 1 + row % 12, 1 + row % 28);
            let _ = writeln!(
                y,
                "  - {{name: 架空{category}{file:02}{row:03}, category: {category}, start: {date}, services: {}}}",
                row % 3 != 0
            );
        }
        fs::write(
            hosho.join(format!("data/adopters/region-{file:02}.yaml")),
            y,
        )
        .expect("write adopters");
    }
    println!(
        "generated {pages} pages ({:.1} KB average, {:.1} MB of Markdown) and {orderers} orderers in 20 adopter files",
        bytes as f64 / pages as f64 / 1024.0,
        bytes as f64 / 1_048_576.0
    );
    (hosho, hugo, zola)
}

struct Figures {
    median: Duration,
    min: Duration,
    peak_kib: u64,
}

fn bench(runs: usize, mut command: impl FnMut() -> Command, before_each: impl Fn()) -> Figures {
    let before_each = || {
        before_each();
        settle();
    };
    before_each();
    let _ = measure(&mut command()); // warm-up: file cache, page cache
    let mut times = Vec::new();
    let mut peak = 0;
    for _ in 0..runs {
        before_each();
        let (t, rss) = measure(&mut command());
        times.push(t);
        peak = peak.max(rss);
    }
    times.sort();
    Figures {
        median: times[times.len() / 2],
        min: times[0],
        peak_kib: peak,
    }
}

fn line(name: &str, f: &Figures) {
    println!(
        "{name:<44} median {:>8.3} s   min {:>8.3} s   peak RSS {:>7.1} MiB",
        f.median.as_secs_f64(),
        f.min.as_secs_f64(),
        f.peak_kib as f64 / 1024.0
    );
}

fn main() {
    let pages: usize = std::env::var("HOSHO_BENCH_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runs: usize = std::env::var("HOSHO_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let hosho_bin = &*Box::leak(common::hosho_bin().into_boxed_path());
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let work = std::env::var_os("HOSHO_BENCH_DIR").map_or_else(
        || {
            if Path::new("/dev/shm").is_dir() {
                PathBuf::from("/dev/shm/hosho-bench")
            } else {
                repo.join("target/bench-site")
            }
        },
        PathBuf::from,
    );
    println!(
        "hosho site build benchmark ({} cores, {runs} timed runs after one warm-up)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("work directory: {}", work.display());
    let (hosho_root, hugo_root, zola_root) = generate(&work, pages);
    let out = work.join("hosho-out");
    let hugo_out = work.join("hugo-out");
    // Vault and keys go to the work directory too, so the demo run writes nothing in the repo.
    let hosho_build = |root: &Path, out: &Path| {
        let mut c = Command::new(hosho_bin);
        c.args(["build", "--root"])
            .arg(root)
            .arg("--out")
            .arg(out)
            .arg("--vault")
            .arg(work.join("vault"))
            .arg("--keys")
            .arg(work.join("keys"));
        c
    };

    let large = bench(
        runs,
        || hosho_build(&hosho_root, &out),
        || {
            let _ = fs::remove_dir_all(&out);
        },
    );
    let built_pages = walkdir_count(&out);
    let rebuild = bench(runs, || hosho_build(&hosho_root, &out), || {});
    let demo_out = work.join("demo-out");
    let demo = bench(
        runs,
        || hosho_build(&repo, &demo_out),
        || {
            let _ = fs::remove_dir_all(&demo_out);
        },
    );
    println!();
    line(
        &format!("hosho build, {pages} pages + 2,000 orderers"),
        &large,
    );
    line("hosho build again (swap in, delete old output)", &rebuild);
    line("hosho build, demo site", &demo);
    println!("hosho wrote {built_pages} HTML files for the large site");

    // Every tool rebuilds over its existing output, as a maintainer's next build does.
    let hugo = Command::new("hugo").arg("version").output();
    let hugo = match hugo {
        Ok(v) if v.status.success() => {
            let version = String::from_utf8_lossy(&v.stdout).trim().to_owned();
            let h = bench(
                runs,
                || {
                    let mut c = Command::new("hugo");
                    c.arg("--quiet")
                        .arg("--source")
                        .arg(&hugo_root)
                        .arg("--destination")
                        .arg(&hugo_out);
                    c
                },
                || {},
            );
            line(&format!("hugo, the same {pages} pages, again"), &h);
            println!(
                "hugo wrote {} HTML files ({version})",
                walkdir_count(&hugo_out)
            );
            Some(h)
        }
        _ => {
            println!("hugo is not installed (apt-get install hugo): no comparison");
            None
        }
    };
    let zola = match zola_available() {
        Some((zola_bin, version)) => {
            let zola_out = work.join("zola-out");
            let z = bench(
                runs,
                || {
                    let mut c = Command::new(&zola_bin);
                    c.arg("--root")
                        .arg(&zola_root)
                        .args(["build", "--force", "--output-dir"])
                        .arg(&zola_out);
                    c
                },
                || {},
            );
            line(&format!("zola, the same {pages} pages, again"), &z);
            println!(
                "zola wrote {} HTML files ({version})",
                walkdir_count(&zola_out)
            );
            Some(z)
        }
        None => {
            println!("zola is not on the PATH: build getzola/zola 0.22.1 with `cargo build --release --locked` and put it there (or set HOSHO_BENCH_ZOLA): no comparison");
            None
        }
    };
    println!();
    for (name, other) in [("hugo", &hugo), ("zola", &zola)] {
        if let Some(o) = other {
            println!(
                "hosho / {name} (median wall time, both rebuilding): {:.2}×   peak memory hosho / {name}: {:.2}×",
                rebuild.median.as_secs_f64() / o.median.as_secs_f64(),
                rebuild.peak_kib as f64 / o.peak_kib.max(1) as f64
            );
        }
    }
    println!();
    let page = "content/articles/page-00042.md";
    let hosho_serve = Server::start(
        Command::new(hosho_bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--root"])
            .arg(&hosho_root),
        "確認サービスを起動しました: http://",
    );
    let rounds = 9;
    let times = edit_to_served(
        &hosho_serve.base,
        &hosho_root.join(page),
        "/articles/page-00042/",
        rounds,
    );
    edit_line("hosho serve, one page edited", &times);
    let adopters = hosho_root.join("data/adopters/region-00.yaml");
    let times = edit_row_to_served(&hosho_serve.base, &adopters, "/adopters/region-00/", rounds);
    edit_line("hosho serve, one adoption row edited", &times);
    drop(hosho_serve);
    if let Some((zola_bin, _)) = zola_available() {
        let zola_serve = Server::on_port(
            Command::new(zola_bin)
                .arg("--root")
                .arg(&zola_root)
                .args(["serve", "--port", "18796"]),
            18796,
        );
        let times = edit_to_served(
            &zola_serve.base,
            &zola_root.join(page),
            "/articles/page-00042/",
            rounds,
        );
        edit_line("zola serve, one page edited", &times);
    }
    if std::env::var_os("HOSHO_BENCH_KEEP").is_none_or(|v| v != "1") {
        let _ = fs::remove_dir_all(&work);
    }
}

/// Zola (`HOSHO_BENCH_ZOLA`, else `zola` on the PATH) and its version, when it runs.
fn zola_available() -> Option<(std::ffi::OsString, String)> {
    let zola = std::env::var_os("HOSHO_BENCH_ZOLA").unwrap_or_else(|| "zola".into());
    let version = Command::new(&zola)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    Some((zola, version))
}

/// A preview server (`hosho serve`, `zola serve`) running until dropped.
struct Server {
    child: std::process::Child,
    base: String,
}

impl Server {
    /// Starts `command` and waits for the line that starts with `ready` and names its address.
    fn start(command: &mut Command, ready: &str) -> Server {
        use std::io::BufRead as _;
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("the server said where it listens")
                .expect("line");
            if let Some(rest) = line.find(ready).map(|i| &line[i + ready.len()..]) {
                break format!(
                    "http://{}",
                    rest.split(['/', ' ']).next().unwrap_or_default()
                );
            }
        };
        std::thread::spawn(move || for _ in lines {});
        std::thread::sleep(Duration::from_millis(500));
        Server { child, base }
    }
}

impl Server {
    /// Starts `command`, which listens on `port` of 127.0.0.1, and waits until it answers.
    fn on_port(command: &mut Command, port: u16) -> Server {
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the server");
        let base = format!("http://127.0.0.1:{port}");
        let started = std::time::Instant::now();
        while ureq::get(&format!("{base}/")).call().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{base} never answered"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Server { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Saves `rounds` edits of `file` (`edit(text, round)`), each timed until `url` serves
/// `marker(round)`.
fn timed_edits(
    base: &str,
    file: &Path,
    url: &str,
    rounds: usize,
    edit: impl Fn(&str, usize) -> String,
    marker: impl Fn(usize) -> String,
) -> Vec<Duration> {
    let mut times = Vec::new();
    for round in 0..rounds {
        let text = fs::read_to_string(file).expect("read");
        let started = std::time::Instant::now();
        fs::write(file, edit(&text, round)).expect("write");
        let want = marker(round);
        loop {
            let body = ureq::get(&format!("{base}{url}"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok());
            if body.is_some_and(|b| b.contains(&want)) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{url} never showed {want}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        times.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(300));
    }
    times.sort();
    times
}

/// A page's first paragraph replaced, round after round.
fn edit_to_served(base: &str, file: &Path, url: &str, rounds: usize) -> Vec<Duration> {
    let edit = |text: &str, round: usize| {
        let (front, body) = text.split_once("\n---\n").expect("front matter");
        let body = body
            .split_once("\n\n")
            .filter(|(first, _)| first.starts_with("編集"))
            .map_or(body, |(_, rest)| rest);
        format!("{front}\n---\n編集{round:03}\n\n{body}")
    };
    timed_edits(base, file, url, rounds, edit, |round| {
        format!("編集{round:03}")
    })
}

/// One adoption row renamed, round after round.
fn edit_row_to_served(base: &str, file: &Path, url: &str, rounds: usize) -> Vec<Duration> {
    let edit = |text: &str, round: usize| {
        let start = text.find("{name: 架空").expect("a row") + "{name: ".len();
        let end = start + text[start..].find(',').expect("name ends");
        format!("{}架空改{round:03}{}", &text[..start], &text[end..])
    };
    timed_edits(base, file, url, rounds, edit, |round| {
        format!("架空改{round:03}")
    })
}

fn edit_line(name: &str, times: &[Duration]) {
    println!(
        "{name:<44} edit-to-served median {:>6.0} ms   min {:>6.0} ms   max {:>6.0} ms ({} edits)",
        times[times.len() / 2].as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0,
        times.len()
    );
}

fn walkdir_count(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "html") {
                n += 1;
            }
        }
    }
    n
}
