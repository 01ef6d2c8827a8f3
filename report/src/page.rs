//! HTML pages from minijinja templates compiled into the crate: the layout
//! carries the inline CSS, so every page is one self-contained file.

use std::path::Path;
use std::sync::OnceLock;

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, Output, State};
use serde::Serialize;

use crate::error::ReportError;

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_formatter(html_formatter);
        // Names ending in .html are auto-escaped; only the SVGs our own
        // chart code produced are marked |safe in the templates.
        for (name, source) in [
            ("style.css", include_str!("../templates/style.css")),
            ("layout.html", include_str!("../templates/layout.html")),
            ("run.html", include_str!("../templates/run.html")),
            ("compare.html", include_str!("../templates/compare.html")),
            ("index.html", include_str!("../templates/index.html")),
        ] {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name} does not compile: {e:#}"));
        }
        env
    })
}

/// Like minijinja's default escaping, minus `/` -> `&#x2f;`: paths and
/// ratios stay readable in the page source, and `/` is harmless in text and
/// quoted attributes.
fn html_formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    if value.is_safe()
        || !matches!(state.auto_escape(), AutoEscape::Html)
        || value.is_none()
        || value.is_undefined()
    {
        return minijinja::escape_formatter(out, state, value);
    }
    let text = value.to_string();
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            c => escaped.push(c),
        }
    }
    out.write_str(&escaped).map_err(Error::from)
}

/// Renders template `name` with `view` into `out`.
pub(crate) fn write(name: &str, view: impl Serialize, out: &Path) -> Result<(), ReportError> {
    let template_err = |e: minijinja::Error| ReportError::Template {
        name: name.to_string(),
        reason: format!("{e:#}"),
    };
    let html = env()
        .get_template(name)
        .map_err(template_err)?
        .render(minijinja::context! { v => view, generator => concat!("clw-report ", env!("CARGO_PKG_VERSION")) })
        .map_err(template_err)?;
    clw_run::write_atomic(out, html.as_bytes()).map_err(|e| ReportError::write(out, e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_templates_compile() {
        for name in ["run.html", "compare.html", "index.html"] {
            assert!(super::env().get_template(name).is_ok(), "{name}");
        }
    }
}
