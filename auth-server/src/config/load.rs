//! Merges the configuration layers, in increasing precedence: built-in
//! defaults, the JSON file, `CLAW_*` environment variables, then flags.
//!
//! All layers are merged as JSON trees first and typed once at the end, so
//! every value (whatever layer it came from) goes through the same parser
//! and a bad one is reported with its JSON path and the layer that set it.
//!
//! Why by hand rather than with a layering crate (figment, config-rs): the
//! field guide's variable names do not follow the prefix-and-separator rule
//! such crates derive keys from (`CLAW_AUTH_PORT` is `service.port`,
//! `CLAW_SESSION_CACHE` is `session.cache.enabled`, and keys such as
//! `max_size` hold the separator), so the [`ENV_KEYS`] table, the
//! unknown-variable error and the per-key origin in messages would stay
//! ours either way (figment could be bent to it with `Env::map`); the part
//! a crate would replace, the merge, is a few dozen lines over
//! `serde_json::Value`, already a dependency, against a new dependency tree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use thiserror::Error;

use super::{Config, FileRoot, Invalid};
use crate::memory::detect_limit;

/// Every key's environment variable. The first five are the field guide's
/// own names; the rest follow the same pattern.
pub const ENV_KEYS: &[(&str, &str)] = &[
    ("CLAW_AUTH_PORT", "service.port"),
    ("CLAW_SESSION_CACHE", "session.cache.enabled"),
    ("CLAW_SESSION_MAX_AGE", "session.max_age"),
    ("CLAW_SESSION_CACHE_MAX_SIZE", "session.cache.max_size"),
    (
        "CLAW_SESSION_EVICTION_POLICY",
        "session.cache.eviction_policy",
    ),
    ("CLAW_AUTH_HOST", "service.host"),
    ("CLAW_AUTH_MAX_CONNECTIONS", "service.max_connections"),
    (
        "CLAW_AUTH_HEADER_READ_TIMEOUT",
        "service.header_read_timeout",
    ),
    ("CLAW_AUTH_REQUEST_TIMEOUT", "service.request_timeout"),
    ("CLAW_AUTH_BODY_LIMIT", "service.body_limit"),
    ("CLAW_AUTH_SHUTDOWN_GRACE", "service.shutdown_grace"),
    ("CLAW_AUTH_ADMIN_TOKEN", "service.admin_token"),
    ("CLAW_AUTH_TLS_CERT", "service.tls.cert"),
    ("CLAW_AUTH_TLS_KEY", "service.tls.key"),
    ("CLAW_AUTH_TLS_CLIENT_CA", "service.tls.client_ca"),
    ("CLAW_SESSION_MAX_CLAIMS_SIZE", "session.max_claims_size"),
    ("CLAW_SESSION_CACHE_MODE", "session.cache.mode"),
    ("CLAW_SESSION_CACHE_LEAK", "session.cache.leak"),
    ("CLAW_SESSION_CACHE_MAX_BYTES", "session.cache.max_bytes"),
    (
        "CLAW_SESSION_CACHE_TTL_SECONDS",
        "session.cache.ttl_seconds",
    ),
    (
        "CLAW_SESSION_CACHE_CLEANUP_INTERVAL",
        "session.cache.cleanup_interval",
    ),
    ("CLAW_SESSION_CACHE_SHARDS", "session.cache.shards"),
    ("CLAW_MEMORY_MAX_HEAP_SIZE", "memory.max_heap_size"),
    ("CLAW_MEMORY_GC_FREQUENCY", "memory.gc_frequency"),
    ("CLAW_MEMORY_LIMIT", "memory.limit"),
    (
        "CLAW_MEMORY_PRESSURE_THRESHOLD",
        "memory.pressure_threshold",
    ),
    ("CLAW_MEMORY_SHED_ON_PRESSURE", "memory.shed_on_pressure"),
    ("CLAW_MEMORY_MONITOR_INTERVAL", "memory.monitor_interval"),
    ("CLAW_MEMORY_HEAP_PROFILE", "memory.heap_profile.enabled"),
    (
        "CLAW_MEMORY_HEAP_PROFILE_SAMPLE_BYTES",
        "memory.heap_profile.sample_bytes",
    ),
    ("CLAW_USERS_FILE", "users.file"),
    ("CLAW_USERS_COUNT", "users.count"),
    ("CLAW_USERS_PREFIX", "users.prefix"),
    ("CLAW_USERS_PASSWORD", "users.password"),
    ("CLAW_USERS_ARGON2_MEMORY_KIB", "users.argon2.memory_kib"),
    ("CLAW_USERS_ARGON2_ITERATIONS", "users.argon2.iterations"),
    ("CLAW_USERS_ARGON2_PARALLELISM", "users.argon2.parallelism"),
    ("CLAW_LOGIN_THROTTLE", "login_throttle.enabled"),
    (
        "CLAW_LOGIN_THROTTLE_USER_FAILURES",
        "login_throttle.user_failures",
    ),
    (
        "CLAW_LOGIN_THROTTLE_ADDRESS_FAILURES",
        "login_throttle.address_failures",
    ),
    ("CLAW_LOGIN_THROTTLE_WINDOW", "login_throttle.window"),
    ("CLAW_LOGIN_THROTTLE_MAX_KEYS", "login_throttle.max_keys"),
    ("CLAW_LOG_FORMAT", "log.format"),
    ("CLAW_LOG_LEVEL", "log.level"),
];

/// The layers above the defaults.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// `--config FILE`.
    pub file: Option<PathBuf>,
    /// Environment variables (only `CLAW_*` ones are read).
    pub env: Vec<(String, String)>,
    /// Flags, as (key path below `authentication`, value, flag name).
    pub flags: Vec<(String, String, String)>,
}

impl Sources {
    /// The process's own environment.
    pub fn from_process_env(file: Option<PathBuf>) -> Sources {
        Sources {
            file,
            env: std::env::vars()
                .filter(|(k, _)| k.starts_with("CLAW_"))
                .collect(),
            flags: Vec::new(),
        }
    }
}

/// Why the configuration could not be built. `clw-auth` exits 2 on any.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{path}:{line}:{column}: not valid JSON: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde_json said.
        message: String,
    },
    /// A value is missing, unknown or wrong.
    #[error("{key} (from {origin}): {reason}")]
    Invalid {
        /// The JSON path, e.g. `authentication.service.port`.
        key: String,
        /// Which layer set it: the file, `env CLAW_X` or `flag --x`.
        origin: String,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// A `CLAW_*` variable that names no key: almost always a typo that
    /// would otherwise be silently ignored.
    #[error("unknown environment variable {0}: no configuration key has that name (see clw-auth --help)")]
    UnknownEnv(String),
}

/// Builds the effective configuration from the layers.
pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
    let mut tree = serde_json::to_value(FileRoot {
        authentication: Config::default(),
    })
    .expect("defaults serialize");
    let mut origins: HashMap<String, String> = HashMap::new();

    if let Some(path) = &sources.file {
        let file_tree = read_file(path)?;
        record_leaves(&file_tree, String::new(), &mut |key| {
            origins.insert(key, format!("file {}", path.display()));
        });
        merge(&mut tree, file_tree);
    }
    let env_table: HashMap<&str, &str> = ENV_KEYS.iter().copied().collect();
    for (name, value) in &sources.env {
        let Some(key) = env_table.get(name.as_str()) else {
            return Err(ConfigError::UnknownEnv(name.clone()));
        };
        let path = format!("authentication.{key}");
        set_path(&mut tree, &path, Value::String(value.clone()));
        origins.insert(path, format!("env {name}"));
    }
    for (key, value, flag) in &sources.flags {
        let path = format!("authentication.{key}");
        set_path(&mut tree, &path, Value::String(value.clone()));
        origins.insert(path, format!("flag {flag}"));
    }

    let origin_of = |key: &str| {
        origins
            .iter()
            .filter(|(k, _)| {
                key == k.as_str()
                    || key.starts_with(&format!("{k}."))
                    || k.starts_with(&format!("{key}."))
            })
            .map(|(_, v)| v.clone())
            .next()
            .unwrap_or_else(|| "defaults".into())
    };
    let root: FileRoot = serde_path_to_error::deserialize(tree).map_err(|e| {
        let key = e.path().to_string();
        let reason = e.into_inner().to_string();
        ConfigError::Invalid {
            origin: origin_of(&key),
            key,
            reason,
        }
    })?;
    let cfg = root.authentication;
    cfg.validate_for(&detect_limit(cfg.memory.limit))
        .map_err(|Invalid { key, reason }| ConfigError::Invalid {
            origin: origin_of(&key),
            key,
            reason,
        })?;
    Ok(cfg)
}

fn read_file(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    if !value.is_object() || value.get("authentication").is_none() {
        return Err(ConfigError::Invalid {
            key: "authentication".into(),
            origin: format!("file {}", path.display()),
            reason:
                "the file must be an object with an `authentication` key, as in the field guide"
                    .into(),
        });
    }
    Ok(value)
}

/// Calls `f` with the dotted path of every leaf of `v`.
fn record_leaves(v: &Value, prefix: String, f: &mut dyn FnMut(String)) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                record_leaves(child, p, f);
            }
        }
        _ => f(prefix),
    }
}

/// Deep-merges `over` into `base`: objects merge key by key, anything else replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn set_path(tree: &mut Value, path: &str, value: Value) {
    let mut node = tree;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let map = node.as_object_mut().expect("object");
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return;
        }
        node = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CacheMode, EvictionPolicy, LeakKind};
    use std::time::Duration;

    fn file(json: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), json).unwrap();
        f
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const GUIDE_AFTER: &str = r#"{
      "authentication": {
        "service": { "port": 8443, "host": "0.0.0.0" },
        "session": {
          "max_age": 3600,
          "cache": { "enabled": true, "max_size": 10000, "eviction_policy": "lru",
                     "ttl_seconds": 1800, "cleanup_interval": 60 }
        },
        "memory": { "max_heap_size": "1536M", "gc_frequency": "30s" }
      }
    }"#;

    #[test]
    fn the_guides_file_loads_as_written() {
        let f = file(GUIDE_AFTER);
        let cfg = load(&Sources {
            file: Some(f.path().into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.service.port, 8443);
        assert_eq!(cfg.session.cache.max_size, 10_000);
        assert_eq!(cfg.session.cache.ttl_seconds, Duration::from_secs(1800));
        assert_eq!(cfg.memory.max_heap_size, Some(1536 << 20));
        assert_eq!(cfg.memory.gc_frequency, Duration::from_secs(30));
    }

    #[test]
    fn env_beats_file_and_flags_beat_env() {
        let f = file(GUIDE_AFTER);
        let sources = Sources {
            file: Some(f.path().into()),
            env: env(&[
                ("CLAW_AUTH_PORT", "9000"),
                ("CLAW_SESSION_CACHE_MAX_SIZE", "500"),
                ("CLAW_SESSION_EVICTION_POLICY", "LRU"),
                ("CLAW_SESSION_CACHE", "enabled"),
                ("CLAW_SESSION_MAX_AGE", "60"),
                ("CLAW_SESSION_CACHE_MODE", "leaky"),
                ("CLAW_SESSION_CACHE_LEAK", "arc-cycle"),
            ]),
            flags: vec![("service.port".into(), "9100".into(), "--port".into())],
        };
        let cfg = load(&sources).unwrap();
        assert_eq!(cfg.service.port, 9100, "flag wins");
        assert_eq!(cfg.session.cache.max_size, 500, "env beats file");
        assert_eq!(cfg.session.cache.eviction_policy, EvictionPolicy::Lru);
        assert_eq!(cfg.session.max_age, Duration::from_secs(60));
        assert_eq!(cfg.session.cache.mode, CacheMode::Leaky);
        assert_eq!(cfg.session.cache.leak, LeakKind::ArcCycle);
        assert!(cfg.session.cache.enabled);
    }

    #[test]
    fn every_env_key_names_a_real_field() {
        let defaults = serde_json::to_value(Config::default()).unwrap();
        for (name, key) in ENV_KEYS {
            let mut node = &defaults;
            for part in key.split('.') {
                node = node
                    .get(part)
                    .unwrap_or_else(|| panic!("{name} -> {key}: no such key"));
            }
        }
    }

    #[test]
    fn bad_values_name_the_path_and_the_layer() {
        let f = file(r#"{"authentication": {"session": {"cache": {"max_size": "many"}}}}"#);
        let err = load(&Sources {
            file: Some(f.path().into()),
            ..Default::default()
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("authentication.session.cache.max_size"),
            "{text}"
        );
        assert!(text.contains("`many` is not a valid number"), "{text}");
        assert!(text.contains("file "), "{text}");

        let err = load(&Sources {
            env: env(&[("CLAW_AUTH_PORT", "70000")]),
            ..Default::default()
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("authentication.service.port (from env CLAW_AUTH_PORT)"),
            "{text}"
        );
    }

    #[test]
    fn unknown_keys_and_variables_are_errors() {
        let f = file(r#"{"authentication": {"session": {"cache": {"max_sise": 10}}}}"#);
        let text = load(&Sources {
            file: Some(f.path().into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            text.contains("authentication.session.cache") && text.contains("max_sise"),
            "{text}"
        );

        let text = load(&Sources {
            env: env(&[("CLAW_SESSION_MAX_AGEE", "1")]),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(text.contains("CLAW_SESSION_MAX_AGEE"), "{text}");
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let f = file("{\n  \"authentication\": {,}\n}");
        let err = load(&Sources {
            file: Some(f.path().into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
    }

    #[test]
    fn inconsistent_values_fail_validation() {
        let err = load(&Sources {
            env: env(&[("CLAW_SESSION_CACHE_MAX_SIZE", "0")]),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("authentication.session.cache.max_size (from env CLAW_SESSION_CACHE_MAX_SIZE): must be at least 1"), "{err}");
        let err = load(&Sources {
            env: env(&[("CLAW_MEMORY_PRESSURE_THRESHOLD", "150")]),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("pressure_threshold"), "{err}");
    }

    #[test]
    fn effective_config_round_trips() {
        let cfg = Config::for_tests();
        let text = serde_json::to_string(&FileRoot {
            authentication: cfg.clone(),
        })
        .unwrap();
        let f = file(&text);
        let back = load(&Sources {
            file: Some(f.path().into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(back, cfg);
    }
}
