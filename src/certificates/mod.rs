//! The private side of the build: certificate files (`data/certificates/*.yaml`) and the
//! auth-key secret go in; the vault (`vault/`: records, PDFs, the signed manifest) comes
//! out. Nothing here writes to, or is read by, the public site.
//!
//! - `certificate`: the private model of a certificate ([`certificate::Certificate`]), around
//!   the record it shows.
//! - `input`: the YAML files (`data/certificates/`) read and validated into certificates.
//! - `documents`: the per-certificate documents (certificate, notice) as a table.
//! - `typeset`: typst as a library, fonts embedded.
//! - `reuse`: how typeset documents are carried into the next build (keyed fingerprints,
//!   sealed entries), for the vault and the statements alike.
//! - `vault`: the vault build, its reuse cache and its worker threads.

pub mod certificate;
pub mod customers;
pub mod documents;
pub mod input;
pub mod qr;
pub mod reuse;
pub mod statements;
pub mod typeset;
pub mod vault;
