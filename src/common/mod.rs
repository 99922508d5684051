//! What every part of hosho shares, and none of it private: problems reported at
//! `path:line:column`, YAML reading with positions, sorted walks, `hosho.toml`, era dates,
//! number formats, hex, size-capped reads, and the certificate model (types only).

pub mod certificate;
pub mod config;
pub mod diagnostics;
pub mod era;
pub mod fees;
pub mod files;
pub mod fingerprint;
pub mod format;
pub mod hex;
pub mod private_files;
pub mod root;
pub mod submission;
pub mod version;
pub mod walk;
pub mod yaml;
