//! `hosho keygen`: a new signing key pair and auth-key secret, or (`--service`) the
//! verification service's key pair that signs receipts; never overwrites.

use std::process::ExitCode;

use anyhow::Result;

use super::console;
use crate::cli::KeygenArgs;
use crate::common::root::Paths;
use crate::trust::keys;

pub(super) fn run(args: &KeygenArgs) -> Result<ExitCode> {
    let dir = Paths::new(&args.root.root, None, None, None, args.keys.as_deref()).keys;
    if args.service {
        let public = keys::generate_service(&dir)?;
        console::service_key_created(&dir, &public.id);
        return Ok(ExitCode::SUCCESS);
    }
    let public = keys::generate(&dir)?;
    console::keys_created(&dir, &public.id);
    Ok(ExitCode::SUCCESS)
}
