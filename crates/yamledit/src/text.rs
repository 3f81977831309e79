//! Byte offsets and the lines they sit on. Every position in this crate is a
//! byte offset into the source; these helpers turn one into a line start, a
//! 1-based line and character column, or find the file's line break.

const BOM: &str = "\u{feff}";

/// Start of the line holding `pos`; a leading BOM is not part of line one.
pub(crate) fn line_start(src: &str, pos: usize) -> usize {
    match src[..pos].rfind('\n') {
        Some(i) => i + 1,
        None if src.starts_with(BOM) && pos >= BOM.len() => BOM.len(),
        None => 0,
    }
}

/// Start of the line after the one on which the content ending at `end`
/// (exclusive) ends, or `None` if that is the last line and has no line break.
pub(crate) fn next_line_start(src: &str, end: usize) -> Option<usize> {
    if end > 0 && src.as_bytes()[end - 1] == b'\n' {
        return Some(end);
    }
    src[end..].find('\n').map(|i| end + i + 1)
}

pub(crate) fn char_column(src: &str, pos: usize) -> usize {
    src[line_start(src, pos)..pos].chars().count()
}

pub(crate) fn location(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    (
        src[..pos].matches('\n').count() + 1,
        char_column(src, pos) + 1,
    )
}

/// The first lone CR (`\r` not followed by `\n`). YAML reads it as a line
/// break, but the line helpers here know only LF and CRLF.
pub(crate) fn lone_cr(src: &str) -> Option<usize> {
    src.match_indices('\r')
        .map(|(i, _)| i)
        .find(|&i| src.as_bytes().get(i + 1) != Some(&b'\n'))
}

/// The first BOM that does not start the text. The parser skips it, but
/// here it would count as a column.
pub(crate) fn stray_bom(src: &str) -> Option<usize> {
    src.match_indices(BOM).map(|(i, _)| i).find(|&i| i > 0)
}

pub(crate) fn line_break(src: &str) -> &'static str {
    match src.find('\n') {
        Some(i) if i > 0 && src.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// Whether the `:` at `pos` is a value indicator rather than the first
/// character of a plain scalar (`:x`): it is followed by a space, a line
/// break or the end of the text, or in flow context by a flow indicator.
pub(crate) fn is_value_indicator(src: &str, pos: usize, in_flow: bool) -> bool {
    if !src[pos..].starts_with(':') {
        return false;
    }
    match src[pos + 1..].chars().next() {
        None | Some(' ' | '\t' | '\r' | '\n') => true,
        Some(',' | '[' | ']' | '{' | '}') => in_flow,
        Some(_) => false,
    }
}
