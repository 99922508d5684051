//! `cargo bench --bench certificates`: certificates, notices and the signed manifest at
//! scale, measured in one run:
//!
//! 1. a full `hosho build` of 10,000 synthetic records (wall time, certificates per second,
//!    peak memory), then the same build after one record changed; the records belong to 500
//!    customers on 保証料一括納付制度, so the build also typesets their monthly 保証料計算書:
//!    a rebuild with every statement to typeset again (and every certificate reused) against
//!    one that reuses everything shows what statements add to a build, next to their
//!    typesetting alone in-process;
//! 2. thread scaling: a full build of a smaller set with RAYON_NUM_THREADS=1 and =2;
//! 3. typesetting cost per certificate (certificate + notice, one thread) in hosho against
//!    the floor, a bare typst-as-lib loop over the same templates and fonts;
//! 4. the typst CLI compiling the same certificate template once per certificate (the tool a
//!    user would otherwise script), if `typst` is on the PATH (`cargo install typst-cli`).
//!
//! Environment: HOSHO_BENCH_CERTS (default 10000), HOSHO_BENCH_CUSTOMERS (default 500),
//! HOSHO_BENCH_SCALE_CERTS (default 1000),
//! HOSHO_BENCH_SAMPLE (default 300, typesetting comparison), HOSHO_BENCH_CLI_SAMPLE
//! (default 50), HOSHO_BENCH_DIR (default /dev/shm/hosho-cert-bench, else target/).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hosho::certificates::certificate::Certificate;
use hosho::certificates::customers::Customers;
use hosho::certificates::documents::{self, Extras};
use hosho::certificates::input;
use hosho::certificates::statements;
use hosho::certificates::typeset::{fonts, to_typst, Template};
use hosho::common::config::Config;
use hosho::common::diagnostics::Diagnostics;
use typst::foundations::{Dict, Smart, Value};
use typst_as_lib::TypstEngine;
use typst_layout::PagedDocument;

#[path = "common/mod.rs"]
mod common;
use common::{measure, settle};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One synthetic record; every kind, some changed, some cancelled; with `customers`, each
/// belongs to one of them and carries its fee (中間前払金保証's comes from the built-in rate).
fn record(i: usize, customers: usize) -> String {
    let kinds = ["前払金保証", "中間前払金保証", "契約保証"];
    let kind = kinds[i % 3];
    let contract = 10_000_000 + (i as u64 % 97) * 1_300_000;
    let amount = if kind == "契約保証" {
        contract / 10
    } else {
        contract * 4 / 10
    };
    let year = 2019 + i % 6;
    let mut r = String::new();
    let _ = writeln!(r, "- number: \"{:010}\"", 3_000_000_000u64 + i as u64);
    let _ = writeln!(r, "  kind: {kind}");
    let _ = writeln!(r, "  issued: {year}-{:02}-{:02}", 1 + i % 12, 1 + i % 28);
    let _ = writeln!(
        r,
        "  contractor: {{name: 株式会社見本建設{:04}, address: 大阪府大阪市北区見本町{}丁目{}番{}号}}",
        i % 5000,
        1 + i % 9,
        1 + i % 20,
        1 + i % 30
    );
    let _ = writeln!(r, "  beneficiary: 見本市長");
    let _ = writeln!(
        r,
        "  project: 市道見本{}号線道路改良工事（その{}）",
        i % 300,
        1 + i % 4
    );
    let _ = writeln!(r, "  site: 見本市見本町地内");
    let _ = writeln!(r, "  contract_amount: {contract}");
    let _ = writeln!(r, "  amount: {amount}");
    let period = format!(
        "{{from: {year}-{:02}-{:02}, to: {}-03-31}}",
        1 + i % 12,
        1 + i % 28,
        year + 1
    );
    // 保証期間 and 工期 (a paper certificate's row; without it the build warns).
    let _ = writeln!(r, "  period: {period}\n  works: {period}");
    if kind != "契約保証" {
        let _ = writeln!(r, "  bank: 見本銀行 本店営業部");
    }
    if i.is_multiple_of(10) {
        let _ = writeln!(
            r,
            "  changes:\n    - {{date: {}-01-15, amount: {}, contract_amount: {}}}",
            year + 1,
            amount + 1_000_000,
            contract + 2_500_000
        );
    }
    if i % 50 == 7 {
        let _ = writeln!(r, "  status: cancelled\n  cancelled_on: {}-01-20", year + 1);
    }
    if customers > 0 {
        let _ = writeln!(r, "  customer: C{:04}", i % customers);
        if kind != "中間前払金保証" || i % 50 == 7 {
            let _ = writeln!(r, "  fee: {}", amount / 250);
        }
        if i % 50 == 7 {
            // 解除, half the fee returned.
            let _ = writeln!(
                r,
                "  changes:\n    - {{date: {}-01-20, fee_returned: {}}}",
                year + 1,
                amount / 500
            );
        }
    }
    r
}

/// A site root with `count` records (of `customers` customers) and its own keys.
fn generate(root: &Path, count: usize, customers: usize, hosho: &str) {
    let _ = fs::remove_dir_all(root);
    fs::create_dir_all(root.join("content")).expect("mkdir");
    fs::create_dir_all(root.join("data/certificates")).expect("mkdir");
    fs::write(
        root.join("hosho.toml"),
        "title = \"証書ベンチマーク\"\nbase_url = \"https://bench.example.jp/\"\n[guarantor]\nname = \"見本保証株式会社\"\nbranch = \"大阪支店\"\naddress = \"大阪府大阪市西区見本町一丁目1番1号\"\ntel = \"06-0000-0000\"\n[adopters]\ncategories = [\"県\"]\n",
    )
    .expect("write");
    fs::write(
        root.join("content/_index.md"),
        "---\ntitle: 証書ベンチマーク\n---\n本文\n",
    )
    .expect("write");
    let mut yaml = String::with_capacity(count * 600);
    for i in 0..count {
        yaml.push_str(&record(i, customers));
    }
    let mut list = String::new();
    for c in 0..customers {
        let _ = writeln!(
            list,
            "- {{code: C{c:04}, name: 株式会社見本建設{c:04}, address: 大阪府大阪市北区見本町{}丁目}}",
            1 + c % 9
        );
    }
    if customers > 0 {
        fs::write(root.join("data/customers.yaml"), list).expect("write customers");
    }
    fs::write(root.join("data/certificates/bench.yaml"), yaml).expect("write records");
    let ok = Command::new(hosho)
        .args(["keygen", "--root"])
        .arg(root)
        .output()
        .expect("keygen");
    assert!(ok.status.success(), "keygen failed");
}

fn build(hosho: &str, root: &Path, threads: Option<usize>) -> (Duration, u64) {
    let mut c = Command::new(hosho);
    c.args(["build", "--root"]).arg(root);
    if let Some(n) = threads {
        c.env("RAYON_NUM_THREADS", n.to_string());
    }
    measure(&mut c)
}

/// The settings, customers and certificates of a generated root, read as the build reads them.
fn load_certificates(root: &Path) -> (Config, Customers, Vec<Certificate>) {
    let config = Config::load(root).expect("config");
    let (mut d, mut w) = (Diagnostics::default(), Diagnostics::default());
    let customers = hosho::certificates::customers::load(root, &mut d);
    let orderers = hosho::common::submission::Orderers::default();
    let refs = input::References {
        customers: &customers,
        rules: &config.fees,
        orderers: &orderers,
        offices: &config.offices,
        guarantor: &config.guarantor,
    };
    let text = fs::read_to_string(root.join("data/certificates/bench.yaml")).expect("read");
    let certificates = input::parse_file(Path::new("bench.yaml"), &text, refs, &mut d, &mut w)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    assert!(d.is_empty(), "{d:?}");
    (config, customers, certificates)
}

/// Files ending in `.ext` under `dir`.
fn count_files(dir: &Path, ext: &str) -> usize {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == ext))
        .count()
}

/// What the 保証料計算書 add to a build: a rebuild that typesets every statement again
/// (their previous outputs removed) against one that reuses everything, and the statements
/// typeset alone (in-process, all cores, no files, no cache).
fn statements_cost(large: &Path, hosho: &str, files: usize) {
    settle();
    let (unchanged, _) = build(hosho, large, None);
    fs::remove_dir_all(large.join("notices/statements")).expect("remove statements");
    settle();
    let (with_statements, _) = build(hosho, large, None);

    let (config, customers, certificates) = load_certificates(large);
    let list = statements::statements(&certificates, &customers);
    let template = Template::load(large, statements::TEMPLATE).expect("template");
    let inputs: Vec<serde_json::Value> = list
        .iter()
        .map(|s| s.inputs(&config.guarantor, &config.fees).expect("inputs"))
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for chunk in inputs.chunks(inputs.len().div_ceil(threads).max(1)) {
            let template = &template;
            std::thread::Builder::new()
                .stack_size(16 * 1024 * 1024)
                .spawn_scoped(scope, move || {
                    for (i, one) in chunk.iter().enumerate() {
                        template.pdf(one, &format!("bench-{i}")).expect("typeset");
                    }
                })
                .expect("thread");
        }
    });
    let alone = started.elapsed();
    let added = with_statements.saturating_sub(unchanged);
    println!(
        "\n保証料計算書: {} statements ({files} files) for {} customers",
        list.len(),
        customers.0.len()
    );
    println!(
        "  rebuild, nothing changed          {:>8.2} s",
        unchanged.as_secs_f64()
    );
    println!(
        "  rebuild, every statement again    {:>8.2} s   added {:.2} s",
        with_statements.as_secs_f64(),
        added.as_secs_f64()
    );
    println!(
        "  their typesetting alone           {:>8.2} s   ({:.2} ms each, {threads} threads)",
        alone.as_secs_f64(),
        per(alone, list.len()) * threads as f64
    );
}

fn per(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1000.0 / n as f64
}

fn main() {
    // As in hosho's main: typst needs more stack than rayon's default worker threads have.
    rayon::ThreadPoolBuilder::new()
        .stack_size(16 * 1024 * 1024)
        .build_global()
        .expect("thread pool");
    let count = env_number("HOSHO_BENCH_CERTS", 10_000);
    let customers = env_number("HOSHO_BENCH_CUSTOMERS", 500);
    let scale_count = env_number("HOSHO_BENCH_SCALE_CERTS", 1_000);
    let sample = env_number("HOSHO_BENCH_SAMPLE", 300);
    let cli_sample = env_number("HOSHO_BENCH_CLI_SAMPLE", 50);
    let hosho_path = common::hosho_bin();
    let hosho = hosho_path.to_str().expect("a UTF-8 path");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let work = std::env::var_os("HOSHO_BENCH_DIR").map_or_else(
        || {
            if Path::new("/dev/shm").is_dir() {
                PathBuf::from("/dev/shm/hosho-cert-bench")
            } else {
                repo.join("target/cert-bench")
            }
        },
        PathBuf::from,
    );
    println!(
        "hosho certificate benchmark ({} cores), work directory {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        work.display()
    );

    // 1. Full build and one-record rebuild.
    let large = work.join("large");
    generate(&large, count, customers, hosho);
    settle();
    let (full, full_rss) = build(hosho, &large, None);
    let statement_files = count_files(&large.join("notices/statements"), "pdf");
    let yaml_path = large.join("data/certificates/bench.yaml");
    let yaml = fs::read_to_string(&yaml_path).expect("read");
    // Record 0's project: its certificate, notice and statement change.
    fs::write(
        &yaml_path,
        yaml.replacen(
            "  project: 市道見本0号線道路改良工事（その1）",
            "  project: 市道見本0号線道路改良工事（その1・変更）",
            1,
        ),
    )
    .expect("write");
    settle();
    let (incremental, incremental_rss) = build(hosho, &large, None);
    println!("\n{count} records (KDF: PBKDF2-HMAC-SHA256, 100,000 iterations each)");
    println!(
        "  full build            {:>8.2} s   {:>7.1} certificates/s   peak RSS {:>6.1} MiB",
        full.as_secs_f64(),
        count as f64 / full.as_secs_f64(),
        full_rss as f64 / 1024.0
    );
    println!(
        "  one record changed    {:>8.2} s                           peak RSS {:>6.1} MiB",
        incremental.as_secs_f64(),
        incremental_rss as f64 / 1024.0
    );
    if customers > 0 {
        statements_cost(&large, hosho, statement_files);
    }

    // 2. Thread scaling on a smaller set (fresh vault each time).
    let small = work.join("scale");
    let mut scaling = Vec::new();
    for threads in [1, 2] {
        generate(&small, scale_count, 0, hosho);
        settle();
        let (t, _) = build(hosho, &small, Some(threads));
        scaling.push(t);
    }
    println!("\nthread scaling, full build of {scale_count} records");
    println!(
        "  1 thread              {:>8.2} s",
        scaling[0].as_secs_f64()
    );
    println!(
        "  2 threads             {:>8.2} s   speed-up {:.2}×",
        scaling[1].as_secs_f64(),
        scaling[0].as_secs_f64() / scaling[1].as_secs_f64()
    );

    // 3. Typesetting per certificate, one thread: hosho's Template against a bare loop.
    let (config, _, mut certificates) = load_certificates(&large);
    certificates.truncate(sample);
    let verify_url = config.verify_url();
    let extras = Extras {
        verify_url: &verify_url,
        key: "332E1E7K9Q",
        submission: None,
    };
    let inputs: Vec<(serde_json::Value, serde_json::Value)> = certificates
        .iter()
        .map(|c| {
            let record = &c.record;
            let all = documents::all_inputs(record, extras).expect("inputs");
            let full = |i: usize| {
                documents::DOCUMENTS[i]
                    .template_inputs(&all[i])
                    .expect("derived inputs")
            };
            (full(0), full(1))
        })
        .collect();
    let certificate_tpl = Template::load(&repo, "certificate.typ").expect("template");
    let notice_tpl = Template::load(&repo, "notice.typ").expect("template");
    // Warm both paths once (font parsing, comemo caches).
    let _ = certificate_tpl.pdf(&inputs[0].0, "warm");
    let started = Instant::now();
    for (i, (c, n)) in inputs.iter().enumerate() {
        certificate_tpl.pdf(c, &format!("c{i}")).expect("pdf");
        notice_tpl.pdf(n, &format!("n{i}")).expect("pdf");
    }
    let hosho_typeset = started.elapsed();

    let engine = |name: &str| {
        let source = fs::read_to_string(repo.join("templates").join(name)).expect("template");
        TypstEngine::builder()
            .main_file(source)
            .fonts(fonts())
            .build()
    };
    let (bare_c, bare_n) = (engine("certificate.typ"), engine("notice.typ"));
    let dicts: Vec<(Dict, Dict)> = inputs
        .iter()
        .map(|(c, n)| match (to_typst(c), to_typst(n)) {
            (Value::Dict(c), Value::Dict(n)) => (c, n),
            _ => panic!("inputs are dictionaries"),
        })
        .collect();
    let pdf = |engine: &typst_as_lib::TypstEngine<typst_as_lib::TypstTemplateMainFile>,
               dict: Dict,
               ident: String| {
        let doc: PagedDocument = engine.compile_with_input(dict).output.expect("compile");
        let options = typst_pdf::PdfOptions {
            ident: Smart::Custom(ident),
            ..typst_pdf::PdfOptions::default()
        };
        typst_pdf::pdf(&doc, &options).expect("pdf")
    };
    let _ = pdf(&bare_c, dicts[0].0.clone(), "warm".into());
    let started = Instant::now();
    for (i, (c, n)) in dicts.iter().enumerate() {
        pdf(&bare_c, c.clone(), format!("c{i}"));
        pdf(&bare_n, n.clone(), format!("n{i}"));
    }
    let floor = started.elapsed();
    let kdf_started = Instant::now();
    for i in 0..20u8 {
        let _ = hosho::trust::manifest::make_verifier("332E1E7K9Q", &[i; 16], 100_000);
    }
    let kdf = kdf_started.elapsed() / 20;
    println!("\ntypesetting per certificate (certificate + notice), one thread, {sample} records");
    println!(
        "  bare typst-as-lib loop (floor)  {:>7.2} ms",
        per(floor, sample)
    );
    println!(
        "  hosho Template::pdf             {:>7.2} ms   ratio to floor {:.3}×",
        per(hosho_typeset, sample),
        hosho_typeset.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "  KDF (one verifier)              {:>7.2} ms",
        kdf.as_secs_f64() * 1000.0
    );

    // 4. The typst CLI, once per certificate, on the certificate template.
    let typst_ok = Command::new("typst")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if typst_ok && cli_sample > 0 {
        let dir = work.join("cli");
        fs::create_dir_all(&dir).expect("mkdir");
        let template = fs::read_to_string(repo.join("templates/certificate.typ"))
            .expect("template")
            .replace("#let d = sys.inputs", "#let d = json(\"input.json\")");
        fs::write(dir.join("certificate.typ"), template).expect("write");
        // As a user would script it (system fonts discovered too), and the fastest way
        // (only the bundled fonts).
        let run_cli = |extra: &[&str]| {
            let started = Instant::now();
            for (i, (c, _)) in inputs.iter().take(cli_sample).enumerate() {
                fs::write(dir.join("input.json"), serde_json::to_vec(c).expect("json"))
                    .expect("write");
                let out = Command::new("typst")
                    .arg("compile")
                    .args(extra)
                    .arg("--font-path")
                    .arg(repo.join("assets/fonts"))
                    .arg(dir.join("certificate.typ"))
                    .arg(dir.join(format!("{i}.pdf")))
                    .output()
                    .expect("typst");
                assert!(
                    out.status.success(),
                    "typst compile: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            started.elapsed()
        };
        let cli_default = run_cli(&[]);
        let cli_bundled = run_cli(&["--ignore-system-fonts"]);
        let started = Instant::now();
        for (i, (c, _)) in inputs.iter().take(cli_sample).enumerate() {
            certificate_tpl.pdf(c, &format!("c{i}")).expect("pdf");
        }
        let ours_one = started.elapsed();
        let started = Instant::now();
        {
            use rayon::prelude::*;
            inputs
                .par_iter()
                .take(cli_sample)
                .enumerate()
                .for_each(|(i, (c, _))| {
                    certificate_tpl.pdf(c, &format!("c{i}")).expect("pdf");
                });
        }
        let ours_all = started.elapsed();
        let version = Command::new("typst")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        println!("\ncertificate template only, {cli_sample} certificates ({version})");
        println!(
            "  typst compile, default font discovery  {:>7.2} ms per certificate",
            per(cli_default, cli_sample)
        );
        println!(
            "  typst compile --ignore-system-fonts    {:>7.2} ms per certificate",
            per(cli_bundled, cli_sample)
        );
        println!(
            "  hosho, one thread                      {:>7.2} ms per certificate",
            per(ours_one, cli_sample)
        );
        println!(
            "  hosho, all cores                       {:>7.2} ms per certificate",
            per(ours_all, cli_sample)
        );
        println!(
            "  ratio to the CLI as scripted: {:.1}× (one thread), {:.1}× (all cores); to the fastest CLI: {:.1}×, {:.1}×",
            cli_default.as_secs_f64() / ours_one.as_secs_f64(),
            cli_default.as_secs_f64() / ours_all.as_secs_f64(),
            cli_bundled.as_secs_f64() / ours_one.as_secs_f64(),
            cli_bundled.as_secs_f64() / ours_all.as_secs_f64()
        );
    } else {
        println!("\ntypst CLI not found (cargo install typst-cli): no comparison");
    }
    if std::env::var_os("HOSHO_BENCH_KEEP").is_none_or(|v| v != "1") {
        let _ = fs::remove_dir_all(&work);
    }
}
