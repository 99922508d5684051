//! The one mechanism by which the private outputs (the vault's certificates and notices, the
//! statements) reuse what an earlier build typeset. Everything it writes is keyed with the
//! auth-key secret, which never leaves the build host:
//!
//! - a document's **fingerprint** is HMAC-SHA256(secret, domain ‖ the file's bytes), never a
//!   plain hash. A notice holds a 認証キー: with a plain hash in the vault, anyone holding
//!   the vault could typeset a notice with a guessed key and compare hashes, confirming a
//!   guess at typesetting cost instead of PBKDF2's. A fingerprint cannot be computed without
//!   the secret.
//! - an entry is **sealed** with an HMAC over the typesetting inputs and every cached value,
//!   so it cannot be forged or moved to other inputs.
//!
//! A cached document is carried forward only when its entry opens for the current inputs
//! and the previous file still has its fingerprint: a file altered by hand is typeset again.

use std::path::Path;

use ring::hmac;

use crate::common::files::read_capped;
use crate::common::hex::{from_hex, to_hex};
use crate::trust::layout::MAX_PDF_BYTES;

const FINGERPRINT_DOMAIN: &[u8] = b"hosho document fingerprint v1\0";

/// Seals cache entries and fingerprints documents with the auth-key secret.
pub struct Sealer {
    key: hmac::Key,
}

impl Sealer {
    pub fn new(secret: &[u8]) -> Sealer {
        Sealer {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The document's fingerprint, hex.
    pub fn fingerprint(&self, bytes: &[u8]) -> String {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(FINGERPRINT_DOMAIN);
        context.update(bytes);
        to_hex(context.sign().as_ref())
    }

    /// Whether the file at `path` (a PDF, read up to the PDF size cap) has `fingerprint`.
    pub fn file_matches(&self, path: &Path, fingerprint: &str) -> bool {
        read_capped(path, MAX_PDF_BYTES, false).is_ok_and(|b| self.fingerprint(&b) == fingerprint)
    }

    /// The seal of `parts` under `domain`, hex: each part length-prefixed, so no two lists of
    /// parts share a message.
    pub fn seal(&self, domain: &[u8], parts: &[&[u8]]) -> String {
        to_hex(hmac::sign(&self.key, &message(domain, parts)).as_ref())
    }

    /// Whether `seal` is the seal of `parts` under `domain` (compared in constant time).
    pub fn opens(&self, domain: &[u8], parts: &[&[u8]], seal: &str) -> bool {
        from_hex(seal)
            .is_some_and(|mac| hmac::verify(&self.key, &message(domain, parts), &mac).is_ok())
    }
}

fn message(domain: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut message =
        Vec::with_capacity(domain.len() + parts.iter().map(|p| p.len() + 8).sum::<usize>());
    message.extend_from_slice(domain);
    for part in parts {
        message.extend_from_slice(&(part.len() as u64).to_be_bytes());
        message.extend_from_slice(part);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::hex::sha256_hex;

    #[test]
    fn fingerprints_need_the_secret_and_are_no_plain_hash() {
        let (a, b) = (Sealer::new(&[1; 32]), Sealer::new(&[2; 32]));
        let pdf = b"%PDF-1.7 notice with key 332E1E7K9Q";
        assert_ne!(a.fingerprint(pdf), b.fingerprint(pdf));
        assert_ne!(a.fingerprint(pdf), sha256_hex(pdf));
        assert_eq!(a.fingerprint(pdf), a.fingerprint(pdf));
    }

    #[test]
    fn seals_cover_every_part_and_its_boundaries() {
        let s = Sealer::new(&[1; 32]);
        let seal = s.seal(b"d", &[b"ab", b"c"]);
        assert!(s.opens(b"d", &[b"ab", b"c"], &seal));
        assert!(!s.opens(b"d", &[b"a", b"bc"], &seal));
        assert!(!s.opens(b"e", &[b"ab", b"c"], &seal));
        assert!(!Sealer::new(&[2; 32]).opens(b"d", &[b"ab", b"c"], &seal));
        assert!(!s.opens(b"d", &[b"ab", b"c"], "not hex"));
    }
}
