//! The shape of src/, checked: which file imports which (`crate::…`, `super::…`, `self::…`
//! and a child module's name), with no import cycle between files, and test code left out.
//! docs/architecture.md draws the folders and what each may import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// Every module of src/ and the file that defines it (`daemon/mod.rs` is `daemon`).
fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut found = BTreeMap::new();
    for entry in walkdir::WalkDir::new(src).sort_by_file_name() {
        let entry = entry.expect("walk src/");
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(src).expect("under src/");
        let mut parts: Module = rel
            .with_extension("")
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
            parts.pop();
        }
        let text = std::fs::read_to_string(path).expect("read");
        found.insert(parts, text);
    }
    // A file of tests alone (`#[cfg(test)] mod tests;`) is test code, like a `mod tests`.
    let test_files: Vec<Module> = found
        .keys()
        .filter(|m| {
            let (Some((name, parent)), true) = (m.split_last(), !m.is_empty()) else {
                return false;
            };
            found.get(parent).is_some_and(|text| {
                let declared = text.find(&format!("mod {name};"));
                declared.is_some_and(|at| text[..at].trim_end().ends_with("#[cfg(test)]"))
            })
        })
        .cloned()
        .collect();
    for module in test_files {
        found.remove(&module);
    }
    found
}

/// The length of the braced group `text` starts with (`{…}`, nested braces included), or
/// of all of `text` when it is not closed.
fn braced(text: &str) -> usize {
    let mut depth = 0;
    text.char_indices()
        .find(|&(_, c)| {
            depth += i32::from(c == '{') - i32::from(c == '}');
            depth == 0
        })
        .map_or(text.len(), |(i, _)| i + 1)
}

/// `text` without comments and without its test code: each item under `#[cfg(test)]` (a
/// `mod tests { … }`, a `use …;`, a helper function) is left out whole.
fn code(text: &str) -> String {
    // A comment starts a line or follows a space (`redis://` in a string is no comment).
    let uncommented = |l: &'_ str| -> String {
        let at = l
            .match_indices("//")
            .find(|&(i, _)| l[..i].chars().next_back().is_none_or(char::is_whitespace));
        l[..at.map_or(l.len(), |(i, _)| i)].to_owned()
    };
    let text: String = text.lines().map(uncommented).collect::<Vec<_>>().join("\n");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let (brace, semicolon) = (item.find('{'), item.find(';'));
        // A field of a struct or of a struct literal: that line alone.
        let next_line = item.lines().nth(1).unwrap_or_default();
        let field = next_line.trim_end().ends_with(',');
        let end = match (brace, semicolon) {
            _ if field => item
                .find(next_line)
                .map_or(item.len(), |i| i + next_line.len()),
            (Some(b), Some(s)) if s < b => s + 1,
            (Some(b), _) => b + braced(&item[b..]),
            (None, Some(s)) => s + 1,
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The paths of a `use` tree body: `a::{b, c::{d}}` → `a::b`, `a::c::d`.
fn expand(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    let (head, rest) = match tree.find('{') {
        Some(open) => (
            &tree[..open],
            Some(&tree[open + 1..tree.rfind('}').unwrap_or(tree.len())]),
        ),
        None => (tree, None),
    };
    let prefix: Vec<String> = head
        .split("::")
        .map(|s| s.split(" as ").next().unwrap_or(s).trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let Some(inner) = rest else {
        return vec![prefix];
    };
    let (mut items, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    items
        .iter()
        .filter(|i| !i.trim().is_empty())
        .flat_map(|i| expand(i))
        .map(|tail| prefix.iter().cloned().chain(tail).collect())
        .collect()
}

/// The paths that start at `head::` in `code`, each with its `use` tree expanded.
fn paths_after(code: &str, head: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let pattern = format!("{head}::");
    let mut from = 0;
    while let Some(at) = code[from..].find(&pattern) {
        let start = from + at;
        from = start + pattern.len();
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[from..];
        let mut end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        if rest[end..].starts_with('{') {
            end += braced(&rest[end..]);
        }
        out.extend(expand(&rest[..end]));
    }
    out
}

/// Which modules each module imports.
fn imports(modules: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let resolve = |path: &[String]| {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|m| modules.contains_key(m))
    };
    let mut graph = BTreeMap::new();
    for (module, text) in modules {
        let code = code(text);
        let mut heads: Vec<(String, Module)> = vec![
            ("crate".to_owned(), Vec::new()),
            ("self".to_owned(), module.clone()),
            (
                "super".to_owned(),
                module[..module.len().saturating_sub(1)].to_vec(),
            ),
        ];
        for line in code.lines() {
            let line = line.trim_start();
            let line = line
                .strip_prefix("pub(crate) ")
                .or_else(|| line.strip_prefix("pub "))
                .unwrap_or(line);
            if let Some(child) = line
                .strip_prefix("mod ")
                .and_then(|l| l.trim_end().strip_suffix(';'))
            {
                let mut at = module.clone();
                at.push(child.trim().to_owned());
                heads.push((child.trim().to_owned(), at));
            }
        }
        let mut targets = BTreeSet::new();
        for (head, base) in &heads {
            for path in paths_after(&code, head) {
                let mut full = base.clone();
                for segment in path {
                    if segment == "super" {
                        full.pop();
                    } else {
                        full.push(segment);
                    }
                }
                if let Some(target) = resolve(&full).filter(|t| t != module) {
                    targets.insert(target);
                }
            }
        }
        graph.insert(module.clone(), targets);
    }
    graph
}

/// The import cycles of `graph`, each as its modules (strongly connected components).
fn cycles(graph: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    let reach = |from: &Module| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(m) = stack.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&Module, BTreeSet<Module>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for (m, from_m) in &reaches {
        if !from_m.contains(*m) {
            continue;
        }
        let component: Vec<String> = from_m
            .iter()
            .filter(|other| reaches.get(other).is_some_and(|r| r.contains(*m)))
            .map(name)
            .collect();
        found.insert(component);
    }
    found.into_iter().collect()
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = imports(&modules(&src));
    assert!(graph.len() > 60, "{} modules", graph.len());
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "import cycles between files of src/: {found:#?}"
    );
}

/// The folders of src/ and what each may import besides itself, lowest first: an arrow
/// upward (common/ importing site/, say) fails. Top-level files (build, staging, cli,
/// scaffold, fuzzing, lib, main) and cmd/ are the wiring above them all.
const LAYERS: [(&str, &[&str]); 6] = [
    ("common", &[]),
    ("trust", &["common"]),
    ("site", &["common"]),
    ("certificates", &["common", "trust", "staging"]),
    ("daemon", &["common", "trust", "site", "preview::live"]),
    ("preview", &["common", "site", "build", "staging"]),
];

/// Whether `module` is `allowed` or inside it (`preview::live` allows `preview::live`).
fn within(module: &Module, allowed: &str) -> bool {
    let allowed: Vec<&str> = allowed.split("::").collect();
    module.len() >= allowed.len() && module.iter().zip(&allowed).all(|(m, a)| m == a)
}

#[test]
fn each_folder_imports_only_the_folders_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = imports(&modules(&src));
    let mut upward = Vec::new();
    for (from, targets) in &graph {
        let Some((folder, allowed)) = LAYERS.iter().find(|(f, _)| within(from, f)) else {
            continue;
        };
        for to in targets {
            let ok = within(to, folder) || allowed.iter().any(|a| within(to, a));
            if !ok {
                upward.push(format!("{} → {}", name(from), name(to)));
            }
        }
    }
    assert!(upward.is_empty(), "imports against the layers: {upward:#?}");
}

#[test]
fn the_daemon_never_reaches_private_inputs() {
    // The daemon serves the internet: nothing it imports, directly or through another
    // module, reads certificates, keys' secrets or the build (docs/architecture.md).
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = imports(&modules(&src));
    let mut seen = BTreeSet::new();
    let mut stack: Vec<Module> = graph
        .keys()
        .filter(|m| within(m, "daemon"))
        .cloned()
        .collect();
    while let Some(m) = stack.pop() {
        for next in graph.get(&m).into_iter().flatten() {
            if seen.insert(next.clone()) {
                stack.push(next.clone());
            }
        }
    }
    let private: Vec<String> = seen
        .iter()
        .filter(|m| {
            [
                "certificates",
                "build",
                "preview::rebuild",
                "preview::watch",
            ]
            .iter()
            .any(|p| within(m, p))
        })
        .map(name)
        .collect();
    assert!(private.is_empty(), "the daemon reaches {private:?}");
    assert!(
        seen.iter().any(|m| within(m, "trust")),
        "the scan sees the daemon's imports"
    );
}

/// The functions of `code` longer than `max` lines: (name, lines).
fn long_functions(code: &str, max: usize) -> Vec<(String, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut long = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_start();
        let after = ["pub(crate) ", "pub(super) ", "pub ", "const ", "async "]
            .iter()
            .fold(line, |l, p| l.strip_prefix(p).unwrap_or(l));
        let Some(name) = after
            .strip_prefix("fn ")
            .filter(|_| !line.trim_end().ends_with(';'))
        else {
            i += 1;
            continue;
        };
        let (mut depth, mut opened, mut end) = (0i32, false, i);
        for (j, l) in lines.iter().enumerate().skip(i) {
            depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
            opened |= l.contains('{');
            end = j;
            if opened && depth <= 0 {
                break;
            }
        }
        let length = end - i + 1;
        if length > max {
            let name = name.split(['(', '<']).next().unwrap_or(name);
            long.push((name.to_owned(), length));
        }
        i = end + 1;
    }
    long
}

#[test]
fn no_function_outside_tests_is_over_60_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut long = Vec::new();
    for (module, text) in modules(&src) {
        for (function, lines) in long_functions(&code(text.as_str()), 60) {
            long.push(format!("{}::{function}: {lines} lines", name(&module)));
        }
    }
    assert!(long.is_empty(), "functions over 60 lines: {long:#?}");
    let sample = "fn short() {\n}\nfn long() {\n".to_owned() + &"    x();\n".repeat(61) + "}\n";
    assert_eq!(long_functions(&sample, 60), [("long".to_owned(), 63)]);
}

#[test]
fn the_readme_names_every_file_of_src() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let start = readme.find("## Source layout").expect("a layout section");
    let end = readme[start..]
        .find("\n## ")
        .map_or(readme.len(), |i| start + i + 1);
    let table = &readme[start..end];
    let missing: Vec<String> = walkdir::WalkDir::new(root.join("src"))
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .filter_map(|e| {
            let rel = e
                .path()
                .strip_prefix(root.join("src"))
                .ok()?
                .to_string_lossy()
                .into_owned();
            (!table.contains(&format!("`{rel}`"))).then_some(rel)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "README's source layout leaves out {missing:?}"
    );
}

#[test]
fn the_import_scan_sees_every_form_of_path() {
    let text = |s: &str| s.to_owned();
    let modules: BTreeMap<Module, String> = [
        (vec![], text("mod a;\nmod b;\n")),
        (
            vec![text("a")],
            text("mod x;\nuse crate::b::{c, d::{e}};\nfn f() { x::g(); }\n"),
        ),
        (
            vec![text("a"), text("x")],
            text("use super::super::b::c;\n#[cfg(test)]\nuse crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b::d;\n}\nfn after() { crate::b::d::f(); }\n"),
        ),
        (
            vec![text("b")],
            text("mod c;\nmod d;\nfn f() { crate::a::x::g(); }\n// crate::a\n"),
        ),
        (vec![text("b"), text("c")], text("")),
        (vec![text("b"), text("d")], text("use self::e;\n")),
    ]
    .into_iter()
    .collect();
    let graph = imports(&modules);
    let names = |m: &Module| graph[m].iter().map(name).collect::<Vec<_>>();
    assert_eq!(names(&vec![text("a")]), ["a::x", "b::c", "b::d"]);
    assert_eq!(names(&vec![text("a"), text("x")]), ["b::c", "b::d"]);
    assert_eq!(names(&vec![text("b")]), ["a::x"]);
    assert_eq!(cycles(&graph), Vec::<Vec<String>>::new());
    let mut looped = modules.clone();
    looped.insert(vec![text("b"), text("c")], text("use crate::a::x;\n"));
    assert_eq!(
        cycles(&imports(&looped)),
        [vec![text("a::x"), text("b::c")]]
    );
}
