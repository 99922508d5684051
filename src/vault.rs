//! The private output, `vault/`: certificate and notice PDFs and the signed manifest.
//!
//! Certificates and notices are typeset in parallel. A rebuild reuses the PDFs, salt and
//! verifier of every certificate whose inputs did not change (record, templates, fonts,
//! KDF parameters and key), so it typesets and pays the KDF only for what changed. Reuse is
//! authenticated with an HMAC keyed by the auth-key secret, which never enters the vault:
//! a tampered cache or PDF is simply typeset again, and the cache is no fast oracle for keys.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;

use ring::hmac;
use ring::rand::SystemRandom;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::authkey;
use crate::cert::Certificate;
use crate::config::Config;
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::keys::KeyMaterial;
use crate::manifest::{self, from_hex, sha256_hex, to_hex, Entry, Header, Kdf, Manifest, Status};
use crate::record::{record_file, Record};
use crate::typeset::{Template, FONTS};
use crate::{era, format};

pub const VAULT_DIR: &str = "vault";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const SIGNATURE_FILE: &str = "manifest.json.sig";
/// Readers refuse a certificate PDF larger than this (they are about 40 KiB).
pub const MAX_PDF_BYTES: u64 = 16 * 1024 * 1024;
const CACHE_FILE: &str = "cache.json";
const CACHE_DOMAIN: &[u8] = b"hosho vault cache v1\0";

pub fn certificate_file(number: &str) -> String {
    format!("certificates/{number}.pdf")
}

pub fn notice_file(number: &str) -> String {
    format!("notices/{number}.pdf")
}

/// The two templates, loaded once per build.
pub struct Typesetter {
    certificate: Template,
    notice: Template,
    /// SHA-256 over both templates and the fonts: part of every cache key.
    fingerprint: String,
}

impl Typesetter {
    pub fn load(root: &Path) -> Result<Typesetter, Diagnostics> {
        let certificate = Template::load(root, "certificate.typ");
        let notice = Template::load(root, "notice.typ");
        let (certificate, notice) = match (certificate, notice) {
            (Ok(c), Ok(n)) => (c, n),
            (c, n) => {
                let mut d = Diagnostics::default();
                for e in [c.err(), n.err()].into_iter().flatten() {
                    d.push(e);
                }
                return Err(d);
            }
        };
        let mut all = Vec::new();
        for part in [certificate.source().as_bytes(), notice.source().as_bytes()] {
            all.extend_from_slice(manifest::sha256_hex(part).as_bytes());
        }
        for font in FONTS {
            all.extend_from_slice(manifest::sha256_hex(font).as_bytes());
        }
        Ok(Typesetter {
            fingerprint: sha256_hex(&all),
            certificate,
            notice,
        })
    }

    /// Typesets the first certificate, so `hosho check` finds template errors.
    pub fn try_one(&self, config: &Config, certificate: &Certificate) -> Result<(), Diagnostics> {
        let key = "0000000000";
        let record = Record::new(certificate, &config.guarantor);
        let (c, n) = inputs(&record, &config.verify_url(), key);
        let mut d = Diagnostics::default();
        if let Err(e) = self.certificate.pdf(&c, "check") {
            d.push(e);
        }
        if let Err(e) = self.notice.pdf(&n, "check") {
            d.push(e);
        }
        if d.is_empty() {
            Ok(())
        } else {
            Err(d)
        }
    }
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

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    format: u32,
    entries: BTreeMap<String, CacheEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheEntry {
    pdf_sha256: String,
    notice_sha256: String,
    salt: String,
    verifier: String,
    /// HMAC(auth-key secret, inputs, the values above), hex.
    mac: String,
}

/// What the two templates receive: every value already in the form the page shows.
pub fn inputs(
    record: &Record,
    verify_url: &str,
    key: &str,
) -> (serde_json::Value, serde_json::Value) {
    let g = &record.guarantor;
    let guarantor = json!({
        "name": g.name,
        "branch": g.branch,
        "address": g.address,
        "tel": g.tel,
        "fax": g.fax,
    });
    let changes: Vec<_> = record
        .change_lines()
        .into_iter()
        .map(|(date, items)| json!({"date": date, "items": items}))
        .collect();
    let now = &record.current;
    let kind = &record.kind;
    let cancelled = record.status == Status::Cancelled;
    let certificate = json!({
        "title": format!("保証証書（{kind}）{}", record.number),
        "number": record.number,
        "kind": kind,
        "issued": era::full_date(record.issued),
        "contractor": {"name": record.contractor.name, "address": record.contractor.address},
        "beneficiary": record.beneficiary,
        "project": now.project,
        "site": record.site,
        "amount": format::yen(now.amount),
        "contract_amount": format::yen(now.contract_amount),
        "period": {"from": era::full_date(now.period.from), "to": era::full_date(now.period.to)},
        "bank": record.bank,
        "changed": record.status == Status::Changed,
        "cancelled": cancelled,
        "cancelled_note": "解除されています。保証の効力はありません。",
        "changes": changes,
        "guarantor": guarantor,
        "verify_url": verify_url,
    });
    let notice = json!({
        "number": record.number,
        "kind": kind,
        "key": authkey::group(key),
        "project": now.project,
        "beneficiary": record.beneficiary,
        "guarantor": guarantor,
        "verify_url": verify_url,
    });
    (certificate, notice)
}

/// What the cache HMAC covers: the inputs and every cached value, length-prefixed.
fn cache_message(material: &[u8], pdf: &str, notice: &str, salt: &str, verifier: &str) -> Vec<u8> {
    let mut message = Vec::new();
    for part in [
        CACHE_DOMAIN,
        material,
        pdf.as_bytes(),
        notice.as_bytes(),
        salt.as_bytes(),
        verifier.as_bytes(),
    ] {
        message.extend_from_slice(&(part.len() as u64).to_be_bytes());
        message.extend_from_slice(part);
    }
    message
}

/// The previous vault's cache and files, when they check out.
struct Previous<'a> {
    dir: &'a Path,
    cache: Cache,
}

impl Previous<'_> {
    /// The cached entry of `number` when its MAC checks out for the current inputs. The PDFs
    /// are not re-read here: the new manifest carries the authenticated hash, so a file
    /// altered since is never endorsed (readers re-hash before trusting a PDF).
    fn reuse(&self, number: &str, material: &[u8], secret: &[u8]) -> Option<CacheEntry> {
        let entry = self.cache.entries.get(number)?;
        let mac = from_hex(&entry.mac)?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let message = cache_message(
            material,
            &entry.pdf_sha256,
            &entry.notice_sha256,
            &entry.salt,
            &entry.verifier,
        );
        hmac::verify(&key, &message, &mac).ok()?;
        let present = |rel: String| self.dir.join(rel).is_file();
        (present(certificate_file(number)) && present(notice_file(number))).then(|| entry.clone())
    }

    /// Links (or, across file systems, copies) a reused file into the new vault.
    fn carry(&self, rel: &str, staging: &Path) -> std::io::Result<()> {
        let (from, to) = (self.dir.join(rel), staging.join(rel));
        std::fs::hard_link(&from, &to).or_else(|_| std::fs::copy(&from, &to).map(|_| ()))
    }
}

/// Stack of each typesetting thread (typst's layout recurses deeply).
const WORKER_STACK: usize = 16 * 1024 * 1024;

/// Runs `job` on every item with one plain thread per core (as many as rayon's pool has,
/// so RAYON_NUM_THREADS applies), results in item order.
///
/// Not rayon jobs: typst itself runs rayon work, and a rayon worker waiting for it steals
/// further certificates onto the same stack, nesting without bound (a 10,000-certificate
/// build overflowed the stack). Plain threads only wait; typst's own jobs still use the pool.
fn run_on_workers<T, R, F>(items: &[T], job: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let workers = rayon::current_num_threads().clamp(1, items.len().max(1));
    let mut indexed: Vec<(usize, R)> = std::thread::scope(|scope| {
        let work = || {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                done.push((i, job(item)));
            }
            done
        };
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                std::thread::Builder::new()
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(scope, work)
            })
            .collect();
        let mut all = Vec::with_capacity(items.len());
        for handle in handles {
            match handle.map(|h| h.join()) {
                Ok(Ok(done)) => all.extend(done),
                // A worker that panicked: re-raise it here, as rayon would.
                Ok(Err(panic)) => std::panic::resume_unwind(panic),
                // No thread could be started: do its share on this one.
                Err(_) => all.extend(work()),
            }
        }
        all
    });
    indexed.sort_by_key(|(i, _)| *i);
    indexed.into_iter().map(|(_, r)| r).collect()
}

/// Typesets (or reuses) every certificate and notice into `staging`, and signs the
/// manifest. PDFs go to disk as they are made, so memory stays flat at any scale.
pub fn build(
    config: &Config,
    certificates: &[Certificate],
    typesetter: &Typesetter,
    keys: &KeyMaterial,
    previous_vault: &Path,
    staging: &Path,
    now_unix: u64,
) -> Result<VaultReport, Diagnostics> {
    let io_error =
        |what: &str, e: std::io::Error| Diagnostic::file(VAULT_DIR, format!("{what}: {e}"));
    for dir in ["certificates", "notices", "records"] {
        std::fs::create_dir_all(staging.join(dir))
            .map_err(|e| Diagnostics::from(io_error(&format!("{dir}/ を作れません"), e)))?;
    }
    let iterations = config.certificates.kdf_iterations;
    let previous_cache: Cache = std::fs::read(previous_vault.join(CACHE_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|c: &Cache| c.format == 1)
        .unwrap_or_default();
    let previous = Previous {
        dir: previous_vault,
        cache: previous_cache,
    };
    #[derive(Deserialize)]
    struct Seq {
        seq: u64,
    }
    let previous_seq = std::fs::read(previous_vault.join(MANIFEST_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<Seq>(&b).ok())
        .map_or(0, |m| m.seq);

    let progress = if std::io::stderr().is_terminal() && certificates.len() > 1 {
        let bar = indicatif::ProgressBar::new(certificates.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "証書と認証キーのお知らせを組版中 {bar:40} {pos}/{len}（残り {eta}）",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let rng = SystemRandom::new();
    let verify_url = config.verify_url();
    struct Done {
        entry: Entry,
        cache: CacheEntry,
        reused: bool,
    }
    let job = |c: &Certificate| -> Result<Done, Diagnostic> {
        let key = c
            .auth_key
            .clone()
            .unwrap_or_else(|| authkey::derive_key(&keys.auth_secret, &c.number));
        let record = Record::new(c, &config.guarantor);
        let record_bytes = record
            .to_bytes()
            .map_err(|e| Diagnostic::file(&c.source, format!("証書の記録を作れません: {e}")))?;
        let record_sha256 = sha256_hex(&record_bytes);
        std::fs::write(staging.join(record_file(&c.number)), &record_bytes)
            .map_err(|e| io_error(&format!("{} を書けません", record_file(&c.number)), e))?;
        let (cert_inputs, notice_inputs) = inputs(&record, &verify_url, &key);
        let material = format!(
            "{}\0{}\0{}\0{}",
            cert_inputs, notice_inputs, typesetter.fingerprint, iterations
        );
        let (cert_file, notice_file) = (certificate_file(&c.number), notice_file(&c.number));
        let done = if let Some(cached) =
            previous.reuse(&c.number, material.as_bytes(), &keys.auth_secret)
        {
            previous
                .carry(&cert_file, staging)
                .and_then(|()| previous.carry(&notice_file, staging))
                .map_err(|e| io_error(&format!("{cert_file} を引き継げません"), e))?;
            Done {
                entry: Entry {
                    number: c.number.clone(),
                    kind: c.kind.label().to_owned(),
                    status: c.status(),
                    pdf_sha256: cached.pdf_sha256.clone(),
                    record_sha256,
                    salt: cached.salt.clone(),
                    verifier: cached.verifier.clone(),
                },
                cache: cached,
                reused: true,
            }
        } else {
            let pdf = typesetter
                .certificate
                .pdf(&cert_inputs, &format!("certificate-{}", c.number))?;
            let notice = typesetter
                .notice
                .pdf(&notice_inputs, &format!("notice-{}", c.number))?;
            let salt = manifest::new_salt(&rng)
                .map_err(|_| Diagnostic::file(&c.source, "乱数を得られません"))?;
            let verifier = manifest::make_verifier(&key, &salt, iterations);
            let (pdf_sha256, notice_sha256) = (sha256_hex(&pdf), sha256_hex(&notice));
            std::fs::write(staging.join(&cert_file), &pdf)
                .and_then(|()| std::fs::write(staging.join(&notice_file), &notice))
                .map_err(|e| io_error(&format!("{cert_file} を書けません"), e))?;
            let (salt, verifier) = (to_hex(&salt), to_hex(&verifier));
            let message = cache_message(
                material.as_bytes(),
                &pdf_sha256,
                &notice_sha256,
                &salt,
                &verifier,
            );
            let mac = to_hex(
                hmac::sign(
                    &hmac::Key::new(hmac::HMAC_SHA256, &keys.auth_secret),
                    &message,
                )
                .as_ref(),
            );
            Done {
                entry: Entry {
                    number: c.number.clone(),
                    kind: c.kind.label().to_owned(),
                    status: c.status(),
                    pdf_sha256: pdf_sha256.clone(),
                    record_sha256,
                    salt: salt.clone(),
                    verifier: verifier.clone(),
                },
                cache: CacheEntry {
                    pdf_sha256,
                    notice_sha256,
                    salt,
                    verifier,
                    mac,
                },
                reused: false,
            }
        };
        progress.inc(1);
        Ok(done)
    };
    let results = run_on_workers(certificates, job);
    progress.finish_and_clear();

    let mut d = Diagnostics::default();
    let mut entries = Vec::with_capacity(certificates.len());
    let mut cache = Cache {
        format: 1,
        entries: BTreeMap::new(),
    };
    let (mut typeset, mut reused) = (0, 0);
    for result in results {
        match result {
            Ok(done) => {
                if done.reused {
                    reused += 1;
                } else {
                    typeset += 1;
                }
                cache.entries.insert(done.entry.number.clone(), done.cache);
                entries.push(done.entry);
            }
            Err(e) => d.push(e),
        }
    }
    if !d.is_empty() {
        return Err(d);
    }
    let manifest = Manifest {
        header: Header {
            format: manifest::FORMAT,
            seq: (previous_seq + 1).max(now_unix),
            issued_at: now_unix,
            expires_at: now_unix + u64::from(config.certificates.manifest_valid_days) * 86_400,
            key_id: keys.public.id.clone(),
            kdf: Kdf {
                algorithm: manifest::KDF_ALGORITHM.to_owned(),
                iterations,
                length: manifest::VERIFIER_LEN,
            },
        },
        entries,
    };
    let internal = |e: serde_json::Error| {
        Diagnostics::from(Diagnostic::file(
            VAULT_DIR,
            format!("マニフェストを作れません: {e}"),
        ))
    };
    let manifest_bytes = manifest.to_bytes().map_err(internal)?;
    let signature =
        manifest::sign(&manifest_bytes, &keys.key_pair, &keys.public.id).map_err(internal)?;
    let mut cache_bytes = serde_json::to_vec_pretty(&cache).map_err(internal)?;
    cache_bytes.push(b'\n');
    let report = VaultReport {
        certificates: certificates.len(),
        typeset,
        reused,
        seq: manifest.header.seq,
        manifest_sha256: sha256_hex(&manifest_bytes),
        key_id: keys.public.id.clone(),
    };
    for (name, bytes) in [
        (MANIFEST_FILE, manifest_bytes),
        (SIGNATURE_FILE, signature),
        (CACHE_FILE, cache_bytes),
    ] {
        std::fs::write(staging.join(name), bytes)
            .map_err(|e| Diagnostics::from(io_error(&format!("{name} を書けません"), e)))?;
    }
    Ok(report)
}
