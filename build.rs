//! What the binary takes from its build:
//!
//! - the commit hosho is built from, for `hosho --version` and the `build_info` metric:
//!   `HOSHO_COMMIT` when the environment sets it (a package built from a tarball), else what
//!   `git rev-parse` says, else `unknown`. No build time: the same sources give the same
//!   binary.
//! - the embedded fonts (assets/fonts/), compressed with Brotli into `OUT_DIR`: 13.9 MB of
//!   TrueType are 8.0 MB in the binary (deflate made 9.7 MB), unpacked in about 0.1 s by a
//!   build that typesets (BENCHMARKS.md, issue 21). A font is compressed again only when its
//!   file changed, not at every commit. `OUT_DIR/embedded_fonts.rs` lists them, with each
//!   one's size and SHA-256: the typesetter's fingerprint is made from the hashes, so a build
//!   that typesets nothing never unpacks them.
//! - on Linux with glibc, relative relocations packed (`DT_RELR`, glibc 2.36 or later): 1.9 MB
//!   of `.rela.dyn` become a few kilobytes.

use sha2::Digest as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The fonts `src/certificates/typeset.rs` embeds, in the order it gives them to typst.
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
    embed_fonts(Path::new(
        &std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"),
    ));
}

/// Compresses each of [`FONTS`] (two at once) and writes `embedded_fonts.rs`: an array of
/// `EmbeddedFont { file, size, sha256, compressed }`, in the order of [`FONTS`].
fn embed_fonts(out: &Path) {
    let fonts: Vec<(String, PathBuf)> = std::thread::scope(|scope| {
        let workers: Vec<_> = FONTS
            .iter()
            .map(|font| {
                let source = Path::new("assets/fonts").join(font);
                println!("cargo:rerun-if-changed={}", source.display());
                let target = out.join(format!("{font}.br"));
                scope.spawn(move || (compress_if_changed(&source, &target), target))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("compressing a font"))
            .collect()
    });
    let mut table = String::from("// Made by build.rs from assets/fonts/.\n[\n");
    for (font, (entry, target)) in FONTS.iter().zip(fonts) {
        table.push_str(&format!(
            "    EmbeddedFont {{ file: {font:?}, {entry}, compressed: include_bytes!({:?}) }},\n",
            target.display().to_string()
        ));
    }
    table.push_str("]\n");
    std::fs::write(out.join("embedded_fonts.rs"), table).expect("OUT_DIR is writable");
}

/// Writes `source` compressed to `target` (Brotli, quality 11, a 16 MiB window, in its mode
/// for fonts) unless `target` was made from the same file (its length and modification time,
/// kept beside it). Returns the table entry's `size` and `sha256` fields, kept beside it too.
fn compress_if_changed(source: &Path, target: &Path) -> String {
    let meta = std::fs::metadata(source).expect("a font of assets/fonts");
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let stamp = format!("{} {modified}", meta.len());
    let stamp_file = target.with_extension("br.from");
    let entry_file = target.with_extension("br.entry");
    if let (true, Ok(entry)) = (
        target.exists() && std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(&stamp),
        std::fs::read_to_string(&entry_file),
    ) {
        return entry;
    }
    let bytes = std::fs::read(source).expect("a font of assets/fonts");
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 24,
        mode: brotli::enc::backward_references::BrotliEncoderMode::BROTLI_MODE_FONT,
        size_hint: bytes.len(),
        ..Default::default()
    };
    let mut compressed = Vec::with_capacity(bytes.len());
    brotli::BrotliCompress(&mut bytes.as_slice(), &mut compressed, &params)
        .expect("compressing into memory");
    std::fs::write(target, compressed).expect("OUT_DIR is writable");
    let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    let entry = format!("size: {}, sha256: {digest:?}", bytes.len());
    std::fs::write(&entry_file, &entry).expect("OUT_DIR is writable");
    std::fs::write(&stamp_file, stamp).expect("OUT_DIR is writable");
    entry
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
