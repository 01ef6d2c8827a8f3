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

/// A URL as it may be shown: its user info (`user:password@`, or a bare
/// `token@`) and every query value (`?token=x` -> `?token=REDACTED`)
/// replaced, everything else kept, so an error or a record can name the
/// URL without its credentials.
pub(crate) fn url(text: &str) -> String {
    let (base, fragment) = match text.find('#') {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let (base, query) = match base.find('?') {
        Some(i) => (&base[..i], Some(&base[i + 1..])),
        None => (base, None),
    };
    let mut out = match base.find("://") {
        Some(i) => {
            let (scheme, rest) = base.split_at(i + 3);
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            match rest[..end].rfind('@') {
                Some(at) => {
                    let user = &rest[..at];
                    let shown = match user.split_once(':') {
                        Some((name, _)) => format!("{name}:{REDACTED}"),
                        None => REDACTED.to_string(),
                    };
                    format!("{scheme}{shown}{}", &rest[at..])
                }
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    };
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) => format!("{key}={REDACTED}"),
                None if pair.is_empty() => String::new(),
                None => REDACTED.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out.push_str(fragment);
    out
}

/// A secret value replaced, keeping a shell operator that ends it
/// (`TOKEN=x;` in a script: `TOKEN=REDACTED;`), so the script still reads.
fn redacted_value(value: &str) -> String {
    match value.find([';', '&', '|', ')']) {
        Some(i) => format!("{REDACTED}{}", &value[i..]),
        None => REDACTED.into(),
    }
}

/// The command line with every secret value replaced, re-quoted so it
/// still reads as one command. A word that is itself a script (`sh -c
/// '... TOKEN=x exec server'`) is redacted word by word in place (see
/// [`script`]), so only the value goes, never the rest of the script. A
/// line that cannot be split is not recorded at all (it never ran).
pub(crate) fn command(line: &str) -> String {
    let Some(words) = shlex::split(line) else {
        return REDACTED.into();
    };
    let out = words_redacted(
        words
            .into_iter()
            .map(|w| match w.contains(char::is_whitespace) {
                true => Word::Script(w),
                false => Word::Plain(w),
            }),
    );
    shlex::try_join(out.iter().map(String::as_str)).unwrap_or_else(|_| out.join(" "))
}

/// A script passed as one argument, its secrets replaced in place: split
/// at spaces and joined again by them, not re-quoted, so an assignment
/// stays an assignment (`TOKEN=REDACTED exec server`).
fn script(text: &str) -> String {
    words_redacted(text.split(' ').map(|w| Word::Plain(w.to_string()))).join(" ")
}

/// One word of a command line: a plain argument, or a script.
enum Word {
    Plain(String),
    Script(String),
}

/// The words with every secret value replaced: the value after a secret
/// flag (`--token X`), of a secret assignment or flag (`TOKEN=X`,
/// `--password=X`) and a URL's password.
fn words_redacted(words: impl Iterator<Item = Word>) -> Vec<String> {
    let mut out = Vec::new();
    let mut next_is_secret = false;
    for word in words {
        let word = match word {
            Word::Script(text) => {
                next_is_secret = false;
                out.push(script(&text));
                continue;
            }
            Word::Plain(word) => word,
        };
        if std::mem::take(&mut next_is_secret) && !word.is_empty() && !word.starts_with("--") {
            out.push(redacted_value(&word));
            continue;
        }
        match word.split_once('=') {
            Some((name, value)) if is_secret_name(name) => {
                out.push(format!("{name}={}", redacted_value(value)));
            }
            _ if word.starts_with('-') && is_secret_name(&word) => {
                next_is_secret = true;
                out.push(word);
            }
            _ => out.push(redact_userinfo(&word).unwrap_or(word)),
        }
    }
    out
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

    /// A wrapper script keeps every word but the secret's value.
    #[test]
    fn a_scripts_secret_is_redacted_and_the_rest_of_the_script_kept() {
        let line = "sh -c 'CLAW_AUTH_ADMIN_TOKEN=x exec clw-auth --config p.json --port 8443'";
        let out = command(line);
        assert_eq!(
            out,
            "sh -c 'CLAW_AUTH_ADMIN_TOKEN=REDACTED exec clw-auth --config p.json --port 8443'"
        );
        let out = command("sh -c 'export API_TOKEN=s3cr3t; exec node app.js --password hunter2'");
        assert!(!out.contains("s3cr3t") && !out.contains("hunter2"), "{out}");
        assert!(
            out.contains("API_TOKEN=REDACTED; exec node app.js --password REDACTED"),
            "{out}"
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

    #[test]
    fn a_urls_credentials_and_query_values_are_redacted() {
        assert_eq!(
            url("http://u:PASSWORD@127.0.0.1:9/metrics"),
            "http://u:REDACTED@127.0.0.1:9/metrics"
        );
        assert_eq!(
            url("https://TOKEN@host/x?token=abc&debug"),
            "https://REDACTED@host/x?token=REDACTED&REDACTED"
        );
        assert_eq!(url("http://127.0.0.1:8443"), "http://127.0.0.1:8443");
        assert_eq!(url("htp:/a@b?k=v"), "htp:/a@b?k=REDACTED");
    }
}
