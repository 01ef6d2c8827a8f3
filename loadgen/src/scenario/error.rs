//! Scenario errors, and the mapping from byte offsets in a scenario file to
//! the `path:line:column` a person (or an editor) can jump to.

use std::path::{Path, PathBuf};

/// Why a scenario file could not be used. Every variant that concerns the
/// file's content carries the position of the offending text, because a
/// scenario author fixes a typo faster when pointed at it; the engine maps
/// any `ScenarioError` to exit code 2 (bad input).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read at all.
    #[error("{}: cannot read scenario: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No such file, and no built-in scenario of that name.
    #[error("{}: no such scenario file, and no built-in scenario `{name}` (built-in: {})", path.display(), super::BUILTIN.map(|(n, _)| n).join(", "))]
    NotFound { path: PathBuf, name: String },
    /// The file was read but its content is wrong at `line:column`.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column, counted in characters.
        column: usize,
        /// What is wrong and what was expected instead.
        message: String,
    },
}

impl ScenarioError {
    /// The 1-based `(line, column)` of an `Invalid` error.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ScenarioError::Io { .. } | ScenarioError::NotFound { .. } => None,
            ScenarioError::Invalid { line, column, .. } => Some((*line, *column)),
        }
    }
}

/// The source text of one scenario file, used to turn byte offsets into
/// positions when building errors.
pub(crate) struct Source<'a> {
    pub(crate) text: &'a str,
    pub(crate) path: &'a Path,
}

impl Source<'_> {
    /// An `Invalid` error at byte `offset` of the file (clamped to its end).
    pub(crate) fn error_at(&self, offset: usize, message: impl Into<String>) -> ScenarioError {
        let (line, column) = line_col(self.text, offset);
        ScenarioError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// 1-based line and character column of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (1, 5));
        assert_eq!(line_col(text, 6), (2, 1));
        // 'é' is two bytes but one column.
        let eq = text.find(" = \"x").unwrap();
        assert_eq!(line_col(text, eq), (2, 3));
        assert_eq!(line_col(text, 10_000), (3, 1));
    }

    #[test]
    fn display_is_path_line_column_message() {
        let src = Source {
            text: "x\ny",
            path: Path::new("s.toml"),
        };
        let e = src.error_at(2, "bad thing");
        assert_eq!(e.to_string(), "s.toml:2:1: bad thing");
        assert_eq!(e.position(), Some((2, 1)));
    }
}
