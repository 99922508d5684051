//! `hosho build` and `hosho check`: load and validate everything, typeset certificates and
//! sign the manifest into the vault, render the site, and swap both outputs into place.
//!
//! The public site and the private certificates are loaded side by side and never mixed:
//! the site receives only what the public may see of the signed manifest ([`Trust`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};

use crate::certificates::input::{self, Certificate};
use crate::certificates::typeset::Typesetter;
use crate::certificates::vault::{self, VaultBuild, VaultReport};
use crate::common::certificate::Status;
use crate::common::diagnostics::{Diagnostic, Diagnostics, InputErrors};
use crate::common::hex::to_hex;
pub use crate::common::root::Paths;
use crate::output::{self, Staging};
use crate::site::{Output, Site, Trust};
use crate::trust::authkey;
use crate::trust::keys::{self, BuildKeys, KeyMaterial};

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

/// Everything a build reads, validated: the public site and, apart, the private
/// certificates with the notes that do not stop the build.
struct Inputs {
    site: Site,
    certificates: Vec<Certificate>,
    warnings: Diagnostics,
}

/// Loads the site and the certificates; on any problem, renders what it can (for link
/// problems) and fails with all of them.
fn load(root: &Path) -> Result<Inputs> {
    let (site, mut d) = Site::load_partial(root);
    let mut warnings = Diagnostics::default();
    let certificates = input::load(root, &mut d, &mut warnings);
    match site {
        Some(site) if d.is_empty() => Ok(Inputs {
            site,
            certificates,
            warnings,
        }),
        Some(site) => {
            site.render(&mut d);
            Err(input_errors(d))
        }
        None => Err(input_errors(d)),
    }
}

/// Renders the site; every problem (templates, links) fails the run.
fn render(site: &Site) -> Result<Output> {
    let mut d = Diagnostics::default();
    match site.render(&mut d) {
        Some(output) if d.is_empty() => Ok(output),
        _ => Err(input_errors(d)),
    }
}

/// Validates everything, renders the site and typesets one certificate, writing nothing.
pub fn check(root: &Path) -> Result<CheckSummary> {
    let inputs = load(root)?;
    let output = render(&inputs.site)?;
    let typesetter = Typesetter::load(root).map_err(input_errors)?;
    let config = &inputs.site.config;
    if let Some(first) = inputs.certificates.first() {
        typesetter
            .try_one(&config.guarantor, &config.verify_url(), first)
            .map_err(input_errors)?;
    }
    let site = &inputs.site;
    Ok(CheckSummary {
        pages: output.page_count(),
        tables: site.tables.len(),
        adopters: site.tables.iter().map(|t| t.adopters.len()).sum(),
        qa: site.qa.len(),
        certificates: inputs.certificates.len(),
        warnings: inputs.warnings.sorted(),
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

/// The first valid certificate's number and grouped 認証キー (or the first one's).
fn example(certificates: &[Certificate], keys: &KeyMaterial) -> Option<(String, String)> {
    let c = certificates
        .iter()
        .find(|c| c.status() == Status::Valid)
        .or(certificates.first())?;
    Some((c.number.clone(), authkey::group(&c.key(&keys.auth_secret))))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Builds the site and the vault; each is rendered beside its target and swapped in whole.
pub fn build(paths: &Paths) -> Result<BuildSummary> {
    let started = Instant::now();
    refuse_private_under_public(paths)?;
    // Refuse foreign directories before any work, and again just before each swap.
    output::ensure_replaceable(&paths.out)?;
    output::ensure_replaceable(&paths.vault)?;
    let Inputs {
        mut site,
        certificates,
        warnings,
    } = load(&paths.root)?;
    let typesetter = Typesetter::load(&paths.root).map_err(input_errors)?;
    let build_keys = BuildKeys::load_or_new(&paths.keys)?;
    let keys = build_keys.material();

    let vault_started = Instant::now();
    let vault_stage = Staging::new(&paths.vault)?;
    let report = vault::build(&VaultBuild {
        config: &site.config,
        certificates: &certificates,
        typesetter: &typesetter,
        keys,
        previous: &paths.vault,
        staging: vault_stage.path(),
        now_unix: unix_now(),
    })?;
    tracing::debug!(elapsed = ?vault_started.elapsed(), "typeset certificates and signed the manifest");
    site.set_trust(Some(Trust {
        key_id: report.key_id.clone(),
        public_key: to_hex(&keys.public.bytes),
        manifest_sha256: report.manifest_sha256.clone(),
        seq: report.seq,
    }));
    let rendered = render(&site)?;
    if let BuildKeys::New(new) = &build_keys {
        keys::write(&paths.keys, new)?;
    }
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
        created_keys: match &build_keys {
            BuildKeys::New(new) => Some(new.material.public.id.clone()),
            BuildKeys::Existing(_) => None,
        },
        example: example(&certificates, keys),
        warnings: warnings.sorted(),
        elapsed: started.elapsed(),
    })
}
