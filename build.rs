//! What the binary takes from its build:
//!
//! - the commit hosho is built from, for `hosho --version` and the `build_info` metric:
//!   `HOSHO_COMMIT` when the environment sets it (a package built from a tarball), else what
//!   `git rev-parse` says, else `unknown`. No build time: the same sources give the same
//!   binary.
//! - the embedded fonts (assets/fonts/), compressed with LZMA into `OUT_DIR`: 13.9 MB of
//!   TrueType are 7.9 MB in the binary (deflate made 9.7 MB), unpacked once by a build that
//!   typesets (BENCHMARKS.md, issue 21). A font is compressed again only when its file
//!   changed, not at every commit. Their SHA-256 (hex) goes beside them: the typesetter's
//!   fingerprint is made from it, so a build that typesets nothing never unpacks them.
//! - on Linux with glibc, relative relocations packed (`DT_RELR`, glibc 2.36 or later): 1.9 MB
//!   of `.rela.dyn` become a few kilobytes.

use sha2::Digest as _;
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

    relative_relocations_packed();

    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    for font in FONTS {
        let source = Path::new("assets/fonts").join(font);
        println!("cargo:rerun-if-changed={}", source.display());
        compress_if_changed(&source, &Path::new(&out).join(format!("{font}.lzma")));
    }
}

/// Writes `source` compressed to `target` (an `.lzma` file: its header gives the dictionary
/// and the unpacked size), unless `target` was made from the same file (its
/// length and modification time, kept beside it).
fn compress_if_changed(source: &Path, target: &Path) {
    let meta = std::fs::metadata(source).expect("a font of assets/fonts");
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let stamp = format!("{} {modified}", meta.len());
    let stamp_file = target.with_extension("lzma.from");
    let hash_file = target.with_extension("sha256");
    if target.exists()
        && hash_file.exists()
        && std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(&stamp)
    {
        return;
    }
    let bytes = std::fs::read(source).expect("a font of assets/fonts");
    let mut options = lzma_rust2::LzmaOptions::with_preset(9);
    // The largest font is 7.8 MB: a bigger dictionary finds nothing more, and the reader
    // allocates what the header names.
    options.dict_size = 16 << 20;
    let mut writer = lzma_rust2::LzmaWriter::new_use_header(
        Vec::with_capacity(bytes.len()),
        &options,
        Some(bytes.len() as u64),
    )
    .expect("LZMA options for the fonts");
    std::io::Write::write_all(&mut writer, &bytes).expect("compressing into memory");
    let compressed = writer.finish().expect("compressing into memory");
    std::fs::write(target, compressed).expect("OUT_DIR is writable");
    let hash: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(&hash_file, hash).expect("OUT_DIR is writable");
    std::fs::write(&stamp_file, stamp).expect("OUT_DIR is writable");
}

/// Packs relative relocations on Linux with glibc (`-z pack-relative-relocs`, `DT_RELR`,
/// which glibc 2.36 and Debian 12 load): the position-independent binary's 1.9 MB table of
/// relative relocations shrinks to a few kilobytes.
fn relative_relocations_packed() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
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
