//! The checks docs/ gives for doing by hand, run exactly as written there: the Python that
//! verifies a manifest's signatures and recomputes its Merkle tree, and the Python that
//! verifies a 確認記録.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{repo_root, SiteDir};

/// The first ```python block after `heading` in `doc` (relative to the repository).
fn python_block(doc: &str, heading: &str) -> String {
    let text = fs::read_to_string(repo_root().join(doc)).expect("read the doc");
    let after = &text[text.find(heading).expect("the heading")..];
    let start = after.find("```python\n").expect("a python block") + "```python\n".len();
    let end = after[start..].find("\n```").expect("the block's end");
    after[start..start + end].to_owned()
}

/// The first Python that has `cryptography`: the one on the PATH, else Debian's (which
/// scripts/test gives `python3-cryptography` when neither has it).
fn python_with_cryptography() -> &'static str {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import cryptography"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("a python3 with cryptography (scripts/test installs python3-cryptography)")
}

/// Runs `code` with python3 in `dir` with `args`: (success, stdout, stderr).
fn python(code: &str, dir: &Path, args: &[&str]) -> (bool, String, String) {
    let mut child = Command::new(python_with_cryptography())
        .arg("-")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test installs it with python3-cryptography)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(code.as_bytes())
        .expect("write the script");
    let out = child.wait_with_output().expect("python3 ran");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_manifest_recipe_verifies_a_build_and_refuses_a_forged_tree_head() {
    let site = SiteDir::demo();
    site.build();
    let recipe = python_block("docs/manifest.md", "### Checking a manifest by hand");
    let (ok, out, err) = python(&recipe, &site.root, &[]);
    assert!(ok, "{out}{err}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(site.root.join("vault/manifest.json")).expect("read"))
            .expect("json");
    let root = manifest["root"].as_str().expect("root");
    let size = manifest["size"].as_u64().expect("size");
    assert!(
        out.contains(&format!("{size} entries, root {root}")),
        "{out}"
    );
    // A tree-head signature that is not the key's: the recipe refuses it.
    let sig_path = site.root.join("vault/manifest.json.sig");
    let mut sig: serde_json::Value =
        serde_json::from_slice(&fs::read(&sig_path).expect("read")).expect("json");
    let head = sig["tree_head_signature"]
        .as_str()
        .expect("a tree head signature");
    let flipped = format!(
        "{}{}",
        if head.starts_with('0') { "1" } else { "0" },
        &head[1..]
    );
    sig["tree_head_signature"] = serde_json::Value::from(flipped);
    fs::write(&sig_path, serde_json::to_vec_pretty(&sig).expect("json")).expect("write");
    let (ok, out, err) = python(&recipe, &site.root, &[]);
    assert!(!ok, "a forged tree head passed: {out}");
    assert!(err.contains("InvalidSignature"), "{err}");
}

#[test]
fn the_receipt_recipe_verifies_a_receipt_and_refuses_each_altered_field() {
    use crate::daemon::{api, Daemon, Root};
    let root = Root::new();
    let d = Daemon::start(&root, &[]);
    let reply = api(&d, "2070004427", &root.key_of("2070004427"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let receipt = reply.json()["receipt"].clone();
    let recipe = python_block("docs/receipt.md", "## Verifying a receipt");
    let check = |value: &serde_json::Value| {
        let file = root.path.join("receipt.json");
        fs::write(&file, serde_json::to_vec_pretty(value).expect("json")).expect("write");
        python(
            &recipe,
            &root.path,
            &["receipt.json", "keys/signing.pub", "keys/service.pub"],
        )
    };
    let (ok, out, err) = check(&receipt);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("valid: 2070004427"), "{out}");
    // The certificate page's receipt too, as the browser saves it.
    let page = crate::daemon::form(&d, "2070004426", "332E1E7K9Q").text();
    let at = page
        .find("data:application/json;base64,")
        .expect("a data URL")
        + 29;
    let data = &page[at..at + page[at..].find('"').expect("end")];
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data).expect("base64");
    let from_page: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let (ok, out, err) = check(&from_page);
    assert!(ok && out.starts_with("valid: 2070004426"), "{out}{err}");
    let text = receipt["certificate"]
        .as_str()
        .expect("certificate")
        .to_owned();
    let change = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut r = receipt.clone();
        f(&mut r);
        r
    };
    let altered: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "an amount",
            change(&|r| r["certificate"] = text.replacen("20000000", "90000000", 1).into()),
            "the certificate was altered",
        ),
        (
            "a date",
            change(&|r| r["certificate"] = text.replacen("2023-02-28", "2024-02-28", 1).into()),
            "the certificate was altered",
        ),
        (
            "the status",
            change(&|r| r["leaf"]["status"] = "cancelled".into()),
            "the record's status is not the leaf's",
        ),
        (
            "a proof hash",
            change(&|r| r["proof"]["path"][0] = "00".repeat(32).into()),
            "the proof does not lead to the signed root",
        ),
        (
            "the seq",
            change(&|r| r["tree_head"]["seq"] = 1.into()),
            "the guarantor's signature over the tree head does not verify",
        ),
        (
            "the time",
            change(&|r| r["checked_at"] = (r["checked_at"].as_u64().unwrap_or(0) + 1).into()),
            "the service's signature",
        ),
        (
            "the guarantor's name",
            change(&|r| r["guarantor"] = "別の保証株式会社".into()),
            "the guarantor's name was altered",
        ),
    ];
    for (what, value, reason) in altered {
        let (ok, out, err) = check(&value);
        assert!(!ok, "{what} passed: {out}");
        assert!(
            err.contains("AssertionError") && err.contains(reason),
            "{what}: {err}"
        );
    }
}
