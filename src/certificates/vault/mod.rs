//! The private outputs (layout in `docs/vault.md`): `vault/`, with each certificate's record
//! and PDF and the signed manifest, for the daemon host; and `notices/`, with the 認証キー
//! notices, which never leave the build host. Both are readable by their owner alone.
//!
//! [`build`] reads as its steps: load the previous vault's cache → typeset what changed
//! (reusing the PDFs, salt and verifier of every certificate whose inputs did not change and
//! whose files are intact, so a rebuild pays the KDF only for what changed) → assemble the
//! manifest → sign it → write it. PDFs go to disk as they are made, so memory stays flat at
//! any scale. Problems in the input (a template that fails) are reported as diagnostics; a
//! file that cannot be written is an I/O error with its cause.

mod cache;
mod workers;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::{anyhow, Context as _, Result};
use ring::rand::SystemRandom;

pub use cache::FORMAT as CACHE_FORMAT;
pub(crate) use workers::run_on_workers;
pub use workers::WORKER_STACK;

use self::cache::{Cache, CacheEntry, Previous};
use crate::certificates::certificate::Certificate;
pub use crate::certificates::documents::Outputs;
use crate::certificates::documents::{self, Extras, CERTIFICATE, DOCUMENTS};
use crate::certificates::reuse::Sealer;
use crate::certificates::typeset::Typesetter;
use crate::common::config::Config;
use crate::common::diagnostics::{Diagnostic, Diagnostics, InputErrors};
use crate::common::hex::{sha256_hex, to_hex};
use crate::common::private_files::{create_private_dir, write_private};
use crate::trust::keys::KeyMaterial;
use crate::trust::layout::{record_file, CACHE_FILE, MANIFEST_FILE, RECORDS_DIR, SIGNATURE_FILE};
use crate::trust::manifest::{self, Entry, Header, Manifest};

/// Everything one vault build reads.
pub struct VaultBuild<'a> {
    pub config: &'a Config,
    pub certificates: &'a [Certificate],
    pub typesetter: &'a Typesetter,
    pub keys: &'a KeyMaterial,
    /// The outputs being replaced: read for reuse, never written.
    pub previous: Outputs<'a>,
    /// The new outputs' directories, swapped in for `previous` once everything is written.
    pub staging: Outputs<'a>,
    pub now_unix: u64,
}

/// What the vault build did.
#[derive(Debug, Clone)]
pub struct VaultReport {
    pub certificates: usize,
    pub typeset: usize,
    pub reused: usize,
    pub seq: u64,
    pub manifest_sha256: String,
    pub key_id: String,
}

/// Why one certificate could not be put into the vault.
enum Failure {
    /// Its input or a template is wrong: reported with the others at `path:line:column`.
    Input(Diagnostic),
    /// The machine failed (a file not written, no randomness).
    Io(anyhow::Error),
}

/// One certificate, done.
struct Done {
    entry: Entry,
    cache: CacheEntry,
    reused: bool,
}

/// Typesets (or reuses) every certificate's documents into `b.staging`, and signs the
/// manifest.
pub fn build(b: &VaultBuild<'_>) -> Result<VaultReport> {
    let dirs = DOCUMENTS.iter().map(|d| b.staging.of(d.place).join(d.dir));
    for path in dirs.chain([b.staging.vault.join(RECORDS_DIR)]) {
        create_private_dir(&path).with_context(|| format!("{} を作れません", path.display()))?;
    }
    let previous = Previous {
        outputs: b.previous,
        cache: Cache::read(b.previous.vault),
        sealer: Sealer::new(&b.keys.auth_secret),
    };
    let seq = next_seq(b)?;
    let done = typeset_all(b, &previous)?;
    let (manifest, cache) = assemble(b, &done, seq);
    let manifest_sha256 = sign_and_write(b, &manifest, &cache)?;
    let reused = done.iter().filter(|d| d.reused).count();
    Ok(VaultReport {
        certificates: done.len(),
        typeset: done.len() - reused,
        reused,
        seq: manifest.header.seq,
        manifest_sha256,
        key_id: b.keys.public.id.clone(),
    })
}

/// Every certificate on the worker threads, with a progress bar on a terminal. Input
/// problems are all reported together; the first I/O failure stops the build.
fn typeset_all(b: &VaultBuild<'_>, previous: &Previous<'_>) -> Result<Vec<Done>> {
    let progress = progress_bar(b.certificates.len());
    let rng = SystemRandom::new();
    let verify_url = b.config.verify_url();
    let results = workers::run_on_workers(b.certificates, |c| {
        let done = one(b, previous, &rng, &verify_url, c);
        progress.inc(1);
        done
    });
    progress.finish_and_clear();
    let mut d = Diagnostics::default();
    let mut done = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(one) => done.push(one),
            Err(Failure::Input(e)) => d.push(e),
            Err(Failure::Io(e)) => return Err(e),
        }
    }
    if !d.is_empty() {
        return Err(InputErrors(d.sorted()).into());
    }
    Ok(done)
}

fn progress_bar(len: usize) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() || len < 2 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "証書と認証キーのお知らせを組版中 {bar:40} {pos}/{len}（残り {eta}）",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

fn write(dir: &Path, rel: &str, bytes: &[u8]) -> Result<(), Failure> {
    let path = dir.join(rel);
    write_private(&path, bytes)
        .with_context(|| format!("{} を書けません", path.display()))
        .map_err(Failure::Io)
}

/// What the reuse cache is keyed on: every document's inputs, the templates and fonts, and
/// the KDF parameters.
fn material(inputs: &[serde_json::Value], fingerprint: &str, iterations: u32) -> String {
    let mut parts: Vec<String> = inputs.iter().map(ToString::to_string).collect();
    parts.push(fingerprint.to_owned());
    parts.push(iterations.to_string());
    parts.join("\0")
}

/// One certificate: its record written, its documents typeset or carried forward.
fn one(
    b: &VaultBuild<'_>,
    previous: &Previous<'_>,
    rng: &SystemRandom,
    verify_url: &str,
    c: &Certificate,
) -> Result<Done, Failure> {
    let input_error = |what: &str, e: serde_json::Error| {
        Failure::Input(Diagnostic::file(&c.source, format!("{what}: {e}")))
    };
    let key = c.key(&b.keys.auth_secret);
    let record = &c.record;
    let record_bytes = record
        .to_bytes()
        .map_err(|e| input_error("証書の記録を作れません", e))?;
    write(
        b.staging.vault,
        &record_file(&c.record.number),
        &record_bytes,
    )?;
    let extras = Extras {
        verify_url,
        key: &key,
        submission: c.submission.as_ref(),
    };
    let inputs =
        documents::all_inputs(record, extras).map_err(|e| input_error("入力を作れません", e))?;
    let iterations = b.config.certificates.kdf_iterations;
    let material = material(&inputs, b.typesetter.fingerprint(), iterations);
    let (cache, reused) = match previous.reuse(&c.record.number, material.as_bytes()) {
        Some(cached) => {
            carry_forward(previous, b.staging, &c.record.number)?;
            (cached, true)
        }
        None => (
            typeset_new(b, &previous.sealer, rng, c, (&inputs, &key, &material))?,
            false,
        ),
    };
    let entry = Entry {
        number: c.record.number.clone(),
        kind: c.record.kind,
        status: c.record.status,
        pdf_sha256: cache.certificate_sha256.clone(),
        record_sha256: sha256_hex(&record_bytes),
        salt: cache.salt.clone(),
        verifier: cache.verifier.clone(),
    };
    Ok(Done {
        entry,
        cache,
        reused,
    })
}

/// Links every document of `number` from the previous outputs into the new ones.
fn carry_forward(
    previous: &Previous<'_>,
    staging: Outputs<'_>,
    number: &str,
) -> Result<(), Failure> {
    for document in &DOCUMENTS {
        previous
            .carry(document, number, staging)
            .with_context(|| format!("{} を前回の出力から引き継げません", document.file(number)))
            .map_err(Failure::Io)?;
    }
    Ok(())
}

/// Typesets every document of `c`, writes them, and pays the KDF for a new salt.
fn typeset_new(
    b: &VaultBuild<'_>,
    sealer: &Sealer,
    rng: &SystemRandom,
    c: &Certificate,
    (inputs, key, material): (&[serde_json::Value], &str, &str),
) -> Result<CacheEntry, Failure> {
    let pdfs = b
        .typesetter
        .typeset(inputs, &c.record.number)
        .map_err(Failure::Input)?;
    let mut fingerprints = BTreeMap::new();
    let mut certificate_sha256 = String::new();
    for (document, pdf) in DOCUMENTS.iter().zip(&pdfs) {
        write(
            b.staging.of(document.place),
            &document.file(&c.record.number),
            pdf,
        )?;
        fingerprints.insert(document.id.to_owned(), sealer.fingerprint(pdf));
        if document.id == CERTIFICATE.id {
            certificate_sha256 = sha256_hex(pdf);
        }
    }
    let salt = manifest::new_salt(rng).map_err(|_| Failure::Io(anyhow!("乱数を得られません")))?;
    let iterations = b.config.certificates.kdf_iterations;
    let verifier = manifest::make_verifier(key, &salt, iterations);
    Ok(CacheEntry::new(
        material.as_bytes(),
        fingerprints,
        certificate_sha256,
        (to_hex(&salt), to_hex(&verifier)),
        sealer,
    ))
}

/// The sequence number of the new manifest: above the one it replaces, and at least the
/// time. The previous manifest's number counts only when its signature checks out with this
/// build's key: a manifest put into the vault by anyone else (or signed by an old key) cannot
/// push the numbers up, and one at the largest number stops the build rather than wrap.
fn next_seq(b: &VaultBuild<'_>) -> Result<u64> {
    let trusted = std::slice::from_ref(&b.keys.public);
    let previous = match manifest::read_header(b.previous.vault, trusted) {
        Ok(header) => header.seq,
        Err(e) => {
            if b.previous.vault.join(MANIFEST_FILE).exists() {
                tracing::warn!("前回のマニフェストの番号は使いません（{e}）");
            }
            0
        }
    };
    let next = previous.checked_add(1).ok_or_else(|| {
        anyhow!("前回のマニフェストのシーケンス番号 {previous} が上限に達しているため、次の番号を付けられません")
    })?;
    Ok(next.max(b.now_unix))
}

/// The new manifest, numbered `seq`, and the new cache.
fn assemble(b: &VaultBuild<'_>, done: &[Done], seq: u64) -> (Manifest, Cache) {
    let mut cache = Cache::new();
    for d in done {
        cache.insert(d.entry.number.clone(), d.cache.clone());
    }
    let certificates = &b.config.certificates;
    let manifest = Manifest::new(
        Header::new(
            seq,
            b.now_unix,
            b.now_unix + u64::from(certificates.manifest_valid_days) * 86_400,
            &b.keys.public.id,
            certificates.kdf_iterations,
        ),
        done.iter().map(|d| d.entry.clone()).collect(),
    );
    (manifest, cache)
}

/// Writes the manifest, its signature and the cache; returns the manifest's SHA-256.
fn sign_and_write(b: &VaultBuild<'_>, manifest: &Manifest, cache: &Cache) -> Result<String> {
    let signed = manifest
        .signed(&b.keys.key_pair, &b.keys.public.id)
        .context("マニフェストと署名を作れません")?;
    let cache_bytes = cache.to_bytes().context("cache.json を作れません")?;
    for (name, bytes) in [
        (MANIFEST_FILE, signed.manifest),
        (SIGNATURE_FILE, signed.signature),
        (CACHE_FILE, cache_bytes),
    ] {
        let path = b.staging.vault.join(name);
        write_private(&path, &bytes).with_context(|| format!("{} を書けません", path.display()))?;
    }
    Ok(signed.sha256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certificates::input;
    use crate::common::diagnostics::Diagnostics;
    use crate::trust::keys;
    use crate::trust::layout::certificate_file;
    use crate::trust::manifest::Limits;
    use crate::trust::verify;

    /// Appended to `input::tests::GOOD`: a second certificate, cancelled.
    const CANCELLED: &str = r#"- number: "2070202096"
  kind: 契約保証
  issued: 2022-05-10
  contractor: {name: 株式会社見本建設, address: 大阪府大阪市北区梅田一丁目1番1号}
  beneficiary: 見本市長
  project: 見本庁舎改修工事
  contract_amount: 100000000
  amount: 10000000
  period: {from: 2022-05-10, to: 2099-03-31}
  status: cancelled
"#;

    fn certificates() -> Vec<Certificate> {
        let (mut d, mut w) = (Diagnostics::default(), Diagnostics::default());
        let text = format!("{}{CANCELLED}", input::tests::GOOD);
        let parsed = input::parse_file(
            Path::new("c.yaml"),
            &text,
            input::References::built_in(),
            &mut d,
            &mut w,
        );
        assert!(d.is_empty(), "{d:?}");
        parsed.into_iter().map(|(c, _)| c).collect()
    }

    /// Builds a vault from `previous` into a new directory and returns it.
    /// Builds from the outputs in `previous` (`vault/`, `notices/`) into new ones in `out`.
    fn build_into(previous: &Path, out: &Path, keys: &KeyMaterial) -> VaultReport {
        try_build_into(previous, out, keys).expect("vault")
    }

    fn try_build_into(previous: &Path, out: &Path, keys: &KeyMaterial) -> Result<VaultReport> {
        let config = Config::default_for_test();
        let typesetter = Typesetter::load(Path::new("/nonexistent")).expect("built-in templates");
        let (old_vault, old_notices) = (previous.join("vault"), previous.join("notices"));
        let (vault, notices) = (out.join("vault"), out.join("notices"));
        for dir in [&vault, &notices] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        build(&VaultBuild {
            config: &config,
            certificates: &certificates(),
            typesetter: &typesetter,
            keys,
            previous: Outputs {
                vault: &old_vault,
                notices: &old_notices,
            },
            staging: Outputs {
                vault: &vault,
                notices: &notices,
            },
            now_unix: verify::unix_now(),
        })
    }

    #[test]
    fn builds_verifiable_vaults_and_reuses_only_intact_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys_dir = dir.path().join("keys");
        keys::generate(&keys_dir).expect("keys");
        let material = keys::load(&keys_dir).expect("load");
        let (first, second, third) = (
            dir.path().join("v1"),
            dir.path().join("v2"),
            dir.path().join("v3"),
        );
        let report = build_into(&dir.path().join("none"), &first, &material);
        assert_eq!(
            (report.certificates, report.typeset, report.reused),
            (2, 2, 0)
        );
        let trusted = keys::TrustedKeys::load(&keys_dir, &[]).expect("trusted");
        let key = crate::trust::authkey::derive_key(&material.auth_secret, "2070004426");
        let v = verify::verify(&first.join("vault"), &trusted, "2070004426", &key).expect("valid");
        assert_eq!(
            (v.record.initial.amount, v.record.current.amount),
            (40_000_000, 45_000_000)
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        for (document, place) in DOCUMENTS.iter().zip(["vault", "notices"]) {
            let path = first.join(place).join(document.file("2070202096"));
            let pdf = std::fs::read(&path).expect("pdf");
            assert!(pdf.starts_with(b"%PDF-"), "{}", document.id);
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        // The vault, which the daemon host receives, holds no notice.
        assert!(!first.join("vault/notices").exists());
        for file in ["vault/manifest.json", "vault/records/2070004426.json"] {
            assert_eq!(mode(&first.join(file)), 0o600, "{file}");
        }
        // A rebuild reuses both, byte for byte and with the same verifiers.
        let first_seq = report.seq;
        let report = build_into(&first, &second, &material);
        assert_eq!((report.typeset, report.reused), (0, 2));
        assert!(report.seq > first_seq, "the sequence number rises");
        let entries = |dir: &Path| {
            let catalog =
                manifest::read_verified(&dir.join("vault"), trusted.as_slice(), Limits::default())
                    .expect("manifest");
            catalog.entries().collect::<Vec<_>>()
        };
        assert_eq!(entries(&first), entries(&second));
        assert_eq!(
            std::fs::read(first.join("vault").join(certificate_file("2070004426"))).expect("a"),
            std::fs::read(second.join("vault").join(certificate_file("2070004426"))).expect("b")
        );
        // A notice altered by hand is typeset again, not carried forward.
        std::fs::remove_file(second.join("notices/2070202096.pdf")).expect("rm");
        std::fs::write(second.join("notices/2070202096.pdf"), b"%PDF-forged").expect("write");
        let report = build_into(&second, &third, &material);
        assert_eq!((report.typeset, report.reused), (1, 1));
        let notice = std::fs::read(third.join("notices/2070202096.pdf")).expect("notice");
        assert_ne!(notice, b"%PDF-forged");
    }

    /// Rewrites the manifest in `vault` with `seq` and signs it with `pair`.
    fn resign(vault: &Path, seq: u64, pair: &ring::signature::Ed25519KeyPair, key_id: &str) {
        let path = vault.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).expect("manifest");
        let (header, rest) = text.split_once(",\"entries\"").expect("header");
        let mut header: serde_json::Value =
            serde_json::from_str(&format!("{header}}}")).expect("json");
        header["seq"] = serde_json::Value::from(seq);
        let header = header.to_string();
        let bytes = format!("{},\"entries\"{rest}", &header[..header.len() - 1]);
        let signature = manifest::sign(bytes.as_bytes(), pair, key_id).expect("sign");
        std::fs::write(&path, bytes).expect("write");
        std::fs::write(vault.join(SIGNATURE_FILE), signature).expect("write");
    }

    #[test]
    fn the_previous_sequence_number_counts_only_when_it_is_signed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys_dir = dir.path().join("keys");
        keys::generate(&keys_dir).expect("keys");
        let material = keys::load(&keys_dir).expect("load");
        let first = dir.path().join("v1");
        build_into(&dir.path().join("none"), &first, &material);
        // Signed by another key: its (huge) number is not trusted; the time is used.
        let other = keys::generate_in_memory().expect("other");
        let huge = 1u64 << 62;
        resign(
            &first.join("vault"),
            huge,
            &other.material.key_pair,
            &material.public.id,
        );
        let report = build_into(&first, &dir.path().join("v2"), &material);
        assert!(
            report.seq < huge && report.seq >= verify::unix_now() - 60,
            "{}",
            report.seq
        );
        // Signed by this build's key at the largest number: refused, not wrapped.
        resign(
            &first.join("vault"),
            u64::MAX,
            &material.key_pair,
            &material.public.id,
        );
        let err = try_build_into(&first, &dir.path().join("v3"), &material).expect_err("overflow");
        assert!(err.to_string().contains("上限に達している"), "{err}");
        // Signed by this build's key: counted.
        resign(
            &first.join("vault"),
            huge,
            &material.key_pair,
            &material.public.id,
        );
        let report = build_into(&first, &dir.path().join("v4"), &material);
        assert_eq!(report.seq, huge + 1);
    }
}
