//! The reader's index of a verified manifest ([`Catalog`]): the signed bytes kept whole, each
//! entry checked once and found by number, and the key checked against an entry's verifier.

use ring::pbkdf2;
use serde::Deserialize;

use super::format::{
    iterations, Entry, Header, Kdf, Kind, Limits, ManifestError, Status, FORMAT, KDF_ALGORITHM,
    SALT_LEN, VERIFIER_LEN,
};
use crate::common::hex::{from_hex, is_hex_of};

/// A verified manifest as readers hold it: the signed bytes themselves and an index by
/// number into them. A million entries cost the file's size plus 16 bytes each; an entry is
/// parsed from its slice when it is looked up.
pub struct Catalog {
    pub(super) header: Header,
    /// The manifest file's bytes.
    pub(super) bytes: Vec<u8>,
    pub(super) index: Vec<Slot>,
    pub(super) sha256: String,
    /// The Ed25519 signature that checked out.
    pub(super) signature: Vec<u8>,
}

/// Where one entry's JSON lies in the bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    number: u64,
    start: u32,
    len: u32,
}

/// What a reader parses after the signature checked out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document<'a> {
    format: u32,
    seq: u64,
    issued_at: u64,
    expires_at: u64,
    key_id: String,
    kdf: Kdf,
    #[serde(borrow)]
    entries: Vec<&'a serde_json::value::RawValue>,
}

/// One entry, borrowed from the bytes, to check it at load time without allocating.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryRef<'a> {
    #[serde(borrow)]
    number: std::borrow::Cow<'a, str>,
    #[allow(dead_code)]
    kind: Kind,
    #[allow(dead_code)]
    status: Status,
    #[serde(borrow)]
    pdf_sha256: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    record_sha256: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    salt: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    verifier: std::borrow::Cow<'a, str>,
}

/// A 保証契約番号 as the index key: exactly 10 ASCII digits.
fn number_key(number: &str) -> Option<u64> {
    (number.len() == 10 && number.bytes().all(|b| b.is_ascii_digit()))
        .then(|| number.parse().ok())
        .flatten()
}

impl EntryRef<'_> {
    fn check(&self) -> Result<u64, String> {
        let number = number_key(&self.number)
            .ok_or_else(|| format!("保証契約番号「{}」が10桁の数字ではありません", self.number))?;
        let hex_ok = is_hex_of(&self.pdf_sha256, 32)
            && is_hex_of(&self.record_sha256, 32)
            && is_hex_of(&self.salt, SALT_LEN)
            && is_hex_of(&self.verifier, VERIFIER_LEN);
        if !hex_ok {
            return Err(format!("{} の項目の値が正しくありません", self.number));
        }
        Ok(number)
    }
}

/// Checks and indexes a run of entries; `base` is the address of the manifest's first byte.
fn index_part(
    entries: &[&serde_json::value::RawValue],
    base: usize,
) -> Result<Vec<Slot>, ManifestError> {
    let malformed = |e: String| ManifestError::Malformed(e);
    let mut index: Vec<Slot> = Vec::with_capacity(entries.len());
    for raw in entries {
        let text = raw.get();
        let entry: EntryRef<'_> =
            serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
        let number = entry.check().map_err(malformed)?;
        if index.last().is_some_and(|last| last.number >= number) {
            return Err(ManifestError::Unsorted);
        }
        let (start, len) = (text.as_ptr() as usize - base, text.len());
        let (Ok(start), Ok(len)) = (u32::try_from(start), u32::try_from(len)) else {
            return Err(ManifestError::TooLarge {
                bytes: (start + len) as u64,
                max: u64::from(u32::MAX),
            });
        };
        index.push(Slot { number, start, len });
    }
    Ok(index)
}

/// Refuses a KDF other than the one hosho writes, or weaker than `limits` allow.
fn check_kdf(kdf: &Kdf, limits: Limits) -> Result<(), ManifestError> {
    if kdf.algorithm != KDF_ALGORITHM || kdf.length != VERIFIER_LEN {
        return Err(ManifestError::Malformed(format!("kdf {}", kdf.algorithm)));
    }
    if kdf.iterations < limits.min_iterations {
        return Err(ManifestError::WeakKdf {
            iterations: kdf.iterations,
            floor: limits.min_iterations,
        });
    }
    Ok(())
}

/// Checks and indexes every entry, a part per core, and joins the parts in order.
fn index_entries(
    entries: &[&serde_json::value::RawValue],
    base: usize,
) -> Result<Vec<Slot>, ManifestError> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = entries.len().div_ceil(workers).max(1);
    let parts: Vec<Result<Vec<Slot>, ManifestError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|part| scope.spawn(move || index_part(part, base)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(ManifestError::Malformed("索引を作れません".into())))
            })
            .collect()
    });
    let mut index: Vec<Slot> = Vec::with_capacity(entries.len());
    for part in parts {
        let part = part?;
        // Each part is sorted; so is the whole when the parts join in order.
        if let (Some(last), Some(first)) = (index.last(), part.first()) {
            if last.number >= first.number {
                return Err(ManifestError::Unsorted);
            }
        }
        index.extend(part);
    }
    Ok(index)
}

impl Catalog {
    /// Indexes `manifest`, whose signature checked out: every entry is checked once here,
    /// on all cores.
    pub(super) fn index(
        manifest: &[u8],
        sig_key_id: &str,
        limits: Limits,
    ) -> Result<(Header, Vec<Slot>), ManifestError> {
        let malformed = |e: String| ManifestError::Malformed(e);
        let document: Document<'_> =
            serde_json::from_slice(manifest).map_err(|e| malformed(e.to_string()))?;
        if document.format != FORMAT {
            return Err(ManifestError::UnsupportedFormat(document.format));
        }
        if document.key_id != sig_key_id {
            return Err(ManifestError::KeyIdMismatch);
        }
        if document.entries.len() > limits.max_entries {
            return Err(ManifestError::TooManyEntries {
                entries: document.entries.len(),
                max: limits.max_entries,
            });
        }
        check_kdf(&document.kdf, limits)?;
        let index = index_entries(&document.entries, manifest.as_ptr() as usize)?;
        let header = Header {
            format: document.format,
            seq: document.seq,
            issued_at: document.issued_at,
            expires_at: document.expires_at,
            key_id: document.key_id,
            kdf: document.kdf,
        };
        Ok((header, index))
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn seq(&self) -> u64 {
        self.header.seq
    }

    pub fn expires_at(&self) -> u64 {
        self.header.expires_at
    }

    /// The one expiry rule: past `expires_at`, the manifest is no longer served (503).
    pub fn expired(&self, now_unix: u64) -> bool {
        now_unix > self.header.expires_at
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// SHA-256 of the manifest file, hex (the fingerprint shown to orderers).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The signature this manifest was accepted with. Ed25519 signatures are deterministic,
    /// so an unchanged signature file means an unchanged manifest (or a tampered one, which
    /// would be refused anyway).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Size of the manifest file in bytes.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// The entry of a number, if it is in the manifest.
    pub fn entry(&self, number: &str) -> Option<Entry> {
        let key = number_key(number)?;
        let at = self.index.binary_search_by_key(&key, |s| s.number).ok()?;
        self.entry_at(at)
    }

    fn entry_at(&self, at: usize) -> Option<Entry> {
        let slot = self.index.get(at)?;
        let start = slot.start as usize;
        let bytes = self.bytes.get(start..start + slot.len as usize)?;
        serde_json::from_slice(bytes).ok()
    }

    /// Every entry, in number order.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        (0..self.index.len()).filter_map(|i| self.entry_at(i))
    }

    /// Whether `normalised_key` is the key of `entry`, compared in constant time by ring.
    /// With no entry (an unknown number) the same PBKDF2 work is done against a dummy
    /// verifier, so both refusals cost the same.
    pub fn key_matches(&self, entry: Option<&Entry>, normalised_key: &str) -> bool {
        const DUMMY_SALT: [u8; SALT_LEN] = [0x5a; SALT_LEN];
        const DUMMY_VERIFIER: [u8; VERIFIER_LEN] = [0; VERIFIER_LEN];
        let decoded = entry.and_then(|e| Some((from_hex(&e.salt)?, from_hex(&e.verifier)?)));
        let (salt, verifier): (&[u8], &[u8]) = match &decoded {
            Some((s, v)) => (s, v),
            None => (&DUMMY_SALT, &DUMMY_VERIFIER),
        };
        let matched = pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations(self.header.kdf.iterations),
            salt,
            normalised_key.as_bytes(),
            verifier,
        )
        .is_ok();
        matched && decoded.is_some()
    }
}
