//! `hosho --version`: the version, the commit the binary was built from, and the formats it
//! reads and writes; `-V` the first line alone.

use std::process::Command;

use crate::support::repo_root;

fn hosho(flag: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hosho"))
        .arg(flag)
        .output()
        .expect("hosho");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn the_version_names_the_commit_and_every_format() {
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        );
    let first = format!("hosho {} (commit {head})", env!("CARGO_PKG_VERSION"));
    assert_eq!(hosho("-V").trim_end(), first);
    let long = hosho("--version");
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(
        lines,
        [
            first.as_str(),
            "manifest: writes format 3, reads 1 and 3 (docs/manifest.md)",
            "receipt: hosho-receipt-1 (docs/receipt.md)",
            "certificate record: format 1 (docs/vault.md)",
            "vault cache: format 3 (an older one is not read: the next build typesets everything once)",
        ]
    );
}
