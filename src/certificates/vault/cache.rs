//! The vault's reuse cache (`vault/cache.json`): for each certificate, the SHA-256 of each
//! document, the salt and the verifier, authenticated with an HMAC keyed by the auth-key
//! secret over the typesetting inputs and those values. The secret never enters the vault,
//! so the cache cannot be forged and is no fast oracle for keys.
//!
//! A cached certificate is reused only when its MAC checks out for the current inputs and
//! every document file of the previous vault still has the cached hash: a PDF altered by
//! hand is typeset again. Format 1 (two named hash fields) is still read, so upgrading hosho
//! does not retypeset a vault.

use std::collections::BTreeMap;
use std::path::Path;

use ring::hmac;
use serde::{Deserialize, Serialize};

use super::Outputs;
use crate::certificates::documents::{DocumentKind, DOCUMENTS};
use crate::common::files::read_capped;
use crate::common::hex::{from_hex, sha256_hex, to_hex};
use crate::trust::layout::{CACHE_FILE, MAX_PDF_BYTES};

const FORMAT: u32 = 2;
const CACHE_DOMAIN: &[u8] = b"hosho vault cache v1\0";

/// The cache file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Cache {
    format: u32,
    entries: BTreeMap<String, CacheEntry>,
}

/// What a certificate's typesetting produced, authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct CacheEntry {
    /// SHA-256 of each document's PDF, by document id.
    #[serde(default)]
    pub(super) documents: BTreeMap<String, String>,
    pub(super) salt: String,
    pub(super) verifier: String,
    /// HMAC(auth-key secret, inputs and the values above), hex.
    mac: String,
    /// Format 1 named the two documents' hashes.
    #[serde(default, skip_serializing)]
    pdf_sha256: Option<String>,
    #[serde(default, skip_serializing)]
    notice_sha256: Option<String>,
}

/// What the MAC covers: the inputs and every cached value in [`DOCUMENTS`] order,
/// length-prefixed.
fn message(
    material: &[u8],
    documents: &BTreeMap<String, String>,
    salt: &str,
    verifier: &str,
) -> Vec<u8> {
    let hashes = DOCUMENTS
        .iter()
        .map(|d| documents.get(d.id).map_or(&[][..], |h| h.as_bytes()));
    let parts = [CACHE_DOMAIN, material]
        .into_iter()
        .chain(hashes)
        .chain([salt.as_bytes(), verifier.as_bytes()]);
    let mut message = Vec::new();
    for part in parts {
        message.extend_from_slice(&(part.len() as u64).to_be_bytes());
        message.extend_from_slice(part);
    }
    message
}

impl CacheEntry {
    /// A new entry, its MAC made with `secret`.
    pub(super) fn new(
        material: &[u8],
        documents: BTreeMap<String, String>,
        salt: String,
        verifier: String,
        secret: &[u8],
    ) -> CacheEntry {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let mac = hmac::sign(&key, &message(material, &documents, &salt, &verifier));
        CacheEntry {
            documents,
            salt,
            verifier,
            mac: to_hex(mac.as_ref()),
            pdf_sha256: None,
            notice_sha256: None,
        }
    }

    /// Whether the MAC checks out for `material` under `secret`.
    fn authentic(&self, material: &[u8], secret: &[u8]) -> bool {
        let Some(mac) = from_hex(&self.mac) else {
            return false;
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let message = message(material, &self.documents, &self.salt, &self.verifier);
        hmac::verify(&key, &message, &mac).is_ok()
    }

    /// Format 1's named fields, as document hashes.
    fn upgrade(mut self) -> CacheEntry {
        for (id, hash) in [
            ("certificate", self.pdf_sha256.take()),
            ("notice", self.notice_sha256.take()),
        ] {
            if let Some(hash) = hash {
                self.documents.insert(id.to_owned(), hash);
            }
        }
        self
    }
}

impl Cache {
    pub(super) fn new() -> Cache {
        Cache {
            format: FORMAT,
            entries: BTreeMap::new(),
        }
    }

    /// The cache of the vault in `dir`; empty when it is missing, unreadable or of an
    /// unknown format.
    pub(super) fn read(dir: &Path) -> Cache {
        let cache: Option<Cache> = std::fs::read(dir.join(CACHE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        match cache {
            Some(c) if c.format == FORMAT => c,
            Some(c) if c.format == 1 => Cache {
                format: FORMAT,
                entries: c
                    .entries
                    .into_iter()
                    .map(|(n, e)| (n, e.upgrade()))
                    .collect(),
            },
            _ => Cache::new(),
        }
    }

    pub(super) fn insert(&mut self, number: String, entry: CacheEntry) {
        self.entries.insert(number, entry);
    }

    /// The file's bytes: pretty JSON with a trailing newline.
    pub(super) fn to_bytes(&self) -> serde_json::Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// The previous outputs and the vault's cache.
pub(super) struct Previous<'a> {
    pub(super) outputs: Outputs<'a>,
    pub(super) cache: Cache,
}

impl Previous<'_> {
    /// The cached entry of `number` when its MAC checks out for the current inputs and
    /// every document in the previous outputs still has its cached hash.
    pub(super) fn reuse(&self, number: &str, material: &[u8], secret: &[u8]) -> Option<CacheEntry> {
        let entry = self.cache.entries.get(number)?;
        if !entry.authentic(material, secret) {
            return None;
        }
        let unchanged = DOCUMENTS.iter().all(|document| {
            let path = self.outputs.of(document.place).join(document.file(number));
            let bytes = read_capped(&path, MAX_PDF_BYTES, false).ok();
            bytes.is_some_and(|b| entry.documents.get(document.id) == Some(&sha256_hex(&b)))
        });
        unchanged.then(|| entry.clone())
    }

    /// Links (or, across file systems, copies) a reused document into the new output.
    pub(super) fn carry(
        &self,
        document: &DocumentKind,
        number: &str,
        staging: Outputs<'_>,
    ) -> std::io::Result<()> {
        let rel = document.file(number);
        let from = self.outputs.of(document.place).join(&rel);
        let to = staging.of(document.place).join(&rel);
        crate::output::link_or_copy(&from, &to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(certificate: &[u8], notice: &[u8]) -> BTreeMap<String, String> {
        [
            ("certificate".to_owned(), sha256_hex(certificate)),
            ("notice".to_owned(), sha256_hex(notice)),
        ]
        .into_iter()
        .collect()
    }

    /// A previous build of one certificate: its vault and notices under a temporary
    /// directory, and a cache of it.
    fn outputs_with(number: &str, secret: &[u8]) -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().expect("tempdir");
        let dirs = Dirs::under(dir.path());
        let outputs = dirs.outputs();
        for (document, bytes) in DOCUMENTS.iter().zip([&b"cert"[..], b"notice"]) {
            let place = outputs.of(document.place);
            std::fs::create_dir_all(place.join(document.dir)).expect("mkdir");
            std::fs::write(place.join(document.file(number)), bytes).expect("write");
        }
        let mut cache = Cache::new();
        let entry = CacheEntry::new(
            b"inputs",
            hashes(b"cert", b"notice"),
            "aa".into(),
            "bb".into(),
            secret,
        );
        cache.insert(number.to_owned(), entry);
        (dir, cache)
    }

    /// The vault and notices directories under a directory.
    struct Dirs(std::path::PathBuf, std::path::PathBuf);

    impl Dirs {
        fn under(dir: &Path) -> Dirs {
            Dirs(dir.join("vault"), dir.join("notices"))
        }

        fn outputs(&self) -> Outputs<'_> {
            Outputs {
                vault: &self.0,
                notices: &self.1,
            }
        }
    }

    #[test]
    fn reuse_needs_the_secret_the_inputs_and_unaltered_files() {
        let secret = [7u8; 32];
        let (dir, cache) = outputs_with("2070004426", &secret);
        let dirs = Dirs::under(dir.path());
        let outputs = dirs.outputs();
        let bytes = cache.to_bytes().expect("json");
        std::fs::write(outputs.vault.join(CACHE_FILE), &bytes).expect("write");
        let previous = Previous {
            outputs,
            cache: Cache::read(outputs.vault),
        };
        assert!(previous.reuse("2070004426", b"inputs", &secret).is_some());
        assert!(previous
            .reuse("2070004426", b"other inputs", &secret)
            .is_none());
        assert!(previous
            .reuse("2070004426", b"inputs", &[8u8; 32])
            .is_none());
        assert!(previous.reuse("2070004427", b"inputs", &secret).is_none());
        // A notice altered by hand is not carried forward.
        std::fs::write(outputs.notices.join("2070004426.pdf"), b"forged").expect("write");
        assert!(previous.reuse("2070004426", b"inputs", &secret).is_none());
    }

    #[test]
    fn format_1_caches_are_still_read() {
        let secret = [7u8; 32];
        let (dir, cache) = outputs_with("2070004426", &secret);
        let dirs = Dirs::under(dir.path());
        let outputs = dirs.outputs();
        let entry = &cache.entries["2070004426"];
        let v1 = serde_json::json!({
            "format": 1,
            "entries": {"2070004426": {
                "pdf_sha256": entry.documents["certificate"],
                "notice_sha256": entry.documents["notice"],
                "salt": entry.salt, "verifier": entry.verifier, "mac": entry.mac,
            }},
        });
        std::fs::write(outputs.vault.join(CACHE_FILE), v1.to_string()).expect("write");
        let previous = Previous {
            outputs,
            cache: Cache::read(outputs.vault),
        };
        assert_eq!(
            previous.reuse("2070004426", b"inputs", &secret).as_ref(),
            Some(entry)
        );
    }
}
