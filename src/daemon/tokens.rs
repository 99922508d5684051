//! Short-lived PDF tokens: `GET /certificates/<token>` serves one certificate for a few
//! minutes after it was verified. The token is random and maps to one 保証契約番号; the key
//! never travels in a URL, and no file is ever looked up by what a client sent.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

use crate::common::hex::to_hex;

/// Token length in bytes (hex in the URL).
const TOKEN_BYTES: usize = 16;

pub(crate) struct Tokens {
    ttl: Duration,
    capacity: usize,
    rng: SystemRandom,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_token: HashMap<String, Grant>,
    /// Issue order, which is also expiry order (one TTL for all).
    order: VecDeque<String>,
}

struct Grant {
    number: String,
    expires: Instant,
}

impl Tokens {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Tokens {
        Tokens {
            ttl,
            capacity: capacity.max(1),
            rng: SystemRandom::new(),
            inner: Mutex::new(Inner::default()),
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new token for `number`; the oldest tokens make room when the store is full.
    pub(crate) fn issue(&self, number: &str) -> Option<String> {
        let mut bytes = [0u8; TOKEN_BYTES];
        self.rng.fill(&mut bytes).ok()?;
        let token = to_hex(&bytes);
        let now = Instant::now();
        let mut inner = self.inner.lock().ok()?;
        inner.expire(now);
        while inner.order.len() >= self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.by_token.remove(&old);
            }
        }
        inner.by_token.insert(
            token.clone(),
            Grant {
                number: number.to_owned(),
                expires: now + self.ttl,
            },
        );
        inner.order.push_back(token.clone());
        Some(token)
    }

    /// The number a live token was issued for.
    pub(crate) fn number(&self, token: &str) -> Option<String> {
        if token.len() != TOKEN_BYTES * 2 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let now = Instant::now();
        let mut inner = self.inner.lock().ok()?;
        inner.expire(now);
        let grant = inner.by_token.get(token)?;
        (grant.expires > now).then(|| grant.number.clone())
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.by_token.len())
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn expire(&mut self, now: Instant) {
        while let Some(front) = self.order.front() {
            let expired = self.by_token.get(front).is_none_or(|g| g.expires <= now);
            if !expired {
                break;
            }
            if let Some(old) = self.order.pop_front() {
                self.by_token.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_one_number_and_expire() {
        let t = Tokens::new(Duration::from_millis(50), 10);
        let a = t.issue("2070004426").expect("token");
        assert_eq!(a.len(), 32);
        assert_eq!(t.number(&a).as_deref(), Some("2070004426"));
        assert_eq!(t.number("../../etc/passwd"), None);
        assert_eq!(t.number(&"0".repeat(32)), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(t.number(&a), None);
        assert!(t.is_empty());
    }

    #[test]
    fn the_store_is_bounded() {
        let t = Tokens::new(Duration::from_secs(600), 3);
        let first = t.issue("2070004426").expect("token");
        for _ in 0..5 {
            t.issue("2070004427").expect("token");
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.number(&first), None);
    }
}
