//! Where the shared budgets' Redis is (`--limits`): one address (`redis://HOST:PORT/DB`), or
//! the primary that Redis Sentinel names (`redis+sentinel://HOST:PORT,HOST:PORT…/SERVICE[/DB]`),
//! asked of the sentinels again at every reconnection, so that a failover moves every
//! replica to the new primary without a restart. Its password (`requirepass`, the same on
//! the sentinels) comes from a file (`--limits-password-file`), never from the URL, which
//! the process list and the log show.

use std::path::PathBuf;
use std::time::Duration;

use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, IntoConnectionInfo as _};
use tokio::sync::Mutex;

/// The scheme of a Sentinel URL.
pub(crate) const SENTINEL_SCHEME: &str = "redis+sentinel://";

/// The Redis replicas share their budgets in (`--limits`), and the file holding its
/// password (`--limits-password-file`), if it asks for one.
#[derive(Debug, Clone)]
pub struct LimitsRedis {
    pub url: String,
    pub password_file: Option<PathBuf>,
}

/// `url` as messages show it: whatever may hold a password (what comes before an `@`, a
/// query) replaced by `***`. A password in the URL is refused, and not shown either.
pub(crate) fn shown(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (userinfo, rest) = match rest.rsplit_once('@') {
        Some((_, host)) => ("***@", host),
        None => ("", rest),
    };
    let rest = match rest.split_once('?') {
        Some((path, _)) => format!("{path}?***"),
        None => rest.to_owned(),
    };
    match scheme {
        "" => format!("{userinfo}{rest}"),
        scheme => format!("{scheme}://{userinfo}{rest}"),
    }
}

/// The Redis that holds the shared budgets.
pub(crate) enum Primary {
    /// One Redis, always at the same address.
    Fixed(redis::Client),
    /// The primary of a Sentinel service: wherever the sentinels say it is now.
    Sentinel {
        sentinels: Mutex<SentinelClient>,
        /// The address of the primary last found.
        last: std::sync::Mutex<Option<String>>,
    },
}

impl Primary {
    /// The Redis `url` names, reached with `password` (and, through Sentinel, the
    /// sentinels too); the reason when it names none, or carries a password itself.
    pub(crate) fn parse(url: &str, password: Option<&str>) -> Result<Primary, String> {
        match url.strip_prefix(SENTINEL_SCHEME) {
            None => fixed_client(url, password).map(Primary::Fixed),
            Some(rest) => Ok(Primary::Sentinel {
                sentinels: Mutex::new(sentinel_client(rest, password)?),
                last: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Whether the primary is found through Sentinel (and may move).
    pub(crate) fn follows_sentinel(&self) -> bool {
        matches!(self, Primary::Sentinel { .. })
    }

    /// A client for the primary now, and whether it is another than the one found before
    /// (the service failed over); the reason when none is found `within` the time given.
    pub(crate) async fn current(&self, within: Duration) -> Result<(redis::Client, bool), String> {
        let (sentinels, last) = match self {
            Primary::Fixed(client) => return Ok((client.clone(), false)),
            Primary::Sentinel { sentinels, last } => (sentinels, last),
        };
        let mut sentinels = sentinels.lock().await;
        let found = tokio::time::timeout(within, sentinels.async_get_client())
            .await
            .map_err(|_| {
                format!(
                    "Sentinel から {} ms のうちに主サーバーが分かりません",
                    within.as_millis()
                )
            })?
            .map_err(|e| format!("Sentinel から主サーバーが分かりません: {e}"))?;
        let address = found.get_connection_info().addr().to_string();
        let mut last = last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let moved = last.as_ref().is_some_and(|before| *before != address);
        *last = Some(address);
        Ok((found, moved))
    }
}

/// Why a URL that carries a password is refused.
const NO_PASSWORD_IN_URL: &str = "パスワードを URL に書かないでください（プロセスの一覧とログに出ます）。--limits-password-file で、本人だけが読めるファイル（chmod 400）から渡してください";

/// A client for the one Redis of `url`, with `password`.
fn fixed_client(url: &str, password: Option<&str>) -> Result<redis::Client, String> {
    let info = url.into_connection_info().map_err(|e| e.to_string())?;
    if info.redis_settings().password().is_some() {
        return Err(NO_PASSWORD_IN_URL.to_owned());
    }
    let info = match password {
        Some(password) => {
            let settings = info.redis_settings().clone().set_password(password);
            info.set_redis_settings(settings)
        }
        None => info,
    };
    redis::Client::open(info).map_err(|e| e.to_string())
}

/// `HOST:PORT[,HOST:PORT…]/SERVICE[/DB]`, the rest of a Sentinel URL.
fn sentinel_client(rest: &str, password: Option<&str>) -> Result<SentinelClient, String> {
    let form = "redis+sentinel://HOST:PORT,HOST:PORT,HOST:PORT/SERVICE[/DB] と書いてください";
    if rest.contains('@') {
        return Err(NO_PASSWORD_IN_URL.to_owned());
    }
    let (hosts, path) = rest.split_once('/').ok_or(form)?;
    let mut parts = path.split('/');
    let service = parts.next().filter(|s| !s.is_empty()).ok_or(form)?;
    let db = match parts.next() {
        None | Some("") => 0,
        Some(db) => db
            .parse::<i64>()
            .map_err(|_| format!("データベース番号「{db}」は数字で書いてください"))?,
    };
    if parts.next().is_some() {
        return Err(form.to_owned());
    }
    let sentinels = hosts
        .split(',')
        .map(sentinel_address)
        .collect::<Result<Vec<_>, _>>()?;
    SentinelClientBuilder::new(sentinels, service, SentinelServerType::Master)
        .and_then(|builder| {
            let builder = builder.set_client_to_redis_db(db);
            match password {
                Some(password) => builder
                    .set_client_to_redis_password(password)
                    .set_client_to_sentinel_password(password),
                None => builder,
            }
            .build()
        })
        .map_err(|e| e.to_string())
}

/// One sentinel's `HOST:PORT` (`[::1]:26379` for IPv6).
fn sentinel_address(text: &str) -> Result<ConnectionAddr, String> {
    let bad = || format!("Sentinel のアドレス「{text}」は HOST:PORT で書いてください");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok(ConnectionAddr::Tcp(host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentinel_url_names_its_sentinels_service_and_database() {
        let url = "redis+sentinel://10.0.0.5:26379,10.0.0.6:26379,[::1]:26380/hosho/2";
        let primary = Primary::parse(url, None).expect("a Sentinel URL");
        assert!(primary.follows_sentinel());
        assert!(Primary::parse(url, Some("s3cret")).is_ok());
        assert!(!Primary::parse("redis://127.0.0.1:6379/0", Some("s3cret"))
            .expect("a Redis URL")
            .follows_sentinel());
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_never_shown() {
        for url in [
            "redis://:s3cret@127.0.0.1:6379/0",
            "redis://hosho:s3cret@127.0.0.1:6379/0",
            "redis+unix:///run/redis/redis.sock?db=0&pass=s3cret",
            "redis+sentinel://:s3cret@10.0.0.5:26379,10.0.0.6:26379/hosho",
            "redis+sentinel://10.0.0.5:26379,:s3cret@10.0.0.6:26379/hosho",
        ] {
            let error = Primary::parse(url, None).err().expect(url);
            assert!(error.contains("--limits-password-file"), "{url}: {error}");
            assert!(!error.contains("s3cret"), "{error}");
            assert!(!shown(url).contains("s3cret"), "{}", shown(url));
        }
        for (url, seen) in [
            (
                "redis://hosho:s3cret@127.0.0.1:6379/0",
                "redis://***@127.0.0.1:6379/0",
            ),
            ("redis://:s3/c?r@et@127.0.0.1/", "redis://***@127.0.0.1/"),
            (
                "redis+unix:///run/redis.sock?pass=s3cret",
                "redis+unix:///run/redis.sock?***",
            ),
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ] {
            assert_eq!(shown(url), seen);
        }
        // A user name alone (Redis ACL) is accepted, with the password from the file.
        assert!(Primary::parse("redis://hosho@127.0.0.1:6379/0", Some("s3cret")).is_ok());
    }

    #[test]
    fn a_malformed_sentinel_url_says_how_to_write_it() {
        for (url, said) in [
            (
                "redis+sentinel://10.0.0.5:26379",
                "/SERVICE[/DB] と書いてください",
            ),
            (
                "redis+sentinel://10.0.0.5:26379/",
                "/SERVICE[/DB] と書いてください",
            ),
            (
                "redis+sentinel://10.0.0.5/hosho",
                "「10.0.0.5」は HOST:PORT",
            ),
            (
                "redis+sentinel://10.0.0.5:x/hosho",
                "「10.0.0.5:x」は HOST:PORT",
            ),
            ("redis+sentinel://:26379/hosho", "「:26379」は HOST:PORT"),
            ("redis+sentinel://a:1/hosho/zero", "「zero」は数字"),
            (
                "redis+sentinel://a:1/hosho/0/more",
                "/SERVICE[/DB] と書いてください",
            ),
        ] {
            let error = Primary::parse(url, None).err().expect(url);
            assert!(error.contains(said), "{url}: {error}");
        }
    }
}
