//! Two things the binary carries from its build:
//!
//! - the commit hosho is built from, for `hosho --version` and the `build_info` metric:
//!   `HOSHO_COMMIT` when the environment sets it (a package built from a tarball), else what
//!   `git rev-parse` says, else `unknown`. No build time: the same sources give the same
//!   binary.
//! - the embedded fonts (assets/fonts/), deflated into `OUT_DIR`: 13.9 MB of TrueType are
//!   9.7 MB in the binary, inflated once by a build that typesets (BENCHMARKS.md, issue 21).
//!   A font is deflated again only when its file changed, not at every commit.

use std::path::Path;
use std::process::Command;

/// The fonts `src/certificates/typeset.rs` embeds.
const FONTS: [&str; 2] = ["ipaexm.ttf", "ipaexg.ttf"];

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

    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    for font in FONTS {
        let source = Path::new("assets/fonts").join(font);
        println!("cargo:rerun-if-changed={}", source.display());
        deflate_if_changed(&source, &Path::new(&out).join(format!("{font}.deflate")));
    }
}

/// Writes `source` deflated to `target`, unless `target` was made from the same file (its
/// length and modification time, kept beside it).
fn deflate_if_changed(source: &Path, target: &Path) {
    let meta = std::fs::metadata(source).expect("a font of assets/fonts");
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let stamp = format!("{} {modified}", meta.len());
    let stamp_file = target.with_extension("deflate.from");
    if target.exists() && std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(&stamp) {
        return;
    }
    let bytes = std::fs::read(source).expect("a font of assets/fonts");
    let deflated = miniz_oxide::deflate::compress_to_vec(&bytes, 9);
    std::fs::write(target, deflated).expect("OUT_DIR is writable");
    std::fs::write(&stamp_file, stamp).expect("OUT_DIR is writable");
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
