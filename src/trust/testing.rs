//! A small signed vault on disk for in-process tests of the readers (`verify`, the daemon):
//! real records, stand-in PDFs, a manifest signed with a fresh key, and a low KDF count.

use std::path::Path;

use chrono::NaiveDate;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::common::certificate::RECORD_FORMAT;
use crate::common::certificate::{
    test_guarantor, Change, Kind, Party, Period, Record, Status, Terms,
};
use crate::common::hex::{sha256_hex, to_hex};
use crate::trust::keys::{public_key_text, PUBLIC_KEY_FILE};
use crate::trust::layout::{certificate_file, record_file, MANIFEST_FILE, SIGNATURE_FILE};
use crate::trust::manifest::{self, Entry, Header, Manifest, PublicKey};

/// PBKDF2 iterations of the test vault: fast, and accepted with this floor.
pub(crate) const ITERATIONS: u32 = 1_000;

/// The certificates of the test vault: number, key, status.
pub(crate) const CERTIFICATES: [(&str, &str, Status); 3] = [
    ("2070004426", "332E1E7K9Q", Status::Valid),
    ("2070004427", "7M4K2P9QRS", Status::Changed),
    ("2070004428", "A1B2C3D4E5", Status::Cancelled),
];

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// The record of a test certificate.
pub(crate) fn record(number: &str, status: Status) -> Record {
    let initial = Terms {
        project: "テスト道路改良工事".to_owned(),
        contract_amount: 100_000_000,
        target_amount: None,
        amount: 40_000_000,
        period: Period {
            from: date(2024, 4, 1),
            to: date(2099, 3, 31),
        },
        works: None,
    };
    let changes = match status {
        Status::Changed => vec![Change {
            date: date(2024, 9, 1),
            amount: Some(45_000_000),
            contract_amount: None,
            target_amount: None,
            period: None,
            project: None,
            works: None,
        }],
        _ => Vec::new(),
    };
    Record {
        format: RECORD_FORMAT,
        number: number.to_owned(),
        kind: Kind::Advance,
        status,
        issued: date(2024, 4, 1),
        contractor: Party {
            name: "株式会社テスト建設".to_owned(),
            address: "東京都千代田区".to_owned(),
        },
        beneficiary: "テスト市長".to_owned(),
        site: None,
        bank: Some("テスト銀行 本店".to_owned()),
        current: initial.after(&changes),
        initial,
        changes,
        cancelled_on: None,
        guarantor: test_guarantor(),
    }
}

/// A signing key for test vaults, kept to sign more than one.
pub(crate) struct Signer {
    pair: Ed25519KeyPair,
    pub(crate) public: PublicKey,
}

impl Signer {
    pub(crate) fn new() -> Signer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("keygen");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key pair");
        let public = PublicKey::from_bytes(pair.public_key().as_ref().to_vec());
        Signer { pair, public }
    }

    /// Writes the test vault into `vault` (fresh salts every time) and the public key into
    /// `keys/signing.pub`; the manifest has sequence number `seq` and expires at
    /// `expires_at` (Unix seconds).
    pub(crate) fn write_vault(&self, vault: &Path, keys: &Path, seq: u64, expires_at: u64) {
        self.write_vault_of(vault, keys, (seq, expires_at), &CERTIFICATES);
    }

    /// [`Signer::write_vault`] with other certificates: (number, key, status) each.
    pub(crate) fn write_vault_of(
        &self,
        vault: &Path,
        keys: &Path,
        (seq, expires_at): (u64, u64),
        certificates: &[(&str, &str, Status)],
    ) {
        let rng = SystemRandom::new();
        for dir in ["records", "certificates"] {
            std::fs::create_dir_all(vault.join(dir)).expect("mkdir");
        }
        std::fs::create_dir_all(keys).expect("mkdir keys");
        std::fs::write(keys.join(PUBLIC_KEY_FILE), public_key_text(&self.public))
            .expect("public key");
        let entries = certificates
            .iter()
            .map(|(number, key, status)| {
                let record = record(number, *status).to_bytes().expect("record");
                let pdf = format!("%PDF-1.7 test certificate {number}").into_bytes();
                std::fs::write(vault.join(record_file(number)), &record).expect("record");
                std::fs::write(vault.join(certificate_file(number)), &pdf).expect("pdf");
                let salt = manifest::new_salt(&rng).expect("salt");
                Entry {
                    number: (*number).to_owned(),
                    kind: Kind::Advance,
                    status: *status,
                    pdf_sha256: sha256_hex(&pdf),
                    record_sha256: sha256_hex(&record),
                    salt: to_hex(&salt),
                    verifier: to_hex(&manifest::make_verifier(key, &salt, ITERATIONS)),
                }
            })
            .collect();
        // Made and signed as a build makes them.
        let header = Header::new(seq, 1_700_000_000, expires_at, &self.public.id, ITERATIONS);
        let manifest = Manifest::new(header, entries);
        let signed = manifest.signed(&self.pair, &self.public.id).expect("sign");
        std::fs::write(vault.join(MANIFEST_FILE), signed.manifest).expect("manifest");
        std::fs::write(vault.join(SIGNATURE_FILE), signed.signature).expect("signature");
    }
}

/// [`Signer::write_vault`] with a fresh key; its public key.
pub(crate) fn write_vault(vault: &Path, keys: &Path, seq: u64, expires_at: u64) -> PublicKey {
    let signer = Signer::new();
    signer.write_vault(vault, keys, seq, expires_at);
    signer.public
}
