//! The live preview's incremental rebuilds (`hosho::preview::rebuild::Rebuilder`) against clean
//! renders: after every edit of a random sequence, `site-out/` must hold exactly the files a
//! build from scratch makes of the same inputs, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use hosho::build::{BuildSummary, Paths};
use hosho::preview::rebuild::Rebuilder;
use hosho::site::Site;

use crate::support::SiteDir;

/// Every file and directory under `dir` but the marker, walked as `hosho build` lists them
/// in it (directories end in `/`).
fn listing(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.expect("walk site-out"))
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .expect("inside")
                .to_string_lossy();
            let mut rel = rel.replace('\\', "/");
            if e.file_type().is_dir() {
                rel.push('/');
            }
            rel
        })
        .filter(|rel| rel != ".hosho-output")
        .collect()
}

/// Every file under `dir` but the marker, by `/`-separated relative path.
fn files_on_disk(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    listing(dir)
        .into_iter()
        .filter(|rel| !rel.ends_with('/'))
        .map(|rel| {
            let bytes = fs::read(dir.join(&rel)).expect("read");
            (rel, bytes)
        })
        .collect()
}

/// Asserts that `site-out/` is what a clean render of `root` with the build's trust makes.
fn assert_like_a_clean_build(root: &Path, out: &Path, summary: &BuildSummary, step: &str) {
    let (site, d) = Site::load_partial(root);
    assert!(d.is_empty(), "{step}: {d:?}");
    let mut site = site.expect("a valid site");
    site.set_trust(Some(summary.trust.clone()));
    let mut d = Default::default();
    let clean = site.render(&mut d).expect("renders");
    let on_disk = files_on_disk(out);
    let clean_paths: BTreeSet<&String> = clean.files.keys().collect();
    let disk_paths: BTreeSet<&String> = on_disk.keys().collect();
    assert_eq!(disk_paths, clean_paths, "{step}: the files differ");
    for (path, bytes) in &clean.files {
        assert!(on_disk[path] == *bytes, "{step}: {path} differs");
    }
    let marker = fs::read_to_string(out.join(".hosho-output")).expect("marker");
    let listed: Vec<&str> = marker.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(listed, listing(out), "{step}: the marker's list");
}

/// A small deterministic generator, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// One edit of the demo root; returns the files it touched.
fn edit(root: &Path, kind: usize, step: usize, added: &mut Vec<PathBuf>) -> Vec<PathBuf> {
    let append = |rel: &str, text: &str| {
        let path = root.join(rel);
        let mut old = fs::read_to_string(&path).expect("read input");
        old.push_str(text);
        fs::write(&path, old).expect("write input");
        vec![path]
    };
    let replace = |rel: &str, from: &str, to: &str| {
        let path = root.join(rel);
        let old = fs::read_to_string(&path).expect("read input");
        assert!(old.contains(from), "{rel} has {from}");
        fs::write(&path, old.replacen(from, to, 1)).expect("write input");
        vec![path]
    };
    match kind {
        // A page's body.
        0 => append("content/about.md", &format!("\n追記 {step} です。\n")),
        // A title, which its section's list shows.
        1 => replace(
            "content/notices/niihama.md",
            "title: ",
            &format!("title: （{step}）"),
        ),
        // A new dated page in a section: the list, 新着情報, the feed and the sitemap.
        2 => {
            let path = root.join(format!("content/notices/step-{step}.md"));
            let page = format!(
                "---\ntitle: 第{step}のお知らせ\ndate: 2025-03-{:02}\n---\n本文 {step}。[Q&A](/qa/)\n",
                step % 28 + 1
            );
            fs::write(&path, page).expect("write page");
            added.push(path.clone());
            vec![path]
        }
        // One of those removed again.
        3 => match added.pop() {
            Some(path) => {
                fs::remove_file(&path).expect("remove page");
                vec![path]
            }
            None => append("content/flow.md", &format!("\n手順の補足 {step}。\n")),
        },
        // An adoption row (no rules for the notice: the site alone changes).
        4 => append(
            "data/adopters/ehime.yaml",
            &format!(
                "  - {{name: 試験町{step}, category: 市町村, start: 2025-0{}-01}}\n",
                step % 9 + 1
            ),
        ),
        // A Q&A entry.
        5 => append(
            "data/qa.yaml",
            &format!("- q: 試験の質問 {step} ですか。\n  a: はい、{step} です。\n"),
        ),
        // A public asset.
        6 => {
            let path = root.join(format!("assets/img/step-{step}.svg"));
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(
                &path,
                format!("<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"s{step}\"/>"),
            )
            .expect("write asset");
            vec![path]
        }
        // A template: everything again, through a full build.
        _ => append("templates/page.html", &format!("\n{{# 変更 {step} #}}\n")),
    }
}

#[test]
fn incremental_rebuilds_equal_clean_builds_over_random_edits() {
    let site = SiteDir::demo();
    let root = site.root.clone();
    let paths = Paths::new(&root, None, None, None, None);
    let mut rebuilder = Rebuilder::new(paths.clone());
    let summary = rebuilder.build().expect("first build");
    assert!(summary.certificates_built);
    assert_like_a_clean_build(&root, &paths.out, summary, "first build");
    let mut rng = Lcg(20_261_130);
    let mut added = Vec::new();
    let mut incremental = 0;
    for step in 0..24 {
        let kind = rng.below(8);
        let changed: BTreeSet<PathBuf> = edit(&root, kind, step, &mut added).into_iter().collect();
        let summary = rebuilder
            .rebuild(&changed)
            .unwrap_or_else(|e| panic!("step {step} (edit {kind}): {e:#}"));
        if !summary.certificates_built {
            incremental += 1;
            assert!(
                summary.written < summary.files / 2,
                "step {step}: an edit rewrote {} of {} files",
                summary.written,
                summary.files
            );
        }
        assert_like_a_clean_build(
            &root,
            &paths.out,
            summary,
            &format!("step {step} (edit {kind})"),
        );
    }
    assert!(
        incremental >= 12,
        "only {incremental} of 24 rebuilds were incremental"
    );
}

#[test]
fn a_failed_incremental_rebuild_leaves_the_site_and_the_next_one_catches_up() {
    let site = SiteDir::demo();
    let root = site.root.clone();
    let paths = Paths::new(&root, None, None, None, None);
    let mut rebuilder = Rebuilder::new(paths.clone());
    rebuilder.build().expect("first build");
    let before = files_on_disk(&paths.out);
    let page = root.join("content/about.md");
    let good = fs::read_to_string(&page).expect("read");
    // A broken link: the page renders, the link check fails, nothing is written.
    fs::write(&page, format!("{good}\n[どこにもない](/nowhere/)\n")).expect("write");
    let changed = BTreeSet::from([page.clone()]);
    let e = rebuilder.rebuild(&changed).expect_err("a broken link");
    assert!(
        format!("{e:#}").contains("content/about.md:") && format!("{e:#}").contains("/nowhere/"),
        "{e:#}"
    );
    assert!(
        files_on_disk(&paths.out) == before,
        "a failed rebuild wrote files"
    );
    // Fixed differently: the next rebuild shows the fix, as a clean build would.
    fs::write(&page, format!("{good}\n修正しました。\n")).expect("write");
    let summary = rebuilder.rebuild(&changed).expect("fixed");
    assert!(!summary.certificates_built);
    assert_eq!(summary.written, 1);
    assert_like_a_clean_build(&root, &paths.out, summary, "after the fix");
}
