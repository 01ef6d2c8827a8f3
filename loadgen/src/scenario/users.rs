//! `[users]`: the accounts virtual users log in as, generated
//! (`user-{index}`) or read from a CSV file; and `[http]`.
//!
//! A services' test accounts are rarely `user-0..N` with one password, and
//! OAuth2 clients come with a `client_id` and a `client_secret`: a CSV file
//! with a header row gives each its own, and every column becomes a
//! variable the steps may use.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::super::error::ScenarioError;
use super::super::model::{HttpOptions, UserPick, UserPool, UserTable};
use super::super::raw::{RawHttp, RawPick, RawUsers};
use super::super::template::{is_builtin, is_identifier, Template};
use super::super::vars::Slot;
use super::Compiler;

/// Most rows a users file may have: a pool, not a database dump.
const MAX_USER_ROWS: usize = 1_000_000;

impl Compiler<'_> {
    pub(super) fn http(&mut self, raw: &RawHttp) -> Result<HttpOptions, ScenarioError> {
        let cookies = raw.cookies.unwrap_or(true);
        if let (false, Some(keep)) = (cookies, &raw.keep_cookies) {
            return Err(self.at(
                keep,
                "`keep_cookies` needs the cookie jar: remove it, or `cookies = false`",
            ));
        }
        if let Some(n) = &raw.follow_redirects {
            self.follow_redirects = *n.get_ref();
        }
        Ok(HttpOptions {
            cookies,
            keep_cookies: raw.keep_cookies.as_ref().is_some_and(|k| *k.get_ref()),
        })
    }

    pub(super) fn users(&mut self, raw: &RawUsers) -> Result<UserPool, ScenarioError> {
        let table = match &raw.file {
            Some(file) => {
                if let Some(count) = &raw.count {
                    return Err(self.at(
                        count,
                        "`count` comes from the rows of `file`: remove one of them",
                    ));
                }
                Some(self.user_file(file)?)
            }
            None => None,
        };
        let count = match (&table, &raw.count) {
            (Some((t, _)), _) => t.rows.len() as u64,
            (None, None) => 16,
            (None, Some(c)) if *c.get_ref() == 0 => {
                return Err(self.at(c, "`count` must be at least 1"))
            }
            (None, Some(c)) => *c.get_ref(),
        };
        let columns = self.columns.clone();
        let vars = self.vars.clone();
        let mut resolve = |name: &str| {
            match columns.iter().any(|c| c == name) {
            true => Ok(Slot(
                vars.iter().position(|v| v == name).expect("column has a slot") as u16,
            )),
            false => Err(format!(
                "`{name}` is not available in [users]: use vu, iter, index, random_hex:N or a column of `file` (captured variables exist only in steps)"
            )),
        }
        };
        let credentials = table.as_ref().map(|(_, c)| *c).unwrap_or_default();
        let mut template = |value: &Option<Spanned<String>>,
                            column: Option<Slot>,
                            default: &str|
         -> Result<Template, ScenarioError> {
            let Some(s) = value else {
                return Ok(match column {
                    Some(slot) => Template::of_var(slot),
                    None => Template::compile(default, &mut resolve)
                        .expect("default user template compiles"),
                });
            };
            let t = self.template(s, &mut resolve)?;
            if t.reads_user() {
                return Err(self.at(
                    s,
                    "[users] templates cannot use {user} or {password}: they define them",
                ));
            }
            Ok(t)
        };
        Ok(UserPool {
            count,
            username: template(&raw.username, credentials.0, "user-{index}")?,
            password: template(&raw.password, credentials.1, "clw-load-test")?,
            pick: match raw.pick {
                None | Some(RawPick::PerVu) => UserPick::PerVu,
                Some(RawPick::Random) => UserPick::Random,
            },
            table: table.map(|(t, _)| t),
        })
    }

    /// Read `[users] file`: a header row of column names, then one account
    /// per row. Returns the table and the slots of the `username` (or
    /// `user`) and `password` columns.
    #[allow(clippy::type_complexity)]
    fn user_file(
        &mut self,
        file: &Spanned<String>,
    ) -> Result<(UserTable, (Option<Slot>, Option<Slot>)), ScenarioError> {
        let path = self.beside_scenario(file.get_ref());
        let at_row = |line: u64, message: String| ScenarioError::Invalid {
            path: path.clone(),
            line: usize::try_from(line).unwrap_or(usize::MAX),
            column: 1,
            message,
        };
        let meta = std::fs::metadata(&path).map_err(|e| {
            self.at(
                file,
                format!("cannot read users file {}: {e}", path.display()),
            )
        })?;
        if !meta.is_file() {
            return Err(self.at(
                file,
                format!("users file {} is not a regular file", path.display()),
            ));
        }
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(&path)
            .map_err(|e| {
                self.at(
                    file,
                    format!("cannot read users file {}: {e}", path.display()),
                )
            })?;
        let header = reader
            .headers()
            .map_err(|e| at_row(1, format!("bad header row: {e}")))?
            .clone();
        let mut slots = Vec::with_capacity(header.len());
        let (mut user, mut password) = (None, None);
        for name in header.iter() {
            let slot = match name {
                "username" | "user" if user.is_none() => {
                    user = Some(self.slot(&format!("[users] {name}")));
                    user
                }
                "password" => {
                    password = Some(self.slot("[users] password"));
                    password
                }
                _ if !is_identifier(name) || is_builtin(name) => {
                    return Err(at_row(1, format!(
                        "column `{name}` cannot be a variable: expected letters, digits and `_`, not a built-in placeholder name (a `username` or `user` and a `password` column are {{user}} and {{password}})"
                    )))
                }
                _ if self.columns.iter().any(|c| c == name) => {
                    return Err(at_row(1, format!("column `{name}` appears twice")))
                }
                _ => {
                    self.columns.push(name.to_string());
                    Some(self.slot(name))
                }
            };
            slots.push(slot.expect("every column has a slot"));
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                at_row(line, format!("bad row: {e}"))
            })?;
            if rows.len() == MAX_USER_ROWS {
                return Err(at_row(
                    record.position().map_or(0, |p| p.line()),
                    format!("more than {MAX_USER_ROWS} users"),
                ));
            }
            rows.push(record.iter().map(|v| v.as_bytes().into()).collect());
        }
        if rows.is_empty() {
            return Err(at_row(
                2,
                "no users: the file has a header row but no accounts".to_string(),
            ));
        }
        Ok((UserTable { slots, rows }, (user, password)))
    }

    /// `name` relative to the scenario file's folder (the working
    /// directory for a built-in scenario).
    fn beside_scenario(&self, name: &str) -> PathBuf {
        let path = Path::new(name);
        if path.is_absolute() || self.src.path.to_string_lossy().starts_with("builtin:") {
            return path.to_path_buf();
        }
        match self.src.path.parent() {
            Some(dir) => dir.join(path),
            None => path.to_path_buf(),
        }
    }
}
