//! `hosho keygen`: a new signing key pair and auth-key secret; never overwrites.

use std::process::ExitCode;

use anyhow::Result;

use super::console;
use crate::cli::KeygenArgs;
use crate::common::root::Paths;
use crate::trust::keys;

pub(super) fn run(args: &KeygenArgs) -> Result<ExitCode> {
    let dir = Paths::new(&args.root.root, None, None, None, args.keys.as_deref()).keys;
    let public = keys::generate(&dir)?;
    console::keys_created(&dir, &public.id);
    Ok(ExitCode::SUCCESS)
}
