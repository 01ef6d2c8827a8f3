//! The Prometheus text exposition format, line by line: each sample's
//! metric name, label set and value.
//!
//! Hand-written rather than taken from `prometheus-parse`: that crate cuts
//! a label set at its first `}` and splits it on commas, so a label value
//! holding either (`path="/a,b"`, a cAdvisor `id`) breaks the line, and
//! a selector must see every label exactly as the service wrote it.

/// One sample line: `name{label="value",...} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample<'a> {
    pub(crate) name: &'a str,
    /// Label names and unescaped values, in the order written.
    pub(crate) labels: Vec<(&'a str, String)>,
    pub(crate) value: f64,
}

impl Sample<'_> {
    /// The value of label `name`; absent labels read as "" (Prometheus's
    /// rule for matchers).
    pub(crate) fn label(&self, name: &str) -> &str {
        if name == "__name__" {
            return self.name;
        }
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Every sample line of `text` with a finite value. Comments, blank lines
/// and lines that are not understood are skipped: a service may export
/// anything, and one odd line must not hide the rest.
pub(crate) fn samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines().filter_map(|line| parse_line(line.trim()))
}

fn parse_line(line: &str) -> Option<Sample<'_>> {
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        rest = parse_labels(body, &mut labels)?;
    }
    let value = rest
        .split_whitespace()
        .next()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Parses `a="x",b="y"}` into `labels`; returns the text after the `}`.
fn parse_labels<'a>(mut text: &'a str, labels: &mut Vec<(&'a str, String)>) -> Option<&'a str> {
    loop {
        text = text.trim_start_matches([' ', ',']);
        if let Some(after) = text.strip_prefix('}') {
            return Some(after);
        }
        let eq = text.find('=')?;
        let name = text[..eq].trim();
        let quoted = text[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((name, value));
        text = &quoted[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_labels_and_values_with_escapes_commas_and_braces() {
        let text = "\
# HELP x y
container_memory_working_set_bytes{id=\"/kubepods/a,b\",pod=\"auth-7f9\",container=\"auth\"} 1.5e8 1700000000000
up 1
odd{a=\"q\\\"}\\\\\\n\"} 2
broken{a=\"x\" 3
nan_is_skipped NaN
";
        let all: Vec<Sample> = samples(text).collect();
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(all[0].name, "container_memory_working_set_bytes");
        assert_eq!(all[0].label("id"), "/kubepods/a,b");
        assert_eq!(all[0].label("container"), "auth");
        assert_eq!(all[0].label("absent"), "");
        assert_eq!(all[0].label("__name__"), all[0].name);
        assert_eq!(all[0].value, 1.5e8);
        assert_eq!((all[1].name, all[1].value), ("up", 1.0));
        assert_eq!(all[2].label("a"), "q\"}\\\n");
    }
}
