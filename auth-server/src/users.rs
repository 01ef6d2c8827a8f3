//! The user store: argon2id PHC hashes, loaded from a file or generated.
//!
//! Passwords are checked with argon2's own verifier; an unknown user is
//! checked against a dummy hash of the same cost, so response time does not
//! reveal which user names exist.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use thiserror::Error;

use crate::config::{Argon2Config, UsersConfig};

/// Why the user store could not be built.
#[derive(Debug, Error)]
pub enum UsersError {
    /// The users file could not be read.
    #[error("cannot read users file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line of the users file is malformed.
    #[error("{path}:{line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong and what was expected.
        reason: String,
    },
    /// Hashing failed (bad cost parameters).
    #[error("cannot hash passwords: {0}")]
    Hash(String),
}

struct User {
    name: Arc<str>,
    phc: String,
}

/// Users by name.
pub struct UserStore {
    users: HashMap<String, User>,
    argon2: Argon2<'static>,
    dummy_phc: String,
}

fn hasher(cost: &Argon2Config) -> Result<Argon2<'static>, UsersError> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
        .map_err(|e| UsersError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash(argon2: &Argon2<'_>, password: &str) -> Result<String, UsersError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UsersError::Hash(e.to_string()))
}

impl UserStore {
    /// Builds the store the config describes: the file's users, then the
    /// generated ones (each with its own salt).
    pub fn from_config(cfg: &UsersConfig) -> Result<UserStore, UsersError> {
        let argon2 = hasher(&cfg.argon2)?;
        let mut users = HashMap::new();
        if let Some(path) = &cfg.file {
            load_file(path, &mut users)?;
        }
        for i in 0..cfg.count {
            let name = format!("{}{i}", cfg.prefix);
            let phc = hash(&argon2, &cfg.password)?;
            users.insert(
                name.clone(),
                User {
                    name: name.into(),
                    phc,
                },
            );
        }
        let dummy_phc = hash(&argon2, "clw-dummy-password")?;
        Ok(UserStore {
            users,
            argon2,
            dummy_phc,
        })
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there are no users (nobody can log in).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user's shared name if the password is right.
    pub fn verify(&self, username: &str, password: &str) -> Option<Arc<str>> {
        let (user, phc) = match self.users.get(username) {
            Some(u) => (Some(u), u.phc.as_str()),
            None => (None, self.dummy_phc.as_str()),
        };
        let parsed = PasswordHash::new(phc).ok()?;
        let ok = self
            .argon2
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        user.filter(|_| ok).map(|u| u.name.clone())
    }
}

/// Reads `username:PHC` lines; `#` starts a comment line.
fn load_file(path: &Path, users: &mut HashMap<String, User>) -> Result<(), UsersError> {
    let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |reason: String| UsersError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let (name, phc) = line
            .split_once(':')
            .ok_or_else(|| err("expected `username:$argon2id$...`".into()))?;
        if name.is_empty() {
            return Err(err("empty user name".into()));
        }
        let parsed =
            PasswordHash::new(phc).map_err(|e| err(format!("not a PHC hash string: {e}")))?;
        if parsed.algorithm.as_str() != "argon2id" {
            return Err(err(format!(
                "algorithm `{}` is not argon2id",
                parsed.algorithm
            )));
        }
        users.insert(
            name.to_string(),
            User {
                name: name.into(),
                phc: phc.to_string(),
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Config {
        Argon2Config {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[test]
    fn generated_users_verify_with_their_password_only() {
        let cfg = UsersConfig {
            count: 3,
            password: "pw".into(),
            argon2: cheap(),
            ..UsersConfig::default()
        };
        let store = UserStore::from_config(&cfg).unwrap();
        assert_eq!(store.len(), 3);
        assert_eq!(store.verify("user-2", "pw").as_deref(), Some("user-2"));
        assert!(store.verify("user-2", "wrong").is_none());
        assert!(store.verify("user-3", "pw").is_none());
        assert_ne!(
            store.users["user-0"].phc, store.users["user-1"].phc,
            "salted"
        );
    }

    #[test]
    fn users_file_loads_and_bad_lines_are_located() {
        let phc = hash(&hasher(&cheap()).unwrap(), "s3cret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, format!("# users\nalice:{phc}\n")).unwrap();
        let cfg = UsersConfig {
            file: Some(path.clone()),
            argon2: cheap(),
            ..UsersConfig::default()
        };
        let store = UserStore::from_config(&cfg).unwrap();
        assert_eq!(store.verify("alice", "s3cret").as_deref(), Some("alice"));

        std::fs::write(&path, format!("alice:{phc}\nbob-no-hash\n")).unwrap();
        let err = UserStore::from_config(&cfg).err().unwrap().to_string();
        assert!(
            err.ends_with(":2: expected `username:$argon2id$...`"),
            "{err}"
        );
    }
}
