//! `hosho build` and `hosho check`: load and validate everything, typeset certificates and
//! sign the manifest into the vault, render the site, and swap both outputs into place.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};

use crate::diagnostics::{Diagnostic, Diagnostics, InputErrors};
use crate::keys;
use crate::manifest::to_hex;
use crate::output::{self, Staging};
use crate::site::{Site, Trust};
use crate::vault::{self, Typesetter, VaultReport};

/// Where a build reads and writes.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    /// Public output (`--out`, default `ROOT/site-out`).
    pub out: PathBuf,
    /// Private output (`--vault`, default `ROOT/vault`).
    pub vault: PathBuf,
    /// Key material (`--keys`, default `ROOT/keys`).
    pub keys: PathBuf,
}

impl Paths {
    pub fn new(
        root: &Path,
        out: Option<&Path>,
        vault: Option<&Path>,
        keys: Option<&Path>,
    ) -> Paths {
        Paths {
            root: root.to_path_buf(),
            out: out.map_or_else(|| root.join("site-out"), Path::to_path_buf),
            vault: vault.map_or_else(|| root.join(vault::VAULT_DIR), Path::to_path_buf),
            keys: keys::keys_dir(root, keys),
        }
    }
}

/// What a build wrote.
#[derive(Debug)]
pub struct BuildSummary {
    pub out: PathBuf,
    pub vault: PathBuf,
    pub pages: usize,
    pub files: usize,
    pub vault_report: VaultReport,
    /// Set when this build created a development key pair.
    pub created_keys: Option<String>,
    /// A 保証契約番号 and its 認証キー (grouped) to try the daemon with: the first valid
    /// certificate's.
    pub example: Option<(String, String)>,
    pub warnings: Vec<Diagnostic>,
    pub elapsed: Duration,
}

/// What a check saw.
#[derive(Debug)]
pub struct CheckSummary {
    pub pages: usize,
    pub tables: usize,
    pub adopters: usize,
    pub qa: usize,
    pub certificates: usize,
    pub warnings: Vec<Diagnostic>,
}

fn input_errors(d: Diagnostics) -> anyhow::Error {
    InputErrors(d.sorted()).into()
}

/// Loads the site; on any problem, renders what it can (for link problems) and fails with all.
fn load_valid(root: &Path) -> Result<Site> {
    let (site, mut d) = Site::load_partial(root);
    match site {
        Some(site) if d.is_empty() => Ok(site),
        Some(site) => {
            site.render(&mut d);
            Err(input_errors(d))
        }
        None => Err(input_errors(d)),
    }
}

/// Validates everything, renders the site and typesets one certificate, writing nothing.
pub fn check(root: &Path) -> Result<CheckSummary> {
    let (site, output) = Site::load(root)?;
    let typesetter = Typesetter::load(root).map_err(input_errors)?;
    if let Some(first) = site.certificates.first() {
        typesetter
            .try_one(&site.config, first)
            .map_err(input_errors)?;
    }
    Ok(CheckSummary {
        pages: output.page_count(),
        tables: site.tables.len(),
        adopters: site.tables.iter().map(|t| t.adopters.len()).sum(),
        qa: site.qa.len(),
        certificates: site.certificates.len(),
        warnings: site.warnings.clone().sorted(),
    })
}

fn refuse_private_under_public(paths: &Paths) -> Result<()> {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (out, vault) = (absolute(&paths.out), absolute(&paths.vault));
    if vault.starts_with(&out) || out.starts_with(&vault) {
        bail!(
            "vault（{}）と公開用の出力（{}）は別の場所にしてください。証書や認証キーを公開サイトに置くことはできません",
            paths.vault.display(),
            paths.out.display()
        );
    }
    Ok(())
}

/// Builds the site and the vault; each is rendered beside its target and swapped in whole.
pub fn build(paths: &Paths) -> Result<BuildSummary> {
    let started = Instant::now();
    refuse_private_under_public(paths)?;
    // Refuse foreign directories before any work, and again just before each swap.
    output::ensure_replaceable(&paths.out)?;
    output::ensure_replaceable(&paths.vault)?;
    let mut site = load_valid(&paths.root)?;
    let typesetter = Typesetter::load(&paths.root).map_err(input_errors)?;

    // New development keys stay in memory until everything else has succeeded.
    let new_keys = if keys::absent(&paths.keys) {
        Some(keys::generate_in_memory()?)
    } else {
        None
    };
    let loaded;
    let keys = match &new_keys {
        Some(new) => &new.material,
        None => {
            loaded = keys::load(&paths.keys)?;
            &loaded
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let vault_started = Instant::now();
    let vault_stage = Staging::new(&paths.vault)?;
    let report = vault::build(
        &site.config,
        &site.certificates,
        &typesetter,
        keys,
        &paths.vault,
        vault_stage.path(),
        now,
    )
    .map_err(input_errors)?;
    tracing::debug!(elapsed = ?vault_started.elapsed(), "typeset certificates and signed the manifest");
    site.set_trust(Some(Trust {
        key_id: report.key_id.clone(),
        public_key: to_hex(&keys.public.bytes),
        manifest_sha256: report.manifest_sha256.clone(),
        seq: report.seq,
    }));
    let mut d = Diagnostics::default();
    let rendered = site.render(&mut d);
    let rendered = match rendered {
        Some(r) if d.is_empty() => r,
        _ => return Err(input_errors(d)),
    };

    let example = site
        .certificates
        .iter()
        .find(|c| c.status() == crate::manifest::Status::Valid)
        .or(site.certificates.first())
        .map(|c| {
            let key = c
                .auth_key
                .clone()
                .unwrap_or_else(|| crate::authkey::derive_key(&keys.auth_secret, &c.number));
            (c.number.clone(), crate::authkey::group(&key))
        });
    if let Some(new) = &new_keys {
        keys::write(&paths.keys, new)?;
    }
    let created_keys = new_keys.map(|k| k.material.public.id);
    let site_stage = Staging::new(&paths.out)?;
    let write_started = Instant::now();
    output::write_files(site_stage.path(), &rendered.files)?;
    tracing::debug!(elapsed = ?write_started.elapsed(), "wrote staging directories");
    vault_stage.commit()?;
    site_stage.commit()?;
    Ok(BuildSummary {
        out: paths.out.clone(),
        vault: paths.vault.clone(),
        pages: rendered.page_count(),
        files: rendered.files.len(),
        vault_report: report,
        created_keys,
        example,
        warnings: site.warnings.clone().sorted(),
        elapsed: started.elapsed(),
    })
}
