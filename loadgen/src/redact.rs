//! Secrets out of the run folder: summary.json (and the report drawn from
//! it) records the `--spawn-server` command line, which may carry a
//! password or token as a flag value (`--admin-token X`, `--password=X`), an
//! environment assignment (`env API_KEY=X clw-auth`) or URL user info
//! (`redis://user:X@host`). Their values are replaced by `REDACTED`.

/// What replaces a secret value.
/// Plain letters, so the re-quoted command line needs no quotes for it.
pub(crate) const REDACTED: &str = "REDACTED";

/// Whether a flag or variable name names a secret.
fn is_secret_name(name: &str) -> bool {
    let name = name.trim_start_matches('-').to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "key", "credential"]
        .iter()
        .any(|s| name.contains(s))
}

/// `scheme://user:secret@host` -> `scheme://user:REDACTED@host`.
fn redact_userinfo(word: &str) -> Option<String> {
    let scheme_end = word.find("://")? + 3;
    let rest = &word[scheme_end..];
    let at = rest.find('@')?;
    let colon = rest[..at].find(':')?;
    Some(format!(
        "{}{}:{REDACTED}{}",
        &word[..scheme_end],
        &rest[..colon],
        &rest[at..]
    ))
}

/// The command line with every secret value replaced, re-quoted so it
/// still reads as one command. A line that cannot be split is not recorded
/// at all (it never ran).
pub(crate) fn command(line: &str) -> String {
    let Some(words) = shlex::split(line) else {
        return REDACTED.into();
    };
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut next_is_secret = false;
    for word in words {
        if std::mem::take(&mut next_is_secret) && !word.starts_with("--") {
            out.push(REDACTED.into());
            continue;
        }
        match word.split_once('=') {
            Some((name, _)) if is_secret_name(name) => {
                out.push(format!("{name}={REDACTED}"));
            }
            _ if word.starts_with('-') && is_secret_name(&word) => {
                next_is_secret = true;
                out.push(word);
            }
            _ => out.push(redact_userinfo(&word).unwrap_or(word)),
        }
    }
    shlex::try_join(out.iter().map(String::as_str)).unwrap_or_else(|_| out.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_flag_values_env_assignments_and_url_passwords_are_redacted() {
        let line = "env CLW_API_TOKEN=t0k3n DB_PASSWORD='p a s s' clw-auth --config x.json \
                    --admin-token abc123 --password=hunter2 --secret-key s3 -v \
                    --upstream redis://user:pw@127.0.0.1:6379 --port 8443";
        let out = command(line);
        for secret in ["t0k3n", "p a s s", "abc123", "hunter2", "s3", "pw@"] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        for kept in [
            "CLW_API_TOKEN=REDACTED",
            "--config x.json",
            "--admin-token REDACTED",
            "--password=REDACTED",
            "redis://user:REDACTED@127.0.0.1:6379",
            "--port 8443",
            "-v",
        ] {
            assert!(out.contains(kept), "{kept} missing from {out}");
        }
        assert_eq!(
            shlex::split(&out).unwrap().len(),
            shlex::split(line).unwrap().len()
        );
    }

    #[test]
    fn a_secret_flag_followed_by_another_flag_redacts_nothing_else() {
        assert_eq!(
            command("clw-auth --token --port 1"),
            "clw-auth --token --port 1"
        );
        assert_eq!(
            command("clw-auth --keep-alive 5"),
            "clw-auth --keep-alive 5"
        );
    }
}
