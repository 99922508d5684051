//! Crash consistency: `hosho build` killed with SIGKILL at 30 moments of a rebuild that
//! changes a certificate and a page. After each kill, site-out/, vault/ and notices/ are each
//! the old tree or the new one, complete; the next build succeeds and leaves nothing behind;
//! `hosho verify` accepts every number.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{copy_dir, snapshot, SiteDir};

const TREES: [&str; 3] = ["site-out", "vault", "notices"];
/// The changed certificate, and what the change writes into its record, notice and page.
const CHANGED: &str = "2070004427";
const NEW_PROJECT: &str = "みほんトンネル工事（第二期）";
const NEW_PAGE_TEXT: &str = "この段落は再構築で加わりました。";

type Tree = BTreeMap<String, Vec<u8>>;

/// The demo built once (the old state), with its sources then changed (the new input).
fn changed_demo() -> SiteDir {
    let site = SiteDir::demo();
    site.build();
    let certificates = site.root.join("data/certificates/demo.yaml");
    let text = fs::read_to_string(&certificates).expect("demo.yaml");
    let text = text.replacen(
        "project: みほんトンネル工事",
        &format!("project: {NEW_PROJECT}"),
        1,
    );
    fs::write(&certificates, text).expect("write");
    let about = site.root.join("content/about.md");
    let text = fs::read_to_string(&about).expect("about.md");
    fs::write(&about, format!("{text}\n{NEW_PAGE_TEXT}\n")).expect("write");
    site
}

/// What a complete new tree holds: its file names (every build writes the same ones), and
/// a file the change touched, which must differ from the old tree's and hold `text`.
struct NewTree {
    names: BTreeSet<String>,
    changed_file: String,
    text: &'static str,
}

fn is_new(tree: &Tree, old: &Tree, expected: &NewTree) -> bool {
    let names: BTreeSet<String> = tree.keys().cloned().collect();
    let file = &expected.changed_file;
    let changed = tree.get(file).is_some_and(|b| {
        old.get(file) != Some(b) && String::from_utf8_lossy(b).contains(expected.text)
    });
    names == expected.names && changed
}

/// `hosho build` on `root`, let finish: it must succeed.
fn build(root: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_hosho"))
        .args(["build", "--root"])
        .arg(root)
        .env_remove("RUST_LOG")
        .output()
        .expect("hosho build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `hosho build` on `root` and kills it (SIGKILL) after `after`; whether it had ended.
fn build_killed_after(root: &Path, after: Duration) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hosho"))
        .args(["build", "--root"])
        .arg(root)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hosho build");
    let started = Instant::now();
    while started.elapsed() < after {
        if child.try_wait().expect("wait").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// `hosho verify` with every number and its key.
fn verify_all(root: &Path) {
    let secret = fs::read(root.join("keys/authkey.secret")).expect("secret");
    let imported = imported_keys(&root.join("data/certificates/demo.yaml"));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(root.join("vault/manifest.json")).expect("manifest"))
            .expect("json");
    let entries = manifest["entries"].as_array().expect("entries");
    assert!(!entries.is_empty());
    for entry in entries {
        let number = entry["number"].as_str().expect("number");
        let key = imported
            .get(number)
            .cloned()
            .unwrap_or_else(|| hosho::trust::authkey::derive_key(&secret, number));
        let out = Command::new(env!("CARGO_BIN_EXE_hosho"))
            .args(["verify", "--root"])
            .arg(root)
            .args([number, &key])
            .output()
            .expect("hosho verify");
        assert!(
            out.status.success(),
            "{number}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The keys a certificate file gives itself (`auth_key:`, imported from the guarantor's
/// system) by number; the others are derived from the auth-key secret.
fn imported_keys(file: &Path) -> BTreeMap<String, String> {
    let text = fs::read_to_string(file).expect("certificates");
    let mut keys = BTreeMap::new();
    let mut number = None;
    for line in text.lines().map(str::trim) {
        if let Some(n) = line.strip_prefix("- number:") {
            number = Some(n.trim().trim_matches('"').to_owned());
        } else if let (Some(key), Some(n)) = (line.strip_prefix("auth_key:"), &number) {
            let key = key.split('#').next().unwrap_or_default().trim();
            keys.insert(n.clone(), key.to_owned());
        }
    }
    keys
}

fn root_entries(root: &Path) -> BTreeSet<String> {
    fs::read_dir(root)
        .expect("root")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_build_killed_at_any_of_30_moments_leaves_each_output_old_or_new_and_the_next_build_succeeds() {
    let old = changed_demo();
    let old_trees: Vec<Tree> = TREES.map(|t| snapshot(&old.root.join(t))).into();
    let entries = root_entries(&old.root);
    // The new trees, from a build that was let finish; its duration spaces the kills.
    let reference = tempfile::tempdir().expect("tempdir");
    let reference = reference.path().join("site");
    copy_dir(&old.root, &reference);
    let started = Instant::now();
    build(&reference);
    let duration = started.elapsed();
    let changed = [
        ("about/index.html".to_owned(), NEW_PAGE_TEXT),
        (format!("records/{CHANGED}.json"), NEW_PROJECT),
        // A PDF: its text is compressed, so only its bytes are compared.
        (format!("{CHANGED}.pdf"), ""),
    ];
    let new: Vec<NewTree> = TREES
        .iter()
        .zip(changed)
        .map(|(tree, (changed_file, text))| NewTree {
            names: snapshot(&reference.join(tree)).into_keys().collect(),
            changed_file,
            text,
        })
        .collect();
    for ((tree, old_tree), new_tree) in TREES.iter().zip(&old_trees).zip(&new) {
        let built = snapshot(&reference.join(tree));
        assert!(
            is_new(&built, old_tree, new_tree),
            "the change reaches {tree}"
        );
    }
    let mut killed = 0;
    for moment in 0..30 {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("site");
        let mut after = duration.mul_f64((f64::from(moment) + 0.5) / 30.0);
        // A build that ended before its kill (the machine was faster than when it was
        // timed) is tried again from the old tree, killed sooner, at most three times.
        for _ in 0..3 {
            let _ = fs::remove_dir_all(&root);
            copy_dir(&old.root, &root);
            if !build_killed_after(&root, after) {
                killed += 1;
                break;
            }
            after /= 2;
        }
        for ((tree, old_tree), new_tree) in TREES.iter().zip(&old_trees).zip(&new) {
            let now = snapshot(&root.join(tree));
            assert!(
                &now == old_tree || is_new(&now, old_tree, new_tree),
                "moment {moment} ({after:?}): {tree} is neither the old nor a complete new tree"
            );
        }
        build(&root);
        for ((tree, old_tree), new_tree) in TREES.iter().zip(&old_trees).zip(&new) {
            let now = snapshot(&root.join(tree));
            assert!(is_new(&now, old_tree, new_tree), "moment {moment}: {tree}");
        }
        // The last build's public tree is left beside site-out/ by design (removed while the
        // next build works); nothing else may remain, above all no private tree.
        let mut left = root_entries(&root);
        left.retain(|name| !entries.contains(name));
        let public_old = left
            .iter()
            .filter(|n| n.starts_with(".site-out.old-"))
            .count();
        assert!(
            public_old <= 1 && left.len() == public_old,
            "moment {moment}: left behind: {left:?}"
        );
        verify_all(&root);
    }
    assert!(
        killed >= 25,
        "only {killed} of 30 builds were killed before they ended"
    );
}
