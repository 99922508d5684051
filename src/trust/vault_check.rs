//! `hosho vault check`: a vault checked completely before it is swapped in (docs/deploy.md):
//! the manifest's signature and every check the daemon makes at load, every record and PDF
//! against the manifest, no file missing and none extra, and, given the host's state, its
//! sequence number above the high-water mark. Every problem is listed, each naming its file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::trust::high_water::HighWater;
use crate::trust::layout::{
    certificate_file, record_file, CACHE_FILE, CERTIFICATES_DIR, MANIFEST_FILE, RECORDS_DIR,
    SIGNATURE_FILE,
};
use crate::trust::manifest::{self, Catalog, Entry, Limits, PublicKey};
use crate::trust::verify::{check_pdf, read_record, FileFault};

/// The list of files a build writes into each output (docs/vault.md).
const OUTPUT_LIST: &str = ".hosho-output";

/// One problem: the file it is about (the vault itself for the manifest as a whole) and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

/// What a vault that passed holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub seq: u64,
    pub entries: usize,
    pub sha256: String,
}

/// Checks the vault in `dir` against `trusted` keys, and against the high-water mark in
/// `state_dir` when given, at `now` (Unix seconds). Every problem found, or what passed.
pub fn check(
    dir: &Path,
    trusted: &[PublicKey],
    state_dir: Option<&Path>,
    now: u64,
) -> Result<Checked, Vec<Problem>> {
    let problem = |file: PathBuf, message: String| Problem { file, message };
    let catalog = manifest::read_verified(dir, trusted, Limits::default())
        .map_err(|e| vec![problem(dir.join(MANIFEST_FILE), e.to_string())])?;
    let mut problems = Vec::new();
    if catalog.expired(now) {
        let message = "マニフェストの有効期限が過ぎています。新しくビルドしてください".to_owned();
        problems.push(problem(dir.join(MANIFEST_FILE), message));
    }
    if let Some(state) = state_dir {
        let behind = HighWater::read(state).and_then(|mark| {
            mark.admits(&catalog, 0)
                .map_err(|behind| behind.to_string())
        });
        if let Err(message) = behind {
            problems.push(problem(dir.join(MANIFEST_FILE), message));
        }
    }
    for entry in catalog.entries() {
        problems.extend(check_entry(dir, &entry));
    }
    problems.extend(stray_files(dir, &catalog));
    match problems.is_empty() {
        true => Ok(Checked {
            seq: catalog.seq(),
            entries: catalog.len(),
            sha256: catalog.sha256().to_owned(),
        }),
        false => Err(problems),
    }
}

/// The record and the PDF of one entry, against it; links are not followed.
fn check_entry(dir: &Path, entry: &Entry) -> Vec<Problem> {
    let missing = "ありません（またはファイルではないか、大きすぎます）";
    let record = read_record(dir, entry, false)
        .err()
        .map(|fault| match fault {
            FileFault::Unreadable => missing,
            FileFault::Hash => {
                "SHA-256 がマニフェストの record_sha256 と違います（改変されています）"
            }
            FileFault::NotARecord => "証書の記録として読めません",
            FileFault::Fields => "保証契約番号・区分・状態がマニフェストと違います",
        });
    let pdf = check_pdf(dir, entry, false).err().map(|fault| match fault {
        FileFault::Hash => "SHA-256 がマニフェストの pdf_sha256 と違います（改変されています）",
        _ => missing,
    });
    [
        (record_file(&entry.number), record),
        (certificate_file(&entry.number), pdf),
    ]
    .into_iter()
    .filter_map(|(file, message)| {
        message.map(|message| Problem {
            file: dir.join(file),
            message: message.to_owned(),
        })
    })
    .collect()
}

/// Every file or directory in the vault that a build does not write for this manifest (a
/// symlink included): nothing may ride along into the daemon host.
fn stray_files(dir: &Path, catalog: &Catalog) -> Vec<Problem> {
    let mut expected: BTreeSet<PathBuf> = [MANIFEST_FILE, SIGNATURE_FILE, CACHE_FILE, OUTPUT_LIST]
        .iter()
        .map(PathBuf::from)
        .collect();
    expected.extend([RECORDS_DIR, CERTIFICATES_DIR].map(PathBuf::from));
    for entry in catalog.entries() {
        expected.insert(PathBuf::from(record_file(&entry.number)));
        expected.insert(PathBuf::from(certificate_file(&entry.number)));
    }
    let walk = walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name();
    walk.into_iter()
        .filter_map(|found| {
            let found = match found {
                Ok(found) => found,
                Err(e) => {
                    let file = e.path().map_or_else(|| dir.to_owned(), Path::to_owned);
                    return Some(Problem { file, message: format!("読めません: {e}") });
                }
            };
            let relative = found.path().strip_prefix(dir).ok()?.to_owned();
            let kind = found.file_type();
            let allowed = expected.contains(&relative)
                && !kind.is_symlink()
                && (kind.is_dir() == [RECORDS_DIR, CERTIFICATES_DIR].iter().any(|d| relative == Path::new(d)));
            (!allowed).then(|| Problem {
                file: found.path().to_owned(),
                message: match kind.is_symlink() {
                    true => "シンボリックリンクは vault に置けません".to_owned(),
                    false => "マニフェストにない余分なファイルです（vault にはビルドが書いたものだけを置きます）".to_owned(),
                },
            })
        })
        .collect()
}
