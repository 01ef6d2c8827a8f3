//! Failed-login throttling, per user name and per client address, in
//! bounded memory.
//!
//! Each key (a user name, or a client address: IPv4, or an IPv6 /64, the
//! block one host usually owns) has a GCRA budget: `*_failures` failed
//! logins at once, refilled evenly over `window`. A key whose budget is
//! spent gets 429 `clw-auth-throttled` with `Retry-After` *before* the
//! password is checked, whatever the password, so a throttled guesser
//! learns nothing; unknown and known users are throttled alike, so neither
//! does the throttle tell which users exist. Only failures are charged:
//! valid logins read the tables and never write them, so any rate of
//! correct logins (the load tests' 30-60k/s from 127.0.0.1) is never
//! throttled.
//!
//! Why not `governor`: its keyed limiter keeps one entry per key ever seen
//! until `retain_recent` runs, with no capacity bound, so a flood of made-up
//! user names grows it without limit between prunes. Here each table is a
//! sharded `lru::LruCache` (already in the tree) of at most `max_keys`
//! entries of 16 bytes (a keyed SipHash of the key, so a long user name
//! costs no more than a short one, and the GCRA state); when full, the key
//! that failed least recently is forgotten.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lru::LruCache;
use parking_lot::Mutex;

use crate::config::ThrottleConfig;
use crate::token::DigestBuildHasher;

const SHARDS: usize = 16;

/// What a throttled attempt was throttled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The user name's budget is spent.
    User,
    /// The client address's budget is spent.
    Address,
}

impl Scope {
    /// Both scopes, in metric-label order.
    pub(crate) const ALL: [Scope; 2] = [Scope::User, Scope::Address];

    /// The `scope` label of `clw_login_throttled_total`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Address => "address",
        }
    }
}

/// A refused attempt: on what, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Throttled {
    pub(crate) scope: Scope,
    pub(crate) retry_after: Duration,
}

/// GCRA over one kind of key: each entry is the key's "theoretical arrival
/// time" in ms; a failure moves it on by one emission interval.
struct Table {
    shards: Box<[Mutex<LruCache<u64, u64, DigestBuildHasher>>]>,
    /// Most keys one shard keeps; the least recently failed goes first.
    per_shard: usize,
    emission_ms: u64,
    /// How far ahead of now the arrival time may be before the next
    /// failure would exceed the burst.
    tolerance_ms: u64,
}

impl Table {
    fn new(burst: u32, window: Duration, max_keys: usize) -> Table {
        let window_ms = window.as_millis().max(1) as u64;
        let emission_ms = (window_ms / u64::from(burst.max(1))).max(1);
        Table {
            // Unbounded maps with the bound enforced in `charge`: a bounded
            // `LruCache` reserves its whole table up front, megabytes that
            // a server nobody guesses at would hold for nothing.
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::unbounded_with_hasher(DigestBuildHasher::default())))
                .collect(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            emission_ms,
            tolerance_ms: window_ms.saturating_sub(emission_ms),
        }
    }

    fn shard(&self, key: u64) -> &Mutex<LruCache<u64, u64, DigestBuildHasher>> {
        &self.shards[(key >> 59) as usize % SHARDS]
    }

    /// `Some(wait)` if one more failure would exceed the budget.
    fn check(&self, key: u64, now: u64) -> Option<Duration> {
        let tat = *self.shard(key).lock().peek(&key)?;
        let allowed_at = tat.saturating_sub(self.tolerance_ms);
        (allowed_at > now).then(|| Duration::from_millis(allowed_at - now))
    }

    fn charge(&self, key: u64, now: u64) {
        let mut shard = self.shard(key).lock();
        let tat = shard.get(&key).copied().unwrap_or(0).max(now);
        if shard.len() >= self.per_shard && !shard.contains(&key) {
            shard.pop_lru();
        }
        shard.put(key, tat.saturating_add(self.emission_ms));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

/// The login throttle; one per server.
pub(crate) struct LoginThrottle {
    enabled: bool,
    users: Table,
    addresses: Table,
    hasher: RandomState,
    epoch: Instant,
    /// Throttled attempts since the last log line, and when that was.
    unlogged: AtomicU64,
    logged_ms: AtomicU64,
}

/// At most one log line per this many ms: the event is per attempt (an
/// attack makes thousands a second), the log line must not be.
const LOG_EVERY_MS: u64 = 10_000;

impl LoginThrottle {
    pub(crate) fn new(cfg: &ThrottleConfig) -> LoginThrottle {
        LoginThrottle {
            enabled: cfg.enabled,
            users: Table::new(cfg.user_failures, cfg.window, cfg.max_keys),
            addresses: Table::new(cfg.address_failures, cfg.window, cfg.max_keys),
            hasher: RandomState::new(),
            epoch: Instant::now(),
            unlogged: AtomicU64::new(0),
            logged_ms: AtomicU64::new(u64::MAX),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn user_key(&self, user: &str) -> u64 {
        self.hasher.hash_one(("user", user))
    }

    fn address_key(&self, addr: IpAddr) -> u64 {
        let addr = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                // One host usually holds a whole /64.
                None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            },
            v4 => v4,
        };
        self.hasher.hash_one(("addr", addr))
    }

    /// Whether a login attempt may proceed to the password check.
    pub(crate) fn check(&self, user: &str, addr: IpAddr) -> Result<(), Throttled> {
        if !self.enabled {
            return Ok(());
        }
        let now = self.now_ms();
        let refused = self
            .addresses
            .check(self.address_key(addr), now)
            .map(|wait| (Scope::Address, wait))
            .or_else(|| {
                self.users
                    .check(self.user_key(user), now)
                    .map(|wait| (Scope::User, wait))
            });
        match refused {
            None => Ok(()),
            Some((scope, retry_after)) => {
                self.log(now, scope, addr);
                Err(Throttled { scope, retry_after })
            }
        }
    }

    /// Charges a failed login to the user name and the address.
    pub(crate) fn failed(&self, user: &str, addr: IpAddr) {
        if !self.enabled {
            return;
        }
        let now = self.now_ms();
        self.users.charge(self.user_key(user), now);
        self.addresses.charge(self.address_key(addr), now);
    }

    /// Keys tracked now (users, addresses): bounded by `max_keys` each.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> (usize, usize) {
        (self.users.len(), self.addresses.len())
    }

    fn log(&self, now: u64, scope: Scope, addr: IpAddr) {
        let pending = self.unlogged.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.logged_ms.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= LOG_EVERY_MS;
        if due
            && self
                .logged_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let count = self.unlogged.swap(0, Ordering::Relaxed).max(pending);
            // The user name is not logged: people type passwords into it.
            tracing::warn!(
                code = "clw-auth-throttled",
                throttled = count,
                scope = scope.as_str(),
                client = %addr,
                "clw-auth-throttled: {count} login attempts throttled since the last report (too many failed logins); latest on the {} budget, from {addr}",
                scope.as_str()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    use crate::test_log::logged;

    fn cfg(user: u32, addr: u32, keys: usize) -> ThrottleConfig {
        ThrottleConfig {
            enabled: true,
            user_failures: user,
            address_failures: addr,
            window: Duration::from_secs(60),
            max_keys: keys,
        }
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn a_user_is_throttled_after_its_burst_of_failures() {
        let t = LoginThrottle::new(&cfg(3, 1000, 1024));
        for _ in 0..3 {
            t.check("u", A).unwrap();
            t.failed("u", A);
        }
        let e = t.check("u", B).unwrap_err();
        assert_eq!(e.scope, Scope::User);
        // Budget refills one failure per 20 s.
        assert!(e.retry_after > Duration::from_secs(19), "{e:?}");
        assert!(e.retry_after <= Duration::from_secs(20), "{e:?}");
        t.check("other", A).unwrap();
    }

    #[test]
    fn an_address_is_throttled_across_user_names() {
        let t = LoginThrottle::new(&cfg(1000, 5, 1024));
        for i in 0..5 {
            t.failed(&format!("user-{i}"), A);
        }
        assert_eq!(t.check("fresh", A).unwrap_err().scope, Scope::Address);
        t.check("fresh", B).unwrap();
    }

    #[test]
    fn ipv6_hosts_share_their_64() {
        let t = LoginThrottle::new(&cfg(1000, 1, 1024));
        t.failed("x", "2001:db8::1".parse().unwrap());
        assert!(t.check("y", "2001:db8::ffff:1".parse().unwrap()).is_err());
        t.check("y", "2001:db8:0:1::1".parse().unwrap()).unwrap();
        t.failed("x", "::ffff:10.0.0.2".parse().unwrap());
        assert!(t.check("y", B).is_err(), "v4-mapped is the v4 address");
    }

    #[test]
    fn memory_is_bounded_by_max_keys() {
        let t = LoginThrottle::new(&cfg(10, 10, 256));
        for i in 0..100_000u32 {
            t.failed(&format!("made-up-{i}"), IpAddr::V4(Ipv4Addr::from(i)));
        }
        let (users, addrs) = t.tracked();
        assert!(users <= 256 && addrs <= 256, "{users} {addrs}");
    }

    #[test]
    fn throttled_attempts_log_one_line_per_interval_without_the_name() {
        let text = logged(|| {
            let t = LoginThrottle::new(&cfg(1, 1000, 64));
            t.failed("secret-name", A);
            for _ in 0..1000 {
                assert!(t.check("secret-name", A).is_err());
            }
        });
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("clw-auth-throttled"))
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(lines[0].contains("127.0.0.1"), "{text}");
        assert!(!text.contains("secret-name"), "{text}");
    }

    #[test]
    fn checks_alone_never_throttle_and_never_store() {
        let t = LoginThrottle::new(&cfg(1, 1, 1024));
        for i in 0..10_000 {
            t.check(&format!("user-{}", i % 100), A).unwrap();
        }
        assert_eq!(t.tracked(), (0, 0));
    }
}
