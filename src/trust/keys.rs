//! Key material in `keys/`: the Ed25519 signing key pair and the auth-key secret from which
//! 認証キー are derived (formats in `docs/manifest.md`). Private files are created with mode
//! 0600 and never overwritten. Errors are typed ([`KeyError`]) and name the file.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::common::hex::{from_hex, to_hex};
use crate::trust::manifest::PublicKey;

/// Ed25519 private key, PKCS#8 (private).
pub const PRIVATE_KEY_FILE: &str = "signing.pk8";
/// `ed25519 <hex>`: the public key, safe to publish.
pub const PUBLIC_KEY_FILE: &str = "signing.pub";
/// 32 random bytes from which 認証キー are derived (private).
pub const AUTH_SECRET_FILE: &str = "authkey.secret";
/// The verification service's own Ed25519 private key, PKCS#8 (private, on the daemon's
/// host): it signs 確認記録 (receipts).
pub const SERVICE_PRIVATE_KEY_FILE: &str = "service.pk8";
/// `ed25519 <hex>`: the service's public key, published on the site beside the signing key.
pub const SERVICE_PUBLIC_KEY_FILE: &str = "service.pub";
/// Present beside keys that a build made for development: only then may hosho print a
/// number and its 認証キー to try.
pub const DEVELOPMENT_FILE: &str = "DEVELOPMENT";

/// Why key material could not be made, read or written.
#[derive(Debug)]
pub enum KeyError {
    /// A file could not be read, created or written: what happened to which file, and why.
    Io(String, std::io::Error),
    /// A key file exists where a new one would be written.
    Exists(PathBuf),
    /// A file's content is not what it must be (the path, what was expected).
    Invalid(PathBuf, &'static str),
    /// The system's random source failed.
    Random,
    /// None, or more than [`MAX_TRUSTED_KEYS`], public keys were given to trust.
    TrustedCount(usize),
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Io(what, _) => f.write_str(what),
            KeyError::Exists(path) => write!(
                f,
                "{} がすでにあります。鍵を上書きすると、その鍵による署名やその秘密値から作った認証キーが使えなくなるため、作成を止めました",
                path.display()
            ),
            KeyError::Invalid(path, what) => write!(f, "{} {what}", path.display()),
            KeyError::Random => f.write_str("乱数を得られないため鍵を作れません"),
            KeyError::TrustedCount(n) => write!(
                f,
                "信頼する公開鍵は1つか{MAX_TRUSTED_KEYS}つにしてください（鍵の切り替え中の新旧）。{n}つ指定されています"
            ),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

type Result<T> = std::result::Result<T, KeyError>;

/// `{label}{path} {verb}`, e.g. 「公開鍵 keys/signing.pub を読めません」.
fn io<'p>(
    label: &'static str,
    path: &'p Path,
    verb: &'static str,
) -> impl FnOnce(std::io::Error) -> KeyError + 'p {
    move |e| KeyError::Io(format!("{label}{} {verb}", path.display()), e)
}

/// Everything a build needs to sign and derive keys.
pub struct KeyMaterial {
    pub key_pair: Ed25519KeyPair,
    pub public: PublicKey,
    pub auth_secret: Vec<u8>,
}

/// Writes a new file that must not exist, with `mode`.
fn create_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io("", path, "を作れません"))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io("", path, "に書き込めません"))
}

/// The public key file's text.
pub fn public_key_text(public: &PublicKey) -> String {
    format!("ed25519 {}\n", to_hex(&public.bytes))
}

/// Freshly generated key material, not yet written anywhere.
pub struct NewKeys {
    pub material: KeyMaterial,
    pkcs8: Vec<u8>,
}

/// A fresh Ed25519 key pair: its PKCS#8 bytes, the pair, and its public key.
fn new_key_pair(rng: &SystemRandom) -> Result<(Vec<u8>, Ed25519KeyPair, PublicKey)> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(rng).map_err(|_| KeyError::Random)?;
    let key_pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyError::Random)?;
    let public = PublicKey::from_bytes(key_pair.public_key().as_ref().to_vec());
    Ok((pkcs8.as_ref().to_vec(), key_pair, public))
}

/// The Ed25519 key pair in the PKCS#8 file at `path` (`label` names it in errors).
fn read_key_pair(path: &Path, label: &'static str) -> Result<(Ed25519KeyPair, PublicKey)> {
    let pkcs8 = fs::read(path).map_err(io(label, path, "を読めません"))?;
    let key_pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| {
        KeyError::Invalid(
            path.to_path_buf(),
            "は Ed25519 の PKCS#8 秘密鍵ではありません",
        )
    })?;
    let public = PublicKey::from_bytes(key_pair.public_key().as_ref().to_vec());
    Ok((key_pair, public))
}

/// Generates a key pair and an auth-key secret in memory.
pub fn generate_in_memory() -> Result<NewKeys> {
    let rng = SystemRandom::new();
    let (pkcs8, key_pair, public) = new_key_pair(&rng)?;
    let mut secret = [0u8; 32];
    rng.fill(&mut secret).map_err(|_| KeyError::Random)?;
    Ok(NewKeys {
        material: KeyMaterial {
            key_pair,
            public,
            auth_secret: secret.to_vec(),
        },
        pkcs8,
    })
}

/// The key material of one build: the keys in the keys directory, or new development keys
/// kept in memory until the build succeeded.
pub enum BuildKeys {
    /// Keys from the keys directory; `development` when a build made them.
    Existing {
        material: KeyMaterial,
        development: bool,
    },
    /// Development keys made for this build, written once it succeeded.
    New(NewKeys),
}

impl BuildKeys {
    /// The keys in `dir`, or new ones when `dir` holds none (a fresh checkout).
    pub fn load_or_new(dir: &Path) -> Result<BuildKeys> {
        if absent(dir) {
            Ok(BuildKeys::New(generate_in_memory()?))
        } else {
            Ok(BuildKeys::Existing {
                material: load(dir)?,
                development: dir.join(DEVELOPMENT_FILE).exists(),
            })
        }
    }

    /// Whether these are development keys (made by a build, not by `hosho keygen`).
    pub fn development(&self) -> bool {
        match self {
            BuildKeys::Existing { development, .. } => *development,
            BuildKeys::New(_) => true,
        }
    }

    /// Writes new development keys into `dir`, marked as such; existing keys stay as they are.
    pub fn write_new(&self, dir: &Path) -> Result<()> {
        let BuildKeys::New(new) = self else {
            return Ok(());
        };
        write(dir, new)?;
        let marker = dir.join(DEVELOPMENT_FILE);
        let text = "hosho build が作った開発用の鍵です。本番では hosho keygen で作った鍵を使ってください。\n";
        // A marker left from keys deleted by hand is simply written again.
        fs::write(&marker, text).map_err(io("", &marker, "を作れません"))
    }

    pub fn material(&self) -> &KeyMaterial {
        match self {
            BuildKeys::Existing { material, .. } => material,
            BuildKeys::New(new) => &new.material,
        }
    }
}

/// Writes new key material into `dir`; refuses if any of its files exists.
pub fn write(dir: &Path, keys: &NewKeys) -> Result<()> {
    for name in [PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, AUTH_SECRET_FILE] {
        let path = dir.join(name);
        if path.exists() {
            return Err(KeyError::Exists(path));
        }
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("", dir, "を作れません"))?;
    create_new(&dir.join(PRIVATE_KEY_FILE), &keys.pkcs8, 0o600)?;
    create_new(
        &dir.join(AUTH_SECRET_FILE),
        &keys.material.auth_secret,
        0o600,
    )?;
    create_new(
        &dir.join(PUBLIC_KEY_FILE),
        public_key_text(&keys.material.public).as_bytes(),
        0o644,
    )?;
    Ok(())
}

/// Generates a key pair and an auth-key secret in `dir`; refuses if any of them exists.
pub fn generate(dir: &Path) -> Result<PublicKey> {
    let keys = generate_in_memory()?;
    write(dir, &keys)?;
    // Keys from keygen are for production: a marker left from development keys goes.
    let marker = dir.join(DEVELOPMENT_FILE);
    match fs::remove_file(&marker) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("", &marker, "を消せません")(e));
        }
        _ => {}
    }
    Ok(keys.material.public)
}

/// Reads a public key file (`ed25519 <hex>`).
pub fn load_public(path: &Path) -> Result<PublicKey> {
    let text = fs::read_to_string(path).map_err(io("公開鍵 ", path, "を読めません"))?;
    let bytes = text
        .trim()
        .strip_prefix("ed25519 ")
        .and_then(|hex| from_hex(hex.trim()))
        .filter(|b| b.len() == 32)
        .ok_or_else(|| {
            KeyError::Invalid(
                path.to_path_buf(),
                "は「ed25519 」と64桁の16進数の形ではありません",
            )
        })?;
    Ok(PublicKey::from_bytes(bytes))
}

/// Reads the key material in `dir`.
pub fn load(dir: &Path) -> Result<KeyMaterial> {
    let (key_pair, public) = read_key_pair(&dir.join(PRIVATE_KEY_FILE), "秘密鍵 ")?;
    let stored = load_public(&dir.join(PUBLIC_KEY_FILE))?;
    if stored != public {
        return Err(KeyError::Invalid(
            dir.join(PUBLIC_KEY_FILE),
            "が秘密鍵と対になっていません",
        ));
    }
    let secret_path = dir.join(AUTH_SECRET_FILE);
    let auth_secret = fs::read(&secret_path).map_err(io("", &secret_path, "を読めません"))?;
    if auth_secret.len() < 32 {
        return Err(KeyError::Invalid(
            secret_path,
            "が短すぎます（32バイト以上が必要です）",
        ));
    }
    Ok(KeyMaterial {
        key_pair,
        public,
        auth_secret,
    })
}

/// The verification service's key pair, which signs receipts.
pub struct ServiceKey {
    pub key_pair: Ed25519KeyPair,
    pub public: PublicKey,
}

/// Generates the service's key pair in `dir` (`service.pk8`, `service.pub`); refuses if
/// either exists.
pub fn generate_service(dir: &Path) -> Result<PublicKey> {
    for name in [SERVICE_PRIVATE_KEY_FILE, SERVICE_PUBLIC_KEY_FILE] {
        let path = dir.join(name);
        if path.exists() {
            return Err(KeyError::Exists(path));
        }
    }
    let (pkcs8, _, public) = new_key_pair(&SystemRandom::new())?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("", dir, "を作れません"))?;
    write_service(dir, &pkcs8, &public)?;
    Ok(public)
}

/// Writes the service's key pair into `dir` (files that must not exist).
fn write_service(dir: &Path, pkcs8: &[u8], public: &PublicKey) -> Result<()> {
    create_new(&dir.join(SERVICE_PRIVATE_KEY_FILE), pkcs8, 0o600)?;
    create_new(
        &dir.join(SERVICE_PUBLIC_KEY_FILE),
        public_key_text(public).as_bytes(),
        0o644,
    )
}

/// The service's public key that a build publishes on the site: `service.pub` in the keys
/// directory, or, beside development keys without one, a development key pair made for
/// this build and written once it succeeded (so that `hosho serve` on the demo makes
/// receipts).
pub struct BuildServiceKey {
    pub public: Option<PublicKey>,
    new_pkcs8: Option<Vec<u8>>,
}

impl BuildServiceKey {
    pub fn load_or_new(dir: &Path, development: bool) -> Result<BuildServiceKey> {
        let public_path = dir.join(SERVICE_PUBLIC_KEY_FILE);
        if public_path.exists() {
            return Ok(BuildServiceKey {
                public: Some(load_public(&public_path)?),
                new_pkcs8: None,
            });
        }
        if !development || dir.join(SERVICE_PRIVATE_KEY_FILE).exists() {
            return Ok(BuildServiceKey {
                public: None,
                new_pkcs8: None,
            });
        }
        let (pkcs8, _, public) = new_key_pair(&SystemRandom::new())?;
        Ok(BuildServiceKey {
            public: Some(public),
            new_pkcs8: Some(pkcs8),
        })
    }

    /// Writes a development key pair made for this build into `dir`.
    pub fn write_new(&self, dir: &Path) -> Result<()> {
        match (&self.new_pkcs8, &self.public) {
            (Some(pkcs8), Some(public)) => write_service(dir, pkcs8, public),
            _ => Ok(()),
        }
    }
}

/// Reads the service's private key from `path` (a `service.pk8`).
pub fn load_service(path: &Path) -> Result<ServiceKey> {
    let (key_pair, public) = read_key_pair(path, "確認サービスの秘密鍵 ")?;
    Ok(ServiceKey { key_pair, public })
}

/// At most two public keys are trusted at once: the old and the new during a rotation.
pub const MAX_TRUSTED_KEYS: usize = 2;

/// The public keys a reader trusts: one, or two during a key rotation. The one rule for
/// `hosho verify` and `hosho serve` alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKeys(Vec<PublicKey>);

impl TrustedKeys {
    pub fn new(keys: Vec<PublicKey>) -> Result<TrustedKeys> {
        if keys.is_empty() || keys.len() > MAX_TRUSTED_KEYS {
            return Err(KeyError::TrustedCount(keys.len()));
        }
        Ok(TrustedKeys(keys))
    }

    /// The keys in `files`, or when none is given, `signing.pub` in `keys_dir`.
    pub fn load(keys_dir: &Path, files: &[PathBuf]) -> Result<TrustedKeys> {
        if files.len() > MAX_TRUSTED_KEYS {
            return Err(KeyError::TrustedCount(files.len()));
        }
        let default = [keys_dir.join(PUBLIC_KEY_FILE)];
        let files = if files.is_empty() {
            &default[..]
        } else {
            files
        };
        TrustedKeys::new(
            files
                .iter()
                .map(|f| load_public(f))
                .collect::<Result<_>>()?,
        )
    }

    pub fn as_slice(&self) -> &[PublicKey] {
        &self.0
    }
}

/// Whether `dir` holds no key material at all (a fresh checkout).
pub fn absent(dir: &Path) -> bool {
    [PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, AUTH_SECRET_FILE]
        .iter()
        .all(|name| !dir.join(name).exists())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generate_load_and_refuse_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let public = generate(&keys).expect("generate");
        let material = load(&keys).expect("load");
        assert_eq!(material.public, public);
        assert_eq!(public.id.len(), 16);
        assert_eq!(material.auth_secret.len(), 32);
        for (name, mode) in [
            (PRIVATE_KEY_FILE, 0o600),
            (AUTH_SECRET_FILE, 0o600),
            (PUBLIC_KEY_FILE, 0o644),
        ] {
            let m = fs::metadata(keys.join(name))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(m, mode, "{name}");
        }
        let before = fs::read(keys.join(PRIVATE_KEY_FILE)).expect("read");
        let err = generate(&keys).expect_err("refuses");
        assert!(err.to_string().contains("すでにあります"), "{err}");
        assert_eq!(fs::read(keys.join(PRIVATE_KEY_FILE)).expect("read"), before);
        assert_eq!(
            load_public(&keys.join(PUBLIC_KEY_FILE)).expect("public"),
            public
        );
    }

    #[test]
    fn one_or_two_keys_are_trusted_and_the_default_is_signing_pub() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let key_a = generate(&a).expect("a");
        let key_b = generate(&b).expect("b");
        let default = TrustedKeys::load(&a, &[]).expect("default");
        assert_eq!(default.as_slice(), std::slice::from_ref(&key_a));
        let files = [a.join(PUBLIC_KEY_FILE), b.join(PUBLIC_KEY_FILE)];
        let both = TrustedKeys::load(Path::new("/nowhere"), &files).expect("two");
        assert_eq!(both.as_slice(), [key_a, key_b]);
        let three = [files[0].clone(), files[1].clone(), files[0].clone()];
        assert!(matches!(
            TrustedKeys::load(&a, &three),
            Err(KeyError::TrustedCount(3))
        ));
        assert!(matches!(
            TrustedKeys::new(Vec::new()),
            Err(KeyError::TrustedCount(0))
        ));
        let missing = TrustedKeys::load(&dir.path().join("none"), &[]).expect_err("missing");
        assert!(missing.to_string().starts_with("公開鍵 "), "{missing}");
    }

    #[test]
    fn keys_a_build_made_are_marked_as_development_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let new = BuildKeys::load_or_new(&keys).expect("new");
        assert!(new.development());
        new.write_new(&keys).expect("write");
        assert!(BuildKeys::load_or_new(&keys).expect("load").development());
        // Keys from keygen are not, even where a marker was left behind.
        for name in [PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, AUTH_SECRET_FILE] {
            fs::remove_file(keys.join(name)).expect("rm");
        }
        generate(&keys).expect("keygen");
        assert!(!BuildKeys::load_or_new(&keys).expect("load").development());
    }

    #[test]
    fn mismatched_public_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        generate(&a).expect("a");
        generate(&b).expect("b");
        fs::remove_file(a.join(PUBLIC_KEY_FILE)).expect("rm");
        fs::copy(b.join(PUBLIC_KEY_FILE), a.join(PUBLIC_KEY_FILE)).expect("cp");
        assert!(load(&a).is_err());
    }

    #[test]
    fn the_service_key_is_made_once_and_published_by_development_builds_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let public = generate_service(&keys).expect("generate");
        let mode = |name: &str| {
            fs::metadata(keys.join(name))
                .expect("file")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(
            (
                mode(SERVICE_PRIVATE_KEY_FILE),
                mode(SERVICE_PUBLIC_KEY_FILE)
            ),
            (0o600, 0o644)
        );
        let loaded = load_service(&keys.join(SERVICE_PRIVATE_KEY_FILE)).expect("load");
        assert_eq!(loaded.public, public);
        assert!(matches!(generate_service(&keys), Err(KeyError::Exists(_))));
        // A build publishes service.pub where there is one, development or not.
        let published = BuildServiceKey::load_or_new(&keys, false).expect("published");
        assert_eq!(published.public, Some(public));
        // Without one: a development build makes one (written after it succeeded), a
        // production build publishes none.
        let empty = dir.path().join("empty");
        fs::create_dir_all(&empty).expect("mkdir");
        let none = BuildServiceKey::load_or_new(&empty, false).expect("none");
        assert!(none.public.is_none());
        none.write_new(&empty).expect("nothing to write");
        assert!(!empty.join(SERVICE_PUBLIC_KEY_FILE).exists());
        let made = BuildServiceKey::load_or_new(&empty, true).expect("made");
        assert!(!empty.join(SERVICE_PUBLIC_KEY_FILE).exists());
        made.write_new(&empty).expect("written");
        let written = load_service(&empty.join(SERVICE_PRIVATE_KEY_FILE)).expect("load");
        assert_eq!(Some(written.public), made.public);
    }
}
