//! Which hosho this is: its version and the commit it was built from (`build.rs`; `unknown`
//! outside a checkout unless `HOSHO_COMMIT` says). Shown by `hosho --version`, the daemon's
//! `build_info` metric and its admin health.

/// The version (semantic versioning; CHANGELOG.md).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit hosho was built from, abbreviated to 12 hex digits, or `unknown`.
pub const COMMIT: &str = env!("HOSHO_COMMIT");
