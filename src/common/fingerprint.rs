//! Fingerprints of what went into something, and stamps of a file's version: what the
//! site's caches and the live preview compare to decide what to do again.

use std::hash::{DefaultHasher, Hasher};

use serde::Serialize;

/// A 64-bit fingerprint of what went into something (SipHash with fixed keys: the same in
/// every run).
#[derive(Debug, Default)]
pub struct Fingerprint(DefaultHasher);

impl Fingerprint {
    pub fn new() -> Fingerprint {
        Fingerprint::default()
    }

    pub fn bytes(mut self, bytes: &[u8]) -> Fingerprint {
        self.0.write_usize(bytes.len());
        self.0.write(bytes);
        self
    }

    pub fn number(mut self, n: u64) -> Fingerprint {
        self.0.write_u64(n);
        self
    }

    /// Adds `value` as JSON (what templates see of it).
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Fingerprint {
        // Serialising plain data cannot fail; a failure still changes the fingerprint.
        if serde_json::to_writer(HashWriter(&mut self.0), value).is_err() {
            self.0.write_u8(0xff);
        }
        self
    }

    pub fn finish(self) -> u64 {
        self.0.finish()
    }
}

/// Feeds serialised bytes straight into the hasher.
struct HashWriter<'a>(&'a mut DefaultHasher);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What identifies one version of a file without reading it: size, modification and change
/// times (nanoseconds) and inode. A write changes the change time, whatever it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStamp {
    len: u64,
    modified: i128,
    changed: i128,
    inode: u64,
}

impl FileStamp {
    pub fn of(metadata: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        let nanos = |s: i64, ns: i64| i128::from(s) * 1_000_000_000 + i128::from(ns);
        FileStamp {
            len: metadata.len(),
            modified: nanos(metadata.mtime(), metadata.mtime_nsec()),
            changed: nanos(metadata.ctime(), metadata.ctime_nsec()),
            inode: metadata.ino(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_depend_on_every_part_and_its_boundaries() {
        let a = Fingerprint::new().bytes(b"ab").bytes(b"c").finish();
        let b = Fingerprint::new().bytes(b"a").bytes(b"bc").finish();
        assert_ne!(a, b);
        assert_eq!(a, Fingerprint::new().bytes(b"ab").bytes(b"c").finish());
        let json = |v: &serde_json::Value| Fingerprint::new().json(v).finish();
        assert_ne!(
            json(&serde_json::json!({"a": 1})),
            json(&serde_json::json!({"a": 2}))
        );
    }
}
