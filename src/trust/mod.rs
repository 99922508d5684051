//! The trust anchor that the build, `hosho verify` and the daemon share: the signed manifest
//! format, key material, 認証キー, the vault's layout and the verification rules.
//!
//! Small on purpose and audited as one piece: it uses ring, serde (JSON and TOML), the
//! certificate model and helpers of `common`, and nothing of `site`, `certificates` or
//! `daemon`. Its errors
//! are typed, so every caller can tell a refusal from an I/O failure.

pub mod authkey;
pub mod high_water;
pub mod issuers;
pub mod keys;
pub mod layout;
pub mod manifest;
pub mod merkle;
pub mod receipt;
pub mod vault_check;
pub mod verify;

#[cfg(test)]
pub(crate) mod testing;
