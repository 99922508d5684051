//! Files and directories only their owner may read: the vault and the notices, and the
//! secrets the daemon is given in files (the link key, Redis's password).

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt as _};
use std::path::Path;

/// The text of a secret's file, refused (`PermissionDenied`, saying what to do) when others
/// than its owner may read it; the mode is that of the file read, not of a path looked up
/// again.
pub fn read_owner_only(path: &Path) -> io::Result<String> {
    let mut file = fs::File::open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "ほかの利用者にも読める権限（{:o}）です。chmod 400 にしてください",
                mode & 0o777
            ),
        ));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}

/// Writes a file only its owner can read (0600), replacing any file of that name.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// Puts `from` at `to` as a hard link (a file carried from the previous output into the
/// new one), or as a copy across file systems.
pub fn link_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    fs::hard_link(from, to).or_else(|_| fs::copy(from, to).map(|_| ()))
}

/// Creates a directory (and its parents) only its owner can enter (0700).
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_others_may_read_is_refused_and_one_for_its_owner_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        fs::write(&path, "s3cret\n").expect("write");
        for mode in [0o644, 0o640, 0o604] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
            let error = read_owner_only(&path).expect_err("shared");
            assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
            assert!(
                error.to_string().contains(&format!("（{mode:o}）")),
                "{error}"
            );
            assert!(!error.to_string().contains("s3cret"));
        }
        for mode in [0o400, 0o600] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
            assert_eq!(read_owner_only(&path).expect("own"), "s3cret\n");
        }
    }
}
