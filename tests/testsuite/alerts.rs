//! The Prometheus alert rules of `dist/prometheus/` (docs/deploy.md, "Alerts"): valid for
//! `promtool check rules`, and each one raised by the series that should raise it and by no
//! healthy replica (`promtool test rules`). Every metric they name is one the daemon serves.

use std::process::Command;

use crate::support::repo_root;

fn promtool(args: &[&str]) -> std::process::Output {
    Command::new("promtool")
        .args(args)
        .current_dir(repo_root().join("dist/prometheus"))
        .output()
        .expect("promtool (Debian's prometheus; scripts/test installs it)")
}

#[test]
fn the_alert_rules_pass_promtool_and_their_own_tests() {
    let check = promtool(&["check", "rules", "hosho-alerts.yml"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let test = promtool(&["test", "rules", "hosho-alerts.test.yml"]);
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stdout)
    );
}

#[test]
fn the_rules_name_only_metrics_docs_http_lists() {
    let rules = std::fs::read_to_string(repo_root().join("dist/prometheus/hosho-alerts.yml"))
        .expect("rules");
    let http = std::fs::read_to_string(repo_root().join("docs/http.md")).expect("http.md");
    let named: std::collections::BTreeSet<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("hosho_"))
        .collect();
    assert!(named.len() >= 6, "{named:?}");
    for metric in named {
        let base = metric.trim_end_matches("_total");
        assert!(
            http.contains(&format!("`{base}")),
            "{metric} is not in docs/http.md"
        );
    }
}
