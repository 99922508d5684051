//! The live preview's incremental rebuilds (`hosho::preview::rebuild::Rebuilder`) against clean
//! builds: after every edit of a random sequence, `site-out/` must hold exactly the files a
//! build from scratch makes of the same inputs, byte for byte, and so must `notices/` and
//! `vault/` (the manifest's entries but for their random salts and verifiers).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use hosho::build::Paths;
use hosho::preview::rebuild::{Rebuilder, Rebuilt};
use hosho::site::cache::{InputCache, RenderCache};
use hosho::site::{MemorySink, Site, Trust};

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
fn assert_like_a_clean_build(root: &Path, out: &Path, trust: Option<&Trust>, step: &str) {
    let (site, mut d) = Site::load(root, &mut InputCache::disabled());
    assert!(d.is_empty(), "{step}: {d:?}");
    let mut site = site.expect("a valid site");
    site.set_trust(Some(trust.expect("a successful build").clone()));
    let sink = MemorySink::default();
    site.render(&sink, &RenderCache::default(), &mut d)
        .expect("renders");
    assert!(d.is_empty(), "{step}: {d:?}");
    let clean = sink.into_output();
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
        7 => append("templates/page.html", &format!("\n{{# 変更 {step} #}}\n")),
        // An orderer's rules for the notice (熊本県, to which three certificates go): the
        // site, and the notices that print them.
        8 => replace(
            "data/adopters/kumamoto.yaml",
            "        - 電子契約システムで",
            &format!("        - 電子契約システムで（{step}）"),
        ),
        // A certificate: its record, PDF and notice, and the manifest.
        9 => replace(
            "data/certificates/demo.yaml",
            "  project: 市道みほん通り舗装補修工事",
            &format!("  project: 市道みほん通り舗装補修工事{step}"),
        ),
        // A customer on 保証料一括納付制度: the statements.
        _ => replace(
            "data/customers.yaml",
            "  address: 熊本県熊本市中央区見本町二丁目3番4号",
            &format!("  address: 熊本県熊本市中央区見本町二丁目3番4号（{step}）"),
        ),
    }
}

/// The manifest's entries without their salts and verifiers (random on every build).
fn manifest_entries(vault: &Path) -> Vec<serde_json::Value> {
    let text = fs::read(vault.join("manifest.json")).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_slice(&text).expect("json");
    let mut entries = manifest["entries"].as_array().expect("entries").clone();
    for e in &mut entries {
        let e = e.as_object_mut().expect("an entry");
        e.remove("salt");
        e.remove("verifier");
    }
    entries
}

/// Asserts that `notices/` and `vault/` of `root` are what a build from scratch of the same
/// inputs and keys writes.
fn assert_private_outputs_like_a_clean_build(root: &Path, step: &str) {
    let clean = tempfile::tempdir().expect("tempdir");
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.expect("walk the root");
        let rel = entry.path().strip_prefix(root).expect("inside");
        let first = rel
            .iter()
            .next()
            .and_then(|c| c.to_str())
            .unwrap_or_default();
        if ["site-out", "vault", "notices", "state"].contains(&first) || first.starts_with('.') {
            continue;
        }
        let to = clean.path().join(rel);
        if entry.file_type().is_dir() {
            fs::create_dir_all(&to).expect("mkdir");
        } else {
            fs::copy(entry.path(), &to).expect("copy");
        }
    }
    hosho::build::build(&Paths::new(clean.path(), None, None, None, None))
        .unwrap_or_else(|e| panic!("{step}: the clean build: {e:#}"));
    let notices = files_on_disk(&root.join("notices"));
    let clean_notices = files_on_disk(&clean.path().join("notices"));
    assert_eq!(
        notices.keys().collect::<Vec<_>>(),
        clean_notices.keys().collect::<Vec<_>>(),
        "{step}: the notices' files"
    );
    for (path, bytes) in &clean_notices {
        assert!(notices[path] == *bytes, "{step}: notices/{path} differs");
    }
    let vault = files_on_disk(&root.join("vault"));
    let clean_vault = files_on_disk(&clean.path().join("vault"));
    let signed = ["manifest.json", "manifest.json.sig", "cache.json"];
    for (path, bytes) in &clean_vault {
        if !signed.contains(&path.as_str()) {
            assert!(
                vault.get(path) == Some(bytes),
                "{step}: vault/{path} differs"
            );
        }
    }
    assert_eq!(vault.len(), clean_vault.len(), "{step}: the vault's files");
    assert_eq!(
        manifest_entries(&root.join("vault")),
        manifest_entries(&clean.path().join("vault")),
        "{step}: the manifest's entries"
    );
}

#[test]
fn incremental_rebuilds_equal_clean_builds_over_random_edits() {
    let site = SiteDir::demo();
    let root = site.root.clone();
    let paths = Paths::new(&root, None, None, None, None);
    let mut rebuilder = Rebuilder::new(paths.clone());
    rebuilder.build().expect("first build");
    assert_like_a_clean_build(&root, &paths.out, rebuilder.trust(), "first build");
    let mut rng = Lcg(20_261_130);
    let mut added = Vec::new();
    let (mut incremental, mut kinds) = (0, BTreeSet::new());
    // Every kind of edit once, in a random order, then random ones.
    let mut order: Vec<usize> = (0..11).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    for step in 0..24 {
        let kind = order.get(step).copied().unwrap_or_else(|| rng.below(11));
        kinds.insert(kind);
        let changed: BTreeSet<PathBuf> = edit(&root, kind, step, &mut added).into_iter().collect();
        let private_before = (files_on_disk(&paths.notices), files_on_disk(&paths.vault));
        let rebuilt = rebuilder
            .rebuild(&changed)
            .unwrap_or_else(|e| panic!("step {step} (edit {kind}): {e:#}"));
        let what = format!("step {step} (edit {kind})");
        // After every step, incremental or not: an edit the site alone cannot show (the
        // notices print the orderers' rules) must have rebuilt the private outputs too.
        assert_private_outputs_like_a_clean_build(&root, &what);
        if let Rebuilt::Site(update) = &rebuilt {
            incremental += 1;
            assert!(
                update.written < update.files / 2,
                "step {step}: an edit rewrote {} of {} files",
                update.written,
                update.files
            );
            let private_after = (files_on_disk(&paths.notices), files_on_disk(&paths.vault));
            assert!(
                private_after == private_before,
                "{what}: an incremental rebuild touched notices/ or vault/"
            );
        }
        assert_like_a_clean_build(&root, &paths.out, rebuilder.trust(), &what);
    }
    // Every kind of edit was made, the private ones included.
    assert_eq!(kinds.len(), 11, "edits made: {kinds:?}");
    assert!(
        incremental >= 8,
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
    let rebuilt = rebuilder.rebuild(&changed).expect("fixed");
    let Rebuilt::Site(update) = rebuilt else {
        panic!("a full build after a failed incremental one: {rebuilt:?}");
    };
    assert_eq!(update.written, 1);
    assert_like_a_clean_build(&root, &paths.out, rebuilder.trust(), "after the fix");
}
