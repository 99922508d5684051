//! Redis without a single point of failure (docs/deploy.md, "Redis with Sentinel"): two
//! replicas share their limits in the primary a Redis Sentinel service names. A budget is
//! spent on the primary after its replica stopped receiving (so the spend is lost with it),
//! the primary is killed under load, the three sentinels promote the replica, and: every
//! answer under load is 200 or 429, both replicas move to the new primary and start a new
//! epoch on it, and the spent budget is still spent there, even for a replica that never
//! saw it. The same with every Redis and sentinel asking for a password, which the daemons
//! read from a file (`--limits-password-file`).

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::daemon::{
    admin_status, api, api_via, free_port, redis_cli_as, secret_file, wait_for_port, Daemon, Root,
};
use crate::preflight::check;

/// The Sentinel service's name.
const SERVICE: &str = "hosho";
const NUMBER: &str = "2070004426";
/// The key the demo's notice gives for [`NUMBER`].
const KEY: &str = "332E1E7K9Q";
const WRONG: &str = "0000000000";

/// The password of the service that asks for one.
const PASSWORD: &str = "s3cret-for-sentinel";

/// A `redis-server` process (a Redis or, with `--sentinel`, a sentinel), killed when dropped.
struct Server {
    child: Child,
    port: u16,
    /// Its `requirepass`, if it asks for one.
    password: Option<&'static str>,
}

impl Server {
    fn start(args: &[&str], port: u16, password: Option<&'static str>) -> Server {
        let child = Command::new("redis-server")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/test installs it)");
        wait_for_port(port, "redis-server");
        Server {
            child,
            port,
            password,
        }
    }

    /// A Redis working in `dir` (a replica writes the primary's data there on every sync),
    /// asking for `password` and giving it to its primary.
    fn redis(dir: &Path, port: u16, extra: &[&str], password: Option<&'static str>) -> Server {
        let port_text = port.to_string();
        let dir = dir.display().to_string();
        let mut args = vec!["--bind", "127.0.0.1", "--port", &port_text, "--save", ""];
        args.extend(["--appendonly", "no", "--dir", &dir, "--dbfilename"]);
        args.push(if extra.is_empty() {
            "primary.rdb"
        } else {
            "replica.rdb"
        });
        args.extend(extra);
        if let Some(password) = password {
            args.extend(["--requirepass", password, "--masterauth", password]);
        }
        Server::start(&args, port, password)
    }

    /// A sentinel watching the primary on `primary`; its configuration (which it rewrites) in
    /// `dir`. With a password, it asks for it, and gives it to the Redis servers and to the
    /// other sentinels.
    fn sentinel(dir: &Path, primary: u16, password: Option<&'static str>) -> Server {
        let port = free_port();
        let conf = dir.join(format!("sentinel-{port}.conf"));
        let mut text = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\n\
             sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n\
             sentinel down-after-milliseconds {SERVICE} 1000\n\
             sentinel failover-timeout {SERVICE} 5000\n\
             sentinel parallel-syncs {SERVICE} 1\n",
            dir.display()
        );
        if let Some(password) = password {
            text.push_str(&format!(
                "requirepass {password}\nsentinel auth-pass {SERVICE} {password}\n"
            ));
        }
        fs::write(&conf, text).expect("sentinel.conf");
        Server::start(&[&conf.display().to_string(), "--sentinel"], port, password)
    }

    fn cli(&self, args: &[&str]) -> String {
        redis_cli_as(self.port, self.password, args)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `done` (at most `limit`), saying `what` otherwise.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A primary with its replica in sync and three sentinels that know both and each other,
/// all asking for `password` if one is given.
fn service(dir: &Path, password: Option<&'static str>) -> (Server, Server, Vec<Server>) {
    let primary = Server::redis(dir, free_port(), &[], password);
    primary.cli(&["SET", "hosho:epoch", "1"]);
    let port = primary.port.to_string();
    let replicaof = ["--replicaof", "127.0.0.1", &port];
    let replica = Server::redis(dir, free_port(), &replicaof, password);
    wait_until(Duration::from_secs(10), "the replica syncs", || {
        replica
            .cli(&["INFO", "replication"])
            .contains("master_link_status:up")
    });
    let sentinels: Vec<Server> = (0..3)
        .map(|_| Server::sentinel(dir, primary.port, password))
        .collect();
    wait_until(Duration::from_secs(20), "the sentinels meet", || {
        sentinels.iter().all(|s| {
            let master = s.cli(&["SENTINEL", "MASTER", SERVICE]);
            let replicas = s.cli(&["SENTINEL", "REPLICAS", SERVICE]);
            master.contains("num-other-sentinels\n2")
                && replicas.contains(&replica.port.to_string())
        })
    });
    (primary, replica, sentinels)
}

/// A replica of the daemon sharing its limits through the sentinels, with the password in
/// `password_file` if one is given.
fn replica(root: &Root, sentinels: &[Server], state: &str, password_file: &[&str]) -> Daemon {
    let url = sentinel_url(sentinels);
    let state = root.path.join(state).display().to_string();
    let mut args = vec![
        "--limits",
        &url,
        "--state",
        &state,
        "--admin-listen",
        "127.0.0.1:0",
        "--limit-failures",
        "4/day+4",
        "--limit-address",
        "60000/min+1000",
    ];
    args.extend(password_file);
    let daemon = Daemon::start(root, &args);
    wait_until(
        Duration::from_secs(10),
        "the replica counts in Redis",
        || admin_status(&daemon) == "ok",
    );
    daemon
}

/// The `--limits` URL of the sentinels.
fn sentinel_url(sentinels: &[Server]) -> String {
    let hosts: Vec<String> = sentinels
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect();
    format!("redis+sentinel://{}/{SERVICE}", hosts.join(","))
}

/// Clients from 127.0.0.2–5 checking right keys through both replicas until `stop`; every
/// status they got.
fn load(
    replicas: [&Daemon; 2],
    key: String,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<u16>>> {
    (2..6)
        .map(|i| {
            let to = replicas[i % 2].addr.clone();
            let (key, stop) = (key.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let from = format!("127.0.0.{i}");
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    seen.push(api_via(&to, &from, NUMBER, &key, ""));
                }
                seen
            })
        })
        .collect()
}

#[test]
fn a_sentinel_failover_under_load_answers_200_or_429_and_restores_no_spent_budget() {
    failover_under_load(None);
}

#[test]
fn the_same_failover_with_a_password_on_every_redis_and_sentinel() {
    failover_under_load(Some(PASSWORD));
}

/// The failover of the module's comment, on a service asking for `password` or for none.
fn failover_under_load(password: Option<&'static str>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (primary, replica_redis, sentinels) = service(dir.path(), password);
    let root = Root::new();
    let text = format!("{}\n", password.unwrap_or_default());
    let file = secret_file(&root.path, "redis.password", &text, 0o400);
    let file = file.display().to_string();
    let flag = match password {
        Some(_) => vec!["--limits-password-file", file.as_str()],
        None => Vec::new(),
    };
    let (a, b) = (
        replica(&root, &sentinels, "state-a", &flag),
        replica(&root, &sentinels, "state-b", &flag),
    );
    if password.is_some() {
        // Without the password, a replica reaches no Redis.
        let (code, _, err) = check(&root, &["--limits", &sentinel_url(&sentinels)]);
        assert_eq!(code, 1, "{err:?}");
    }

    // The replica stops receiving: it tries the primary with a password the primary does not
    // know, so what is written from now on lives on the primary alone.
    replica_redis.cli(&["CONFIG", "SET", "masterauth", "not-the-password"]);
    replica_redis.cli(&["CLIENT", "KILL", "TYPE", "master"]);
    wait_until(Duration::from_secs(5), "the replica loses its link", || {
        replica_redis
            .cli(&["INFO", "replication"])
            .contains("master_link_status:down")
    });
    // 127.0.0.1 spends its four wrong keys for the number, over both replicas.
    for d in [&a, &b, &a, &b] {
        assert_eq!(api(d, NUMBER, WRONG).status, 404);
    }
    assert_eq!(api(&a, NUMBER, WRONG).status, 429);
    assert!(
        !replica_redis
            .cli(&["KEYS", "hosho:f:*"])
            .contains("hosho:f:"),
        "the spend did not reach the replica"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let threads = load([&a, &b], KEY.to_owned(), Arc::clone(&stop));
    std::thread::sleep(Duration::from_secs(1));
    drop(primary);
    let new_port = replica_redis.port.to_string();
    wait_until(
        Duration::from_secs(30),
        "the sentinels promote the replica",
        || {
            sentinels[0]
                .cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE])
                .contains(&new_port)
        },
    );
    for d in [&a, &b] {
        wait_until(Duration::from_secs(15), "back on the new primary", || {
            admin_status(d) == "ok"
        });
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let statuses: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("load"))
        .collect();
    let other: Vec<&u16> = statuses
        .iter()
        .filter(|s| **s != 200 && **s != 429)
        .collect();
    assert!(other.is_empty(), "answers other than 200 or 429: {other:?}");
    assert!(
        statuses.iter().filter(|s| **s == 200).count() > 10,
        "{statuses:?}"
    );

    // A new epoch on the new primary: every replica copied its tables in.
    let epoch = replica_redis.cli(&["GET", "hosho:epoch"]);
    assert_ne!(
        epoch.trim(),
        "1",
        "the epoch was renewed after the failover"
    );
    // The budget spent on the lost primary is spent on the new one: for both replicas, and
    // for a third that never saw it and asks Redis alone.
    assert_eq!(api(&a, NUMBER, WRONG).status, 429);
    assert_eq!(api(&b, NUMBER, WRONG).status, 429);
    let c = replica(&root, &sentinels, "state-c", &flag);
    assert_eq!(api(&c, NUMBER, WRONG).status, 429);
}
