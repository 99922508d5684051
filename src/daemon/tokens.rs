//! Short-lived PDF links: `GET /certificates/<token>` serves one certificate for a few
//! minutes after it was verified. A token is the 保証契約番号 and its expiry, sealed
//! (ChaCha20-Poly1305) with the link key: opaque to whoever sees the URL, impossible to forge
//! or alter without the key, and checked by any replica that holds the same key
//! (`--link-key`), so no replica keeps a table of tokens. The 認証キー never travels in a
//! URL, and no file is ever looked up by what a client sent.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::common::hex::{from_hex, to_hex};

/// What the sealed text starts with, so a token of another purpose under the same key is
/// never read as a PDF link.
const PURPOSE: &[u8] = b"hosho-pdf-link-1";

/// The link key's length in bytes (64 hex characters in its file).
pub(crate) const LINK_KEY_BYTES: usize = 32;

/// The longest token read (a number is at most a few dozen characters).
const MAX_TOKEN_HEX: usize = 256;

pub(crate) struct Tokens {
    ttl: Duration,
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Tokens {
    /// Tokens sealed with `key` (the bytes of a link key).
    pub(crate) fn new(ttl: Duration, key: &[u8; LINK_KEY_BYTES]) -> Result<Tokens> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key)
            .map_err(|_| anyhow::anyhow!("リンク鍵を使えません"))?;
        Ok(Tokens {
            ttl,
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// Tokens under a random key of this process alone (one replica, no `--link-key`).
    pub(crate) fn ephemeral(ttl: Duration) -> Result<Tokens> {
        let mut key = [0u8; LINK_KEY_BYTES];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| anyhow::anyhow!("乱数を得られません"))?;
        Tokens::new(ttl, &key)
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new token for `number`, valid for the TTL from now.
    pub(crate) fn issue(&self, number: &str) -> Option<String> {
        self.issue_at(number, crate::common::era::unix_now())
    }

    fn issue_at(&self, number: &str, now: u64) -> Option<String> {
        let expires = now.checked_add(self.ttl.as_secs())?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut sealed = expires.to_be_bytes().to_vec();
        sealed.extend_from_slice(number.as_bytes());
        let nonce_value = Nonce::assume_unique_for_key(nonce);
        self.key
            .seal_in_place_append_tag(nonce_value, Aad::from(PURPOSE), &mut sealed)
            .ok()?;
        let mut token = nonce.to_vec();
        token.extend_from_slice(&sealed);
        Some(to_hex(&token))
    }

    /// The number a live, authentic token was issued for.
    pub(crate) fn number(&self, token: &str) -> Option<String> {
        self.number_at(token, crate::common::era::unix_now())
    }

    fn number_at(&self, token: &str, now: u64) -> Option<String> {
        let lower_hex = token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if token.len() > MAX_TOKEN_HEX || !lower_hex {
            return None;
        }
        let bytes = from_hex(token)?;
        if bytes.len() < NONCE_LEN + 8 + aead::MAX_TAG_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(PURPOSE), &mut sealed)
            .ok()?;
        let (expires, number) = plain.split_at(8);
        let expires = u64::from_be_bytes(expires.try_into().ok()?);
        let fresh = now < expires && expires <= now.saturating_add(self.ttl.as_secs());
        fresh.then(|| String::from_utf8(number.to_vec()).ok())?
    }
}

/// Reads a link key file: 64 hex characters (`openssl rand -hex 32`), readable by its owner
/// alone. Every replica behind one proxy is given the same file.
pub(crate) fn read_link_key(path: &Path) -> Result<[u8; LINK_KEY_BYTES]> {
    let text = crate::common::private_files::read_owner_only(path)
        .with_context(|| format!("{}: リンク鍵を読めません", path.display()))?;
    let bytes = from_hex(text.trim()).filter(|b| b.len() == LINK_KEY_BYTES);
    let Some(bytes) = bytes else {
        bail!(
            "{}:1: リンク鍵は 16進64文字で書いてください（openssl rand -hex 32 で作れます）",
            path.display()
        );
    };
    let mut key = [0u8; LINK_KEY_BYTES];
    key.copy_from_slice(&bytes);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; LINK_KEY_BYTES] = [7; LINK_KEY_BYTES];

    fn tokens(key: &[u8; LINK_KEY_BYTES]) -> Tokens {
        Tokens::new(Duration::from_secs(600), key).expect("tokens")
    }

    #[test]
    fn a_token_names_its_number_on_every_replica_with_the_key_until_it_expires() {
        let (issuer, other) = (tokens(&KEY), tokens(&KEY));
        let t = issuer.issue_at("2070004426", 1_000).expect("token");
        assert!(!t.contains("2070004426"), "the number is sealed: {t}");
        assert_eq!(other.number_at(&t, 1_000).as_deref(), Some("2070004426"));
        assert_eq!(other.number_at(&t, 1_599).as_deref(), Some("2070004426"));
        assert_eq!(other.number_at(&t, 1_600), None, "expired");
        assert_eq!(tokens(&[8; LINK_KEY_BYTES]).number_at(&t, 1_000), None);
    }

    #[test]
    fn altered_forged_and_hostile_tokens_name_nothing() {
        let t = tokens(&KEY);
        let token = t.issue_at("2070004426", 1_000).expect("token");
        for i in 0..token.len() {
            let mut altered = token.clone().into_bytes();
            altered[i] = if altered[i] == b'0' { b'1' } else { b'0' };
            let altered = String::from_utf8(altered).expect("ascii");
            assert_eq!(t.number_at(&altered, 1_000), None, "byte {i} altered");
        }
        let signed = format!("+{}", &token[1..]);
        let upper = token.to_uppercase();
        for hostile in [
            "",
            "../../etc/passwd",
            &"0".repeat(72),
            &"z".repeat(72),
            &signed,
            &upper,
        ] {
            assert_eq!(t.number_at(hostile, 1_000), None, "{hostile}");
        }
        assert_eq!(t.number_at(&"a".repeat(MAX_TOKEN_HEX + 2), 1_000), None);
        assert_eq!(t.number_at(&token[..token.len() - 2], 1_000), None);
    }

    #[test]
    fn a_token_from_a_clock_far_ahead_is_refused() {
        let t = tokens(&KEY);
        let token = t.issue_at("2070004426", 10_000).expect("token");
        assert_eq!(t.number_at(&token, 1_000), None);
    }

    #[test]
    fn link_key_files_are_hex_and_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("link.key");
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        assert_eq!(read_link_key(&path).expect("key"), [0xab; 32]);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let shared = format!("{:#}", read_link_key(&path).expect_err("shared"));
        assert!(
            shared.ends_with("（644）です。chmod 400 にしてください"),
            "{shared}"
        );
        std::fs::write(&path, "short").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let short = read_link_key(&path).expect_err("short").to_string();
        assert_eq!(
            short,
            format!(
                "{}:1: リンク鍵は 16進64文字で書いてください（openssl rand -hex 32 で作れます）",
                path.display()
            )
        );
    }
}
