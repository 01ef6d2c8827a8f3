//! The checks a parsed configuration must pass before the service starts.
//!
//! `--check-config` and start-up run the same code ([`super::load`] calls
//! [`Config::validate_for`]; [`crate::Server::bind`] calls it again for
//! embedders who build a [`Config`] by hand), so a value the check accepts
//! is one the server can run with: nothing here lets a later `as` cast,
//! `Duration` addition or slab allocation overflow or panic.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use super::Config;
use crate::cache::ENTRY_OVERHEAD;
use crate::memory::MemoryLimit;
use crate::units::format_size;

/// The longest duration any key accepts: 100 years. Longer ones are typos
/// (`1e30`), and the cache keeps deadlines as milliseconds in a `u64`.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The smallest `memory.limit`: the service's own RSS at start-up is about
/// 12 MiB, so a limit below 16 MiB is under pressure before the first login.
pub const MIN_MEMORY_LIMIT: u64 = 16 << 20;

/// The sparsest heap-profile sampling: one sample per GiB allocated
/// already names only the very largest sites.
const MAX_HEAP_PROFILE_SAMPLE: u64 = 1 << 30;

/// Most keys each login-throttle table may hold: 16M entries are ~1 GiB.
const MAX_THROTTLE_KEYS: usize = 1 << 24;

/// About what one generated user costs in the user store: its name, its
/// ~100-byte PHC string and the map entry.
const USER_BYTES: u64 = 256;

/// Most sessions one cache shard can index (its slab uses `u32` indices,
/// `u32::MAX` marking "none").
const MAX_SHARD_ENTRIES: u64 = u32::MAX as u64 - 1;

/// A value that parses but cannot work: the key's JSON path and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The JSON path, e.g. `authentication.session.max_age`.
    pub key: String,
    /// What is wrong and what would work.
    pub reason: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

impl std::error::Error for Invalid {}

fn fail(key: &str, reason: impl Into<String>) -> Result<(), Invalid> {
    Err(Invalid {
        key: key.to_string(),
        reason: reason.into(),
    })
}

impl Config {
    /// Checks values that parse but make no sense alone or together, and
    /// that the users file can be read; the error names the JSON path.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.check_service()?;
        self.check_durations()?;
        self.check_session()?;
        self.check_memory()?;
        self.check_users()?;
        self.check_throttle()?;
        check_log_level(&self.log.level)
    }

    /// [`validate`](Self::validate), plus what depends on the memory limit
    /// the service will run under: the cache's slab, reserved up front for
    /// `max_size` sessions, and one argon2 hash must fit in it.
    pub fn validate_for(&self, limit: &MemoryLimit) -> Result<(), Invalid> {
        self.validate()?;
        let c = &self.session.cache;
        let reserved = (c.max_size as u64).saturating_mul(ENTRY_OVERHEAD);
        if reserved > limit.bytes / 2 {
            return fail(
                "authentication.session.cache.max_size",
                format!(
                    "{} sessions reserve {} up front ({ENTRY_OVERHEAD} B each), more than half the memory limit ({}, from {:?})",
                    c.max_size,
                    format_size(reserved),
                    format_size(limit.bytes),
                    limit.source
                ),
            );
        }
        let hash = u64::from(self.users.argon2.memory_kib) * 1024;
        if hash > limit.bytes / 2 {
            return fail(
                "authentication.users.argon2.memory_kib",
                format!(
                    "one hash needs {}, more than half the memory limit ({})",
                    format_size(hash),
                    format_size(limit.bytes)
                ),
            );
        }
        let users = (self.users.count as u64).saturating_mul(USER_BYTES);
        if users > limit.bytes / 2 {
            return fail(
                "authentication.users.count",
                format!(
                    "{} generated users take about {} ({USER_BYTES} B each), more than half the memory limit ({})",
                    self.users.count,
                    format_size(users),
                    format_size(limit.bytes)
                ),
            );
        }
        Ok(())
    }

    fn check_service(&self) -> Result<(), Invalid> {
        check_host(&self.service.host)?;
        if self.service.max_connections == 0 {
            return fail(
                "authentication.service.max_connections",
                "must be at least 1",
            );
        }
        if let Some(why) = self.service.admin_token.weakness() {
            return fail("authentication.service.admin_token", why);
        }
        // Reads and pairs the files now, so a bad certificate or key stops
        // start-up (and `--check-config`) rather than the first handshake.
        crate::tls::acceptor(&self.service.tls)?;
        Ok(())
    }

    fn check_durations(&self) -> Result<(), Invalid> {
        let c = &self.session.cache;
        let s = &self.service;
        let m = &self.memory;
        for (key, d, zero_ok) in [
            (
                "authentication.session.max_age",
                self.session.max_age,
                false,
            ),
            (
                "authentication.session.cache.ttl_seconds",
                c.ttl_seconds,
                false,
            ),
            (
                "authentication.session.cache.cleanup_interval",
                c.cleanup_interval,
                false,
            ),
            ("authentication.memory.gc_frequency", m.gc_frequency, false),
            (
                "authentication.memory.monitor_interval",
                m.monitor_interval,
                false,
            ),
            (
                "authentication.service.header_read_timeout",
                s.header_read_timeout,
                false,
            ),
            (
                "authentication.service.request_timeout",
                s.request_timeout,
                false,
            ),
            (
                "authentication.service.shutdown_grace",
                s.shutdown_grace,
                true,
            ),
            (
                "authentication.login_throttle.window",
                self.login_throttle.window,
                false,
            ),
        ] {
            if d.is_zero() && !zero_ok {
                return fail(key, "must be greater than zero");
            }
            if d > MAX_DURATION {
                return fail(
                    key,
                    format!(
                        "{} is longer than the 100 years any duration may be",
                        humantime::format_duration(d)
                    ),
                );
            }
        }
        Ok(())
    }

    fn check_session(&self) -> Result<(), Invalid> {
        let c = &self.session.cache;
        if c.max_size == 0 {
            return fail(
                "authentication.session.cache.max_size",
                "must be at least 1",
            );
        }
        if c.max_bytes < 4096 {
            return fail(
                "authentication.session.cache.max_bytes",
                "must be at least 4K",
            );
        }
        if c.shards == 0 || c.shards > 1024 {
            return fail(
                "authentication.session.cache.shards",
                "must be between 1 and 1024",
            );
        }
        let indexable = MAX_SHARD_ENTRIES * c.shards as u64;
        if c.max_size as u64 > indexable {
            return fail(
                "authentication.session.cache.max_size",
                format!(
                    "{} is more than the cache can index: at most {MAX_SHARD_ENTRIES} sessions per shard, {indexable} with {} shards",
                    c.max_size, c.shards
                ),
            );
        }
        if self.session.max_claims_size > self.service.body_limit {
            return fail(
                "authentication.session.max_claims_size",
                format!(
                    "{} exceeds authentication.service.body_limit ({}); such claims could never arrive",
                    self.session.max_claims_size, self.service.body_limit
                ),
            );
        }
        Ok(())
    }

    fn check_memory(&self) -> Result<(), Invalid> {
        let m = &self.memory;
        if m.max_heap_size == Some(0) {
            return fail(
                "authentication.memory.max_heap_size",
                "must be greater than zero (leave it unset for no heap budget)",
            );
        }
        if let Some(limit) = m.limit.filter(|l| *l < MIN_MEMORY_LIMIT) {
            return fail(
                "authentication.memory.limit",
                format!(
                    "{limit} bytes is below the 16M the service needs to start (leave it unset to use the cgroup limit or physical memory)"
                ),
            );
        }
        let p = m.pressure_threshold;
        if !(p > 0.0 && p <= 100.0) {
            return fail(
                "authentication.memory.pressure_threshold",
                format!("{p} is not a percentage in (0, 100]"),
            );
        }
        let sample = m.heap_profile.sample_bytes;
        if !sample.is_power_of_two() || sample > MAX_HEAP_PROFILE_SAMPLE {
            return fail(
                "authentication.memory.heap_profile.sample_bytes",
                format!(
                    "{sample} is not a power of two between 1 and 1G (jemalloc samples every 2^n bytes; e.g. 512K)"
                ),
            );
        }
        Ok(())
    }

    fn check_throttle(&self) -> Result<(), Invalid> {
        let t = &self.login_throttle;
        if t.user_failures == 0 {
            return fail(
                "authentication.login_throttle.user_failures",
                "must be at least 1",
            );
        }
        if t.address_failures == 0 {
            return fail(
                "authentication.login_throttle.address_failures",
                "must be at least 1",
            );
        }
        if !(1..=MAX_THROTTLE_KEYS).contains(&t.max_keys) {
            return fail(
                "authentication.login_throttle.max_keys",
                format!("must be between 1 and {MAX_THROTTLE_KEYS}"),
            );
        }
        Ok(())
    }

    fn check_users(&self) -> Result<(), Invalid> {
        let u = &self.users;
        if u.count > 0 && u.password.is_empty() {
            return fail(
                "authentication.users.password",
                "generated users need a password",
            );
        }
        if let Some(path) = &u.file {
            if let Err(e) = std::fs::File::open(path) {
                return fail(
                    "authentication.users.file",
                    format!("cannot read {}: {e}", path.display()),
                );
            }
        }
        let a = &u.argon2;
        if let Err(e) = argon2::Params::new(a.memory_kib, a.iterations, a.parallelism, None) {
            return fail(
                "authentication.users.argon2",
                format!("invalid argon2 cost: {e}"),
            );
        }
        Ok(())
    }
}

/// An IP address, or a host name made of RFC 1123 labels (resolving it is
/// left to bind time: DNS may not be up when the config is checked).
fn check_host(host: &str) -> Result<(), Invalid> {
    const KEY: &str = "authentication.service.host";
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let labels_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    // An all-numeric last label can only be an IPv4 address, which failed.
    let numeric_tld = host
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    if labels_ok && !numeric_tld {
        return Ok(());
    }
    fail(
        KEY,
        format!("`{host}` is neither an IP address (0.0.0.0, ::1) nor a host name (localhost)"),
    )
}

/// A `tracing` filter made only of known levels: `info`, or
/// `target=level` directives separated by commas. `EnvFilter` alone takes
/// any word as a target name, so a typo such as `verbose` would silently
/// log nothing at all.
fn check_log_level(filter: &str) -> Result<(), Invalid> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let known = |l: &str| LEVELS.iter().any(|k| k.eq_ignore_ascii_case(l.trim()));
    for directive in filter.split(',') {
        let ok = match directive.split_once('=') {
            None => known(directive),
            Some((target, level)) => {
                !target.trim().is_empty()
                    && target
                        .trim()
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':' || b == b'-')
                    && known(level)
            }
        };
        if !ok {
            return fail(
                "authentication.log.level",
                format!(
                    "`{}` is not a level: expected off, error, warn, info, debug or trace, or target=level (clw_auth=debug)",
                    directive.trim()
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::LimitSource;

    type Edit = Box<dyn Fn(&mut Config)>;

    fn key_of(cfg: &Config) -> String {
        let limit = MemoryLimit {
            bytes: 256 << 20,
            source: LimitSource::Config,
        };
        cfg.validate_for(&limit).expect_err("must be refused").key
    }

    #[test]
    fn values_that_cannot_work_name_their_key() {
        let base = Config::for_tests();
        base.validate().unwrap();
        let cases: Vec<(&str, Edit)> = vec![
            (
                "authentication.session.max_age",
                Box::new(|c| c.session.max_age = Duration::from_secs(u64::MAX)),
            ),
            (
                "authentication.service.request_timeout",
                Box::new(|c| c.service.request_timeout = MAX_DURATION + Duration::from_secs(1)),
            ),
            (
                "authentication.session.cache.max_size",
                Box::new(|c| c.session.cache.max_size = 100_000_000_000),
            ),
            (
                "authentication.session.cache.max_size",
                Box::new(|c| c.session.cache.max_size = 50_000_000),
            ),
            (
                "authentication.memory.max_heap_size",
                Box::new(|c| c.memory.max_heap_size = Some(0)),
            ),
            (
                "authentication.memory.limit",
                Box::new(|c| c.memory.limit = Some(0)),
            ),
            (
                "authentication.memory.limit",
                Box::new(|c| c.memory.limit = Some(1)),
            ),
            (
                "authentication.service.host",
                Box::new(|c| c.service.host = "not a host".into()),
            ),
            (
                "authentication.service.host",
                Box::new(|c| c.service.host = "300.1.1.1".into()),
            ),
            (
                "authentication.users.file",
                Box::new(|c| c.users.file = Some("/nonexistent/users.txt".into())),
            ),
            (
                "authentication.log.level",
                Box::new(|c| c.log.level = "verbose".into()),
            ),
            (
                "authentication.log.level",
                Box::new(|c| c.log.level = "clw_auth=loud".into()),
            ),
            (
                "authentication.users.argon2.memory_kib",
                Box::new(|c| c.users.argon2.memory_kib = 1 << 30),
            ),
            (
                "authentication.users.count",
                Box::new(|c| c.users.count = 4_000_000_000),
            ),
        ];
        for (key, set) in cases {
            let mut cfg = base.clone();
            set(&mut cfg);
            assert_eq!(key_of(&cfg), key);
        }
    }

    #[test]
    fn reasonable_values_pass() {
        let mut cfg = Config::for_tests();
        cfg.service.host = "localhost".into();
        cfg.log.level = "info,clw_auth=debug,hyper::proto=warn".into();
        cfg.memory.limit = Some(MIN_MEMORY_LIMIT);
        cfg.session.max_age = MAX_DURATION;
        cfg.validate().unwrap();
        for host in ["::1", "0.0.0.0", "auth.example.com", "my-host"] {
            cfg.service.host = host.into();
            cfg.validate().unwrap_or_else(|e| panic!("{host}: {e}"));
        }
    }
}
