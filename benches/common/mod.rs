//! What both benches share: running a child process with its peak memory, and letting the
//! disk settle between runs.
#![allow(unsafe_code, dead_code)] // wait4(2) for the child's peak memory

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs a command to completion: wall time and the child's peak RSS in KiB (wait4).
#[allow(clippy::zombie_processes)] // the child is reaped by wait4 below, not Child::wait
pub(crate) fn measure(cmd: &mut Command) -> (Duration, u64) {
    use std::io::Read as _;
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read while it runs: a child that fills the pipe would otherwise wait for ever.
    let mut stderr = child.stderr.take().expect("stderr");
    let drain = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, status and usage are valid for writes.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    let stderr = drain.join().unwrap_or_default();
    assert_eq!(rc, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed: {stderr}"
    );
    (elapsed, usage.ru_maxrss as u64)
}

/// Lets the disk finish earlier deletions (this machine's ext4 discards on delete), so one
/// run's clean-up does not slow the next run down.
pub(crate) fn settle() {
    let _ = Command::new("sync").status();
    std::thread::sleep(Duration::from_secs(2));
}

/// The hosho binary the benches run: `HOSHO_BENCH_BIN` (an older build, to compare with),
/// else the one cargo built for this bench.
pub(crate) fn hosho_bin() -> std::path::PathBuf {
    std::env::var_os("HOSHO_BENCH_BIN").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_BIN_EXE_hosho")),
        std::path::PathBuf::from,
    )
}
