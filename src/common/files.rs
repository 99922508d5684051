//! Reading a file whole, but never more than a cap: what the daemon, `hosho verify` and the
//! manifest reader do with every file a vault or a site holds, so that no file (a PDF
//! swapped for a huge one, a symlink to a device) can make them read without bound.

use std::io::{self, Read};
use std::path::Path;

/// Why a capped read gave nothing.
#[derive(Debug)]
pub enum ReadCapped {
    Io(io::Error),
    /// Not a regular file (a directory, a device, a symlink when links are refused).
    NotAFile,
    TooLarge {
        bytes: u64,
        max: u64,
    },
}

impl std::fmt::Display for ReadCapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadCapped::Io(e) => e.fmt(f),
            ReadCapped::NotAFile => f.write_str("通常のファイルではありません"),
            ReadCapped::TooLarge { bytes, max } => {
                write!(f, "大きすぎます（{bytes}バイト、上限 {max}）")
            }
        }
    }
}

impl std::error::Error for ReadCapped {}

/// The bytes of the regular file at `path` when it has at most `max` bytes. The size is
/// checked on the open file, and the read itself stops after `max + 1` bytes, so a file
/// that grows in between is refused too. With `follow_links` false a symlink is refused.
pub fn read_capped(path: &Path, max: u64, follow_links: bool) -> Result<Vec<u8>, ReadCapped> {
    if !follow_links {
        let meta = std::fs::symlink_metadata(path).map_err(ReadCapped::Io)?;
        if !meta.is_file() {
            return Err(ReadCapped::NotAFile);
        }
    }
    let file = std::fs::File::open(path).map_err(ReadCapped::Io)?;
    let meta = file.metadata().map_err(ReadCapped::Io)?;
    if !meta.is_file() {
        return Err(ReadCapped::NotAFile);
    }
    if meta.len() > max {
        return Err(ReadCapped::TooLarge {
            bytes: meta.len(),
            max,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadCapped::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadCapped::TooLarge {
            bytes: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_sizes_and_refuses_what_is_not_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a");
        std::fs::write(&file, b"12345").expect("write");
        assert_eq!(read_capped(&file, 5, false).expect("fits"), b"12345");
        assert!(matches!(
            read_capped(&file, 4, false),
            Err(ReadCapped::TooLarge { bytes: 5, max: 4 })
        ));
        assert!(matches!(
            read_capped(dir.path(), 100, true),
            Err(ReadCapped::NotAFile)
        ));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert!(read_capped(&link, 5, true).is_ok());
        assert!(matches!(
            read_capped(&link, 5, false),
            Err(ReadCapped::NotAFile)
        ));
        assert!(matches!(
            read_capped(&dir.path().join("none"), 5, true),
            Err(ReadCapped::Io(_))
        ));
    }
}
