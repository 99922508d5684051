//! Key material in `keys/`: the Ed25519 signing key pair and the auth-key secret from which
//! 認証キー are derived. Private files are created with mode 0600 and never overwritten.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::manifest::{from_hex, to_hex, PublicKey};

pub const KEYS_DIR: &str = "keys";
/// Ed25519 private key, PKCS#8 (private).
pub const PRIVATE_KEY_FILE: &str = "signing.pk8";
/// `ed25519 <hex>`: the public key, safe to publish.
pub const PUBLIC_KEY_FILE: &str = "signing.pub";
/// 32 random bytes from which 認証キー are derived (private).
pub const AUTH_SECRET_FILE: &str = "authkey.secret";

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
        .with_context(|| format!("{} を作れません", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("{} に書き込めません", path.display()))
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

/// Generates a key pair and an auth-key secret in memory.
pub fn generate_in_memory() -> Result<NewKeys> {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| anyhow::anyhow!("Ed25519 の鍵を生成できません"))?;
    let key_pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("生成した鍵を読めません"))?;
    let public = PublicKey::from_bytes(key_pair.public_key().as_ref().to_vec());
    let mut secret = [0u8; 32];
    rng.fill(&mut secret)
        .map_err(|_| anyhow::anyhow!("乱数を得られません"))?;
    Ok(NewKeys {
        material: KeyMaterial {
            key_pair,
            public,
            auth_secret: secret.to_vec(),
        },
        pkcs8: pkcs8.as_ref().to_vec(),
    })
}

/// Writes new key material into `dir`; refuses if any of its files exists.
pub fn write(dir: &Path, keys: &NewKeys) -> Result<()> {
    for name in [PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, AUTH_SECRET_FILE] {
        let path = dir.join(name);
        if path.exists() {
            bail!(
                "{} がすでにあります。鍵を上書きすると発行済みの認証キーと署名が使えなくなるため、作成を止めました",
                path.display()
            );
        }
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("{} を作れません", dir.display()))?;
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
    Ok(keys.material.public)
}

/// Reads a public key file (`ed25519 <hex>`).
pub fn load_public(path: &Path) -> Result<PublicKey> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("公開鍵 {} を読めません", path.display()))?;
    let bytes = text
        .trim()
        .strip_prefix("ed25519 ")
        .and_then(|hex| from_hex(hex.trim()))
        .filter(|b| b.len() == 32)
        .with_context(|| {
            format!(
                "{} は「ed25519 」と 64 桁の16進数の形ではありません",
                path.display()
            )
        })?;
    Ok(PublicKey::from_bytes(bytes))
}

/// Reads the key material in `dir`.
pub fn load(dir: &Path) -> Result<KeyMaterial> {
    let pkcs8_path = dir.join(PRIVATE_KEY_FILE);
    let pkcs8 = fs::read(&pkcs8_path)
        .with_context(|| format!("秘密鍵 {} を読めません", pkcs8_path.display()))?;
    let key_pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| {
        anyhow::anyhow!(
            "{} は Ed25519 の PKCS#8 秘密鍵ではありません",
            pkcs8_path.display()
        )
    })?;
    let public = PublicKey::from_bytes(key_pair.public_key().as_ref().to_vec());
    let stored = load_public(&dir.join(PUBLIC_KEY_FILE))?;
    if stored != public {
        bail!(
            "{} が秘密鍵と対になっていません",
            dir.join(PUBLIC_KEY_FILE).display()
        );
    }
    let secret_path = dir.join(AUTH_SECRET_FILE);
    let auth_secret = fs::read(&secret_path)
        .with_context(|| format!("{} を読めません", secret_path.display()))?;
    if auth_secret.len() < 32 {
        bail!(
            "{} が短すぎます（32 バイト以上が必要です）",
            secret_path.display()
        );
    }
    Ok(KeyMaterial {
        key_pair,
        public,
        auth_secret,
    })
}

/// Whether `dir` holds no key material at all (a fresh checkout).
pub fn absent(dir: &Path) -> bool {
    [PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, AUTH_SECRET_FILE]
        .iter()
        .all(|name| !dir.join(name).exists())
}

/// `ROOT/keys` unless given.
pub fn keys_dir(root: &Path, keys: Option<&Path>) -> PathBuf {
    keys.map_or_else(|| root.join(KEYS_DIR), Path::to_path_buf)
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
    fn mismatched_public_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        generate(&a).expect("a");
        generate(&b).expect("b");
        fs::remove_file(a.join(PUBLIC_KEY_FILE)).expect("rm");
        fs::copy(b.join(PUBLIC_KEY_FILE), a.join(PUBLIC_KEY_FILE)).expect("cp");
        assert!(load(&a).is_err());
    }
}
