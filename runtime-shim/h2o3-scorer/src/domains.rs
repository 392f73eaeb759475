//! Domain files `domains/dNNN.txt`: the levels of one categorical column.
//!
//! Two encodings exist (FORMATS.md §3.5): plain lines (with `\n` escaped when
//! `escape_domain_values = true`) and `"quoted"` lines with `""` for a quote.

/// Parses a domain file into its levels.
pub fn parse_domain(text: &str, escaped: bool) -> Vec<String> {
    let mut levels = Vec::new();
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() && lines.peek().is_none() {
            break; // the final newline
        }
        if let Some(rest) = line.strip_prefix('"') {
            // Quoted: may span lines; `""` is a quote.
            let mut value = String::new();
            let mut cur = rest.to_string();
            loop {
                let mut chars = cur.chars().peekable();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            value.push('"');
                        } else {
                            closed = true;
                            break;
                        }
                    } else {
                        value.push(c);
                    }
                }
                if closed {
                    break;
                }
                match lines.next() {
                    Some(next) => {
                        value.push('\n');
                        cur = next.strip_suffix('\r').unwrap_or(next).to_string();
                    }
                    None => break,
                }
            }
            levels.push(value);
        } else if escaped {
            levels.push(unescape(line));
        } else {
            levels.push(line.to_string());
        }
    }
    levels
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        let cases: &[(&str, &str, bool, &[&str])] = &[
            ("plain", "0\n1\n", false, &["0", "1"]),
            ("plain no final newline", "a\nb", false, &["a", "b"]),
            ("escaped newline", "a\\nb\nc\n", true, &["a\nb", "c"]),
            ("quoted", "\"no\"\n\"y\"\"es\"\n", false, &["no", "y\"es"]),
            ("quoted multiline", "\"a\nb\"\nc\n", false, &["a\nb", "c"]),
            ("crlf", "x\r\ny\r\n", false, &["x", "y"]),
        ];
        for (label, text, esc, want) in cases {
            assert_eq!(parse_domain(text, *esc), *want, "case {label}");
        }
    }
}
