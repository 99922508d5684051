//! The reader's index of a verified manifest ([`Catalog`]): each entry checked once and kept
//! in binary form, found by number, and the key checked against an entry's verifier.

use ring::pbkdf2;
use serde::Deserialize;

use super::format::{
    iterations, write_leaf, Entry, Header, Kdf, Kind, Leaf, Limits, ManifestError, Status,
    TreeHead, FORMAT, FORMAT_WITHOUT_TREE, KDF_ALGORITHM, SALT_LEN, VERIFIER_LEN,
};
use crate::common::hex::{decode_lower_into, encode_into, from_hex, to_hex};
use crate::trust::merkle::{leaf_hash, Hash, Tree};

/// A verified manifest as readers hold it: its entries in binary form, in number order (128
/// bytes each, against about 350 in the file, so that a platform holds several million), and
/// its tree. An entry is written out as [`Entry`] when it is looked up.
pub struct Catalog {
    pub(super) header: Header,
    pub(super) index: Vec<Slot>,
    pub(super) sha256: String,
    /// The Ed25519 signature that checked out.
    pub(super) signature: Vec<u8>,
    /// Format 3: the entries' Merkle tree, every level.
    pub(super) tree: Option<Tree>,
    /// Format 3: the tree head's signature, which checked out.
    pub(super) tree_head_signature: Option<Vec<u8>>,
}

/// The proof that one certificate's leaf is in a signed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inclusion {
    pub leaf: Leaf,
    /// Its place among the leaves (0-based, in number order).
    pub index: u64,
    /// The hashes from the leaf up to the root (RFC 9162 `PATH`).
    pub path: Vec<Hash>,
    pub tree_head: TreeHead,
    /// Ed25519 over [`TreeHead::bytes`].
    pub tree_head_signature: Vec<u8>,
}

/// One entry, checked, in binary form.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    number: u64,
    kind: Kind,
    status: Status,
    record_sha256: [u8; 32],
    pdf_sha256: [u8; 32],
    salt: [u8; SALT_LEN],
    verifier: [u8; VERIFIER_LEN],
}

impl Slot {
    /// The entry as the manifest wrote it (lower-case hex, as the reader requires).
    fn entry(&self) -> Entry {
        Entry {
            number: format!("{:010}", self.number),
            kind: self.kind,
            status: self.status,
            pdf_sha256: to_hex(&self.pdf_sha256),
            record_sha256: to_hex(&self.record_sha256),
            salt: to_hex(&self.salt),
            verifier: to_hex(&self.verifier),
        }
    }
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
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    root: Option<String>,
    #[serde(borrow)]
    entries: Vec<&'a serde_json::value::RawValue>,
}

/// One entry, borrowed from the bytes, to check it at load time without allocating.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryRef<'a> {
    #[serde(borrow)]
    number: std::borrow::Cow<'a, str>,
    kind: Kind,
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
    /// The entry in binary form, once every field is well formed: each hex field checked and
    /// decoded in one pass.
    fn check(&self) -> Result<Slot, String> {
        let number = number_key(&self.number)
            .ok_or_else(|| format!("保証契約番号「{}」が10桁の数字ではありません", self.number))?;
        let mut slot = Slot {
            number,
            kind: self.kind,
            status: self.status,
            record_sha256: [0; 32],
            pdf_sha256: [0; 32],
            salt: [0; SALT_LEN],
            verifier: [0; VERIFIER_LEN],
        };
        let hex_ok = decode_lower_into(&self.record_sha256, &mut slot.record_sha256)
            && decode_lower_into(&self.pdf_sha256, &mut slot.pdf_sha256)
            && decode_lower_into(&self.salt, &mut slot.salt)
            && decode_lower_into(&self.verifier, &mut slot.verifier);
        match hex_ok {
            true => Ok(slot),
            false => Err(format!("{} の項目の値が正しくありません", self.number)),
        }
    }

    /// The hash of its leaf, from its text and `slot` (its checked binary form), the leaf's
    /// bytes built in `buffer` without another allocation.
    fn leaf_hash(&self, slot: &Slot, buffer: &mut Vec<u8>) -> Hash {
        let mut secret = [0u8; SALT_LEN + VERIFIER_LEN];
        secret[..SALT_LEN].copy_from_slice(&slot.salt);
        secret[SALT_LEN..].copy_from_slice(&slot.verifier);
        let secret = ring::digest::digest(&ring::digest::SHA256, &secret);
        let mut secret_hex = [0u8; 64];
        encode_into(secret.as_ref(), &mut secret_hex);
        buffer.clear();
        write_leaf(
            buffer,
            [
                &self.number,
                self.kind.label(),
                self.status.code(),
                &self.record_sha256,
                &self.pdf_sha256,
            ],
            &secret_hex,
        );
        leaf_hash(buffer)
    }
}

/// The index of a run of entries, and their leaf hashes when the manifest has a tree.
type Part = (Vec<Slot>, Vec<Hash>);

/// Checks and indexes a run of entries, hashing their leaves when `tree`.
fn index_part(entries: &[&serde_json::value::RawValue], tree: bool) -> Result<Part, ManifestError> {
    let malformed = |e: String| ManifestError::Malformed(e);
    let mut index: Vec<Slot> = Vec::with_capacity(entries.len());
    let mut leaves: Vec<Hash> = Vec::with_capacity(if tree { entries.len() } else { 0 });
    let mut buffer = Vec::with_capacity(320);
    for raw in entries {
        let text = raw.get();
        let entry: EntryRef<'_> =
            serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
        let slot = entry.check().map_err(malformed)?;
        if index.last().is_some_and(|last| last.number >= slot.number) {
            return Err(ManifestError::Unsorted);
        }
        if tree {
            leaves.push(entry.leaf_hash(&slot, &mut buffer));
        }
        index.push(slot);
    }
    Ok((index, leaves))
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

/// Checks and indexes every entry (and hashes its leaf when `tree`), a part per thread of
/// the rayon pool it runs in (a reload runs in one of low priority), and joins the parts in
/// order.
fn index_entries(
    entries: &[&serde_json::value::RawValue],
    tree: bool,
) -> Result<Part, ManifestError> {
    use rayon::prelude::*;
    let chunk = entries.len().div_ceil(rayon::current_num_threads()).max(1);
    let parts: Vec<Result<Part, ManifestError>> = entries
        .par_chunks(chunk)
        .map(|part| index_part(part, tree))
        .collect();
    let mut index: Vec<Slot> = Vec::with_capacity(entries.len());
    let mut leaves: Vec<Hash> = Vec::with_capacity(if tree { entries.len() } else { 0 });
    for part in parts {
        let (part, part_leaves) = part?;
        // Each part is sorted; so is the whole when the parts join in order.
        if let (Some(last), Some(first)) = (index.last(), part.first()) {
            if last.number >= first.number {
                return Err(ManifestError::Unsorted);
            }
        }
        index.extend(part);
        leaves.extend(part_leaves);
    }
    Ok((index, leaves))
}

impl Catalog {
    /// Indexes `manifest`, whose signature checked out: every entry is checked once here,
    /// on all cores, and in format 3 hashed into the tree (its root is checked against the
    /// header's by the caller, with the tree head's signature).
    pub(super) fn index(
        manifest: &[u8],
        sig_key_id: &str,
        limits: Limits,
    ) -> Result<(Header, Vec<Slot>, Option<Tree>), ManifestError> {
        let malformed = |e: String| ManifestError::Malformed(e);
        let document: Document<'_> =
            serde_json::from_slice(manifest).map_err(|e| malformed(e.to_string()))?;
        let tree = match (document.format, &document.size, &document.root) {
            (FORMAT, Some(_), Some(_)) => true,
            (FORMAT_WITHOUT_TREE, None, None) => false,
            (FORMAT | FORMAT_WITHOUT_TREE, _, _) => {
                return Err(malformed(format!(
                    "形式 {} のマニフェストの size と root が正しくありません",
                    document.format
                )))
            }
            (other, _, _) => return Err(ManifestError::UnsupportedFormat(other)),
        };
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
        let (index, leaves) = index_entries(&document.entries, tree)?;
        let header = Header {
            format: document.format,
            seq: document.seq,
            issued_at: document.issued_at,
            expires_at: document.expires_at,
            key_id: document.key_id,
            kdf: document.kdf,
            size: document.size,
            root: document.root,
        };
        Ok((header, index, tree.then(|| Tree::new(leaves))))
    }

    /// The signed tree head and the proof that `number`'s leaf is in it; `None` for a
    /// number not in the manifest, or a manifest without a tree (format 1).
    pub fn inclusion(&self, number: &str) -> Option<Inclusion> {
        let tree = self.tree.as_ref()?;
        let key = number_key(number)?;
        let at = self.index.binary_search_by_key(&key, |s| s.number).ok()?;
        Some(Inclusion {
            leaf: self.entry_at(at)?.leaf()?,
            index: at as u64,
            path: tree.proof(at)?,
            tree_head: self.header.tree_head()?,
            tree_head_signature: self.tree_head_signature.clone()?,
        })
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

    /// The entry of a number, if it is in the manifest.
    pub fn entry(&self, number: &str) -> Option<Entry> {
        let key = number_key(number)?;
        let at = self.index.binary_search_by_key(&key, |s| s.number).ok()?;
        self.entry_at(at)
    }

    fn entry_at(&self, at: usize) -> Option<Entry> {
        self.index.get(at).map(Slot::entry)
    }

    /// The first number, in order, for which `wanted` holds; each number is written into a
    /// buffer on the stack, so a million are looked at without an allocation.
    pub fn find_number(&self, mut wanted: impl FnMut(&str) -> bool) -> Option<String> {
        let mut digits = [b'0'; 10];
        self.index.iter().find_map(|slot| {
            let mut n = slot.number;
            for d in digits.iter_mut().rev() {
                *d = b'0' + (n % 10) as u8;
                n /= 10;
            }
            let number = std::str::from_utf8(&digits).ok()?;
            wanted(number).then(|| number.to_owned())
        })
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
