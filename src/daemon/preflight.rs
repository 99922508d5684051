//! `hosho serve --check`: what the daemon needs, checked without serving and without writing
//! anything: each guarantor's keys and manifest (its high-water mark read, not saved), the
//! pages, the receipt and link keys, the previewed site, a state directory it can write, and
//! Redis answering. One line per problem; what a start would do, said when all is well.

use std::path::Path;

use super::app::{link_tokens, receipt_signer};
use super::limits::{shown_url, LimitsRedis, SharedBudgets};
use super::options::Options;
use super::pages::Pages;
use super::platform::Platform;
use super::site_files;

/// What passed: one line per guarantor (its manifest's seq and entries).
pub struct Checked {
    pub guarantors: Vec<String>,
}

/// Checks everything `hosho serve` with `options` would need; every problem, one line each.
pub fn check(options: &Options) -> Result<Checked, Vec<String>> {
    let mut problems = Vec::new();
    let mut guarantors = Vec::new();
    match Platform::unopened(options) {
        Ok(platform) => {
            for gate in platform.gates() {
                let id = &gate.issuer.id;
                match gate.load(0) {
                    Ok(served) => guarantors.push(format!(
                        "{id}: マニフェスト #{}、{}件",
                        served.seq(),
                        served.len()
                    )),
                    Err(e) => problems.push(format!("{id}: マニフェストを受け付けられません: {e}")),
                }
            }
        }
        Err(e) => problems.push(format!("{e:#}")),
    }
    match Pages::load(&options.paths.root) {
        Ok(pages) => {
            if let Err(e) = receipt_signer(options, &pages) {
                problems.push(format!("{e:#}"));
            }
        }
        Err(e) => problems.push(format!("{e:#}")),
    }
    if let Err(e) = link_tokens(options) {
        problems.push(format!("{e:#}"));
    }
    if options.paths.out.is_dir() {
        if let Err(e) = site_files::check_site(&options.paths.out) {
            problems.push(format!("{e:#}"));
        }
    }
    problems.extend(writable(&options.state_dir).err());
    problems.extend(redis_answers(options.limits.as_ref()).err());
    match problems.is_empty() {
        true => Ok(Checked { guarantors }),
        false => Err(problems),
    }
}

/// Whether a file can be made in `dir` (or, before the first start, in the directory that
/// will hold it); the file made to find out is removed at once.
fn writable(dir: &Path) -> Result<(), String> {
    let existing = dir
        .ancestors()
        .find(|d| d.is_dir())
        .unwrap_or(Path::new("."));
    tempfile::NamedTempFile::new_in(existing)
        .map(drop)
        .map_err(|e| {
            format!(
                "状態ディレクトリ {} に書き込めません（最高シーケンス番号と監査ログを置けません）: {e}",
                dir.display()
            )
        })
}

/// Whether the Redis of `--limits` answers.
fn redis_answers(target: Option<&LimitsRedis>) -> Result<(), String> {
    let Some(target) = target else {
        return Ok(());
    };
    let redis = SharedBudgets::new(target).map_err(|e| format!("{e:#}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("非同期ランタイムを起動できません: {e}"))?;
    runtime.block_on(redis.ping()).map_err(|e| {
        let url = shown_url(&target.url);
        format!("--limits {url} の Redis に接続できません: {e}")
    })
}
