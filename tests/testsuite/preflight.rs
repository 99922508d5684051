//! `hosho serve --check`: each problem a start would meet, one line each and exit 1,
//! without serving and without writing; exit 0 on the demo.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use crate::daemon::{free_port, secret_file, Redis, Root};

/// `hosho serve --no-build --check` on `root` with `extra`: exit code, stdout, stderr lines.
pub(crate) fn check(root: &Root, extra: &[&str]) -> (i32, String, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_hosho"))
        .args(["serve", "--no-build", "--check", "--root"])
        .arg(&root.path)
        .args(extra)
        .output()
        .expect("hosho serve --check");
    let err = String::from_utf8_lossy(&out.stderr);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        err.lines().map(str::to_owned).collect(),
    )
}

#[test]
fn the_demo_passes_and_nothing_is_written() {
    let root = Root::new();
    let state = root.path.join("fresh-state");
    let (code, out, err) = check(&root, &["--state", &state.to_string_lossy()]);
    assert_eq!(code, 0, "{err:?}");
    assert!(out.starts_with("default: マニフェスト #"), "{out}");
    assert!(
        out.ends_with("問題はありません。この設定で確認サービスを起動できます\n"),
        "{out}"
    );
    assert!(!state.exists(), "--check wrote the state directory");
}

#[test]
fn a_bad_flag_is_one_line() {
    let root = Root::new();
    let (code, _, err) = check(&root, &["--limits", "http://127.0.0.1:1/"]);
    assert_eq!(code, 1);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with("--limits http://127.0.0.1:1/ を使えません: "),
        "{err:?}"
    );
}

#[test]
fn an_unreadable_key_is_one_line() {
    let root = Root::new();
    // A directory where the key file should be: there is nothing to read.
    let key = root.path.join("keys-dir.pub");
    fs::create_dir_all(&key).expect("mkdir");
    let (code, _, err) = check(&root, &["--public-key", &key.to_string_lossy()]);
    assert_eq!(code, 1);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with(&format!("公開鍵 {} を読めません", key.display())),
        "{err:?}"
    );
}

#[test]
fn an_unreachable_redis_is_one_line() {
    let root = Root::new();
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let (code, _, err) = check(&root, &["--limits", &url]);
    assert_eq!(code, 1);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with(&format!("--limits {url} の Redis に接続できません: ")),
        "{err:?}"
    );
}

#[test]
fn a_redis_password_comes_from_a_file_only_its_owner_reads_and_is_never_shown() {
    const PASSWORD: &str = "s3cret-for-redis";
    let root = Root::new();
    let redis = Redis::start_with(free_port(), Some(PASSWORD));
    let url = redis.url();
    let file = |name: &str, text: &str, mode: u32| {
        secret_file(&root.path, name, text, mode)
            .display()
            .to_string()
    };
    let right = file("right.password", &format!("{PASSWORD}\n"), 0o400);
    let (code, _, err) = check(&root, &["--limits", &url, "--limits-password-file", &right]);
    assert_eq!(code, 0, "{err:?}");

    let refused = |extra: &[&str], said: &str| {
        let mut args = vec!["--limits", url.as_str()];
        args.extend(extra);
        let (code, _, err) = check(&root, &args);
        assert_eq!(code, 1, "{extra:?}");
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].contains(said), "{said}: {err:?}");
        assert!(!err[0].contains(PASSWORD), "{err:?}");
        err[0].clone()
    };
    // No password, a wrong one: Redis refuses, and the wrong one is not printed either.
    refused(&[], "の Redis に接続できません: ");
    let wrong = file("wrong.password", "not-the-password\n", 0o400);
    let said = refused(
        &["--limits-password-file", &wrong],
        "の Redis に接続できません: ",
    );
    assert!(!said.contains("not-the-password"), "{said}");
    // A file others may read, an empty one.
    let shared = file("shared.password", &format!("{PASSWORD}\n"), 0o644);
    refused(
        &["--limits-password-file", &shared],
        "（644）です。chmod 400",
    );
    let empty = file("empty.password", "\n", 0o400);
    refused(
        &["--limits-password-file", &empty],
        ":1: パスワードが書かれていません",
    );
    // In the URL, where ps and the log would show it: refused, and shown as ***.
    let port = url.trim_start_matches("redis://127.0.0.1:");
    let in_url = format!("redis://:{PASSWORD}@127.0.0.1:{port}");
    let (code, _, err) = check(&root, &["--limits", &in_url]);
    assert_eq!((code, err.len()), (1, 1), "{err:?}");
    assert!(
        err[0].starts_with(&format!(
            "--limits redis://***@127.0.0.1:{port} を使えません: "
        )),
        "{err:?}"
    );
    assert!(err[0].contains("--limits-password-file"), "{err:?}");
    assert!(!err[0].contains(PASSWORD), "{err:?}");
}

/// A read-only file system mounted on `dir` (root), or the directory made read-only for
/// its owner (anyone else); `None` when neither works here.
fn read_only(dir: &Path) -> Option<impl Drop> {
    /// Unmounts what it mounted when dropped.
    struct Mounted(Option<std::path::PathBuf>);
    impl Drop for Mounted {
        fn drop(&mut self) {
            if let Some(dir) = &self.0 {
                let _ = Command::new("umount").arg(dir).status();
            }
        }
    }
    fs::create_dir_all(dir).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        return Some(Mounted(Some(dir.to_owned())));
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o500)).ok()?;
    let probe = tempfile::NamedTempFile::new_in(dir);
    probe.is_err().then_some(Mounted(None))
}

#[test]
fn a_read_only_state_directory_is_one_line() {
    let root = Root::new();
    let state = root.path.join("read-only-state");
    let Some(_guard) = read_only(&state) else {
        eprintln!("no read-only directory can be made here: skipped");
        return;
    };
    let (code, _, err) = check(&root, &["--state", &state.to_string_lossy()]);
    assert_eq!(code, 1);
    assert_eq!(err.len(), 1, "{err:?}");
    let expected = format!(
        "状態ディレクトリ {} に書き込めません（最高シーケンス番号と監査ログを置けません）: ",
        state.display()
    );
    assert!(err[0].starts_with(&expected), "{err:?}");
}
