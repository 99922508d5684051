//! Typesetting with typst as a library (typst-as-lib): one engine per template, built once
//! and reused for every document; fonts embedded in the binary, never looked up on the
//! system; explicit document identifiers and no dates in the PDF metadata, so the same
//! input gives the same bytes on every machine.

use std::path::{Path, PathBuf};

use typst::foundations::{Array, Dict, Smart, Value};
use typst::syntax::DiagSpanKind;
use typst_as_lib::{TypstAsLibError, TypstEngine, TypstTemplateMainFile};
use typst_layout::PagedDocument;

use crate::certificates::certificate::Certificate;
use crate::certificates::documents::{self, Extras, DOCUMENTS};
use crate::common::diagnostics::{line_column, Diagnostic, Diagnostics};
use crate::common::hex::{sha256_hex, to_hex};
use crate::common::root::TEMPLATES_DIR;

/// A font compiled into the binary, compressed with Brotli by build.rs.
struct EmbeddedFont {
    /// Its file in assets/fonts/.
    file: &'static str,
    /// Its size unpacked, in bytes.
    size: usize,
    /// The SHA-256 of the file, as build.rs computed it before compressing it.
    sha256: [u8; 32],
    compressed: &'static [u8],
}

/// IPAex明朝 and IPAexゴシック (IPA Font License v1.0, see assets/fonts/): 13.9 MB of
/// TrueType in 8.0 MB of the binary, unpacked (both at once) in about 0.1 s by a build that
/// typesets a document. A build that reuses every document, and the daemon, never unpack them.
const EMBEDDED_FONTS: [EmbeddedFont; 2] = include!(concat!(env!("OUT_DIR"), "/embedded_fonts.rs"));

/// The embedded fonts, IPAex明朝 and IPAexゴシック, unpacked on first use.
pub fn fonts() -> [&'static [u8]; 2] {
    static FONTS: std::sync::LazyLock<[Vec<u8>; 2]> = std::sync::LazyLock::new(|| {
        let [mincho, gothic] = &EMBEDDED_FONTS;
        std::thread::scope(|scope| {
            let gothic = scope.spawn(|| unpack_font(gothic));
            let mincho = unpack_font(mincho);
            let gothic = gothic
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            [mincho, gothic]
        })
    });
    [&FONTS[0], &FONTS[1]]
}

/// A font build.rs compressed: bytes compiled into this binary, never read from outside.
fn unpack_font(font: &EmbeddedFont) -> Vec<u8> {
    use std::io::Read as _;
    let mut bytes = Vec::with_capacity(font.size);
    brotli_decompressor::Decompressor::new(font.compressed, 1 << 16)
        .read_to_end(&mut bytes)
        .unwrap_or_else(|e| panic!("build.rs compressed {} for this binary: {e}", font.file));
    bytes
}

/// The built-in typst templates; a site's `templates/NAME.typ` replaces them.
const BUILT_IN: [(&str, &str); 3] = [
    (
        "certificate.typ",
        include_str!("../../templates/certificate.typ"),
    ),
    ("notice.typ", include_str!("../../templates/notice.typ")),
    (
        "statement.typ",
        include_str!("../../templates/statement.typ"),
    ),
];

/// One template, compiled any number of times with different inputs.
pub struct Template {
    name: String,
    /// Where the template came from (for messages).
    file: PathBuf,
    source: String,
    /// Made on the first document typeset: a build with nothing to typeset neither parses
    /// the fonts nor keeps them in memory.
    engine: std::sync::OnceLock<TypstEngine<TypstTemplateMainFile>>,
}

/// The text of the template `name`: the site's own, or the built-in one.
pub fn template_source(root: &Path, name: &str) -> Result<(PathBuf, String), Diagnostic> {
    let rel = PathBuf::from(TEMPLATES_DIR).join(name);
    let path = root.join(&rel);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Diagnostic::file(&rel, format!("読めません: {e}")))?;
        return Ok((rel, text));
    }
    BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| {
            (
                PathBuf::from(format!("(組み込み) {TEMPLATES_DIR}/{name}")),
                (*text).to_owned(),
            )
        })
        .ok_or_else(|| Diagnostic::file(rel, format!("テンプレート {name} がありません")))
}

impl Template {
    pub fn load(root: &Path, name: &str) -> Result<Template, Diagnostic> {
        let (file, source) = template_source(root, name)?;
        Ok(Self::from_source(name, file, source))
    }

    pub fn from_source(name: &str, file: PathBuf, source: String) -> Template {
        Template {
            name: name.to_owned(),
            file,
            source,
            engine: std::sync::OnceLock::new(),
        }
    }

    fn engine(&self) -> &TypstEngine<TypstTemplateMainFile> {
        self.engine.get_or_init(|| {
            TypstEngine::builder()
                .main_file(self.source.clone())
                .fonts(fonts())
                .build()
        })
    }

    /// The template's text (part of the cache key of what it typesets).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Typesets one document. `ident` must identify it stably (e.g. `certificate-2070004426`).
    pub fn pdf(&self, inputs: &serde_json::Value, ident: &str) -> Result<Vec<u8>, Diagnostic> {
        let Value::Dict(dict) = to_typst(inputs) else {
            return Err(Diagnostic::file(
                &self.file,
                "入力は対応表（辞書）でなければなりません",
            ));
        };
        let warned = self
            .engine()
            .compile_with_input::<Dict, PagedDocument>(dict);
        let document = warned.output.map_err(|e| self.diagnostic(e))?;
        let options = typst_pdf::PdfOptions {
            ident: Smart::Custom(format!("hosho-{ident}")),
            creator: Smart::Custom(Some("hosho".to_owned())),
            timestamp: None,
            ..typst_pdf::PdfOptions::default()
        };
        typst_pdf::pdf(&document, &options)
            .map_err(|errors| self.diagnostic(TypstAsLibError::TypstSource(errors)))
    }

    /// A typst error at the template's `line:column` when it has a span there.
    fn diagnostic(&self, error: TypstAsLibError) -> Diagnostic {
        let TypstAsLibError::TypstSource(errors) = &error else {
            return Diagnostic::file(
                &self.file,
                format!("{} を組版できません: {error}", self.name),
            );
        };
        let Some(first) = errors.first() else {
            return Diagnostic::file(&self.file, format!("{} を組版できません", self.name));
        };
        let mut message = format!("組版できません: {}", first.message);
        for hint in &first.hints {
            message.push_str(&format!("（ヒント: {}）", hint.v));
        }
        let position = match first.span.get() {
            DiagSpanKind::Number { id, num, sub_range } => {
                typst::syntax::Source::new(id, self.source.clone()).range(num, sub_range)
            }
            DiagSpanKind::Range { range, .. } => Some(range),
            DiagSpanKind::Detached => None,
        };
        match position {
            Some(range) => {
                let (line, column) = line_column(&self.source, range.start);
                Diagnostic::new(&self.file, line, column, message)
            }
            None => Diagnostic::file(&self.file, message),
        }
    }
}

/// The templates of every document in [`DOCUMENTS`], loaded once per build.
pub struct Typesetter {
    /// In [`DOCUMENTS`] order.
    templates: Vec<Template>,
    /// SHA-256 over every template and the fonts: part of every cache key. Computed when
    /// first asked for (the fonts are 14 MB), so a build without certificates skips it.
    fingerprint: std::sync::OnceLock<String>,
}

impl Typesetter {
    /// Loads each document's template (the site's own or the built-in one); every template
    /// that cannot be read is reported.
    pub fn load(root: &Path) -> Result<Typesetter, Diagnostics> {
        let mut d = Diagnostics::default();
        let mut templates = Vec::with_capacity(DOCUMENTS.len());
        for document in &DOCUMENTS {
            match Template::load(root, document.template) {
                Ok(t) => templates.push(t),
                Err(e) => d.push(e),
            }
        }
        if !d.is_empty() {
            return Err(d);
        }
        Ok(Typesetter {
            fingerprint: std::sync::OnceLock::new(),
            templates,
        })
    }

    /// SHA-256 over every template and the fonts, without unpacking the fonts: their
    /// hashes come from build.rs.
    pub fn fingerprint(&self) -> &str {
        self.fingerprint.get_or_init(|| {
            let mut all = Vec::new();
            for template in &self.templates {
                all.extend_from_slice(sha256_hex(template.source().as_bytes()).as_bytes());
            }
            for font in &EMBEDDED_FONTS {
                all.extend_from_slice(to_hex(&font.sha256).as_bytes());
            }
            sha256_hex(&all)
        })
    }

    /// Typesets every document of one certificate from its inputs (in [`DOCUMENTS`] order),
    /// the PDF identifiers made from `number`.
    pub fn typeset(
        &self,
        inputs: &[serde_json::Value],
        number: &str,
    ) -> Result<Vec<Vec<u8>>, Diagnostic> {
        DOCUMENTS
            .iter()
            .zip(&self.templates)
            .zip(inputs)
            .map(|((document, template), inputs)| {
                let inputs = document
                    .template_inputs(inputs)
                    .map_err(|e| Diagnostic::file(&template.file, e))?;
                template.pdf(&inputs, &format!("{}-{number}", document.id))
            })
            .collect()
    }

    /// Typesets every document of `certificate` with a dummy key and writes nothing, so
    /// `hosho check` finds template errors.
    pub fn try_one(&self, verify_url: &str, certificate: &Certificate) -> Result<(), Diagnostics> {
        let record = &certificate.record;
        let extras = Extras {
            verify_url,
            key: "0000000000",
            submission: certificate.submission.as_ref(),
        };
        let inputs = documents::all_inputs(record, extras)
            .map_err(|e| Diagnostic::file(&certificate.source, format!("入力を作れません: {e}")))?;
        let mut d = Diagnostics::default();
        for ((document, template), inputs) in DOCUMENTS.iter().zip(&self.templates).zip(&inputs) {
            let result = document
                .template_inputs(inputs)
                .map_err(|e| Diagnostic::file(&certificate.source, e))
                .and_then(|inputs| template.pdf(&inputs, &format!("{}-check", document.id)));
            if let Err(e) = result {
                d.push(e);
            }
        }
        if d.is_empty() {
            Ok(())
        } else {
            Err(d)
        }
    }
}

/// JSON → typst values (`null` → `none`): what templates receive as `sys.inputs`.
pub fn to_typst(value: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match value {
        J::Null => Value::None,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => n
            .as_i64()
            .map_or_else(|| Value::Float(n.as_f64().unwrap_or_default()), Value::Int),
        J::String(s) => Value::Str(s.as_str().into()),
        J::Array(items) => Value::Array(items.iter().map(to_typst).collect::<Array>()),
        J::Object(map) => Value::Dict(
            map.iter()
                .map(|(k, v)| (k.as_str().into(), to_typst(v)))
                .collect::<Dict>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_fonts_unpack_to_the_files_of_assets() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/fonts");
        for (unpacked, font) in fonts().iter().zip(&EMBEDDED_FONTS) {
            let file = std::fs::read(dir.join(font.file)).expect("the font file");
            assert!(*unpacked == file.as_slice(), "{}", font.file);
            assert_eq!(unpacked.len(), font.size, "{}", font.file);
            assert_eq!(
                sha256_hex(unpacked),
                to_hex(&font.sha256),
                "the fingerprint's hash of {}",
                font.file
            );
        }
        let embedded: usize = EMBEDDED_FONTS.iter().map(|f| f.compressed.len()).sum();
        assert!(embedded < 8_010_000, "compressed: {embedded} bytes");
    }

    #[test]
    fn template_errors_point_into_the_template() {
        let t = Template::from_source(
            "broken.typ",
            PathBuf::from("templates/broken.typ"),
            "#let d = sys.inputs\n\nHello #d.nosuchfield\n".to_owned(),
        );
        let err = t
            .pdf(&serde_json::json!({"a": 1}), "t")
            .expect_err("missing field");
        assert_eq!((err.line, err.column), (3, 10), "{err}");
        assert!(
            err.to_string().starts_with(
                "templates/broken.typ:3:10: 組版できません: dictionary does not contain key"
            ),
            "{err}"
        );
    }

    #[test]
    fn same_input_same_bytes() {
        let t = Template::from_source(
            "t.typ",
            PathBuf::from("t.typ"),
            "#set document(date: none)\n#set text(font: \"IPAexMincho\")\n保証 #sys.inputs.n"
                .to_owned(),
        );
        let a = t
            .pdf(&serde_json::json!({"n": "2070004426"}), "x")
            .expect("pdf");
        let b = t
            .pdf(&serde_json::json!({"n": "2070004426"}), "x")
            .expect("pdf");
        assert!(a.starts_with(b"%PDF-"));
        assert_eq!(a, b);
    }
}
