//! 認証キー (authentication key) and 保証契約番号 (contract number) as people type them
//! (`docs/manifest.md`).
//!
//! A key is 10 characters of Crockford base32 (`0-9 A-Z` without I, L, O, U), about 50 bits,
//! printed grouped as `332 E1E 7K9Q`. Derived keys are HMAC-SHA256(auth-key secret, number),
//! so a rebuild never changes a key. Everything a person types goes through
//! [`normalise_key`] / [`normalise_number`] before any check, in the build and the daemon.

use ring::hmac;

use crate::common::format::fold_typed as fold;

/// Crockford's base32 alphabet.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Length of a 認証キー in characters.
pub const KEY_LEN: usize = 10;
/// Length of a 保証契約番号 in digits.
pub const NUMBER_LEN: usize = 10;

/// Why typed text is not a key or a number. It never carries the text itself, so a
/// message made from it cannot echo a key (or most of one) into a terminal or a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputError {
    /// The length after normalisation.
    WrongLength(usize),
    /// The position (1-based, after normalisation) of the first character not allowed.
    BadCharacter(usize),
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::WrongLength(n) => write!(f, "{n}文字になっています"),
            InputError::BadCharacter(at) => write!(f, "{at}文字目に使えない文字があります"),
        }
    }
}

/// The 1-based position of the first character of `text` that `allowed` refuses.
fn first_bad(text: &str, allowed: impl Fn(char) -> bool) -> Option<usize> {
    text.chars().position(|c| !allowed(c)).map(|i| i + 1)
}

/// A typed 認証キー in canonical form: NFKC, upper case, spaces and hyphens dropped,
/// O → 0 and I, L → 1; then exactly 10 characters of the alphabet.
pub fn normalise_key(input: &str) -> Result<String, InputError> {
    // As a program or a careful clerk types it: already canonical, nothing to fold.
    if input.len() == KEY_LEN && input.bytes().all(|b| ALPHABET.contains(&b)) {
        return Ok(input.to_owned());
    }
    let key: String = fold(input)
        .chars()
        .map(|c| match c {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    if let Some(at) = first_bad(&key, |c| c.is_ascii() && ALPHABET.contains(&(c as u8))) {
        return Err(InputError::BadCharacter(at));
    }
    let len = key.chars().count();
    if len != KEY_LEN {
        return Err(InputError::WrongLength(len));
    }
    Ok(key)
}

/// A typed 保証契約番号 in canonical form: NFKC, spaces and hyphens dropped; 10 digits.
pub fn normalise_number(input: &str) -> Result<String, InputError> {
    // As typed by a program or a careful clerk: nothing to fold.
    if input.len() == NUMBER_LEN && input.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(input.to_owned());
    }
    let number = fold(input);
    if let Some(at) = first_bad(&number, |c| c.is_ascii_digit()) {
        return Err(InputError::BadCharacter(at));
    }
    let len = number.chars().count();
    if len != NUMBER_LEN {
        return Err(InputError::WrongLength(len));
    }
    Ok(number)
}

/// The key derived for `number`: the first 50 bits of HMAC-SHA256(secret, number).
pub fn derive_key(secret: &[u8], number: &str) -> String {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, secret),
        number.as_bytes(),
    );
    let bytes = tag.as_ref();
    let mut bits: u64 = 0;
    for b in &bytes[..8] {
        bits = (bits << 8) | u64::from(*b);
    }
    (0..KEY_LEN)
        .map(|i| ALPHABET[((bits >> (59 - 5 * i)) & 0x1f) as usize] as char)
        .collect()
}

/// `332E1E7K9Q` → `332 E1E 7K9Q`, as printed on notices.
pub fn group(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() != KEY_LEN {
        return key.to_owned();
    }
    let part = |r: std::ops::Range<usize>| chars[r].iter().collect::<String>();
    format!("{} {} {}", part(0..3), part(3..6), part(6..10))
}

/// What a person might type, and the canonical key it must become. The build's tests and
/// the daemon's tests both run these.
pub const KEY_VECTORS: &[(&str, Option<&str>)] = &[
    ("332E1E7K9Q", Some("332E1E7K9Q")),
    ("332 E1E 7K9Q", Some("332E1E7K9Q")),
    ("332-e1e-7k9q", Some("332E1E7K9Q")),
    ("３３２　Ｅ１Ｅ　７Ｋ９Ｑ", Some("332E1E7K9Q")),
    ("３３２－ｅ１ｅ－７ｋ９ｑ", Some("332E1E7K9Q")),
    ("332ーE1Eー7K9Q", Some("332E1E7K9Q")),
    (" 332e1e7k9q\t", Some("332E1E7K9Q")),
    ("OIL0123456", Some("0110123456")),
    ("oil0123456", Some("0110123456")),
    ("332E1E7K9", None),
    ("332E1E7K9QQ", None),
    ("332E1E7K9U", None),
    ("332E1E7K9!", None),
    ("", None),
];

/// Typed numbers and their canonical form.
pub const NUMBER_VECTORS: &[(&str, Option<&str>)] = &[
    ("2070004426", Some("2070004426")),
    ("２０７０００４４２６", Some("2070004426")),
    ("207-000-4426", Some("2070004426")),
    ("2070 004 426", Some("2070004426")),
    ("207000442", None),
    ("20700044261", None),
    ("207000442O", None),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_vectors() {
        for (typed, expected) in KEY_VECTORS {
            assert_eq!(normalise_key(typed).ok().as_deref(), *expected, "{typed:?}");
        }
    }

    #[test]
    fn number_vectors() {
        for (typed, expected) in NUMBER_VECTORS {
            assert_eq!(
                normalise_number(typed).ok().as_deref(),
                *expected,
                "{typed:?}"
            );
        }
    }

    #[test]
    fn derived_keys_are_stable_canonical_and_secret_bound() {
        let a = derive_key(b"secret-a", "2070004426");
        assert_eq!(a, derive_key(b"secret-a", "2070004426"));
        assert_eq!(a.len(), KEY_LEN);
        assert_eq!(
            normalise_key(&a).as_deref(),
            Ok(a.as_str()),
            "derived keys are canonical"
        );
        assert_ne!(a, derive_key(b"secret-b", "2070004426"));
        assert_ne!(a, derive_key(b"secret-a", "2070004427"));
    }

    #[test]
    fn derived_key_vector() {
        // Computed independently: Python hmac.new(b"hosho", b"2070004426", sha256), first
        // 50 bits of the tag in Crockford base32.
        assert_eq!(derive_key(b"hosho", "2070004426"), "CR2PTZSTP7");
    }

    #[test]
    fn grouping() {
        assert_eq!(group("332E1E7K9Q"), "332 E1E 7K9Q");
        assert_eq!(group("short"), "short");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(normalise_key("332E1E7K9"), Err(InputError::WrongLength(9)));
        assert_eq!(
            normalise_key("332E1E7K9U"),
            Err(InputError::BadCharacter(10))
        );
        assert_eq!(
            normalise_number("207000442X"),
            Err(InputError::BadCharacter(10))
        );
        // The message names the place, never the text.
        let message = normalise_key("7M4K2P9QRU").expect_err("U").to_string();
        assert_eq!(message, "10文字目に使えない文字があります");
    }
}
