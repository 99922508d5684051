//! The fuzzers' corpus replayed as a regression test: every input under `fuzz/corpus/<target>/`
//! (the seeds, what `scripts/fuzz` found worth keeping, and every crash once fixed) goes
//! through the same `hosho::fuzzing` function its target calls, without libFuzzer.

use std::fs;

use crate::support::repo_root;

/// A fuzz target's function: the fuzzer's bytes in, a panic when a property fails.
type Target = fn(&[u8]);

/// The targets of `fuzz/Cargo.toml`, each with the function it fuzzes.
const TARGETS: [(&str, Target); 6] = [
    ("request_bodies", hosho::fuzzing::request_bodies),
    ("typed_input", hosho::fuzzing::typed_input),
    ("client_headers", hosho::fuzzing::client_headers),
    ("manifest", hosho::fuzzing::manifest),
    ("yaml_data", hosho::fuzzing::yaml_data),
    ("markdown", hosho::fuzzing::markdown),
];

#[test]
fn every_corpus_input_passes_its_target_again() {
    let fuzz = repo_root().join("fuzz");
    let manifest = fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (target, run) in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "{target} is not a target of fuzz/Cargo.toml"
        );
        let dir = fuzz.join("corpus").join(target);
        let mut inputs: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("entry").path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{target} has no corpus");
        for input in inputs {
            let data = fs::read(&input).expect("read");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{target} fails on {}", input.display());
        }
    }
    let targets = manifest.matches("[[bin]]").count();
    assert_eq!(
        targets,
        TARGETS.len(),
        "every target of fuzz/Cargo.toml is replayed"
    );
}
