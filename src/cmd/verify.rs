//! `hosho verify NUMBER KEY`: an offline check against the signed manifest and the PDF.

use std::process::ExitCode;

use anyhow::Result;

use super::console;
use crate::cli::VerifyArgs;
use crate::common::root::Paths;
use crate::trust::keys::TrustedKeys;
use crate::trust::verify;

pub(super) fn run(args: &VerifyArgs) -> Result<ExitCode> {
    let paths = Paths::new(&args.root.root, None, args.vault.as_deref(), None, None);
    let trusted = TrustedKeys::load(&paths.keys, &args.public_key)?;
    match verify::verify(&paths.vault, &trusted, &args.number, &args.key) {
        Ok(v) => {
            console::verified(&v);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            console::not_verified(&e);
            Ok(ExitCode::from(1))
        }
    }
}
