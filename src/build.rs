//! `hosho build` and `hosho check`: load the site, render it, and swap the new output in.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::output::{self, Staging};
use crate::site::Site;

/// What a build wrote.
#[derive(Debug)]
pub struct BuildSummary {
    pub out: PathBuf,
    pub pages: usize,
    pub files: usize,
    pub elapsed: Duration,
}

/// What a check saw.
#[derive(Debug)]
pub struct CheckSummary {
    pub pages: usize,
    pub tables: usize,
    pub adopters: usize,
    pub qa: usize,
}

/// The output directory: `--out`, or `ROOT/site-out`.
pub fn default_out(root: &Path, out: Option<&Path>) -> PathBuf {
    out.map_or_else(|| root.join("site-out"), Path::to_path_buf)
}

/// Validates and renders everything without writing.
pub fn check(root: &Path) -> Result<CheckSummary> {
    let (site, output) = Site::load(root)?;
    Ok(CheckSummary {
        pages: output.page_count(),
        tables: site.tables.len(),
        adopters: site.tables.iter().map(|t| t.adopters.len()).sum(),
        qa: site.qa.len(),
    })
}

/// Builds the site into `out`: rendered beside it, then swapped in whole.
pub fn build(root: &Path, out: &Path) -> Result<BuildSummary> {
    let started = Instant::now();
    // Refuse a foreign directory before any work, and again just before the swap.
    output::ensure_replaceable(out)?;
    let (_site, rendered) = Site::load(root)?;
    let staging = Staging::new(out)?;
    let write_started = Instant::now();
    rendered.write_into(staging.path())?;
    tracing::debug!(elapsed = ?write_started.elapsed(), "wrote staging directory");
    let swap_started = Instant::now();
    staging.commit()?;
    tracing::debug!(elapsed = ?swap_started.elapsed(), "swapped output into place");
    Ok(BuildSummary {
        out: out.to_path_buf(),
        pages: rendered.page_count(),
        files: rendered.files.len(),
        elapsed: started.elapsed(),
    })
}
