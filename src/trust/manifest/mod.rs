//! The signed manifest (`vault/manifest.json` + `vault/manifest.json.sig`): one entry per
//! certificate, signed with Ed25519 over a domain prefix and the SHA-256 of the file's exact
//! bytes (prehashed, as minisign does for large files: Ed25519 hashes its whole message with
//! SHA-512, about 330 MB/s here, where SHA-256 runs at 1.4 GB/s, and a million-entry
//! manifest must be trusted within two seconds).
//!
//! The format is described in `docs/manifest.md`. This module is the one place that knows
//! it: the build writes it, `hosho verify` and the daemon read it. It depends on ring,
//! serde and common/ only. Whoever reads a manifest holds public keys alone, and the signature is
//! checked before anything is parsed.
//!
//! - [`format`]: what a manifest holds and its canonical bytes;
//! - [`catalog`]: the reader's index of a verified manifest;
//! - [`signature`]: signing, and reading a manifest back against trusted keys.

pub mod catalog;
pub mod format;
pub mod signature;

pub use catalog::{Catalog, Inclusion};
pub use format::*;
pub use signature::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::hex::sha256_hex;
    use crate::common::hex::to_hex;
    use ring::rand::SystemRandom;
    use ring::signature::KeyPair;
    use ring::{digest, signature};

    fn key_pair() -> (signature::Ed25519KeyPair, PublicKey) {
        let rng = SystemRandom::new();
        let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("keygen");
        let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("parse");
        let public = PublicKey::from_bytes(pair.public_key().as_ref().to_vec());
        (pair, public)
    }

    fn entry(number: &str, key: &str, iterations: u32) -> Entry {
        let salt = [7u8; SALT_LEN];
        Entry {
            number: number.to_owned(),
            kind: Kind::Advance,
            status: Status::Valid,
            pdf_sha256: sha256_hex(b"pdf"),
            record_sha256: sha256_hex(b"record"),
            salt: to_hex(&salt),
            verifier: to_hex(&make_verifier(key, &salt, iterations)),
        }
    }

    fn sample(key_id: &str, iterations: u32) -> Manifest {
        let header = Header::new(3, 1_700_000_000, 1_800_000_000, key_id, iterations);
        Manifest::new(header, vec![entry("2070004426", "332E1E7K9Q", iterations)])
    }

    /// The manifest's file and signature file, as a build writes them.
    fn signed(m: &Manifest, pair: &signature::Ed25519KeyPair, id: &str) -> (Vec<u8>, Vec<u8>) {
        let files = m.signed(pair, id).expect("sign");
        (files.manifest, files.signature)
    }

    fn refused(result: Result<Catalog, ManifestError>) -> ManifestError {
        match result {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        }
    }

    fn limits(min_iterations: u32) -> Limits {
        Limits {
            min_iterations,
            ..Limits::default()
        }
    }

    #[test]
    fn signed_manifest_round_trips_and_checks_keys() {
        let (pair, public) = key_pair();
        let (bytes, sig) = signed(&sample(&public.id, 1000), &pair, &public.id);
        let m = verify(&bytes, &sig, &[public], limits(1000)).expect("valid");
        let entry = m.entry("2070004426").expect("entry");
        assert!(m.key_matches(Some(&entry), "332E1E7K9Q"));
        assert!(!m.key_matches(Some(&entry), "332E1E7K9R"));
        assert!(m.entry("2070004427").is_none());
        assert!(!m.key_matches(None, "332E1E7K9Q"));
        assert_eq!(
            m.entries().collect::<Vec<_>>(),
            sample(&m.header().key_id, 1000).entries
        );
        assert_eq!(
            (m.seq(), m.len(), m.sha256()),
            (3, 1, sha256_hex(&bytes).as_str())
        );
    }

    #[test]
    fn the_signed_bytes_are_the_domain_and_the_manifest_sha256() {
        // As docs/manifest.md gives them, so a signature can be checked by hand.
        let digest = digest::digest(&digest::SHA256, b"{}");
        let message = signed_message(digest.as_ref());
        assert_eq!(message.len(), 50);
        assert_eq!(&message[..18], b"hosho manifest v2\n");
        assert_eq!(&message[18..], digest.as_ref());
    }

    #[test]
    fn any_flipped_byte_is_refused() {
        let (pair, public) = key_pair();
        let (bytes, sig) = signed(&sample(&public.id, 1000), &pair, &public.id);
        for i in [0, bytes.len() / 2, bytes.len() - 2] {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x01;
            assert_eq!(
                refused(verify(
                    &tampered,
                    &sig,
                    std::slice::from_ref(&public),
                    limits(1000)
                )),
                ManifestError::BadSignature,
                "byte {i}"
            );
        }
        let text = String::from_utf8(sig.clone()).expect("utf-8");
        let at = text.find("\"signature\": \"").expect("field") + 14;
        let mut tampered = sig.clone();
        tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            refused(verify(&bytes, &tampered, &[public], limits(1000))),
            ManifestError::BadSignature
        );
    }

    #[test]
    fn other_keys_and_weak_kdfs_are_refused() {
        let (pair, public) = key_pair();
        let (_, other) = key_pair();
        let (bytes, sig) = signed(&sample(&public.id, 1000), &pair, &public.id);
        assert_eq!(
            refused(verify(
                &bytes,
                &sig,
                std::slice::from_ref(&other),
                limits(1000)
            )),
            ManifestError::UnknownKey(public.id.clone())
        );
        // A signature by another key under the trusted key's id fails.
        let (impostor, _) = key_pair();
        let forged = sign(&bytes, &impostor, &public.id).expect("sign");
        assert_eq!(
            refused(verify(
                &bytes,
                &forged,
                std::slice::from_ref(&public),
                limits(1000)
            )),
            ManifestError::BadSignature
        );
        assert_eq!(
            refused(verify(&bytes, &sig, &[public], limits(5000))),
            ManifestError::WeakKdf {
                iterations: 1000,
                floor: 5000
            }
        );
    }

    #[test]
    fn size_cap_is_checked_first() {
        let (_, public) = key_pair();
        let big = vec![b' '; 100];
        let tiny = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(
            refused(verify(&big, b"{}", &[public], tiny)),
            ManifestError::TooLarge {
                bytes: 100,
                max: 10
            }
        );
    }

    #[test]
    fn unsorted_or_duplicate_entries_are_refused_wherever_they_are() {
        let (pair, public) = key_pair();
        let with_numbers = |numbers: &[u64]| {
            let m = sample(&public.id, 1000);
            let template = m.entries[0].clone();
            let entries = numbers
                .iter()
                .map(|n| Entry {
                    number: n.to_string(),
                    ..template.clone()
                })
                .collect();
            let m = Manifest::new(m.header.clone(), entries);
            let (bytes, sig) = signed(&m, &pair, &public.id);
            verify(&bytes, &sig, std::slice::from_ref(&public), limits(1000))
        };
        let base = 2_070_000_000u64;
        let sorted: Vec<u64> = (0..9).map(|i| base + i).collect();
        assert_eq!(with_numbers(&sorted).map(|c| c.len()).ok(), Some(9));
        for (a, b) in [(0, 1), (3, 4), (4, 5), (7, 8)] {
            let mut swapped = sorted.clone();
            swapped.swap(a, b);
            assert_eq!(
                refused(with_numbers(&swapped)),
                ManifestError::Unsorted,
                "{a}<->{b}"
            );
            let mut duplicate = sorted.clone();
            duplicate[b] = duplicate[a];
            assert_eq!(
                refused(with_numbers(&duplicate)),
                ManifestError::Unsorted,
                "{a}=={b}"
            );
        }
    }

    /// The signature file `sig` with its tree-head signature replaced by `signature`.
    fn with_tree_head_signature(sig: &[u8], signature: Option<String>) -> Vec<u8> {
        let mut file: SignatureFile = serde_json::from_slice(sig).expect("signature file");
        file.tree_head_signature = signature;
        serde_json::to_vec_pretty(&file).expect("json")
    }

    #[test]
    fn the_tree_head_is_signed_and_every_entry_proved_in_it() {
        let (pair, public) = key_pair();
        let entries = (0..5)
            .map(|i| entry(&format!("207000442{i}"), "332E1E7K9Q", 1000))
            .collect();
        let m = Manifest::new(Header::new(3, 1, 1_800_000_000, &public.id, 1000), entries);
        let (bytes, sig) = signed(&m, &pair, &public.id);
        let trusted = std::slice::from_ref(&public);
        let catalog = verify(&bytes, &sig, trusted, limits(1000)).expect("valid");
        let head = catalog.header().tree_head().expect("format 3");
        assert_eq!((catalog.header().format, head.size), (FORMAT, 5));
        for i in 0..5 {
            let proof = catalog.inclusion(&format!("207000442{i}")).expect("in it");
            let leaf = crate::trust::merkle::leaf_hash(&proof.leaf.bytes());
            let root: crate::trust::merkle::Hash = crate::common::hex::from_hex(&head.root)
                .and_then(|r| r.try_into().ok())
                .expect("root");
            assert!(crate::trust::merkle::verify_inclusion(
                &leaf,
                proof.index,
                head.size,
                &proof.path,
                &root
            ));
            assert_eq!(proof.index, i);
            signature::UnparsedPublicKey::new(&signature::ED25519, &public.bytes)
                .verify(&proof.tree_head.bytes(), &proof.tree_head_signature)
                .expect("the tree head's signature");
        }
        assert!(catalog.inclusion("2070009999").is_none());
        // A tree head signed by another key, none at all, or a root that is not the entries'.
        let (impostor, _) = key_pair();
        let other = to_hex(impostor.sign(&head.bytes()).as_ref());
        let forged = with_tree_head_signature(&sig, Some(other));
        let refusal = refused(verify(&bytes, &forged, trusted, limits(1000)));
        assert_eq!(refusal, ManifestError::BadSignature);
        let none = with_tree_head_signature(&sig, None);
        let refusal = refused(verify(&bytes, &none, trusted, limits(1000)));
        assert!(
            matches!(refusal, ManifestError::BadSignatureFile(_)),
            "{refusal:?}"
        );
        let mut wrong = m.clone();
        wrong.header.root = Some("00".repeat(32));
        let (bytes, sig) = signed(&wrong, &pair, &public.id);
        let refusal = refused(verify(&bytes, &sig, trusted, limits(1000)));
        assert!(
            matches!(refusal, ManifestError::Malformed(ref e) if e.contains("root")),
            "{refusal:?}"
        );
    }

    #[test]
    fn a_manifest_of_format_1_is_still_read_without_a_tree() {
        let (pair, public) = key_pair();
        let mut header = Header::new(3, 1, 1_800_000_000, &public.id, 1000);
        header.format = FORMAT_WITHOUT_TREE;
        let m = Manifest {
            header,
            entries: vec![entry("2070004426", "332E1E7K9Q", 1000)],
        };
        let bytes = m.to_bytes().expect("json");
        assert!(!String::from_utf8_lossy(&bytes).contains("root"));
        let sig = sign(&bytes, &pair, &public.id).expect("sign");
        let catalog = verify(&bytes, &sig, std::slice::from_ref(&public), limits(1000))
            .expect("format 1 is read");
        let entry = catalog.entry("2070004426");
        assert!(catalog.key_matches(entry.as_ref(), "332E1E7K9Q"));
        assert!(catalog.inclusion("2070004426").is_none());
        // Format 3 without its tree, or format 1 with one, is refused.
        let mut half = m.clone();
        half.header.format = FORMAT;
        let bytes = half.to_bytes().expect("json");
        let sig = sign(&bytes, &pair, &public.id).expect("sign");
        let refusal = refused(verify(&bytes, &sig, &[public], limits(1000)));
        assert!(
            matches!(refusal, ManifestError::Malformed(_)),
            "{refusal:?}"
        );
    }

    #[test]
    fn leaf_and_tree_head_bytes_are_as_documented() {
        let leaf = entry("2070004426", "332E1E7K9Q", 1000).leaf().expect("hex");
        let text = String::from_utf8(leaf.bytes()).expect("utf-8");
        let salt_and_verifier = [
            [7u8; SALT_LEN].as_slice(),
            &make_verifier("332E1E7K9Q", &[7u8; SALT_LEN], 1000),
        ]
        .concat();
        assert_eq!(
            text,
            format!(
                "hosho leaf v3\n2070004426\n前払金保証\nvalid\n{}\n{}\n{}\n",
                sha256_hex(b"record"),
                sha256_hex(b"pdf"),
                sha256_hex(&salt_and_verifier)
            )
        );
        let head = TreeHead {
            key_id: "3f1c2a9b8e7d6c5b".to_owned(),
            seq: 1_764_489_600,
            issued_at: 1_764_489_600,
            expires_at: 1_767_513_600,
            kdf: Kdf {
                algorithm: KDF_ALGORITHM.to_owned(),
                iterations: 100_000,
                length: 32,
            },
            size: 2,
            root: "ab".repeat(32),
        };
        assert_eq!(
            String::from_utf8(head.bytes()).expect("utf-8"),
            format!("hosho tree head v3\nkey_id 3f1c2a9b8e7d6c5b\nseq 1764489600\nissued_at 1764489600\nexpires_at 1767513600\nkdf pbkdf2-hmac-sha256 100000 32\nsize 2\nroot {}\n", "ab".repeat(32))
        );
    }
}
