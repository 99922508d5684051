//! The daemon's own log lines: text with the time and no colour codes when standard error is
//! no terminal, or one JSON object a line with `--log-format json`.

use std::time::Duration;

use crate::daemon::{Daemon, Root};

/// The log lines of a daemon on `root` with `args`, from its start to its stop (SIGTERM).
fn log_of(root: &Root, args: &[&str]) -> Vec<String> {
    let d = Daemon::start(root, args);
    d.signal(15);
    let (code, log) = d.wait(Duration::from_secs(30));
    assert_eq!(code, 0, "{log}");
    log.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn json_logs_are_one_object_a_line() {
    let root = Root::new();
    let lines = log_of(&root, &["--log-format", "json"]);
    // The warning of a loopback listener without a proxy, and the two lines of the stop.
    assert!(lines.len() >= 3, "{lines:?}");
    for line in &lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for field in ["timestamp", "level", "target", "message"] {
            assert!(object.get(field).is_some(), "{field} in {line}");
        }
    }
    let stop = lines
        .iter()
        .any(|l| l.contains("\"message\":\"処理中の確認がすべて終わりました\""));
    assert!(stop, "{lines:?}");
}

#[test]
fn text_logs_carry_the_time_and_no_colour_codes_off_a_terminal() {
    let root = Root::new();
    let lines = log_of(&root, &[]);
    assert!(lines.len() >= 3, "{lines:?}");
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "a colour code: {line:?}");
        let time = line.split_whitespace().next().unwrap_or_default();
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok(),
            "no time first: {line}"
        );
    }
}
