//! `hosho receipt verify FILE`: a 確認記録 checked offline against the guarantor's and the
//! service's public keys, with what it proves or why it does not.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};

use super::console;
use crate::cli::{ReceiptArgs, ReceiptCommand, ReceiptVerifyArgs};
use crate::common::files::read_capped;
use crate::common::root::Paths;
use crate::trust::keys::{load_public, PUBLIC_KEY_FILE, SERVICE_PUBLIC_KEY_FILE};
use crate::trust::manifest::PublicKey;
use crate::trust::receipt::{self, MAX_RECEIPT_BYTES};

pub(super) fn run(args: &ReceiptArgs) -> Result<ExitCode> {
    match &args.command {
        ReceiptCommand::Verify(args) => verify(args),
    }
}

/// The keys in `files`, else the one `default` file.
fn keys(files: &[PathBuf], default: &Path) -> Result<Vec<PublicKey>> {
    let files = if files.is_empty() {
        vec![default.to_path_buf()]
    } else {
        files.to_vec()
    };
    files
        .iter()
        .map(|f| load_public(f).map_err(anyhow::Error::from))
        .collect()
}

fn verify(args: &ReceiptVerifyArgs) -> Result<ExitCode> {
    let dir = Paths::new(&args.root.root, None, None, None, None).keys;
    let signing = keys(&args.public_key, &dir.join(PUBLIC_KEY_FILE))?;
    let service = keys(&args.service_key, &dir.join(SERVICE_PUBLIC_KEY_FILE))?;
    let bytes = read_capped(&args.file, MAX_RECEIPT_BYTES, true)
        .with_context(|| format!("{} を読めません", args.file.display()))?;
    match receipt::verify(&bytes, &signing, &service) {
        Ok(checked) => {
            console::receipt_valid(&checked);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            console::receipt_invalid(&args.file, &e);
            Ok(ExitCode::from(1))
        }
    }
}
