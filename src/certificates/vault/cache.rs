//! The vault's reuse cache (`vault/cache.json`): for each certificate, the fingerprint of
//! each document (keyed with the auth-key secret: a notice holds a 認証キー, so no plain hash
//! of it may sit in the vault), the certificate PDF's SHA-256 (public in the manifest
//! anyway), the salt and the verifier, sealed over the typesetting inputs and those values
//! ([`crate::certificates::reuse`], the mechanism the statements use too). The secret never
//! enters the vault, so the cache cannot be forged and is no fast oracle for keys.
//!
//! Caches of formats 1 and 2 held plain SHA-256 hashes of the notices; they are not read,
//! so the first build after the upgrade typesets every certificate again once.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::certificates::documents::Outputs;
use crate::certificates::documents::{DocumentKind, DOCUMENTS};
use crate::certificates::reuse::Sealer;
use crate::trust::layout::CACHE_FILE;

/// The format of `vault/cache.json` this hosho writes (and the only one it reads).
pub const FORMAT: u32 = 3;
const CACHE_DOMAIN: &[u8] = b"hosho vault cache v3\0";

/// The cache file.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Cache {
    format: u32,
    entries: BTreeMap<String, CacheEntry>,
}

/// What a certificate's typesetting produced, sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CacheEntry {
    /// Each document's fingerprint ([`Sealer::fingerprint`]), by document id.
    pub(super) fingerprints: BTreeMap<String, String>,
    /// SHA-256 of the certificate PDF, as the manifest lists it.
    pub(super) certificate_sha256: String,
    pub(super) salt: String,
    pub(super) verifier: String,
    /// The seal over the inputs and the values above, hex.
    mac: String,
}

/// The parts the seal covers: the inputs and every cached value, fingerprints in
/// [`DOCUMENTS`] order.
fn parts<'a>(material: &'a [u8], e: &'a CacheEntry) -> Vec<&'a [u8]> {
    let mut parts = vec![material];
    parts.extend(
        DOCUMENTS
            .iter()
            .map(|d| e.fingerprints.get(d.id).map_or(&[][..], |h| h.as_bytes())),
    );
    parts.extend([
        e.certificate_sha256.as_bytes(),
        e.salt.as_bytes(),
        e.verifier.as_bytes(),
    ]);
    parts
}

impl CacheEntry {
    /// A new entry, sealed by `sealer`.
    pub(super) fn new(
        material: &[u8],
        fingerprints: BTreeMap<String, String>,
        certificate_sha256: String,
        (salt, verifier): (String, String),
        sealer: &Sealer,
    ) -> CacheEntry {
        let mut entry = CacheEntry {
            fingerprints,
            certificate_sha256,
            salt,
            verifier,
            mac: String::new(),
        };
        entry.mac = sealer.seal(CACHE_DOMAIN, &parts(material, &entry));
        entry
    }

    /// Whether the seal opens for `material`.
    fn authentic(&self, material: &[u8], sealer: &Sealer) -> bool {
        sealer.opens(CACHE_DOMAIN, &parts(material, self), &self.mac)
    }
}

impl Cache {
    pub(super) fn new() -> Cache {
        Cache {
            format: FORMAT,
            entries: BTreeMap::new(),
        }
    }

    /// The cache of the vault in `dir`; empty when it is missing, unreadable or of another
    /// format.
    pub(super) fn read(dir: &Path) -> Cache {
        let cache: Option<Cache> = std::fs::read(dir.join(CACHE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        cache
            .filter(|c| c.format == FORMAT)
            .unwrap_or_else(Cache::new)
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
    pub(super) sealer: Sealer,
}

impl Previous<'_> {
    /// The cached entry of `number` when its seal opens for the current inputs and every
    /// document in the previous outputs still has its fingerprint.
    pub(super) fn reuse(&self, number: &str, material: &[u8]) -> Option<CacheEntry> {
        let sealer = &self.sealer;
        let entry = self.cache.entries.get(number)?;
        if !entry.authentic(material, sealer) {
            return None;
        }
        let unchanged = DOCUMENTS.iter().all(|document| {
            let path = self.outputs.of(document.place).join(document.file(number));
            entry
                .fingerprints
                .get(document.id)
                .is_some_and(|f| sealer.file_matches(&path, f))
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
        crate::common::private_files::link_or_copy(&from, &to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::hex::sha256_hex;

    /// A previous build of one certificate: its vault and notices under a temporary
    /// directory, and a cache of it.
    fn outputs_with(number: &str, sealer: &Sealer) -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().expect("tempdir");
        let dirs = Dirs::under(dir.path());
        let outputs = dirs.outputs();
        let mut fingerprints = BTreeMap::new();
        for (document, bytes) in DOCUMENTS.iter().zip([&b"cert"[..], b"notice"]) {
            let place = outputs.of(document.place);
            std::fs::create_dir_all(place.join(document.dir)).expect("mkdir");
            std::fs::write(place.join(document.file(number)), bytes).expect("write");
            fingerprints.insert(document.id.to_owned(), sealer.fingerprint(bytes));
        }
        let mut cache = Cache::new();
        let values = ("aa".into(), "bb".into());
        let entry = CacheEntry::new(b"inputs", fingerprints, sha256_hex(b"cert"), values, sealer);
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
        let sealer = Sealer::new(&[7u8; 32]);
        let (dir, cache) = outputs_with("2070004426", &sealer);
        let dirs = Dirs::under(dir.path());
        let outputs = dirs.outputs();
        let bytes = cache.to_bytes().expect("json");
        std::fs::write(outputs.vault.join(CACHE_FILE), &bytes).expect("write");
        // No plain hash of the notice (it holds the key) is in the cache.
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(!text.contains(&sha256_hex(b"notice")), "{text}");
        let previous = |secret: [u8; 32]| Previous {
            outputs,
            cache: Cache::read(outputs.vault),
            sealer: Sealer::new(&secret),
        };
        assert!(previous([7; 32]).reuse("2070004426", b"inputs").is_some());
        assert!(previous([7; 32])
            .reuse("2070004426", b"other inputs")
            .is_none());
        assert!(previous([8; 32]).reuse("2070004426", b"inputs").is_none());
        assert!(previous([7; 32]).reuse("2070004427", b"inputs").is_none());
        // A notice altered by hand is not carried forward.
        std::fs::write(outputs.notices.join("2070004426.pdf"), b"forged").expect("write");
        assert!(previous([7; 32]).reuse("2070004426", b"inputs").is_none());
    }

    #[test]
    fn caches_of_earlier_formats_are_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let v2 = serde_json::json!({"format": 2, "entries": {"2070004426": {
            "documents": {"notice": sha256_hex(b"notice")}, "salt": "aa", "verifier": "bb", "mac": "00",
        }}});
        std::fs::write(dir.path().join(CACHE_FILE), v2.to_string()).expect("write");
        assert!(Cache::read(dir.path()).entries.is_empty());
    }
}
