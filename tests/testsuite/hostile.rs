//! Hostile Markdown, Q&A answers and front matter built into a real site: what could run a
//! script is refused at its line, and what is let through is escaped. Every output file is
//! scanned for event-handler attributes, `javascript:` URLs and script elements.

use std::fs;

use crate::support::{snapshot, SiteDir};

/// Event-handler attributes, attribute values that are `javascript:` URLs, and script
/// elements that are not one of the site's own files, as a browser parses the page. Files
/// that are not HTML must hold no `<script` and no `javascript:` at all.
fn scripts_in(path: &str, text: &str) -> Vec<String> {
    if !path.ends_with(".html") {
        let lower = text.to_lowercase();
        return ["<script", "javascript:"]
            .into_iter()
            .filter(|s| lower.contains(s))
            .map(str::to_owned)
            .collect();
    }
    let doc = scraper::Html::parse_document(text);
    let mut found = Vec::new();
    for element in doc.tree.values().filter_map(|n| n.as_element()) {
        for (name, value) in element.attrs() {
            let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
            if name.to_lowercase().starts_with("on") {
                found.push(format!("<{} {name}=…>", element.name()));
            }
            if compact.to_lowercase().starts_with("javascript:") {
                found.push(format!("<{} {name}=\"{value}\">", element.name()));
            }
        }
        let own = element
            .attr("src")
            .is_some_and(|s| s.starts_with("/denshi/assets/js/"));
        if element.name() == "script" && !own {
            found.push(format!("<script src={:?}>", element.attr("src")));
        }
    }
    found
}

#[test]
fn markup_that_could_run_a_script_is_refused_at_its_line() {
    let site = SiteDir::fixture("small");
    let page = "---\ntitle: 補足\n---\n前文\n\n## 補足 {tabindex=0 autofocus onfocus=alert(document.domain)}\n\n<javascript:alert(1)>\n\n![図](javascript:alert(2))\n\n[開く](data:text/html,x)\n";
    fs::write(site.root.join("content/extra.md"), page).expect("write");
    let qa = fs::read_to_string(site.root.join("data/qa.yaml")).expect("qa");
    let qa = qa + "- q: 見出しは？\n  a: |\n    ### 答え {onclick=alert(3)}\n";
    fs::write(site.root.join("data/qa.yaml"), qa).expect("write");
    let run = site.hosho(&["build"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for at in [
        "content/extra.md:6:1:",
        "content/extra.md:8:1:",
        "content/extra.md:10:1:",
        "content/extra.md:12:1:",
        "data/qa.yaml:8:",
    ] {
        assert!(run.stderr.contains(at), "{at} missing:\n{}", run.stderr);
    }
    assert!(!site.out().exists(), "nothing was written");
}

#[test]
fn what_is_let_through_is_escaped_in_every_output_file() {
    let site = SiteDir::fixture("small");
    let evil = "\\\"><script>alert(1)</script><img src=x onerror=alert(2)>";
    let page = format!(
        "---\ntitle: \"題{evil}\"\ndescription: \"説明{evil}\"\n---\n本文 &lt;script&gt; と [リンク](/qa/ \"題\\\" onmouseover=\\\"alert(3)\") と ![alt\" onerror=\"x](/assets/a.png)\n\n| 見出し | 値 |\n|---|---|\n| `<script>` | a\\<b onclick=x> |\n\n注記[^1]\n\n[^1]: 脚注 `onload=alert(4)`\n\n## 見出し {{#ok .note}}\n"
    );
    fs::write(site.root.join("content/extra.md"), page).expect("write");
    fs::create_dir_all(site.root.join("assets")).expect("assets");
    fs::write(site.root.join("assets/a.png"), b"\x89PNG").expect("png");
    let qa = fs::read_to_string(site.root.join("data/qa.yaml")).expect("qa");
    let qa = qa + "- q: \"問<script>alert(5)</script>\"\n  a: \"答え <b onclick=x>\"\n";
    fs::write(site.root.join("data/qa.yaml"), qa).expect("write");
    let run = site.hosho(&["build"]);
    // The raw <b> in the answer is refused; without it the rest builds.
    assert_eq!(run.code, 1, "{}", run.stderr);
    let qa = fs::read_to_string(site.root.join("data/qa.yaml")).expect("qa");
    fs::write(
        site.root.join("data/qa.yaml"),
        qa.replace("<b onclick=x>", "&lt;b&gt;"),
    )
    .expect("write");
    let run = site.hosho(&["build"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let files = snapshot(&site.out());
    assert!(files.len() > 10);
    for (path, bytes) in files {
        let text = String::from_utf8_lossy(&bytes);
        let found = scripts_in(&path, &text);
        assert!(found.is_empty(), "site-out/{path}: {found:?}");
    }
    let html = site.read("extra/index.html");
    assert!(html.contains("&lt;script&gt;"), "{html}");
}

#[test]
fn the_scan_itself_finds_what_it_looks_for() {
    let html = |text: &str| scripts_in("a.html", text).len();
    assert_eq!(html("<h2 onfocus=\"x\">t</h2>"), 1);
    assert_eq!(html("<a href=\" JavaScript:x\">t</a>"), 1);
    assert_eq!(html("<script>x</script>"), 1);
    assert_eq!(
        html("<script src=\"/denshi/assets/js/table-filter.js\" defer></script>"),
        0
    );
    assert_eq!(
        html("<p>only text onfocus=x javascript:</p><a title=\"&quot; onclick=x\">t</a>"),
        0
    );
    assert_eq!(
        scripts_in("feed.xml", "<content><script></content>").len(),
        1
    );
}
