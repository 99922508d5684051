//! docs/security.md names, in each row, the test that shows its defence: every name must be
//! a test function of this repository, and no row may be left open.

use std::fs;

use crate::support::repo_root;

/// Every `fn NAME` in the Rust files under `dir`.
fn functions(dir: &std::path::Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            functions(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&path).expect("read");
            out.extend(text.split("fn ").skip(1).filter_map(|rest| {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                (!name.is_empty()).then_some(name)
            }));
        }
    }
}

#[test]
fn every_test_docs_security_names_exists_and_no_row_is_open() {
    let doc = fs::read_to_string(repo_root().join("docs/security.md")).expect("security.md");
    let mut known = Vec::new();
    for dir in ["src", "tests"] {
        functions(&repo_root().join(dir), &mut known);
    }
    // The threat table: from its header to the first line that is not a row.
    let rows: Vec<&str> = doc
        .lines()
        .skip_while(|l| !l.starts_with("| attacker |"))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .collect();
    assert!(rows.len() > 15, "the threat table");
    for row in rows {
        assert!(!row.starts_with("| **open**"), "an open row: {row}");
        let test_cell = row.rsplit('|').nth(1).expect("a test column");
        let named: Vec<&str> = test_cell
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|n| {
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
            .filter(|n| n.contains('_'))
            .collect();
        assert!(!named.is_empty(), "a row without a test: {row}");
        for name in named {
            assert!(known.iter().any(|k| k == name), "no test {name}: {row}");
        }
    }
}
