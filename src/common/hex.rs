//! Lower-case hex and SHA-256 fingerprints, as manifests, signatures and caches write them.

use ring::digest;

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// The bytes of hex text (either case); `None` for anything else, a sign included.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Decodes hex `text` into `out`, which it must fill exactly; `false` (and `out` partly
/// written) for anything else. Allocates nothing, for the million entries of a manifest.
pub fn decode_into(text: &str, out: &mut [u8]) -> bool {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if text.len() != out.len() * 2 {
        return false;
    }
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(high), Some(low)) => *byte = high << 4 | low,
            _ => return false,
        }
    }
    true
}

/// The value of each lower-case hex digit; 0xff for every other byte.
const LOWER_HEX: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// [`decode_into`] for lower-case hex only (as manifests write it), checking and decoding
/// in one pass through a table: what a reader does for every field of a million entries.
pub fn decode_lower_into(text: &str, out: &mut [u8]) -> bool {
    if text.len() != out.len() * 2 {
        return false;
    }
    let mut bad = 0u8;
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let (high, low) = (
            LOWER_HEX[usize::from(pair[0])],
            LOWER_HEX[usize::from(pair[1])],
        );
        bad |= (high | low) & 0xf0;
        *byte = high << 4 | (low & 0x0f);
    }
    bad == 0
}

/// Writes the lower-case hex of `bytes` into `out`, which holds two bytes per byte (the
/// rest of a longer `out` is left as it is). Allocates nothing.
pub fn encode_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
}

/// Whether `text` is the lower-case hex of exactly `bytes` bytes.
pub fn is_hex_of(text: &str, bytes: usize) -> bool {
    text.len() == bytes * 2 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(to_hex(&[0, 15, 255]), "000fff");
        assert_eq!(from_hex("000fff"), Some(vec![0, 15, 255]));
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("+f"), None);
        assert_eq!(from_hex("0F"), Some(vec![15]));
        assert!(is_hex_of("00ff", 2));
        assert!(!is_hex_of("00FF", 2));
        assert!(!is_hex_of("00f", 2));
        let mut out = [0u8; 3];
        assert!(decode_into("000fFf", &mut out));
        assert_eq!(out, [0, 15, 255]);
        assert!(!decode_into("000f", &mut out) && !decode_into("000fgf", &mut out));
        let mut text = *b"xxxxxxx";
        encode_into(&[0, 15, 255], &mut text[1..]);
        assert_eq!(&text, b"x000fff");
    }

    #[test]
    fn lower_case_hex_is_checked_and_decoded_in_one_pass() {
        let mut out = [0u8; 3];
        assert!(decode_lower_into("000fff", &mut out));
        assert_eq!(out, [0, 15, 255]);
        for bad in ["000fFf", "000fgf", "000f", "0-0fff", "\u{0}00fff"] {
            assert!(!decode_lower_into(bad, &mut out), "{bad}");
        }
        // Every byte value that is no digit is refused, wherever it stands.
        for b in 0..=255u8 {
            let text = String::from_utf8_lossy(&[b'0', b]).into_owned();
            let mut one = [0u8; 1];
            let digit = b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
            if text.len() == 2 {
                assert_eq!(decode_lower_into(&text, &mut one), digit, "{b}");
            }
        }
    }

    #[test]
    fn sha256_of_nothing() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
