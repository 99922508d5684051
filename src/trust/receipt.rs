//! 確認記録 (receipt): one JSON file that proves, offline and to anyone, that the guarantor
//! signed exactly this certificate and that the verification service showed it at that
//! time. It holds the certificate's record as shown (its exact text), the record's leaf and
//! its inclusion proof in a format-3 manifest, that manifest's signed tree head, the time
//! and place of the check, and the service's own signature over all of it. Never a
//! 認証キー, a salt or a verifier: the leaf holds those two only through their hash.
//!
//! The format and the checks are described in `docs/receipt.md`; the daemon makes receipts,
//! `hosho receipt verify`, the site's `/receipt/` page and a Python recipe check them.

use ring::signature::{self, Ed25519KeyPair};
use serde::{Deserialize, Serialize};

use crate::common::certificate::Record;
use crate::common::hex::{from_hex, sha256_hex, to_hex};
use crate::trust::manifest::{Inclusion, Leaf, PublicKey, TreeHead};
use crate::trust::merkle::{self, Hash};

/// The value of `format`.
pub const FORMAT: &str = "hosho-receipt-1";
/// The first line of what the service signs.
pub const SERVICE_DOMAIN: &str = "hosho receipt v1\n";
/// The largest receipt file read (a record is a few KiB, a proof 21 hashes at most).
pub const MAX_RECEIPT_BYTES: u64 = 256 * 1024;

/// The inclusion proof of the leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    /// The leaf's place in the tree (0-based).
    pub index: u64,
    /// Hashes from the leaf up to the root, hex.
    pub path: Vec<String>,
}

/// A 確認記録, as its file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// [`FORMAT`]
    pub format: String,
    /// When the certificate was shown, Unix seconds.
    pub checked_at: u64,
    /// The same in Japan's time, `2026-12-01T13:45:12+09:00`.
    pub checked_at_jst: String,
    /// Where it was checked.
    pub service_url: String,
    /// 保証会社: the name the certificate's record gives.
    pub guarantor: String,
    /// The certificate's record, the exact text of `records/<number>.json`.
    pub certificate: String,
    pub leaf: Leaf,
    pub proof: Proof,
    pub tree_head: TreeHead,
    /// The guarantor's Ed25519 signature over the tree head's bytes, hex.
    pub tree_head_signature: String,
    /// Id of the service's key.
    pub service_key_id: String,
    /// The service's Ed25519 signature over [`Receipt::service_message`], hex.
    pub service_signature: String,
}

/// What a check of a receipt found wrong, named for the person checking it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Not a receipt file at all (JSON, fields, format).
    NotAReceipt(String),
    /// The tree head was signed by a key not trusted here.
    UnknownGuarantorKey(String),
    TreeHeadSignature,
    /// The certificate's text is not the one the leaf commits to.
    CertificateHash,
    /// A field of the certificate differs from the leaf (number, kind, status).
    LeafField(&'static str),
    /// The proof does not lead from the leaf to the signed root.
    Proof,
    /// The guarantor's name differs from the certificate's.
    GuarantorName,
    /// The time of the check lies outside the manifest's validity.
    CheckedOutsideManifest,
    UnknownServiceKey(String),
    ServiceSignature,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::NotAReceipt(e) => write!(f, "確認記録のファイルとして読めません（{e}）"),
            Invalid::UnknownGuarantorKey(id) => write!(f, "保証会社の署名の鍵（鍵 ID {id}）は、信頼する公開鍵にありません"),
            Invalid::TreeHeadSignature => write!(f, "保証会社の署名が一致しません（tree_head の内容が署名されたものと違います: マニフェストの番号・日時・件数・ルートのいずれか）"),
            Invalid::CertificateHash => write!(f, "証書の内容（certificate）が、保証会社の署名した記録と一致しません（金額・日付・状態などが改変されています）"),
            Invalid::LeafField(field) => write!(f, "証書の記録の {field} が、署名された項目（leaf）と一致しません"),
            Invalid::Proof => write!(f, "包含証明（proof）が、署名されたマニフェストのルートにつながりません（proof か leaf が改変されています）"),
            Invalid::GuarantorName => write!(f, "保証会社名（guarantor）が証書の記録と一致しません"),
            Invalid::CheckedOutsideManifest => write!(f, "確認日時（checked_at）が、マニフェストの有効期間の外にあります"),
            Invalid::UnknownServiceKey(id) => write!(f, "確認サービスの署名の鍵（鍵 ID {id}）は、信頼する公開鍵にありません"),
            Invalid::ServiceSignature => write!(f, "確認サービスの署名が一致しません（確認日時・確認した場所・保証会社名などが改変されています）"),
        }
    }
}

impl std::error::Error for Invalid {}

/// What a valid receipt proves.
#[derive(Debug, Clone)]
pub struct Checked {
    pub receipt: Receipt,
    /// The certificate as it was shown.
    pub record: Record,
}

fn hex32(text: &str) -> Option<Hash> {
    from_hex(text).and_then(|b| b.try_into().ok())
}

fn one_line(text: &str) -> bool {
    !text.contains(['\n', '\r'])
}

impl Receipt {
    /// A receipt of the check at `checked_at` (Unix seconds) at `service_url`: the record's
    /// exact bytes, its inclusion in the signed tree, signed with the service's key.
    pub fn make(
        inclusion: &Inclusion,
        record: &[u8],
        checked_at: u64,
        service_url: &str,
        service: (&Ed25519KeyPair, &PublicKey),
    ) -> Result<Receipt, Invalid> {
        let certificate = String::from_utf8(record.to_vec())
            .map_err(|_| Invalid::NotAReceipt("記録が UTF-8 ではありません".into()))?;
        let parsed: Record =
            serde_json::from_str(&certificate).map_err(|e| Invalid::NotAReceipt(e.to_string()))?;
        let mut receipt = Receipt {
            format: FORMAT.to_owned(),
            checked_at,
            checked_at_jst: jst(checked_at),
            service_url: service_url.to_owned(),
            guarantor: parsed.guarantor.name,
            certificate,
            leaf: inclusion.leaf.clone(),
            proof: Proof {
                index: inclusion.index,
                path: inclusion.path.iter().map(|h| to_hex(h)).collect(),
            },
            tree_head: inclusion.tree_head.clone(),
            tree_head_signature: to_hex(&inclusion.tree_head_signature),
            service_key_id: service.1.id.clone(),
            service_signature: String::new(),
        };
        let message = receipt.service_message()?;
        receipt.service_signature = to_hex(service.0.sign(&message).as_ref());
        Ok(receipt)
    }

    /// The exact bytes the service signs (docs/receipt.md): every field but the signature,
    /// one a line, the certificate, leaf and tree head by their hashes.
    pub fn service_message(&self) -> Result<Vec<u8>, Invalid> {
        for (name, text) in [
            ("checked_at_jst", &self.checked_at_jst),
            ("service_url", &self.service_url),
            ("guarantor", &self.guarantor),
        ] {
            if !one_line(text) {
                return Err(Invalid::NotAReceipt(format!("{name} に改行があります")));
            }
        }
        let leaf = merkle::leaf_hash(&self.leaf.bytes());
        Ok(format!(
            "{SERVICE_DOMAIN}format {}\nchecked_at {}\nchecked_at_jst {}\nservice_url {}\nguarantor {}\ncertificate_sha256 {}\nleaf_hash {}\nproof {} {}\ntree_head_sha256 {}\ntree_head_signature {}\nservice_key_id {}\n",
            self.format,
            self.checked_at,
            self.checked_at_jst,
            self.service_url,
            self.guarantor,
            sha256_hex(self.certificate.as_bytes()),
            to_hex(&leaf),
            self.proof.index,
            self.proof.path.join(","),
            sha256_hex(&self.tree_head.bytes()),
            self.tree_head_signature,
            self.service_key_id,
        )
        .into_bytes())
    }

    /// The receipt file's bytes: pretty JSON and a newline.
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// `receipt-<number>-<YYYYMMDDTHHMMSS>.json`, the time in Japan.
    pub fn file_name(&self) -> String {
        let stamp: String = self
            .checked_at_jst
            .chars()
            .take(19)
            .filter(|c| c.is_ascii_digit() || *c == 'T')
            .collect();
        format!("receipt-{}-{stamp}.json", self.leaf.number)
    }
}

/// The first 16 hex digits of a receipt file's SHA-256, in groups of four: what a printed
/// page shows, to match it with the saved file.
pub fn fingerprint(receipt_file: &[u8]) -> String {
    let hex = sha256_hex(receipt_file);
    let digits: Vec<&str> = (0..4).map(|i| &hex[i * 4..i * 4 + 4]).collect();
    digits.join(" ")
}

/// Unix seconds as `2026-12-01T13:45:12+09:00`.
fn jst(unix: u64) -> String {
    let utc = chrono::DateTime::from_timestamp(i64::try_from(unix).unwrap_or(i64::MAX), 0)
        .unwrap_or_default();
    crate::common::era::in_japan(utc)
        .format("%Y-%m-%dT%H:%M:%S+09:00")
        .to_string()
}

/// Checks a receipt file against the guarantor's trusted keys (`signing`) and the
/// service's (`service`): both signatures, the certificate against its leaf, the leaf's
/// proof to the signed root, the guarantor's name and the time of the check.
pub fn verify(
    bytes: &[u8],
    signing: &[PublicKey],
    service: &[PublicKey],
) -> Result<Checked, Invalid> {
    let receipt: Receipt =
        serde_json::from_slice(bytes).map_err(|e| Invalid::NotAReceipt(e.to_string()))?;
    if receipt.format != FORMAT {
        return Err(Invalid::NotAReceipt(format!(
            "format「{}」",
            receipt.format
        )));
    }
    check_tree_head(&receipt, signing)?;
    let record = check_certificate(&receipt)?;
    check_proof(&receipt)?;
    if record.guarantor.name != receipt.guarantor {
        return Err(Invalid::GuarantorName);
    }
    let head = &receipt.tree_head;
    if receipt.checked_at < head.issued_at || receipt.checked_at > head.expires_at {
        return Err(Invalid::CheckedOutsideManifest);
    }
    check_service(&receipt, service)?;
    Ok(Checked { receipt, record })
}

/// Why an Ed25519 signature of a receipt was not accepted.
enum Unsigned {
    /// Its key id is not among the trusted keys.
    UnknownKey,
    /// Not hex, or not that key's signature over the message.
    Bad,
}

/// Checks `signature` (hex) over `message` with the key of `trusted` whose id is `key_id`.
fn signed_by(
    trusted: &[PublicKey],
    key_id: &str,
    signature: &str,
    message: &[u8],
) -> Result<(), Unsigned> {
    let key = trusted
        .iter()
        .find(|k| k.id == key_id)
        .ok_or(Unsigned::UnknownKey)?;
    let signature = from_hex(signature).ok_or(Unsigned::Bad)?;
    signature::UnparsedPublicKey::new(&signature::ED25519, &key.bytes)
        .verify(message, &signature)
        .map_err(|_| Unsigned::Bad)
}

fn check_tree_head(receipt: &Receipt, signing: &[PublicKey]) -> Result<(), Invalid> {
    let head = &receipt.tree_head;
    signed_by(
        signing,
        &head.key_id,
        &receipt.tree_head_signature,
        &head.bytes(),
    )
    .map_err(|e| match e {
        Unsigned::UnknownKey => Invalid::UnknownGuarantorKey(head.key_id.clone()),
        Unsigned::Bad => Invalid::TreeHeadSignature,
    })
}

fn check_certificate(receipt: &Receipt) -> Result<Record, Invalid> {
    if sha256_hex(receipt.certificate.as_bytes()) != receipt.leaf.record_sha256 {
        return Err(Invalid::CertificateHash);
    }
    let record: Record = serde_json::from_str(&receipt.certificate)
        .map_err(|e| Invalid::NotAReceipt(e.to_string()))?;
    let leaf = &receipt.leaf;
    if record.number != leaf.number {
        return Err(Invalid::LeafField("保証契約番号（number）"));
    }
    if record.kind != leaf.kind {
        return Err(Invalid::LeafField("区分（kind）"));
    }
    if record.status != leaf.status {
        return Err(Invalid::LeafField("状態（status）"));
    }
    Ok(record)
}

fn check_proof(receipt: &Receipt) -> Result<(), Invalid> {
    let path: Option<Vec<Hash>> = receipt.proof.path.iter().map(|h| hex32(h)).collect();
    let (Some(path), Some(root)) = (path, hex32(&receipt.tree_head.root)) else {
        return Err(Invalid::Proof);
    };
    let leaf = merkle::leaf_hash(&receipt.leaf.bytes());
    let head = &receipt.tree_head;
    merkle::verify_inclusion(&leaf, receipt.proof.index, head.size, &path, &root)
        .then_some(())
        .ok_or(Invalid::Proof)
}

fn check_service(receipt: &Receipt, service: &[PublicKey]) -> Result<(), Invalid> {
    let id = &receipt.service_key_id;
    let message = receipt.service_message()?;
    signed_by(service, id, &receipt.service_signature, &message).map_err(|e| match e {
        Unsigned::UnknownKey => Invalid::UnknownServiceKey(id.clone()),
        Unsigned::Bad => Invalid::ServiceSignature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::layout::record_file;
    use crate::trust::manifest::{self, Limits};
    use crate::trust::testing::{write_vault, ITERATIONS};
    use ring::rand::SystemRandom;
    use ring::signature::KeyPair;

    fn key_pair() -> (Ed25519KeyPair, PublicKey) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("keygen");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("pair");
        let public = PublicKey::from_bytes(pair.public_key().as_ref().to_vec());
        (pair, public)
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        signing: PublicKey,
        service: (Ed25519KeyPair, PublicKey),
        receipts: Vec<Vec<u8>>,
    }

    /// Receipts of the test vault's three certificates, checked at 1,750,000,000.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = dir.path().join("vault");
        let signing = write_vault(&vault, &dir.path().join("keys"), 7, 2_000_000_000);
        let limits = Limits {
            min_iterations: ITERATIONS,
            ..Limits::default()
        };
        let catalog = manifest::read_verified(&vault, std::slice::from_ref(&signing), limits)
            .expect("trusted");
        let service = key_pair();
        let receipts = ["2070004426", "2070004427", "2070004428"]
            .iter()
            .map(|number| {
                let inclusion = catalog.inclusion(number).expect("in the tree");
                let record = std::fs::read(vault.join(record_file(number))).expect("record");
                let receipt = Receipt::make(
                    &inclusion,
                    &record,
                    1_750_000_000,
                    "https://denshi.example.jp/verify/",
                    (&service.0, &service.1),
                )
                .expect("made");
                receipt.to_bytes().expect("json")
            })
            .collect();
        Fixture {
            _dir: dir,
            signing,
            service,
            receipts,
        }
    }

    fn check(f: &Fixture, bytes: &[u8]) -> Result<Checked, Invalid> {
        verify(
            bytes,
            std::slice::from_ref(&f.signing),
            std::slice::from_ref(&f.service.1),
        )
    }

    /// The receipt with `change` made to its JSON.
    fn altered(bytes: &[u8], change: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut value: serde_json::Value = serde_json::from_slice(bytes).expect("json");
        change(&mut value);
        serde_json::to_vec_pretty(&value).expect("json")
    }

    /// The certificate text with `from` replaced by `to` (once, where it must be).
    fn certificate_changed(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
        altered(bytes, |v| {
            let text = v["certificate"].as_str().expect("text").to_owned();
            assert!(text.contains(from), "{from} in {text}");
            v["certificate"] = serde_json::Value::from(text.replacen(from, to, 1));
        })
    }

    #[test]
    fn a_receipt_verifies_and_names_its_file_as_documented() {
        let f = fixture();
        for bytes in &f.receipts {
            let checked = check(&f, bytes).expect("valid");
            assert_eq!(checked.record.number, checked.receipt.leaf.number);
        }
        let receipt: Receipt = serde_json::from_slice(&f.receipts[0]).expect("json");
        assert_eq!(receipt.checked_at_jst, "2025-06-16T00:06:40+09:00");
        assert_eq!(
            receipt.file_name(),
            "receipt-2070004426-20250616T000640.json"
        );
        assert_eq!(
            receipt.guarantor,
            crate::common::certificate::test_guarantor().name
        );
        let print = fingerprint(&f.receipts[0]);
        assert_eq!(print.len(), 19);
        assert_eq!(print.replace(' ', ""), sha256_hex(&f.receipts[0])[..16]);
    }

    #[test]
    fn every_altered_field_is_refused_by_name() {
        let f = fixture();
        let good = &f.receipts[0];
        let cases: Vec<(&str, Vec<u8>, Invalid)> = vec![
            (
                "an amount",
                certificate_changed(good, "40000000", "90000000"),
                Invalid::CertificateHash,
            ),
            (
                "a date",
                certificate_changed(good, "2099-03-31", "2099-12-31"),
                Invalid::CertificateHash,
            ),
            (
                "the status",
                altered(good, |v| v["leaf"]["status"] = "cancelled".into()),
                Invalid::LeafField("状態（status）"),
            ),
            (
                "a proof hash",
                altered(good, |v| v["proof"]["path"][0] = "00".repeat(32).into()),
                Invalid::Proof,
            ),
            (
                "the proof's index",
                altered(good, |v| v["proof"]["index"] = 1.into()),
                Invalid::Proof,
            ),
            (
                "the seq",
                altered(good, |v| v["tree_head"]["seq"] = 8.into()),
                Invalid::TreeHeadSignature,
            ),
            (
                "the root",
                altered(good, |v| v["tree_head"]["root"] = "00".repeat(32).into()),
                Invalid::TreeHeadSignature,
            ),
            (
                "the time",
                altered(good, |v| v["checked_at"] = 1_750_000_001.into()),
                Invalid::ServiceSignature,
            ),
            (
                "the time in Japan",
                altered(good, |v| {
                    v["checked_at_jst"] = "2025-06-17T00:06:40+09:00".into()
                }),
                Invalid::ServiceSignature,
            ),
            (
                "the service URL",
                altered(good, |v| v["service_url"] = "https://evil.example/".into()),
                Invalid::ServiceSignature,
            ),
            (
                "the guarantor's name",
                altered(good, |v| v["guarantor"] = "別の保証株式会社".into()),
                Invalid::GuarantorName,
            ),
            (
                "the service signature",
                altered(good, |v| v["service_signature"] = "00".repeat(64).into()),
                Invalid::ServiceSignature,
            ),
            (
                "the time, outside the manifest",
                altered(good, |v| v["checked_at"] = 2_000_000_001u64.into()),
                Invalid::CheckedOutsideManifest,
            ),
        ];
        for (what, bytes, expected) in cases {
            let refused = check(&f, &bytes).err();
            assert_eq!(refused, Some(expected), "{what}");
        }
        // Each message names what failed.
        assert!(Invalid::CertificateHash.to_string().contains("certificate"));
        assert!(Invalid::Proof.to_string().contains("proof"));
    }

    #[test]
    fn another_numbers_proof_and_untrusted_keys_are_refused() {
        let f = fixture();
        let (a, b): (serde_json::Value, serde_json::Value) = (
            serde_json::from_slice(&f.receipts[0]).expect("json"),
            serde_json::from_slice(&f.receipts[1]).expect("json"),
        );
        let swapped = altered(&f.receipts[0], |v| v["proof"] = b["proof"].clone());
        assert_eq!(check(&f, &swapped).err(), Some(Invalid::Proof));
        let other_leaf = altered(&f.receipts[0], |v| {
            v["leaf"] = b["leaf"].clone();
            v["proof"] = b["proof"].clone();
        });
        assert_eq!(check(&f, &other_leaf).err(), Some(Invalid::CertificateHash));
        assert_ne!(a["leaf"], b["leaf"]);
        let (_, stranger) = key_pair();
        let refused = verify(
            &f.receipts[0],
            std::slice::from_ref(&stranger),
            std::slice::from_ref(&f.service.1),
        );
        assert!(
            matches!(refused, Err(Invalid::UnknownGuarantorKey(_))),
            "{refused:?}"
        );
        let refused = verify(
            &f.receipts[0],
            std::slice::from_ref(&f.signing),
            &[stranger],
        );
        assert!(
            matches!(refused, Err(Invalid::UnknownServiceKey(_))),
            "{refused:?}"
        );
        // A service key passed off under the trusted one's id.
        let (impostor, _) = key_pair();
        let mut forged: Receipt = serde_json::from_slice(&f.receipts[0]).expect("json");
        forged.checked_at += 60;
        let message = forged.service_message().expect("message");
        forged.service_signature = to_hex(impostor.sign(&message).as_ref());
        let bytes = forged.to_bytes().expect("json");
        assert_eq!(check(&f, &bytes).err(), Some(Invalid::ServiceSignature));
    }

    #[test]
    fn no_receipt_holds_a_key_a_salt_or_a_verifier() {
        let f = fixture();
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(f._dir.path().join("vault/manifest.json")).expect("manifest"),
        )
        .expect("json");
        for (bytes, (_, key, _)) in f.receipts.iter().zip(crate::trust::testing::CERTIFICATES) {
            let text = String::from_utf8(bytes.clone()).expect("utf-8");
            assert!(!text.contains(key), "the key in {text}");
            for entry in manifest["entries"].as_array().expect("entries") {
                for field in ["salt", "verifier"] {
                    let secret = entry[field].as_str().expect(field);
                    assert!(!text.contains(secret), "a {field} in {text}");
                }
            }
        }
    }

    #[test]
    fn a_receipt_outlives_its_manifests_expiry() {
        // A manifest that expired long ago (2025-10-09), checked while it was valid.
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = dir.path().join("vault");
        let signing = write_vault(&vault, &dir.path().join("keys"), 3, 1_760_000_000);
        let limits = Limits {
            min_iterations: ITERATIONS,
            ..Limits::default()
        };
        let catalog = manifest::read_verified(&vault, std::slice::from_ref(&signing), limits)
            .expect("trusted");
        assert!(catalog.expired(crate::common::era::unix_now()));
        let service = key_pair();
        let record = std::fs::read(vault.join(record_file("2070004426"))).expect("record");
        let inclusion = catalog.inclusion("2070004426").expect("in the tree");
        let made = Receipt::make(
            &inclusion,
            &record,
            1_750_000_000,
            "https://x.jp/verify/",
            (&service.0, &service.1),
        )
        .expect("made");
        let bytes = made.to_bytes().expect("json");
        let checked = verify(
            &bytes,
            std::slice::from_ref(&signing),
            std::slice::from_ref(&service.1),
        );
        assert!(checked.is_ok(), "{checked:?}");
    }
}
