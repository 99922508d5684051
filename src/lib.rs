//! hosho (保証): publishes a construction-guarantee company's 電子保証 service.
//!
//! Data flows one way: files → validated model → output, swapped into place whole
//! ([`output::Staging`]). The folders say what each part may see:
//!
//! - [`common`]: shared helpers and the certificate model (types only); nothing private.
//! - [`site`]: the public site (`site-out/`); it never receives a certificate or a key.
//! - [`certificates`]: the private inputs (`data/certificates/`, the auth-key secret) typeset
//!   and signed into `vault/`.
//! - [`trust`]: the manifest and signature format, keys, 認証キー and the verification rules
//!   that the build, `hosho verify` and the daemon share (ring and serde only).
//! - [`daemon`]: `hosho serve`, which holds the vault and public keys alone.
//!
//! The formats are described in `docs/` of the repository.

pub mod build;
pub mod certificates;
pub mod cli;
pub mod cmd;
pub mod common;
pub mod daemon;
#[doc(hidden)]
pub mod fuzzing;
pub mod preview;
pub mod scaffold;
pub mod site;
pub mod staging;
pub mod trust;
