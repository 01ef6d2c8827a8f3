//! JSON request bodies, written in the scenario as TOML values
//! (`body = { username = "{user}", claims = { blob = "{pad:4096}" } }`) and
//! compiled into one JSON template.
//!
//! Writing the body as TOML rather than as a JSON string means the body is
//! valid JSON by construction and its braces never clash with template
//! braces; only string values (not keys) are templates.

use super::template::{push_json_escaped, Builder, Escape, Template, TemplateError};
use super::vars::Slot;

/// A body that does not compile, with the offending TOML string value (so
/// the caller can find it in the file) when there is one.
#[derive(Debug)]
pub(crate) struct BodyError {
    /// The string value the template error is in; `None` for errors about
    /// a non-string value.
    pub(crate) value: Option<String>,
    pub(crate) error: TemplateError,
}

/// Compile `value` into a template rendering its JSON form.
pub(crate) fn compile(
    value: &toml::Value,
    resolve: &mut dyn FnMut(&str) -> Result<Slot, String>,
) -> Result<Template, BodyError> {
    let mut b = Builder::new(Escape::Json);
    emit(&mut b, value, resolve)?;
    Ok(b.finish())
}

fn emit(
    b: &mut Builder,
    value: &toml::Value,
    resolve: &mut dyn FnMut(&str) -> Result<Slot, String>,
) -> Result<(), BodyError> {
    match value {
        toml::Value::String(s) => {
            b.push_raw(b"\"");
            b.push_template(s, resolve).map_err(|error| BodyError {
                value: Some(s.clone()),
                error,
            })?;
            b.push_raw(b"\"");
        }
        toml::Value::Integer(i) => b.push_raw(i.to_string().as_bytes()),
        toml::Value::Float(f) if f.is_finite() => b.push_raw(f.to_string().as_bytes()),
        toml::Value::Float(f) => {
            return Err(plain(format!("{f} has no JSON form: use a finite number")))
        }
        toml::Value::Boolean(v) => b.push_raw(if *v { b"true" } else { b"false" }),
        toml::Value::Datetime(d) => {
            return Err(plain(format!(
                "a TOML date-time ({d}) has no JSON form: write it as a string, \"{d}\""
            )))
        }
        toml::Value::Array(items) => {
            b.push_raw(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    b.push_raw(b",");
                }
                emit(b, item, resolve)?;
            }
            b.push_raw(b"]");
        }
        toml::Value::Table(table) => {
            b.push_raw(b"{");
            for (i, (key, item)) in table.iter().enumerate() {
                if i > 0 {
                    b.push_raw(b",");
                }
                let mut k = vec![b'"'];
                push_json_escaped(&mut k, key.as_bytes());
                k.extend_from_slice(b"\":");
                b.push_raw(&k);
                emit(b, item, resolve)?;
            }
            b.push_raw(b"}");
        }
    }
    Ok(())
}

fn plain(message: String) -> BodyError {
    BodyError {
        value: None,
        error: TemplateError { offset: 0, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::rng::Rng;
    use crate::scenario::template::RenderCtx;
    use crate::scenario::vars::VarStore;

    fn render(src: &str, user: &[u8]) -> Result<Vec<u8>, BodyError> {
        let value: toml::Value =
            toml::from_str::<toml::Table>(&format!("body = {src}")).unwrap()["body"].clone();
        let t = compile(&value, &mut |n| Err(format!("no {n}")))?;
        let vars = VarStore::new(0);
        let rng = Rng::for_vu(0, 0);
        let ctx = RenderCtx {
            vu: 3,
            iter: 4,
            user_index: 3,
            user,
            password: b"pw",
            vars: &vars,
            rng: &rng,
            host: b"127.0.0.1:8443",
        };
        let mut out = Vec::new();
        t.render(&ctx, &mut out);
        Ok(out)
    }

    #[test]
    fn renders_valid_json_with_substitutions() {
        let out = render(
            r#"{ username = "{user}", password = "{password}", n = 1, ok = true, list = [1.5, "a{vu}"], claims = { blob = "{pad:8}" } }"#,
            b"user-3",
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["username"], "user-3");
        assert_eq!(v["password"], "pw");
        assert_eq!(v["n"], 1);
        assert_eq!(v["ok"], true);
        assert_eq!(v["list"][0], 1.5);
        assert_eq!(v["list"][1], "a3");
        assert_eq!(v["claims"]["blob"].as_str().unwrap().len(), 8);
    }

    #[test]
    fn substituted_and_literal_text_is_json_escaped() {
        let out = render(
            r#"{ u = "{user}", lit = "q\"uote\\ {{x}}" }"#,
            b"a\"b\\c\nd",
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["u"], "a\"b\\c\nd");
        assert_eq!(v["lit"], "q\"uote\\ {x}");
    }

    #[test]
    fn template_errors_name_the_string() {
        let e = render(r#"{ a = "ok", b = "x{pad:big}" }"#, b"").unwrap_err();
        assert_eq!(e.value.as_deref(), Some("x{pad:big}"));
        assert_eq!(e.error.offset, 6);
    }

    #[test]
    fn datetimes_are_rejected() {
        let e = render("{ at = 1979-05-27T07:32:00Z }", b"").unwrap_err();
        assert!(e.value.is_none());
        assert!(e.error.message.contains("date-time"), "{}", e.error.message);
    }
}
