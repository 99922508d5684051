//! `hosho vault check DIR`: every problem of a vault listed, each at its file, before it is
//! swapped in (docs/deploy.md); the demo's vault passes.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::daemon::Root;

/// `hosho vault check` on `root`'s vault: exit code, standard output, standard error lines.
fn vault_check(root: &Root, extra: &[&str]) -> (i32, String, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_hosho"))
        .args(["vault", "check", "--root"])
        .arg(&root.path)
        .args(extra)
        .arg(root.path.join("vault"))
        .output()
        .expect("hosho vault check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr.lines().map(str::to_owned).collect(),
    )
}

fn at(root: &Root, file: &str) -> String {
    root.path.join("vault").join(file).display().to_string()
}

fn seq_of(vault: &Path) -> u64 {
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(vault.join("manifest.json")).expect("manifest"))
            .expect("json");
    manifest["seq"].as_u64().expect("seq")
}

#[test]
fn the_demo_vault_passes() {
    let root = Root::new();
    let (code, out, err) = vault_check(
        &root,
        &["--state", &root.path.join("state").to_string_lossy()],
    );
    assert_eq!(code, 0, "{err:?}");
    let seq = seq_of(&root.path.join("vault"));
    assert!(
        out.contains(&format!("に問題はありません: マニフェスト #{seq}、12件")),
        "{out}"
    );
}

#[test]
fn every_problem_is_listed_at_its_file() {
    let root = Root::new();
    let vault = root.path.join("vault");
    fs::remove_file(vault.join("certificates/2070004426.pdf")).expect("rm");
    fs::write(vault.join("notes.txt"), "left behind").expect("write");
    let record = vault.join("records/2070004427.json");
    let text = fs::read_to_string(&record).expect("record");
    fs::write(&record, text.replacen("20000000", "90000000", 1)).expect("write");
    std::os::unix::fs::symlink("/etc/passwd", vault.join("records/2070009999.json"))
        .expect("symlink");
    let (code, _, err) = vault_check(&root, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        [
            format!("{}: ありません（またはファイルではないか、大きすぎます）", at(&root, "certificates/2070004426.pdf")),
            format!("{}: SHA-256 がマニフェストの record_sha256 と違います（改変されています）", at(&root, "records/2070004427.json")),
            format!("{}: マニフェストにない余分なファイルです（vault にはビルドが書いたものだけを置きます）", at(&root, "notes.txt")),
            format!("{}: シンボリックリンクは vault に置けません", at(&root, "records/2070009999.json")),
            format!("{} には問題が4件あります。確認サービスに渡さないでください", vault.display()),
        ]
    );
}

#[test]
fn a_bad_signature_is_refused_before_anything_else() {
    let root = Root::new();
    let sig = root.path.join("vault/manifest.json.sig");
    let text = fs::read_to_string(&sig).expect("sig");
    let at_hex = text.find("\"signature\": \"").expect("signature") + "\"signature\": \"".len();
    let flipped = if &text[at_hex..=at_hex] == "0" {
        "1"
    } else {
        "0"
    };
    fs::write(
        &sig,
        format!("{}{flipped}{}", &text[..at_hex], &text[at_hex + 1..]),
    )
    .expect("write");
    let (code, _, err) = vault_check(&root, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        [
            format!(
                "{}: 署名が正しくありません（マニフェストか署名が改変されています）",
                at(&root, "manifest.json")
            ),
            format!(
                "{} には問題が1件あります。確認サービスに渡さないでください",
                root.path.join("vault").display()
            ),
        ]
    );
}

#[test]
fn a_seq_below_the_hosts_high_water_mark_is_refused() {
    let root = Root::new();
    let seq = seq_of(&root.path.join("vault"));
    let state = root.path.join("state-host");
    fs::create_dir_all(&state).expect("mkdir");
    fs::write(
        state.join("high-water"),
        format!("{} {}\n", seq + 1, "ab".repeat(32)),
    )
    .expect("write");
    let (code, _, err) = vault_check(&root, &["--state", &state.to_string_lossy()]);
    assert_eq!(code, 1);
    assert_eq!(
        err[0],
        format!(
            "{}: マニフェスト #{seq} は、すでに提供した #{} より古いものです（巻き戻しは受け付けません）",
            at(&root, "manifest.json"),
            seq + 1
        )
    );
    // The same seq with other bytes is a replacement, refused too; with its own bytes, fine.
    fs::write(
        state.join("high-water"),
        format!("{seq} {}\n", "ab".repeat(32)),
    )
    .expect("write");
    let (code, _, err) = vault_check(&root, &["--state", &state.to_string_lossy()]);
    assert_eq!(code, 1);
    assert!(
        err[0].contains("同じ番号のマニフェストと中身が違います"),
        "{err:?}"
    );
    let sha = hosho::common::hex::sha256_hex(
        &fs::read(root.path.join("vault/manifest.json")).expect("read"),
    );
    fs::write(state.join("high-water"), format!("{seq} {sha}\n")).expect("write");
    assert_eq!(
        vault_check(&root, &["--state", &state.to_string_lossy()]).0,
        0
    );
}
