//! Records the commit hosho is built from, for `hosho --version` and the `build_info`
//! metric: `HOSHO_COMMIT` when the environment sets it (a package built from a tarball),
//! else what `git rev-parse` says, else `unknown`. No build time: the same sources give the
//! same binary.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=HOSHO_COMMIT");
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        println!("cargo:rerun-if-changed={path}");
    }
    let commit = std::env::var("HOSHO_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=HOSHO_COMMIT={commit}");
}

/// The abbreviated commit of the checkout, if this is one.
fn git_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !commit.is_empty()).then_some(commit)
}
