//! Where the shared budgets' Redis is (`--limits`): one address (`redis://HOST:PORT/DB`), or
//! the primary that Redis Sentinel names (`redis+sentinel://HOST:PORT,HOST:PORT…/SERVICE[/DB]`),
//! asked of the sentinels again at every reconnection, so that a failover moves every
//! replica to the new primary without a restart.

use std::time::Duration;

use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::ConnectionAddr;
use tokio::sync::Mutex;

/// The scheme of a Sentinel URL.
pub(crate) const SENTINEL_SCHEME: &str = "redis+sentinel://";

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
    /// The Redis `url` names; the reason when it names none.
    pub(crate) fn parse(url: &str) -> Result<Primary, String> {
        match url.strip_prefix(SENTINEL_SCHEME) {
            None => redis::Client::open(url)
                .map(Primary::Fixed)
                .map_err(|e| e.to_string()),
            Some(rest) => Ok(Primary::Sentinel {
                sentinels: Mutex::new(sentinel_client(rest)?),
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

/// `HOST:PORT[,HOST:PORT…]/SERVICE[/DB]`, the rest of a Sentinel URL.
fn sentinel_client(rest: &str) -> Result<SentinelClient, String> {
    let form = "redis+sentinel://HOST:PORT,HOST:PORT,HOST:PORT/SERVICE[/DB] と書いてください";
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
        .and_then(|builder| builder.set_client_to_redis_db(db).build())
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
        let primary = Primary::parse(url).expect("a Sentinel URL");
        assert!(primary.follows_sentinel());
        assert!(!Primary::parse("redis://127.0.0.1:6379/0")
            .expect("a Redis URL")
            .follows_sentinel());
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
            let error = Primary::parse(url).err().expect(url);
            assert!(error.contains(said), "{url}: {error}");
        }
    }
}
