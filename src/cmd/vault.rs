//! `hosho vault check DIR`: a vault checked completely before it is swapped in.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{VaultArgs, VaultCommand};
use crate::common::root::Paths;
use crate::trust::keys::TrustedKeys;
use crate::trust::vault_check;
use crate::trust::verify::unix_now;

pub(super) fn run(args: &VaultArgs) -> Result<ExitCode> {
    let VaultCommand::Check(check) = &args.command;
    let paths = Paths::new(&check.root.root, None, None, None, None);
    let trusted = TrustedKeys::load(&paths.keys, &check.public_key)?;
    let state = check.state.as_deref();
    match vault_check::check(&check.dir, trusted.as_slice(), state, unix_now()) {
        Ok(checked) => {
            println!(
                "{} に問題はありません: マニフェスト #{}、{}件、SHA-256 {}",
                check.dir.display(),
                checked.seq,
                checked.entries,
                checked.sha256
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            eprintln!(
                "{} には問題が{}件あります。確認サービスに渡さないでください",
                check.dir.display(),
                problems.len()
            );
            Ok(ExitCode::from(1))
        }
    }
}
