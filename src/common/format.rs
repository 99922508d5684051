//! How numbers are shown on pages and certificates, and how typed text is folded.

use unicode_normalization::UnicodeNormalization;

/// `100000000` → `100,000,000`.
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `100000000` → `100,000,000円`.
pub fn yen(n: u64) -> String {
    format!("{}円", group_digits(n))
}

/// 業務委託への適用: ○ or ×.
pub fn maru(applies: bool) -> &'static str {
    if applies {
        "○"
    } else {
        "×"
    }
}

/// Escapes the five characters that matter in HTML and XML text and attributes. (tera's
/// own escaping also turns `/` into `&#x2F;`, which makes every URL unreadable.)
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Separators people type inside a key or number: spaces, and hyphens or dashes of any
/// kind (including the long-vowel mark an IME produces for a hyphen).
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | 'ー' | 'ｰ'
        )
}

/// What a person typed, folded: NFKC (全角 → 半角), separators dropped, upper case.
/// 認証キー and 保証契約番号 are both read through this.
pub fn fold_typed(input: &str) -> String {
    input
        .nfkc()
        .filter(|c| !is_separator(*c))
        .flat_map(char::to_uppercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yen_amounts() {
        assert_eq!(yen(100_000_000), "100,000,000円");
        assert_eq!(yen(40_000_000), "40,000,000円");
        assert_eq!(yen(3_000_000), "3,000,000円");
        assert_eq!(yen(200), "200円");
        assert_eq!(yen(1000), "1,000円");
        assert_eq!(yen(0), "0円");
        assert_eq!(group_digits(999_999), "999,999");
        assert_eq!(group_digits(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn markup_escaping_keeps_slashes() {
        assert_eq!(
            escape_markup("<a href=\"/qa/\">Q&A 'x'</a>"),
            "&lt;a href=&quot;/qa/&quot;&gt;Q&amp;A &#39;x&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn maru_batsu() {
        assert_eq!(maru(true), "○");
        assert_eq!(maru(false), "×");
    }
}
