//! What the limiter counts: the client networks, the keys of their budgets, and the rates
//! `hosho serve` is given (docs/http.md, 「回数の制限」).

use std::time::Duration;

use ipnet::IpNet;

use super::gcra::{Cell, Rate};

/// A named network and the attempt rate of each of its addresses (`--limit-network`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkRate {
    pub network: IpNet,
    pub rate: Rate,
}

impl NetworkRate {
    /// Parses `CIDR=RATE`, e.g. `203.0.113.0/24=600/hour+60`.
    pub fn parse(text: &str) -> Result<NetworkRate, String> {
        let bad = || format!("「{text}」は 203.0.113.0/24=600/hour+60 のように書いてください");
        let (network, rate) = text.split_once('=').ok_or_else(bad)?;
        Ok(NetworkRate {
            network: network.trim().parse().map_err(|_| bad())?,
            rate: Rate::parse(rate.trim())?,
        })
    }
}

/// The settings of the limiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbuseLimits {
    /// Attempts per client network (`--limit-address`).
    pub per_address: Rate,
    /// Failures per contract number and client network (`--limit-failures`).
    pub failures_per_network: Rate,
    /// Failures per contract number from all networks (`--limit-number`, the ceiling).
    pub failures_per_number: Rate,
    /// Named networks with their own attempt rate.
    pub networks: Vec<NetworkRate>,
    /// Keys tracked at most.
    pub max_tracked: usize,
}

impl Default for AbuseLimits {
    fn default() -> Self {
        AbuseLimits {
            // A clerk checking a pile of notices: 20 at once, then one every 3 seconds.
            per_address: Rate {
                burst: 20,
                every: Duration::from_secs(3),
            },
            // Typing mistakes: 5 wrong keys for one number at once, then one every 72 minutes.
            failures_per_network: Rate {
                burst: 5,
                every: Duration::from_secs(4_320),
            },
            // The ceiling: 100 wrong keys for one number at once, then one every 86.4 s
            // (1,000 a day); see docs/http.md for why a 50-bit key stays unguessable.
            failures_per_number: Rate {
                burst: 100,
                every: Duration::from_millis(86_400),
            },
            networks: Vec::new(),
            max_tracked: 400_000,
        }
    }
}

/// A client network: its address bits (host bits cleared) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Net(pub(crate) u128, pub(crate) u8);

/// What a budget belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Attempts(Net),
    Failures(u64, Net),
    /// Whole a day after the network's last failure on the number.
    Failed(u64, Net),
    /// Set when a network is let in strictly (its one guess): whole when that attempt is
    /// settled, or [`HOLD`] after it was let in, whichever comes first.
    Held(u64, Net),
    Number(u64),
}

/// How long a strict guess's [`Key::Held`] mark lasts at most. An attempt that reaches the
/// KDF later than `HOLD - SETTLE_WITHIN` after it was let in is not checked (503), so the
/// hold covers every guess that is checked.
pub(crate) const HOLD: Duration = Duration::from_secs(30);

/// How long a network counts as having failed on a number: while that number's ceiling is
/// spent, it may try again only a day after its last wrong key there.
pub(crate) const FAILED_FOR: Rate = Rate {
    burst: 1,
    every: Duration::from_secs(86_400),
};

/// One network of a client, with its attempt and failure cells.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tier {
    pub(crate) net: Net,
    pub(crate) attempts: Cell,
    pub(crate) failures: Cell,
}

/// A rate four times as large, for a /48 that holds many /64s.
pub(crate) fn wider(rate: Rate) -> Rate {
    Rate {
        burst: rate.burst.saturating_mul(4),
        every: rate.every / 4,
    }
}
