//! The Debian package of `scripts/package`, installed on this machine as an operator installs
//! it (docs/deploy.md): `dpkg -i`, the command, its man pages and completions, the units
//! checked by `systemd-analyze verify`, the hosho user and `/var/lib/hosho` with their modes,
//! the alert rules checked by promtool, a vault shipped by the packaged ship script and served
//! by the packaged unit's own command line (from `/etc/default/hosho`, as the hosho user), then
//! removal (the user and the state kept) and purge (both gone).
//!
//! The package is made from the binary this suite runs (`scripts/package --binary`), so the
//! test command never builds hosho twice; `scripts/package` alone builds the `dist` profile.
//! It needs root (CI and this machine run the tests as root) and changes the machine: it
//! refuses to run where a hosho package is installed already.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Output};

use crate::daemon::{api, Daemon, Root};
use crate::support::repo_root;

/// Runs `program` with `args`; its output, which must say it succeeded.
fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Purges the packages when the test ends, however it ends, so that the machine is left as
/// it was found.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "hosho-dbgsym", "hosho"])
            .output();
        let _ = fs::remove_dir_all("/etc/hosho");
    }
}

/// `KEY=VALUE` lines of an environment file, values unquoted, as systemd reads them.
fn environment_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// The `ExecStart=` of a unit file, its continuation lines joined, expanded as systemd does:
/// `${X}` one word, `$X` split at whitespace.
fn exec_start(unit: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    let line = joined
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart=");
    let mut words = Vec::new();
    for word in line.split_whitespace() {
        if let Some(name) = word.strip_prefix('$').filter(|n| !n.starts_with('{')) {
            let value = env.get(name).unwrap_or_else(|| panic!("${name} unset"));
            words.extend(value.split_whitespace().map(str::to_owned));
            continue;
        }
        let mut expanded = word.to_owned();
        for (name, value) in env {
            expanded = expanded.replace(&format!("${{{name}}}"), value);
        }
        assert!(!expanded.contains("${"), "{word}: unset");
        words.push(expanded);
    }
    words
}

/// The uid and gid of `user`, from the password database.
fn ids_of(user: &str) -> Option<(u32, u32)> {
    let out = Command::new("getent")
        .args(["passwd", user])
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
}

fn assert_dir(path: &str, mode: u32, uid: u32) {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(meta.is_dir(), "{path}");
    assert_eq!(meta.permissions().mode() & 0o7777, mode, "{path}: mode");
    assert_eq!(meta.uid(), uid, "{path}: owner");
}

/// Builds both packages from this suite's binary; the paths of hosho's and hosho-dbgsym's.
fn package() -> (String, String) {
    run(
        &repo_root().join("scripts/package").display().to_string(),
        &["--binary", env!("CARGO_BIN_EXE_hosho")],
    );
    let version = env!("CARGO_PKG_VERSION");
    let dir = repo_root().join("target/debian");
    let main = dir.join(format!("hosho_{version}_amd64.deb"));
    let dbgsym = dir.join(format!("hosho-dbgsym_{version}_amd64.deb"));
    assert!(main.exists() && dbgsym.exists(), "{}", dir.display());
    let (main, dbgsym) = (main.display().to_string(), dbgsym.display().to_string());
    // The debug info fits the binary of its own version only.
    let depends = stdout(&run("dpkg-deb", &["-f", &dbgsym, "Depends"]));
    assert_eq!(depends.trim(), format!("hosho (= {version})"), "{dbgsym}");
    (main, dbgsym)
}

#[test]
fn the_debian_package_installs_serves_and_purges() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the package test installs a package: run the test command as root"
    );
    let already = Command::new("dpkg").args(["-s", "hosho"]).output();
    assert!(
        already.map(|o| !o.status.success()).unwrap_or(true),
        "a hosho package is installed on this machine already: the test would replace it"
    );
    let (main, dbgsym) = package();
    let _installed = Installed;
    run("dpkg", &["-i", &main, &dbgsym]);

    installed_files_work();
    let (uid, _) = ids_of("hosho").expect("the hosho user");
    user_and_directories(uid);
    let root = Root::new();
    ship_and_serve(&root);
    remove_then_purge();
}

/// The command, its man pages, completions, units and alert rules, where the package put them.
fn installed_files_work() {
    let version = stdout(&run("/usr/bin/hosho", &["--version"]));
    assert!(
        version.starts_with(&format!("hosho {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(version.contains("manifest: writes format"), "{version}");
    for page in ["hosho", "hosho-serve", "hosho-vault-check", "hosho-build"] {
        let path = stdout(&run("man", &["-w", page]));
        assert_eq!(path.trim(), format!("/usr/share/man/man1/{page}.1.gz"));
    }
    run(
        "bash",
        &["-n", "/usr/share/bash-completion/completions/hosho"],
    );
    for file in [
        "/usr/share/zsh/vendor-completions/_hosho",
        "/usr/share/fish/vendor_completions.d/hosho.fish",
        "/usr/lib/debug/usr/bin/hosho.debug",
        "/usr/share/doc/hosho/examples/nginx/hosho",
        "/usr/share/doc/hosho/examples/nginx/hosho-platform",
        "/usr/share/doc/hosho/deploy.md",
    ] {
        assert!(Path::new(file).is_file(), "{file}");
    }
    let completion = fs::read_to_string("/usr/share/bash-completion/completions/hosho")
        .expect("bash completion");
    assert!(completion.contains("--no-build"), "the flags of serve");
    // The units: hosho.service, an instance of hosho@.service, the rebuild timer.
    let units = "/lib/systemd/system";
    run(
        "systemd-analyze",
        &[
            "verify",
            &format!("{units}/hosho.service"),
            &format!("{units}/hosho@a.service"),
            &format!("{units}/hosho-rebuild.service"),
            &format!("{units}/hosho-rebuild.timer"),
        ],
    );
    let rules = "/usr/share/hosho/prometheus/hosho-alerts.yml";
    run("promtool", &["check", "rules", rules]);
    run(
        "promtool",
        &[
            "test",
            "rules",
            "/usr/share/hosho/prometheus/hosho-alerts.test.yml",
        ],
    );
}

/// The hosho system user, and its directories readable by it alone.
fn user_and_directories(uid: u32) {
    assert!(uid < 1000, "a system user: uid {uid}");
    let passwd = stdout(&run("getent", &["passwd", "hosho"]));
    assert!(
        passwd.trim().ends_with(":/var/lib/hosho:/usr/sbin/nologin"),
        "{passwd}"
    );
    for dir in [
        "/var/lib/hosho",
        "/var/lib/hosho/releases",
        "/var/lib/hosho/state",
    ] {
        assert_dir(dir, 0o700, uid);
    }
    assert_dir("/etc/hosho", 0o755, 0);
    assert!(Path::new("/etc/default/hosho").is_file());
    assert!(Path::new("/etc/logrotate.d/hosho").is_file());
}

/// The demo's vault shipped with /usr/lib/hosho/ship, then served by hosho.service's own
/// command line as the hosho user, and a number verified.
fn ship_and_serve(root: &Root) {
    fs::copy(root.path.join("keys/signing.pub"), "/etc/hosho/signing.pub").expect("key");
    fs::write("/etc/hosho/link.key", format!("{}\n", "5a".repeat(32))).expect("link.key");
    let (uid, gid) = ids_of("hosho").expect("hosho");
    std::os::unix::fs::chown("/etc/hosho/link.key", Some(uid), Some(gid)).expect("chown");
    fs::set_permissions("/etc/hosho/link.key", fs::Permissions::from_mode(0o400)).expect("chmod");
    let site = root.path.display().to_string();
    run(
        "/usr/lib/hosho/ship",
        &["--no-build", "--root", &site, "--to", "/var/lib/hosho"],
    );
    let link = fs::read_link("/var/lib/hosho/vault").expect("the vault link");
    assert!(link.starts_with("/var/lib/hosho/releases/"), "{link:?}");
    // A second ship of the same build is refused: a release is never written over.
    let again = Command::new("/usr/lib/hosho/ship")
        .args(["--no-build", "--root", &site, "--to", "/var/lib/hosho"])
        .output()
        .expect("ship");
    assert_eq!(again.status.code(), Some(1));

    let mut env = environment_file(&fs::read_to_string("/etc/default/hosho").expect("default"));
    env.insert("HOSHO_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("HOSHO_ADMIN_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("HOSHO_LOG_FORMAT".into(), "text".into());
    let unit = fs::read_to_string("/lib/systemd/system/hosho.service").expect("unit");
    let words = exec_start(&unit, &env);
    let mut command = Command::new(&words[0]);
    command.args(&words[1..]).uid(uid).gid(gid).current_dir("/");
    let daemon = Daemon::spawn(command);
    // The demo's first certificate, with the key its notice gives.
    let number = "2070004426";
    let reply = api(&daemon, number, "332E1E7K9Q");
    assert_eq!(reply.status, 200, "{} {words:?}", reply.text());
    assert_eq!(reply.json()["status"], "valid");
    assert_eq!(reply.json()["certificate"]["number"], number);
    drop(daemon);
    let state = fs::metadata("/var/lib/hosho/state/high-water").expect("the mark");
    assert_eq!(state.uid(), uid, "written by the hosho user");
}

/// `dpkg -r` keeps the user, /var/lib/hosho and the conffiles; `dpkg -P` removes them.
fn remove_then_purge() {
    run("dpkg", &["-r", "hosho-dbgsym", "hosho"]);
    assert!(!Path::new("/usr/bin/hosho").exists());
    assert!(ids_of("hosho").is_some(), "the user is kept on removal");
    assert!(Path::new("/var/lib/hosho/state/high-water").exists());
    assert!(
        Path::new("/etc/default/hosho").exists(),
        "conffiles are kept"
    );
    run("dpkg", &["-P", "hosho"]);
    assert!(ids_of("hosho").is_none(), "the user is gone after purge");
    assert!(!Path::new("/var/lib/hosho").exists());
    assert!(!Path::new("/etc/default/hosho").exists());
    assert!(
        Path::new("/etc/hosho/link.key").exists(),
        "the operator's keys are kept"
    );
}
