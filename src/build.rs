//! `hosho build` and `hosho check`: load and validate everything, typeset certificates and
//! sign the manifest into the vault, render the site, and swap both outputs into place.
//!
//! The public site and the private certificates are loaded side by side and never mixed:
//! the site receives only what the public may see of the signed manifest ([`Trust`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::certificates::certificate::Certificate;
use crate::certificates::customers::{self, Customers};
use crate::certificates::input::{self, References};
use crate::certificates::statements::{self, StatementBuild, StatementReport};
use crate::certificates::typeset::Template;
use crate::certificates::typeset::Typesetter;
use crate::certificates::vault::{self, Outputs, VaultBuild, VaultReport};
use crate::common::certificate::Status;
use crate::common::diagnostics::{Diagnostic, Diagnostics, InputErrors};
use crate::common::hex::to_hex;
pub use crate::common::root::Paths;
use crate::common::submission::Orderers;
use crate::site::cache::{InputCache, RenderCache, SiteCache};
use crate::site::{MemorySink, RenderError, Rendered, Sink, Site, Trust};
use crate::staging::DirSink;
use crate::staging::{self, Access, Staging};
use crate::trust::authkey;
use crate::trust::keys::{BuildKeys, BuildServiceKey, KeyMaterial};

/// What a build wrote.
#[derive(Debug)]
pub struct BuildSummary {
    pub out: PathBuf,
    pub vault: PathBuf,
    pub notices: PathBuf,
    pub pages: usize,
    pub files: usize,
    pub vault_report: VaultReport,
    /// 保証料計算書 written into the notices output.
    pub statements: StatementReport,
    /// Set when this build created a development key pair.
    pub created_keys: Option<String>,
    /// A 保証契約番号 and its 認証キー (grouped) to try the daemon with: the first valid
    /// certificate's, and only when the build signs with development keys.
    pub example: Option<(String, String)>,
    pub warnings: Vec<Diagnostic>,
    pub elapsed: Duration,
}

/// What crosses between the public site and the private certificates in one build, and
/// nothing else does: the orderers' rules for receiving the notice go from the adoption
/// tables into the notices, and what the public may see of the signed manifest goes from
/// the vault into the site. An edit that leaves the orderers' rules as they were can be
/// rendered into the site alone, with the same [`Trust`].
#[derive(Debug, Clone)]
pub struct Crossing {
    pub orderers: Orderers,
    pub trust: Trust,
}

/// What a check saw.
#[derive(Debug)]
pub struct CheckSummary {
    pub pages: usize,
    pub tables: usize,
    pub adopters: usize,
    pub qa: usize,
    pub certificates: usize,
    pub statements: usize,
    pub warnings: Vec<Diagnostic>,
}

fn input_errors(d: Diagnostics) -> anyhow::Error {
    InputErrors(d.sorted()).into()
}

/// Everything a build reads, validated: the public site and, apart, the private
/// certificates with the notes that do not stop the build.
struct Inputs {
    site: Site,
    customers: Customers,
    certificates: Vec<Certificate>,
    warnings: Diagnostics,
}

/// Loads the site and the certificates; on any problem, renders what it can (for link
/// problems) and fails with all of them.
fn load(root: &Path, pages: &mut InputCache) -> Result<Inputs> {
    let (site, mut d) = Site::load(root, pages);
    let mut warnings = Diagnostics::default();
    let customers = customers::load(root, &mut d);
    let orderers = site.as_ref().map(Site::orderers).unwrap_or_default();
    let refs = match &site {
        Some(site) => References {
            customers: &customers,
            rules: &site.config.fees,
            orderers: &orderers,
            offices: &site.config.offices,
            guarantor: &site.config.guarantor,
        },
        None => References {
            customers: &customers,
            ..References::built_in()
        },
    };
    let certificates = input::load(root, refs, &mut d, &mut warnings);
    match site {
        Some(site) if d.is_empty() => Ok(Inputs {
            site,
            customers,
            certificates,
            warnings,
        }),
        Some(site) => {
            // Only for the problems rendering and the link check add.
            let rendered = render(&site, &MemorySink::default(), &RenderCache::default(), d);
            Err(rendered
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("内部エラー: 問題が消えました")))
        }
        None => Err(input_errors(d)),
    }
}

/// Renders the site into `sink`, reusing what `cache` says is unchanged; every problem
/// (`d`, the problems found before, and the templates' and links') fails the run. The one
/// way builds, checks and the live preview render the site.
pub(crate) fn render(
    site: &Site,
    sink: &dyn Sink,
    cache: &RenderCache,
    mut d: Diagnostics,
) -> Result<Rendered> {
    match site.render(sink, cache, &mut d) {
        Ok(rendered) if d.is_empty() => Ok(rendered),
        Ok(_) | Err(RenderError::Problems) => Err(input_errors(d)),
        Err(e) => Err(e.into()),
    }
}

/// Validates everything, renders the site and typesets one certificate, writing nothing.
pub fn check(root: &Path) -> Result<CheckSummary> {
    let inputs = load(root, &mut InputCache::disabled())?;
    let output = render(
        &inputs.site,
        &MemorySink::default(),
        &RenderCache::default(),
        Diagnostics::default(),
    )?;
    let typesetter = Typesetter::load(root).map_err(input_errors)?;
    let config = &inputs.site.config;
    if let Some(first) = inputs.certificates.first() {
        typesetter
            .try_one(&config.verify_url(), first)
            .map_err(input_errors)?;
    }
    let statements = statements::statements(&inputs.certificates, &inputs.customers);
    if let Some(first) = statements.first() {
        let template =
            Template::load(root, statements::TEMPLATE).map_err(|d| input_errors(d.into()))?;
        let inputs = first
            .inputs(&config.guarantor, &config.fees)
            .map_err(|e| anyhow::anyhow!("保証料計算書の入力を作れません: {e}"))?;
        template
            .pdf(&inputs, "statement-check")
            .map_err(|d| input_errors(d.into()))?;
    }
    let site = &inputs.site;
    Ok(CheckSummary {
        pages: output.page_count(),
        tables: site.tables.len(),
        adopters: site.tables.iter().map(|t| t.adopters.len()).sum(),
        qa: site.qa.len(),
        certificates: inputs.certificates.len(),
        statements: statements.len(),
        warnings: inputs.warnings.sorted(),
    })
}

/// The three outputs must not lie inside one another: nothing private under the public
/// site, and no notice (with its 認証キー) in the vault that the daemon host receives.
fn refuse_nested_outputs(paths: &Paths) -> Result<()> {
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let nested = |a: &Path, b: &Path| {
        let (a, b) = (absolute(a), absolute(b));
        a.starts_with(&b) || b.starts_with(&a)
    };
    let (out, vault, notices) = (&paths.out, &paths.vault, &paths.notices);
    if nested(vault, out) {
        bail!(
            "vault（{}）と公開用の出力（{}）は別の場所にしてください。証書や認証キーを公開サイトに置くことはできません",
            vault.display(),
            out.display()
        );
    }
    if nested(notices, out) || nested(notices, vault) {
        bail!(
            "認証キーのお知らせの出力（{}）は、公開用の出力（{}）とも vault（{}）とも別の場所にしてください。お知らせはビルドするホストから出しません",
            notices.display(),
            out.display(),
            vault.display()
        );
    }
    Ok(())
}

/// A number and grouped 認証キー to try: the first certificate valid today (in Japan), else
/// the first valid one, else the first.
fn example(certificates: &[Certificate], keys: &KeyMaterial) -> Option<(String, String)> {
    let today = crate::common::era::today_in_japan();
    let valid = |c: &&Certificate| c.record.status == Status::Valid;
    let c = certificates
        .iter()
        .filter(valid)
        .find(|c| c.record.current.period.to >= today)
        .or_else(|| certificates.iter().find(valid))
        .or(certificates.first())?;
    Some((
        c.record.number.clone(),
        authkey::group(&c.key(&keys.auth_secret)),
    ))
}

/// Builds the site and the vault; each is rendered beside its target and swapped in whole.
pub fn build(paths: &Paths) -> Result<BuildSummary> {
    build_with(paths, &mut SiteCache::default()).map(|(summary, _)| summary)
}

/// The three staging directories of one build, beside their outputs.
struct Stages {
    vault: Staging,
    notices: Staging,
    site: Staging,
}

/// Makes the outputs ready for a build: refuses foreign or nested ones, takes the root's
/// lock, removes what a killed build left, and makes the staging directories. The public
/// site's previous tree is removed on a thread of its own while the build works.
fn prepare_outputs(
    paths: &Paths,
) -> Result<(staging::BuildLock, Stages, std::thread::JoinHandle<()>)> {
    refuse_nested_outputs(paths)?;
    // Refuse foreign directories before any work (what is not hosho's at all, at once; files
    // added by hand to hosho's own output, just before each swap, which walks it).
    for target in [&paths.vault, &paths.notices, &paths.out] {
        staging::ensure_own_or_absent(target)?;
    }
    // Whatever a killed build left (staging directories, private trees moved aside) goes
    // first; the lock makes sure it is no running build's.
    let lock = staging::BuildLock::acquire(&paths.root)?;
    for (target, old) in [
        (&paths.vault, true),
        (&paths.notices, true),
        (&paths.out, false),
    ] {
        staging::remove_killed_builds(target, old);
    }
    let stages = Stages {
        vault: Staging::beside(&paths.vault, Access::Private)?,
        notices: Staging::beside(&paths.notices, Access::Private)?,
        site: Staging::beside(&paths.out, Access::Public)?,
    };
    Ok((lock, stages, staging::remove_leftovers(&paths.out)))
}

/// What the private side made: the vault's report and the statements'.
struct Private {
    vault: VaultReport,
    statements: StatementReport,
}

/// Typesets and signs the vault, then the statements, into their staging directories.
fn build_private(
    paths: &Paths,
    inputs: &Inputs,
    keys: &KeyMaterial,
    stages: &Stages,
) -> Result<Private> {
    let typesetter = Typesetter::load(&paths.root).map_err(input_errors)?;
    let statement_template =
        Template::load(&paths.root, statements::TEMPLATE).map_err(|d| input_errors(d.into()))?;
    let started = Instant::now();
    let vault = vault::build(&VaultBuild {
        config: &inputs.site.config,
        certificates: &inputs.certificates,
        typesetter: &typesetter,
        keys,
        previous: Outputs {
            vault: &paths.vault,
            notices: &paths.notices,
        },
        staging: Outputs {
            vault: stages.vault.path(),
            notices: stages.notices.path(),
        },
        now_unix: crate::common::era::unix_now(),
    })?;
    tracing::debug!(elapsed = ?started.elapsed(), "typeset certificates and signed the manifest");
    let started = Instant::now();
    let statement_list = statements::statements(&inputs.certificates, &inputs.customers);
    let statements = statements::build(&StatementBuild {
        statements: &statement_list,
        template: &statement_template,
        guarantor: &inputs.site.config.guarantor,
        rules: &inputs.site.config.fees,
        previous: &paths.notices,
        staging: stages.notices.path(),
        secret: &keys.auth_secret,
    })?;
    tracing::debug!(elapsed = ?started.elapsed(), "typeset fee statements");
    Ok(Private { vault, statements })
}

/// What the public site shows of the signed manifest and the keys that check it.
fn published_trust(vault: &VaultReport, keys: &KeyMaterial, service: &BuildServiceKey) -> Trust {
    Trust {
        key_id: vault.key_id.clone(),
        public_key: to_hex(&keys.public.bytes),
        manifest_sha256: vault.manifest_sha256.clone(),
        seq: vault.seq,
        service_key_id: service.public.as_ref().map(|k| k.id.clone()),
        service_public_key: service.public.as_ref().map(|k| to_hex(&k.bytes)),
    }
}

/// Swaps all three outputs in, then removes the private outputs' old trees together (also
/// when a later swap failed). The public site's old tree, which holds nothing private, is
/// left beside it and removed during the next build, so no build waits for its deletion.
fn swap_all(stages: Stages, rendered: &Rendered) -> Result<()> {
    let mut olds = Vec::with_capacity(2);
    let mut swapped = Ok(());
    for stage in [stages.notices, stages.vault] {
        match stage.swap() {
            Ok(old) => olds.push(old),
            Err(e) => {
                swapped = Err(e);
                break;
            }
        }
    }
    if swapped.is_ok() {
        let files = rendered.files.keys().map(String::as_str);
        swapped = stages.site.swap_holding(files).map(drop);
    }
    staging::remove_old_all(&olds)?;
    swapped
}

/// [`build`], reusing the content pages in `cache` whose files have not changed, and leaving
/// in it what a rebuild of the live preview can reuse ([`crate::preview::rebuild`]), with
/// what crossed between the two sides.
pub(crate) fn build_with(paths: &Paths, cache: &mut SiteCache) -> Result<(BuildSummary, Crossing)> {
    let started = Instant::now();
    // Whatever happens, the last render's cache no longer describes the output.
    cache.render = RenderCache::default();
    let (_lock, stages, leftovers) = prepare_outputs(paths)?;
    tracing::debug!(elapsed = ?started.elapsed(), "checked the outputs and made staging directories");
    let mut inputs = load(&paths.root, &mut cache.pages)?;
    let build_keys = BuildKeys::load_or_new(&paths.keys)?;
    let service_key = BuildServiceKey::load_or_new(&paths.keys, build_keys.development())?;
    let keys = build_keys.material();
    let private = build_private(paths, &inputs, keys, &stages)?;
    let trust = published_trust(&private.vault, keys, &service_key);
    inputs.site.set_trust(Some(trust.clone()));
    // Each page is written into the staging directory as soon as it is rendered.
    let rendered = render(
        &inputs.site,
        &DirSink::new(stages.site.path()),
        &RenderCache::default(),
        Diagnostics::default(),
    )?;
    build_keys.write_new(&paths.keys)?;
    service_key.write_new(&paths.keys)?;
    let _ = leftovers.join();
    tracing::debug!(elapsed = ?started.elapsed(), "rendered, and the last build's public tree removed");
    swap_all(stages, &rendered)?;
    tracing::debug!(elapsed = ?started.elapsed(), "swapped and removed the private outputs' old trees");
    let (pages, files) = (rendered.page_count(), rendered.files.len());
    cache.render = rendered.into_cache();
    let crossing = Crossing {
        orderers: inputs.site.orderers(),
        trust,
    };
    let summary = BuildSummary {
        out: paths.out.clone(),
        vault: paths.vault.clone(),
        notices: paths.notices.clone(),
        pages,
        files,
        vault_report: private.vault,
        statements: private.statements,
        created_keys: match &build_keys {
            BuildKeys::New(new) => Some(new.material.public.id.clone()),
            BuildKeys::Existing { .. } => None,
        },
        // A number and key to try, only where nobody depends on the keys.
        example: build_keys
            .development()
            .then(|| example(&inputs.certificates, keys))
            .flatten(),
        warnings: inputs.warnings.sorted(),
        elapsed: started.elapsed(),
    };
    Ok((summary, crossing))
}
