//! The layout of a site root (see README's "Layout of a site root"): where each input lives
//! and where the outputs go by default. `hosho.toml` is [`super::config::CONFIG_FILE`], the
//! vault's own layout is `trust::layout`, the keys' `trust::keys`.

use std::path::{Path, PathBuf};

/// Markdown pages with YAML front matter.
pub const CONTENT_DIR: &str = "content";
/// Adoption tables, one YAML file per region or group.
pub const ADOPTERS_DIR: &str = "data/adopters";
/// Q&A entries.
pub const QA_FILE: &str = "data/qa.yaml";
/// Certificates (private input).
pub const CERTIFICATES_DIR: &str = "data/certificates";
/// The contractors on 保証料一括納付制度 (private, like the certificates).
pub const CUSTOMERS_FILE: &str = "data/customers.yaml";
/// tera and typst templates that replace the built-in ones.
pub const TEMPLATES_DIR: &str = "templates";
/// Style sheets, scripts, images; `assets/fonts/` stays private.
pub const ASSETS_DIR: &str = "assets";
/// The public output, by default.
pub const SITE_OUT_DIR: &str = "site-out";
/// The daemon's high-water mark and audit log, by default.
pub const STATE_DIR: &str = "state";
/// Key material (`signing.pk8`, `signing.pub`, `authkey.secret`), by default.
pub const KEYS_DIR: &str = "keys";
/// The private output the daemon host receives, by default (its layout: `trust::layout`).
pub const VAULT_DIR: &str = "vault";
/// The private output that never leaves the build host (認証キー notices), by default.
pub const NOTICES_DIR: &str = "notices";

/// Where a command reads and writes: the site root and the directories given on the command
/// line, each defaulting inside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub root: PathBuf,
    /// Public output (`--out` or `--site`, default `ROOT/site-out`).
    pub out: PathBuf,
    /// Private output for the daemon host (`--vault`, default `ROOT/vault`).
    pub vault: PathBuf,
    /// Private output for the build host only (`--notices`, default `ROOT/notices`).
    pub notices: PathBuf,
    /// Key material (`--keys`, default `ROOT/keys`).
    pub keys: PathBuf,
}

impl Paths {
    pub fn new(
        root: &Path,
        out: Option<&Path>,
        vault: Option<&Path>,
        notices: Option<&Path>,
        keys: Option<&Path>,
    ) -> Paths {
        let or_default = |given: Option<&Path>, name: &str| {
            given.map_or_else(|| root.join(name), Path::to_path_buf)
        };
        Paths {
            root: root.to_path_buf(),
            out: or_default(out, SITE_OUT_DIR),
            vault: or_default(vault, VAULT_DIR),
            notices: or_default(notices, NOTICES_DIR),
            keys: or_default(keys, KEYS_DIR),
        }
    }
}

/// Present in every output directory hosho made; its absence protects foreign directories.
pub const MARKER: &str = ".hosho-output";
