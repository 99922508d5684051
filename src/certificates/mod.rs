//! The private side of the build: certificate files (`data/certificates/*.yaml`) and the
//! auth-key secret go in; the vault (`vault/`: records, PDFs, the signed manifest) comes
//! out. Nothing here writes to, or is read by, the public site.
//!
//! - `input`: the YAML files validated into [`input::Certificate`]s.
//! - `documents`: the per-certificate documents (certificate, notice) as a table.
//! - `typeset`: typst as a library, fonts embedded.
//! - `reuse`: how typeset documents are carried into the next build (keyed fingerprints,
//!   sealed entries), for the vault and the statements alike.
//! - `vault`: the vault build, its reuse cache and its worker threads.

pub mod customers;
pub mod documents;
pub mod input;
pub mod qr;
pub mod reuse;
pub mod statements;
pub mod typeset;
pub mod vault;
