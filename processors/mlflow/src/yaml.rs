//! Safe YAML reading for the small text files of an MLflow model (`MLmodel`, `conda.yaml`,
//! `python_env.yaml`, `registered_model_meta`).
//!
//! These files come from untrusted archives, so they are read with `serde-saphyr` under a
//! tight budget (one document, bounded depth, nodes, aliases and scalar bytes) into a
//! `serde_json::Value`: unknown keys are kept, no tag can build a host object, and the
//! value is what the manifest records.

use serde_json::Value;

/// Parses one YAML document into JSON. `Err` holds a one-line description with the
/// line and column where the parser stopped.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: 1,
            max_depth: 32,
            max_nodes: 100_000,
            max_events: 400_000,
            max_aliases: 256,
            max_anchors: 256,
            max_total_scalar_bytes: 16 << 20,
            max_merge_keys: 64,
        },
        with_snippet: false,
        reject_unsupported_tags: true,
        // PyYAML (MLflow's writer) quotes every string it would itself read as a boolean;
        // YAML 1.1 spellings it leaves bare (`y`, `n`) are strings.
        strict_booleans: true,
    };
    let value: Value =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| one_line(&e.to_string()))?;
    Ok(value)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A YAML value's kind, for messages ("found a list").
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// A scalar as text: strings as they are, numbers and booleans spelled out, null as `None`.
/// YAML writers quote version strings that would read as numbers (`'3.10'`), so a bare
/// number here came from a hand-written file.
pub fn scalar(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(format!("expected a string, found {}", kind(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents() {
        let cases: &[(&str, &str, Result<&str, &str>)] = &[
            ("map", "a: 1\nb: [x, y]\n", Ok(r#"{"a":1,"b":["x","y"]}"#)),
            (
                "booleans",
                "a: true\nb: False\nc: n\n",
                Ok(r#"{"a":true,"b":false,"c":"n"}"#),
            ),
            (
                "quoted version stays a string",
                "v: '3.10'\n",
                Ok(r#"{"v":"3.10"}"#),
            ),
            ("bom", "\u{feff}a: b\n", Ok(r#"{"a":"b"}"#)),
            ("null value", "a: null\n", Ok(r#"{"a":null}"#)),
            ("syntax", "a: [1, 2\n", Err("")),
            ("duplicate key", "a: 1\na: 2\n", Err("")),
            ("two documents", "a: 1\n---\nb: 2\n", Err("")),
            ("python tag", "a: !!python/object:os.system x\n", Err("")),
        ];
        for (label, text, want) in cases {
            let got = parse(text.as_bytes()).map(|v| v.to_string());
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "case {label}"),
                (Err(_), Err(msg)) => assert!(!msg.contains('\n'), "case {label}: {msg}"),
                _ => panic!("case {label}: got {got:?}"),
            }
        }
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut s = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..12 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            s.push_str(&format!(
                "l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert!(parse(s.as_bytes()).is_err());
    }

    #[test]
    fn not_utf8() {
        let err = parse(b"a: \xff\n").unwrap_err();
        assert!(err.contains("UTF-8"), "{err}");
    }
}
