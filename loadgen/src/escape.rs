//! Text clw-cli did not write (run names, step names, notes, failures,
//! rules, all read from run folders other jobs wrote) made safe for where
//! it is shown: a Markdown table cell that lands in `$GITHUB_STEP_SUMMARY`,
//! and a terminal.

/// A Markdown table cell: newlines and control characters become spaces
/// (a newline would end the row), HTML is entity-escaped (GitHub renders
/// it), and Markdown's punctuation is backslash-escaped (`|` would split
/// the cell, a backtick open a code span, `[x](y)` make a link).
pub(crate) fn md_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Console text with every control character but the newline shown as an
/// escape (`\u{1b}`), so that an ESC sequence or a carriage return in a
/// run's name cannot rewrite the terminal or hide a FAIL line.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push('\n'),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_cannot_split_the_row_open_code_or_inject_html() {
        let hostile = "a|b `c` <img src=x onerror=alert(1)>\nnext | row [l](javascript:x)";
        let cell = md_cell(hostile);
        assert!(!cell.contains('\n'));
        assert_eq!(
            cell.matches('|').count(),
            cell.matches("\\|").count(),
            "{cell}"
        );
        assert!(
            !cell.contains('<') && !cell.contains("](javascript"),
            "{cell}"
        );
        assert!(
            cell.contains("\\`c\\`") && cell.contains("&lt;img"),
            "{cell}"
        );
        assert_eq!(
            md_cell("peak_rss_percent < 80"),
            "peak\\_rss\\_percent &lt; 80"
        );
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(
            printable("run\u{1b}[2J\rok\nnext\u{7}"),
            "run\\u{1b}[2J\\u{d}ok\nnext\\u{7}"
        );
        assert_eq!(printable("plain text\n"), "plain text\n");
    }
}
