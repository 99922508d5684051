//! Markdown → HTML (pulldown-cmark): tables with header cells and captions, footnotes,
//! heading anchors, and every link with its byte offset so broken ones can be reported
//! at their line in the source file.
//!
//! Raw HTML, links and images that run a script (`javascript:`, `vbscript:`, `data:` links)
//! and heading attributes other than `#id` and `.class` (`{onfocus=…}`) are refused unless
//! the site allows them (`[markdown] unsafe = true`, as Hugo's `unsafe`): a page edited by
//! many hands must not be able to put a script on a guarantor's site by accident or on
//! purpose.

use std::collections::HashSet;

use pulldown_cmark::{html, Alignment, CowStr, Event, Options, Parser, Tag, TagEnd};

/// A link or image target as written in the source, with its byte offset in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLink {
    pub target: String,
    pub offset: usize,
}

/// The HTML of one Markdown text and what the link check needs from it.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub html: String,
    pub links: Vec<SourceLink>,
    /// `id`s of the headings, for `#fragment` checks.
    pub anchors: Vec<String>,
    /// Byte offsets of `**` left as text: emphasis that CommonMark could not close, as
    /// happens when `**` sits between Japanese punctuation and a letter (`**です。**次`).
    pub unclosed_emphasis: Vec<usize>,
    /// Byte offsets of raw HTML, script links and heading attributes other than `#id` and
    /// `.class`, when the site does not allow them; they are left out of `html`.
    pub unsafe_markup: Vec<usize>,
}

/// How a site's Markdown is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings<'a> {
    /// Prefixed to root-relative links: `/` or `/denshi/`.
    pub base_path: &'a str,
    /// Raw HTML and script links pass through (`[markdown] unsafe = true`).
    pub unsafe_html: bool,
}

impl<'a> Settings<'a> {
    /// The defaults: raw HTML and script links refused.
    pub fn new(base_path: &'a str) -> Settings<'a> {
        Settings {
            base_path,
            unsafe_html: false,
        }
    }
}

/// The message for [`Rendered::unsafe_markup`].
pub const UNSAFE_MARKUP: &str = "Markdown の中の HTML、スクリプトを実行するリンク（javascript: など）、見出しの {#id .class} 以外の属性は、安全のため使えません。Markdown だけで書き直すか、信頼できる人だけが編集するサイトなら hosho.toml の [markdown] に unsafe = true と書いてください";

/// A URL's scheme as a browser reads it: blanks and control characters dropped, lower case.
fn scheme(target: &str) -> Option<String> {
    target.contains(':').then(|| {
        target
            .chars()
            .filter(|c| !c.is_whitespace() && !c.is_control())
            .take_while(|c| *c != ':')
            .flat_map(char::to_lowercase)
            .collect()
    })
}

/// Whether a link target would run a script when followed (`data:` opens a document of
/// the link's own making).
fn runs_script(target: &str) -> bool {
    scheme(target).is_some_and(|s| matches!(s.as_str(), "javascript" | "vbscript" | "data"))
}

/// Whether an image source would run a script (`data:` images are pictures, and allowed).
fn image_runs_script(target: &str) -> bool {
    scheme(target).is_some_and(|s| matches!(s.as_str(), "javascript" | "vbscript"))
}

/// Leaves out raw HTML and script links; their offsets are returned.
fn remove_unsafe(events: Vec<(Event<'_>, usize)>) -> (Vec<(Event<'_>, usize)>, Vec<usize>) {
    let mut kept = Vec::with_capacity(events.len());
    let mut found = Vec::new();
    let mut open_links = Vec::new();
    for (event, offset) in events {
        match &event {
            Event::Start(Tag::HtmlBlock) => {
                found.push(offset);
                continue;
            }
            Event::End(TagEnd::HtmlBlock) | Event::Html(_) => continue,
            Event::InlineHtml(_) => {
                found.push(offset);
                continue;
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                let unsafe_link = runs_script(dest_url);
                open_links.push(unsafe_link);
                if unsafe_link {
                    found.push(offset);
                    continue;
                }
            }
            Event::End(TagEnd::Link) if open_links.pop() == Some(true) => continue,
            Event::Start(Tag::Image { dest_url, .. }) if image_runs_script(dest_url) => {
                found.push(offset);
            }
            Event::Start(Tag::Heading { attrs, .. }) if !attrs.is_empty() => {
                found.push(offset);
            }
            _ => {}
        }
        kept.push((without_unsafe_parts(event), offset));
    }
    (kept, found)
}

/// `event` with what [`remove_unsafe`] reported taken out: an image's script source and a
/// heading's attributes (its `#id` and `.class` stay).
fn without_unsafe_parts(event: Event<'_>) -> Event<'_> {
    match event {
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) if image_runs_script(&dest_url) => Event::Start(Tag::Image {
            link_type,
            dest_url: CowStr::Borrowed(""),
            title,
            id,
        }),
        Event::Start(Tag::Heading {
            level, id, classes, ..
        }) => Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs: Vec::new(),
        }),
        other => other,
    }
}

/// The message for [`Rendered::unclosed_emphasis`].
pub const UNCLOSED_EMPHASIS: &str = "強調の ** が閉じられず、そのまま表示されます。句読点やかっこは ** の外に出してください（例: **かかりません**。／「**電子交付**」を）。記号として表示するなら \\*\\* と書きます";

/// Text that starts a paragraph right after a table and makes it the table's caption.
const CAPTION_PREFIXES: [&str; 2] = ["表：", "表:"];

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_HEADING_ATTRIBUTES
}

/// Renders `text`. Root-relative links (`/qa/`) are prefixed with the base path.
pub fn render(text: &str, settings: Settings<'_>) -> Rendered {
    let mut unclosed_emphasis = Vec::new();
    let mut in_code_block = false;
    let mut reported_in_block = false;
    let mut events: Vec<(Event<'_>, usize)> = Vec::new();
    for (event, range) in Parser::new_ext(text, options()).into_offset_iter() {
        match &event {
            Event::Start(Tag::CodeBlock(_)) => in_code_block = true,
            Event::End(TagEnd::CodeBlock) => in_code_block = false,
            // An unmatched delimiter run comes back as text, one `*` per event.
            // Reported once per paragraph: one mistake leaves both of its runs as text.
            Event::Text(_)
                if !in_code_block
                    && !reported_in_block
                    && text[range.start..].starts_with("**") =>
            {
                unclosed_emphasis.push(range.start);
                reported_in_block = true;
            }
            Event::End(
                TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::TableCell | TagEnd::Item,
            ) => {
                reported_in_block = false;
            }
            _ => {}
        }
        events.push((event, range.start));
    }
    let unsafe_markup = if settings.unsafe_html {
        Vec::new()
    } else {
        let (kept, found) = remove_unsafe(events);
        events = kept;
        found
    };
    let anchors = assign_heading_ids(&mut events);
    let links = rewrite_links(&mut events, settings.base_path);
    let events = accessible_tables(events);
    let mut out = String::with_capacity(text.len() * 3 / 2);
    html::push_html(&mut out, events.into_iter());
    Rendered {
        html: out,
        links,
        anchors,
        unclosed_emphasis,
        unsafe_markup,
    }
}

/// A fragment id from heading text: letters and digits kept (any script), the rest `-`.
pub fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    let mut dash = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if dash && !slug.is_empty() {
                slug.push('-');
            }
            dash = false;
            slug.push(c);
        } else {
            dash = true;
        }
    }
    if slug.is_empty() {
        slug.push_str("section");
    }
    slug
}

fn assign_heading_ids(events: &mut [(Event<'_>, usize)]) -> Vec<String> {
    let mut used = HashSet::new();
    let mut anchors = Vec::new();
    let mut i = 0;
    while i < events.len() {
        if let Event::Start(Tag::Heading { id, .. }) = &events[i].0 {
            let wanted = match id {
                Some(id) => id.to_string(),
                None => {
                    let mut text = String::new();
                    for (event, _) in &events[i + 1..] {
                        match event {
                            Event::End(TagEnd::Heading(_)) => break,
                            Event::Text(t) | Event::Code(t) => text.push_str(t),
                            _ => {}
                        }
                    }
                    slugify(&text)
                }
            };
            let mut unique = wanted.clone();
            let mut n = 1;
            while !used.insert(unique.clone()) {
                unique = format!("{wanted}-{n}");
                n += 1;
            }
            if let Event::Start(Tag::Heading { id, .. }) = &mut events[i].0 {
                *id = Some(CowStr::from(unique.clone()));
            }
            anchors.push(unique);
        }
        i += 1;
    }
    anchors
}

fn rewrite_links(events: &mut [(Event<'_>, usize)], base_path: &str) -> Vec<SourceLink> {
    let mut links = Vec::new();
    for (event, offset) in events.iter_mut() {
        let dest = match event {
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => dest_url,
            _ => continue,
        };
        links.push(SourceLink {
            target: dest.to_string(),
            offset: *offset,
        });
        if base_path != "/" && dest.starts_with('/') && !dest.starts_with("//") {
            *dest = CowStr::from(format!("{base_path}{}", &dest[1..]));
        }
    }
    links
}

fn align_class(alignment: Alignment) -> &'static str {
    match alignment {
        Alignment::None => "",
        Alignment::Left => " class=\"align-left\"",
        Alignment::Center => " class=\"align-center\"",
        Alignment::Right => " class=\"align-right\"",
    }
}

/// Tables with `<th scope="col">` headers, a scrolling wrapper and an optional caption
/// taken from a following paragraph that starts with `表：`.
fn accessible_tables(events: Vec<(Event<'_>, usize)>) -> Vec<Event<'_>> {
    let mut events: Vec<Event<'_>> = events.into_iter().map(|(e, _)| e).collect();
    let mut out = Vec::with_capacity(events.len());
    let mut alignments: Vec<Alignment> = Vec::new();
    let mut in_head = false;
    let mut cell = 0;
    let mut i = 0;
    while i < events.len() {
        let event = std::mem::replace(&mut events[i], Event::SoftBreak);
        i += 1;
        match event {
            Event::Start(Tag::Table(aligns)) => {
                alignments = aligns;
                let table_end = events[i..]
                    .iter()
                    .position(|e| matches!(e, Event::End(TagEnd::Table)))
                    .map_or(events.len(), |p| i + p);
                let caption = caption_after(&mut events, table_end + 1);
                out.push(Event::Html(
                    format!("<div class=\"table-scroll\"><table>{caption}").into(),
                ));
            }
            Event::Start(Tag::TableHead) => {
                in_head = true;
                cell = 0;
                out.push(Event::Html("<thead><tr>".into()));
            }
            Event::End(TagEnd::TableHead) => {
                in_head = false;
                out.push(Event::Html("</tr></thead><tbody>".into()));
            }
            Event::Start(Tag::TableRow) => {
                cell = 0;
                out.push(Event::Html("<tr>".into()));
            }
            Event::End(TagEnd::TableRow) => out.push(Event::Html("</tr>".into())),
            Event::Start(Tag::TableCell) => {
                let class = align_class(alignments.get(cell).copied().unwrap_or(Alignment::None));
                let open = if in_head {
                    format!("<th scope=\"col\"{class}>")
                } else {
                    format!("<td{class}>")
                };
                out.push(Event::Html(open.into()));
            }
            Event::End(TagEnd::TableCell) => {
                out.push(Event::Html(if in_head { "</th>" } else { "</td>" }.into()));
                cell += 1;
            }
            Event::End(TagEnd::Table) => out.push(Event::Html("</tbody></table></div>\n".into())),
            // Events taken into a caption are left as empty text.
            Event::Text(t) if t.is_empty() => {}
            other => out.push(other),
        }
    }
    out
}

/// When the paragraph at `at` starts with `表：`, renders it as a `<caption>` and blanks
/// its events; otherwise returns an empty string and leaves the events alone.
fn caption_after(events: &mut [Event<'_>], at: usize) -> String {
    if !matches!(events.get(at), Some(Event::Start(Tag::Paragraph))) {
        return String::new();
    }
    let Some(Event::Text(first)) = events.get(at + 1) else {
        return String::new();
    };
    let Some(rest) = CAPTION_PREFIXES.iter().find_map(|p| first.strip_prefix(p)) else {
        return String::new();
    };
    let rest = rest.trim_start().to_owned();
    let Some(len) = events[at..]
        .iter()
        .position(|e| matches!(e, Event::End(TagEnd::Paragraph)))
    else {
        return String::new();
    };
    let end = at + len;
    let mut inner = vec![Event::Text(rest.into())];
    for event in &mut events[at + 2..end] {
        inner.push(std::mem::replace(event, Event::Text("".into())));
    }
    for index in [at, at + 1, end] {
        events[index] = Event::Text("".into());
    }
    let mut caption = String::from("<caption>");
    html::push_html(&mut caption, inner.into_iter());
    caption.push_str("</caption>");
    caption
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_get_unique_ids() {
        let r = render(
            "## 電子保証とは\n\n## 電子保証とは\n\n### Step 1: 申込 {#apply}\n",
            Settings::new("/"),
        );
        assert_eq!(r.anchors, ["電子保証とは", "電子保証とは-1", "apply"]);
        assert!(
            r.html.contains("<h2 id=\"電子保証とは\">電子保証とは</h2>"),
            "{}",
            r.html
        );
    }

    #[test]
    fn slugs_keep_letters_of_any_script() {
        assert_eq!(slugify("Q&A よくある質問"), "q-a-よくある質問");
        assert_eq!(slugify("  STEP 1 ・ 申込  "), "step-1-申込");
        assert_eq!(slugify("！？"), "section");
    }

    #[test]
    fn tables_have_header_cells_and_captions() {
        let text =
            "| 区分 | 発注者名 |\n|:--|--:|\n| 県 | 熊本県 |\n\n表：導入発注者\n\nあとがき\n";
        let r = render(text, Settings::new("/"));
        assert!(r.html.contains("<table><caption>導入発注者</caption><thead><tr><th scope=\"col\" class=\"align-left\">区分</th>"), "{}", r.html);
        assert!(
            r.html.contains("<td class=\"align-right\">熊本県</td>"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("表："), "{}", r.html);
        assert!(r.html.contains("<p>あとがき</p>"), "{}", r.html);
    }

    #[test]
    fn a_paragraph_that_is_no_caption_stays() {
        let r = render("| a |\n|---|\n| b |\n\n次の段落\n", Settings::new("/"));
        assert!(r.html.contains("<table><thead>"), "{}", r.html);
        assert!(r.html.contains("<p>次の段落</p>"), "{}", r.html);
    }

    #[test]
    fn links_are_collected_and_prefixed() {
        let text = "前文\n\n[Q&A](/qa/) と [外部](https://example.jp/) ![図](/assets/a.png)\n";
        let r = render(text, Settings::new("/denshi/"));
        let targets: Vec<&str> = r.links.iter().map(|l| l.target.as_str()).collect();
        assert_eq!(targets, ["/qa/", "https://example.jp/", "/assets/a.png"]);
        assert_eq!(r.links[0].offset, text.find("[Q&A]").expect("present"));
        assert!(r.html.contains("href=\"/denshi/qa/\""), "{}", r.html);
        assert!(
            r.html.contains("src=\"/denshi/assets/a.png\""),
            "{}",
            r.html
        );
    }

    #[test]
    fn unclosed_emphasis_is_found_but_escapes_and_code_are_not() {
        let text = "**かかりません。**保証料のみ\n\n**かかりません**。\n\n\\*\\*記号\\*\\*\n\n```\na ** b\n```\n";
        let r = render(text, Settings::new("/"));
        assert_eq!(r.unclosed_emphasis, [0]);
        assert!(
            r.html.contains("<strong>かかりません</strong>。"),
            "{}",
            r.html
        );
    }

    #[test]
    fn raw_html_and_script_links_are_refused_unless_allowed() {
        let text = "<div class=\"x\">\n箱\n</div>\n\n本文<b>太字</b>と[押す](javascript:alert(1))と[次](/qa/)\n";
        let r = render(text, Settings::new("/"));
        assert_eq!(
            r.unsafe_markup,
            [
                0,
                text.find("<b>").expect("b"),
                text.find("</b>").expect("/b"),
                text.find("[押す]").expect("link")
            ]
        );
        for absent in ["<div", "<b>", "javascript"] {
            assert!(!r.html.contains(absent), "{absent}: {}", r.html);
        }
        assert!(
            r.html.contains("押す") && r.html.contains("<a href=\"/qa/\">次</a>"),
            "{}",
            r.html
        );
        let allowed = render(
            text,
            Settings {
                base_path: "/",
                unsafe_html: true,
            },
        );
        assert!(allowed.unsafe_markup.is_empty());
        assert!(
            allowed.html.contains("<div class=\"x\">")
                && allowed.html.contains("javascript:alert(1)")
        );
        assert!(runs_script(" JavaScript:void(0)") && runs_script("java\tscript:x"));
        assert!(!runs_script("/javascript/") && !runs_script("https://example.jp/"));
    }

    #[test]
    fn heading_attributes_keep_only_id_and_class_unless_allowed() {
        let text = "## 補足 {tabindex=0 autofocus onfocus=alert(document.domain)}\n\n### 手順 {#steps .note}\n";
        let r = render(text, Settings::new("/"));
        assert_eq!(r.unsafe_markup, [0]);
        for absent in ["onfocus", "autofocus", "tabindex", "alert"] {
            assert!(!r.html.contains(absent), "{absent}: {}", r.html);
        }
        assert!(
            r.html.contains("<h3 id=\"steps\" class=\"note\">手順</h3>"),
            "{}",
            r.html
        );
        let allowed = render(
            text,
            Settings {
                base_path: "/",
                unsafe_html: true,
            },
        );
        assert!(allowed.unsafe_markup.is_empty() && allowed.html.contains("onfocus="));
    }

    #[test]
    fn script_images_autolinks_and_data_links_are_refused() {
        let text = "![図](javascript:alert(1)) ![点](data:image/png;base64,iVBORw0KGgo=)\n\n<javascript:alert(2)> [開く](data:text/html,<script>x</script>) [t](/qa/ \"\\\" onmouseover=\\\"x\")\n";
        let r = render(text, Settings::new("/"));
        assert_eq!(
            r.unsafe_markup,
            [
                0,
                text.find("<javascript").expect("auto"),
                text.find("[開く]").expect("data")
            ]
        );
        for absent in [
            "href=\"javascript",
            "src=\"javascript",
            "<script",
            "data:text",
        ] {
            assert!(!r.html.contains(absent), "{absent}: {}", r.html);
        }
        assert!(r.html.contains("src=\"data:image/png"), "{}", r.html);
        assert!(
            !r.html.contains("\" onmouseover"),
            "a title stays inside its quotes: {}",
            r.html
        );
    }

    #[test]
    fn footnotes_render() {
        let r = render("本文[^1]\n\n[^1]: 注記\n", Settings::new("/"));
        assert!(r.html.contains("footnote-definition"), "{}", r.html);
    }
}
