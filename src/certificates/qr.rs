//! The QR code on the 認証キー notice: it opens the verification page with the 保証契約番号
//! filled in (never the key, which the orderer types from the paper). Drawn as one SVG path,
//! which typst embeds in the PDF as vector shapes, so it prints sharp at any size.

use qrcodegen::{QrCode, QrCodeEcc};

/// Modules of light border around the code, as the QR specification asks.
const QUIET_ZONE: i32 = 4;

/// The verification page for `number`: `VERIFY_URL?number=NUMBER`.
pub fn verify_link(verify_url: &str, number: &str) -> String {
    let separator = if verify_url.contains('?') { '&' } else { '?' };
    format!("{verify_url}{separator}number={number}")
}

/// `text` as a QR code (error correction M), as an SVG document drawn with one path. `None`
/// when the text is too long for any QR version.
pub fn svg(text: &str) -> Option<String> {
    let code = QrCode::encode_text(text, QrCodeEcc::Medium).ok()?;
    let size = code.size();
    let side = size + 2 * QUIET_ZONE;
    let mut path = String::with_capacity(usize::try_from(size * size).unwrap_or(0) * 4);
    for y in 0..size {
        for x in 0..size {
            if code.get_module(x, y) {
                let (px, py) = (x + QUIET_ZONE, y + QUIET_ZONE);
                path.push_str(&format!("M{px} {py}h1v1h-1z"));
            }
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\">\
<rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_carries_the_number_only() {
        assert_eq!(
            verify_link("https://example.jp/verify/", "2070004426"),
            "https://example.jp/verify/?number=2070004426"
        );
        assert_eq!(
            verify_link("https://example.jp/check?lang=ja", "2070004426"),
            "https://example.jp/check?lang=ja&number=2070004426"
        );
    }

    #[test]
    fn the_code_is_a_square_svg_with_a_quiet_zone() {
        let svg = svg("https://example.jp/verify/?number=2070004426").expect("fits");
        // 44 characters: version 4 at level M (at most 62 bytes), 33 modules, 8 of border.
        assert!(svg.contains("viewBox=\"0 0 41 41\""), "{svg}");
        // The finder pattern's top-left module sits just inside the quiet zone.
        assert!(svg.contains("M4 4h1v1h-1z"), "{svg}");
        assert!(!svg.contains("M3 "), "nothing is drawn in the quiet zone");
        assert_eq!(
            svg,
            self::svg("https://example.jp/verify/?number=2070004426").expect("fits")
        );
    }
}
