//! How a value is written as a scalar. Values are strings, so a value that a
//! YAML 1.1 or 1.2 reader would take for a number, bool, null or date, or that
//! plain style cannot hold, is quoted; the caller's style is kept whenever it
//! can hold the value.

use crate::ScalarStyle;

/// Characters that YAML cannot show literally (or that would start a new line).
fn needs_escape(c: char) -> bool {
    c < ' '
        || ('\u{7f}'..='\u{9f}').contains(&c)
        || matches!(
            c,
            '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}'
        )
}

/// Whether a plain scalar would be read as something other than this string
/// by a YAML 1.1 or 1.2 reader (Kubernetes tooling still speaks 1.1).
fn looks_typed(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "<<" | "="
    ) {
        return true;
    }
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, ".inf" | ".nan") {
        return true;
    }
    // Numbers in any base, dates, sexagesimal: quote anything that starts like a
    // number and uses only number-ish characters. Overly careful is harmless.
    unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && unsigned.chars().all(|c| {
            c.is_ascii_hexdigit()
                || matches!(
                    c,
                    '_' | '.' | ':' | '+' | '-' | 'x' | 'o' | 'b' | 't' | 'z' | ' '
                )
        })
}

fn plain_ok(value: &str, in_flow: bool) -> bool {
    const INDICATORS: &str = "-?:,[]{}#&*!|>'\"%@`";
    const FLOW: &str = ",[]{}";
    let Some(first) = value.chars().next() else {
        return false;
    };
    let second = value.chars().nth(1);
    if value.chars().any(|c| needs_escape(c) || c == '\t')
        || value.starts_with(' ')
        || value.ends_with(' ')
        || value.ends_with(':')
        || value.contains(": ")
        || value.contains(" #")
        || value.starts_with("---")
        || value.starts_with("...")
        || (in_flow && value.contains(|c| FLOW.contains(c)))
        || looks_typed(value)
    {
        return false;
    }
    if INDICATORS.contains(first) {
        // `-`, `?` and `:` may start a plain scalar when followed by a
        // non-space character that is safe in this context.
        let safe_next = second.is_some_and(|c| c != ' ' && !(in_flow && FLOW.contains(c)));
        return matches!(first, '-' | '?' | ':') && safe_next;
    }
    true
}

fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `value` in `style` if that style can hold it, else in the least
/// surprising quoting that can.
pub(crate) fn render_scalar(value: &str, style: ScalarStyle, in_flow: bool) -> String {
    match style {
        ScalarStyle::Plain if plain_ok(value, in_flow) => value.to_owned(),
        ScalarStyle::SingleQuoted if !value.chars().any(needs_escape) => {
            format!("'{}'", value.replace('\'', "''"))
        }
        _ => double_quoted(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_rules() {
        assert!(
            looks_typed("0x1F")
                && looks_typed("1e3")
                && looks_typed("-.inf")
                && looks_typed("2024-01-02")
        );
        assert!(looks_typed("Yes") && looks_typed("~") && looks_typed("12:30"));
        assert!(!looks_typed("v1.2") && !looks_typed("latest") && !looks_typed("sha256:ab"));
        assert_eq!(double_quoted("a\u{85}b\u{feff}"), "\"a\\u0085b\\uFEFF\"");
        assert_eq!(
            render_scalar("x'y", ScalarStyle::SingleQuoted, false),
            "'x''y'"
        );
        assert_eq!(render_scalar(" x", ScalarStyle::Plain, false), "\" x\"");
        assert_eq!(render_scalar("a:b", ScalarStyle::Plain, true), "a:b");
        assert_eq!(render_scalar(":b", ScalarStyle::Plain, false), ":b");
        assert_eq!(render_scalar("---x", ScalarStyle::Plain, false), "\"---x\"");
    }
}
