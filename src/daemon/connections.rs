//! How many connections the daemon holds, in all and per client address, so that a flood of
//! idle connections can neither use up the process's file descriptors (record and PDF opens
//! would then fail, and orderers would see a false "damaged") nor the slots of every other
//! client.
//!
//! At start the open-file limit is raised to its hard limit and `--max-connections` kept
//! below it with a reserve for files, the audit log and the runtime. Connections from one
//! address (IPv6 by /64) are capped at `--max-connections-per-address`; a trusted proxy is
//! not capped here (its clients are limited by the proxy, e.g. nginx's `limit_conn`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::clients::TrustedProxies;

/// File descriptors kept free for everything but client connections: vault files opened by
/// up to `tokio`'s blocking threads, the audit log, listeners, the runtime's own.
pub(crate) const RESERVED_FILES: u64 = 256;

/// The connection limit that fits the open-file limit: the limit raised as far as the
/// hard limit allows, minus the reserve. Returns the limit and whether it was lowered.
pub(crate) fn fit_to_open_files(wanted: usize) -> (usize, Option<u64>) {
    let files = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let room = usize::try_from(files.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
    if wanted > room {
        (room.max(1), Some(files))
    } else {
        (wanted, None)
    }
}

/// The key a client address is capped under: IPv4 whole, IPv6 by its /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// Connections held per address key.
type OpenCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// Slots for connections, in all and per address.
pub(crate) struct Connections {
    total: Arc<Semaphore>,
    per_address: usize,
    open: OpenCounts,
    proxies: TrustedProxies,
}

/// A held connection slot, given back when dropped.
pub(crate) struct Slot {
    _total: OwnedSemaphorePermit,
    address: Option<(IpAddr, OpenCounts)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some((key, open)) = &self.address else {
            return;
        };
        if let Ok(mut open) = open.lock() {
            if let Some(n) = open.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    open.remove(key);
                }
            }
        }
    }
}

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    All,
    Address,
}

impl Connections {
    pub(crate) fn new(total: usize, per_address: usize, proxies: TrustedProxies) -> Connections {
        Connections {
            total: Arc::new(Semaphore::new(total)),
            per_address: per_address.max(1),
            open: Arc::new(Mutex::new(HashMap::new())),
            proxies,
        }
    }

    /// A slot for a connection from `peer`, unless the daemon or that address is full.
    pub(crate) fn admit(&self, peer: IpAddr) -> Result<Slot, Full> {
        let total = Arc::clone(&self.total)
            .try_acquire_owned()
            .map_err(|_| Full::All)?;
        if self.proxies.contains(peer) {
            return Ok(Slot {
                _total: total,
                address: None,
            });
        }
        let key = address_key(peer);
        let mut open = self.open.lock().map_err(|_| Full::All)?;
        let n = open.entry(key).or_insert(0);
        if *n >= self.per_address {
            return Err(Full::Address);
        }
        *n += 1;
        Ok(Slot {
            _total: total,
            address: Some((key, Arc::clone(&self.open))),
        })
    }

    /// Addresses holding at least one connection.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.open.lock().map_or(0, |o| o.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let proxies = TrustedProxies::new(vec!["127.0.0.1/32".parse().expect("net")]);
        let c = Connections::new(10, 3, proxies);
        let flood: Vec<Slot> = (0..3)
            .map(|_| c.admit(ip("192.0.2.7")).expect("slot"))
            .collect();
        assert_eq!(c.admit(ip("192.0.2.7")).err(), Some(Full::Address));
        // The same /64 counts as one address.
        let a: Vec<Slot> = (0..3)
            .map(|_| c.admit(ip("2001:db8::1")).expect("slot"))
            .collect();
        assert_eq!(c.admit(ip("2001:db8::ffff")).err(), Some(Full::Address));
        // Another client still gets in; a trusted proxy is not capped per address.
        let other = c.admit(ip("192.0.2.8")).expect("another client");
        let proxy: Vec<Slot> = (0..3)
            .map(|_| c.admit(ip("127.0.0.1")).expect("proxy"))
            .collect();
        assert_eq!(c.admit(ip("192.0.2.9")).err(), Some(Full::All), "10 in all");
        drop((flood, a, other, proxy));
        assert_eq!(c.addresses(), 0, "every slot given back");
        assert!(c.admit(ip("192.0.2.7")).is_ok());
    }

    #[test]
    fn the_connection_limit_fits_the_open_files() {
        let (fitted, lowered) = fit_to_open_files(usize::MAX);
        let files = lowered.expect("lowered from usize::MAX");
        assert_eq!(fitted as u64, files - RESERVED_FILES);
        assert_eq!(fit_to_open_files(16), (16, None));
    }
}
