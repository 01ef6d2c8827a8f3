//! The service's configuration, in the field guide's JSON schema.
//!
//! Every key the guide names (`authentication.service.port`,
//! `authentication.session.cache.max_size`, `authentication.memory.gc_frequency`,
//! ...) is a field here with the same name; clw adds a few keys of its own
//! (cache `mode` and `leak`, `max_bytes`, `users`, `log`). How the layers
//! (defaults, file, `CLAW_*` environment, flags) are merged lives in
//! [`load`]; this module owns the shape, the defaults and the checks.

mod load;
mod secret;
mod serde_util;
mod validate;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use load::{load, ConfigError, Sources, ENV_KEYS};
pub use secret::Secret;
use serde_util::{de_bool, de_duration, de_num, de_opt_size, de_size, ser_duration};
pub use validate::{Invalid, MAX_DURATION, MIN_MEMORY_LIMIT};

/// The whole configuration; `Config::default()` is the built-in layer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where and how the HTTP listener runs.
    pub service: ServiceConfig,
    /// Session lifetime and the session cache.
    pub session: SessionConfig,
    /// Heap budget, purging, and the memory limit the service watches.
    pub memory: MemoryConfig,
    /// Where the user store comes from.
    pub users: UsersConfig,
    /// Log format and level.
    pub log: LogConfig,
    /// Throttling of failed logins per user and per client address.
    pub login_throttle: ThrottleConfig,
}

/// `authentication.service`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// Address to bind; the guide's default listens on every interface.
    pub host: String,
    /// Port to bind; 0 lets the OS pick one (logged at start-up).
    #[serde(deserialize_with = "de_num")]
    pub port: u16,
    /// Connections served at once; more wait in the accept queue.
    #[serde(deserialize_with = "de_num")]
    pub max_connections: usize,
    /// A client must send its request head within this time, so idle
    /// half-open connections cannot pin memory.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub header_read_timeout: Duration,
    /// Deadline for reading a request body and producing the response.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub request_timeout: Duration,
    /// Largest request body accepted (413 `clw-payload-too-large` above).
    #[serde(deserialize_with = "de_size")]
    pub body_limit: u64,
    /// How long in-flight requests get to finish after SIGTERM.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub shutdown_grace: Duration,
    /// Lets a non-loopback client fetch `GET /debug/pprof/heap` with
    /// `Authorization: Bearer <token>`; unset, only loopback may. Never
    /// printed: `--check-config` and logs show `<redacted>`.
    pub admin_token: Secret,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: TlsConfig,
}

/// `authentication.service.tls`: both set, the listener speaks TLS only
/// (as the field guide's port 8443 suggests); neither, plain HTTP. Read
/// and checked at start-up and by `--check-config` (see [`crate::tls`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) matching the leaf.
    pub key: Option<PathBuf>,
    /// PEM CA certificate(s): when set, every client must present a
    /// certificate they signed (mutual TLS, as a service mesh or a
    /// zero-trust staging network asks); unset, none is asked for.
    pub client_ca: Option<PathBuf>,
}

impl TlsConfig {
    /// Whether the listener speaks TLS.
    pub fn enabled(&self) -> bool {
        self.cert.is_some() || self.key.is_some()
    }
}

/// `authentication.session`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Absolute session lifetime from login (the guide's `max_age`, seconds).
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub max_age: Duration,
    /// Largest `claims` object stored with a session (serialized JSON bytes).
    #[serde(deserialize_with = "de_size")]
    pub max_claims_size: u64,
    /// The session cache itself.
    pub cache: CacheConfig,
}

/// `authentication.session.cache`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// The guide's `enabled` (`CLAW_SESSION_CACHE=enabled`). Sessions live
    /// only in this cache, so disabling it means no token validates.
    #[serde(deserialize_with = "de_bool")]
    pub enabled: bool,
    /// `fixed` (bounded) or `leaky` (reproduces a root cause).
    pub mode: CacheMode,
    /// Which root cause `leaky` reproduces.
    pub leak: LeakKind,
    /// Most sessions kept (the guide's `max_size`).
    #[serde(deserialize_with = "de_num")]
    pub max_size: usize,
    /// Most bytes of sessions kept, counting claims: the guide's pitfall 4
    /// is that a count alone does not bound memory.
    #[serde(deserialize_with = "de_size")]
    pub max_bytes: u64,
    /// What happens when the cache is full.
    pub eviction_policy: EvictionPolicy,
    /// Idle lifetime: a session unused for this long expires.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub ttl_seconds: Duration,
    /// How often the cleanup task sweeps expired sessions.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub cleanup_interval: Duration,
    /// Independent locks the cache is split into, so requests on different
    /// sessions rarely wait for each other.
    #[serde(deserialize_with = "de_num")]
    pub shards: usize,
}

/// Session cache behaviour.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// Bounded by count, bytes, time and the heap budget: the guide's fix.
    Fixed,
    /// Reproduces one of the guide's root causes (see [`LeakKind`]).
    Leaky,
}

/// The guide's leak patterns, one per root cause.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LeakKind {
    /// Sessions stored and never removed, not even on logout.
    Unbounded,
    /// Reads reject expired sessions but never remove them.
    ExpiredRetained,
    /// The token payload copied into a second index that is never cleaned.
    PayloadDuplication,
    /// Session and user records that hold each other, so removal frees nothing.
    ArcCycle,
    /// A per-request backend handle with a buffer, kept forever.
    HandleAccumulation,
}

impl LeakKind {
    /// Every kind, for tests and `make leak-repro LEAK=...` help.
    pub const ALL: [LeakKind; 5] = [
        LeakKind::Unbounded,
        LeakKind::ExpiredRetained,
        LeakKind::PayloadDuplication,
        LeakKind::ArcCycle,
        LeakKind::HandleAccumulation,
    ];

    /// The kebab-case name used in config and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            LeakKind::Unbounded => "unbounded",
            LeakKind::ExpiredRetained => "expired-retained",
            LeakKind::PayloadDuplication => "payload-duplication",
            LeakKind::ArcCycle => "arc-cycle",
            LeakKind::HandleAccumulation => "handle-accumulation",
        }
    }
}

/// What a full cache does with a new session.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EvictionPolicy {
    /// Evict the least recently used session (the guide's choice).
    Lru,
    /// Refuse the login with 503 `clw-session-overflow`.
    Reject,
}

impl<'de> Deserialize<'de> for EvictionPolicy {
    /// Case-insensitive, because the guide writes both `lru` and `LRU`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.to_ascii_lowercase().as_str() {
            "lru" => Ok(EvictionPolicy::Lru),
            "reject" => Ok(EvictionPolicy::Reject),
            _ => Err(serde::de::Error::custom(format!(
                "unknown eviction policy `{s}`: expected `lru` or `reject`"
            ))),
        }
    }
}

/// `authentication.memory`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Heap budget (the guide's `max_heap_size`): above it the fixed cache
    /// evicts least recently used sessions until the heap is back under.
    #[serde(deserialize_with = "de_opt_size")]
    pub max_heap_size: Option<u64>,
    /// How often jemalloc is asked to return dirty pages to the OS, so RSS
    /// follows what is really allocated (the guide's `gc_frequency`).
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub gc_frequency: Duration,
    /// Memory limit used when no cgroup limit applies.
    #[serde(deserialize_with = "de_opt_size")]
    pub limit: Option<u64>,
    /// RSS as percent of the limit above which /ready turns 503 and
    /// `clw-memory-pressure` is logged.
    #[serde(deserialize_with = "de_num")]
    pub pressure_threshold: f64,
    /// Refuse logins with 503 `clw-memory-pressure` above the threshold.
    /// Unset means "yes in fixed mode, no in leaky mode", so the leaky
    /// mode reproduces production, which did not shed.
    #[serde(deserialize_with = "serde_util::de_opt_bool")]
    pub shed_on_pressure: Option<bool>,
    /// How often memory is checked against the limit and the heap budget.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub monitor_interval: Duration,
    /// jemalloc heap profiling, served at `GET /debug/pprof/heap`.
    pub heap_profile: HeapProfileConfig,
}

/// `authentication.memory.heap_profile`: jemalloc samples one allocation
/// about every `sample_bytes` allocated and records its stack, so a live
/// heap profile names the sites that hold memory. Off, jemalloc records
/// nothing and `/debug/pprof/heap` answers 404 `clw-heap-profile-off`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HeapProfileConfig {
    /// Sample allocations (takes effect at start-up).
    #[serde(deserialize_with = "de_bool")]
    pub enabled: bool,
    /// Mean bytes allocated between two samples; a power of two (jemalloc
    /// keeps its base-2 logarithm, `lg_prof_sample`).
    #[serde(deserialize_with = "de_size")]
    pub sample_bytes: u64,
}

impl Default for HeapProfileConfig {
    fn default() -> Self {
        HeapProfileConfig {
            enabled: true,
            sample_bytes: 512 << 10,
        }
    }
}

/// `authentication.users`: the user store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UsersConfig {
    /// A file of `username:$argon2id$...` lines (PHC strings).
    pub file: Option<PathBuf>,
    /// Users to generate: `{prefix}0` .. `{prefix}{count-1}`.
    #[serde(deserialize_with = "de_num")]
    pub count: usize,
    /// Name prefix for generated users.
    pub prefix: String,
    /// The password every generated user shares.
    pub password: String,
    /// Hashing cost for generated users.
    pub argon2: Argon2Config,
}

/// Argon2id cost. Load-test profiles use the minimum so a login measures
/// the session cache, not the password hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Argon2Config {
    /// Memory per hash, KiB.
    #[serde(deserialize_with = "de_num")]
    pub memory_kib: u32,
    /// Passes over memory.
    #[serde(deserialize_with = "de_num")]
    pub iterations: u32,
    /// Lanes.
    #[serde(deserialize_with = "de_num")]
    pub parallelism: u32,
}

/// `authentication.log`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `clw_auth=debug`.
    pub level: String,
}

/// `authentication.login_throttle`: each user name and each client
/// address may fail this many logins at once, refilled evenly over
/// `window`; past that, attempts get 429 `clw-auth-throttled` before the
/// password is checked. Only failures count: valid logins are never slowed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Off: every attempt is checked, however many fail.
    #[serde(deserialize_with = "de_bool")]
    pub enabled: bool,
    /// Failed logins one user name may have within `window`.
    #[serde(deserialize_with = "de_num")]
    pub user_failures: u32,
    /// Failed logins one client address (IPv4, or IPv6 /64) may have
    /// within `window`, across user names.
    #[serde(deserialize_with = "de_num")]
    pub address_failures: u32,
    /// Time over which a spent budget refills.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub window: Duration,
    /// Most user names, and most addresses, remembered (16 bytes each plus
    /// the table's overhead); past it the least recently failed is forgotten.
    #[serde(deserialize_with = "de_num")]
    pub max_keys: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            enabled: true,
            user_failures: 10,
            address_failures: 100,
            window: Duration::from_secs(60),
            max_keys: 65_536,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            host: "0.0.0.0".into(),
            port: 8443,
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            body_limit: 64 << 10,
            shutdown_grace: Duration::from_secs(10),
            admin_token: Secret::default(),
            tls: TlsConfig::default(),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_age: Duration::from_secs(3600),
            max_claims_size: 16 << 10,
            cache: CacheConfig::default(),
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            mode: CacheMode::Fixed,
            leak: LeakKind::Unbounded,
            max_size: 10_000,
            max_bytes: 64 << 20,
            eviction_policy: EvictionPolicy::Lru,
            ttl_seconds: Duration::from_secs(1800),
            cleanup_interval: Duration::from_secs(60),
            shards: 16,
        }
    }
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            max_heap_size: None,
            gc_frequency: Duration::from_secs(30),
            limit: None,
            pressure_threshold: 90.0,
            shed_on_pressure: None,
            monitor_interval: Duration::from_millis(100),
            heap_profile: HeapProfileConfig::default(),
        }
    }
}

impl Default for UsersConfig {
    fn default() -> Self {
        UsersConfig {
            file: None,
            count: 0,
            prefix: "user-".into(),
            password: String::new(),
            argon2: Argon2Config::default(),
        }
    }
}

impl Default for Argon2Config {
    /// OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane).
    fn default() -> Self {
        Argon2Config {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Config {
    /// A config for tests: loopback, an OS-picked port, 16 users
    /// (`user-0`..`user-15`, password `clw-load-test`) hashed at the lowest
    /// argon2 cost, and memory checks every 20 ms.
    pub fn for_tests() -> Config {
        let mut cfg = Config::default();
        cfg.service.host = "127.0.0.1".into();
        cfg.service.port = 0;
        cfg.service.shutdown_grace = Duration::from_secs(2);
        cfg.users.count = 16;
        cfg.users.password = "clw-load-test".into();
        cfg.users.argon2 = Argon2Config {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        };
        cfg.memory.monitor_interval = Duration::from_millis(20);
        cfg
    }

    /// Whether logins are refused under memory pressure (see
    /// [`MemoryConfig::shed_on_pressure`]).
    pub fn sheds_on_pressure(&self) -> bool {
        self.memory
            .shed_on_pressure
            .unwrap_or(self.session.cache.mode == CacheMode::Fixed)
    }
}

/// The guide's file layout: everything sits under `authentication`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileRoot {
    pub(crate) authentication: Config,
}
