//! The live site is never broken or lost: failed builds change nothing, foreign directories
//! are refused, successful builds replace the output whole.

use std::fs;

use crate::support::{snapshot, SiteDir};

#[test]
fn a_failed_build_leaves_the_previous_output_byte_for_byte() {
    let site = SiteDir::fixture("small");
    site.build();
    let before = snapshot(&site.out());
    let data = site.root.join("data/adopters/kyushu.yaml");
    let text = fs::read_to_string(&data).expect("read");
    fs::write(&data, text.replace("category: 県", "category: 都")).expect("write");
    let run = site.hosho(&["build"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("data/adopters/kyushu.yaml:7:"),
        "{}",
        run.stderr
    );
    assert_eq!(
        snapshot(&site.out()),
        before,
        "site-out changed after a failed build"
    );
    let stray: Vec<String> = fs::read_dir(&site.root)
        .expect("read")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".site-out"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn a_successful_build_replaces_the_output_whole() {
    let site = SiteDir::fixture("small");
    site.build();
    fs::remove_file(site.root.join("content/guide.md")).expect("rm");
    let index = site.root.join("content/_index.md");
    let text = fs::read_to_string(&index).expect("read");
    fs::write(&index, text.replace("[案内](/guide/)", "案内")).expect("write");
    site.build();
    assert!(
        !site.out().join("guide").exists(),
        "removed pages disappear"
    );
    let marker = site.read(".hosho-output");
    assert!(marker.contains("\nindex.html\n"), "{marker}");
    assert!(!marker.contains("guide/"), "{marker}");
}

#[test]
fn the_old_site_is_removed_by_the_next_build_and_private_outputs_at_once() {
    let site = SiteDir::fixture("small");
    let leftovers = |site: &SiteDir| {
        let mut names: Vec<String> = fs::read_dir(&site.root)
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".old-") || n.contains(".new-"))
            .collect();
        names.sort();
        names
    };
    site.build();
    assert!(leftovers(&site).is_empty());
    site.build();
    let first = leftovers(&site);
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].starts_with(".site-out.old-"), "{first:?}");
    site.build();
    let second = leftovers(&site);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(first, second, "the previous one was removed");
}

#[test]
fn refuses_to_replace_a_directory_it_did_not_create() {
    let site = SiteDir::fixture("minimal");
    fs::create_dir_all(site.out()).expect("mkdir");
    fs::write(site.out().join("index.html"), "hand-made").expect("write");
    let run = site.hosho(&["build"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("hosho が作ったディレクトリではない"),
        "{}",
        run.stderr
    );
    assert_eq!(site.read("index.html"), "hand-made");
}

#[test]
fn refuses_to_drop_files_added_to_its_own_output() {
    let site = SiteDir::fixture("minimal");
    site.build();
    fs::create_dir_all(site.out().join(".git")).expect("mkdir");
    fs::write(site.out().join(".git/config"), "[core]").expect("write");
    let run = site.hosho(&["build"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("hosho が書いていないもの（.git/、.git/config）"),
        "{}",
        run.stderr
    );
    assert_eq!(site.read(".git/config"), "[core]");
}

#[test]
fn out_flag_builds_elsewhere() {
    let site = SiteDir::fixture("minimal");
    let elsewhere = site.root.join("public/www");
    let run = site.hosho(&["build", "--out", elsewhere.to_str().expect("utf-8 path")]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(elsewhere.join("index.html").is_file());
    assert!(!site.out().exists());
}
