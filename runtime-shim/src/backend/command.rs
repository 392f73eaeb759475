//! Command templates of the proxy backends (`MLFLOW_SERVE_COMMAND`, `DAI_SCORER_COMMAND`).
//!
//! A deployer writes the child's command as one string, the way they would type it, with
//! placeholders such as `{port}` and `{pipeline}`. It is split into words here, like a
//! POSIX shell does for quotes and backslashes but with no expansion of any other kind
//! (no variables, globs or pipes: the words go straight to `execve`), and the placeholders
//! are replaced inside each word afterwards, so a path with spaces stays one argument.

use std::fmt;

/// A parsed command: its words, with placeholders not yet replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTemplate {
    words: Vec<String>,
}

impl CommandTemplate {
    /// Splits `text` into words: blanks separate words; `'...'` is literal; `"..."` is
    /// literal but for `\"`, `\\`, `\$` and `` \` ``; a backslash outside quotes keeps the
    /// next character.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut in_word = false;
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                c if c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                '\'' => {
                    in_word = true;
                    loop {
                        match chars.next() {
                            Some('\'') => break,
                            Some(c) => word.push(c),
                            None => return Err(format!("unclosed ' in {text:?}")),
                        }
                    }
                }
                '"' => {
                    in_word = true;
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some('\\') => match chars.next() {
                                Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                                Some(c) => {
                                    word.push('\\');
                                    word.push(c);
                                }
                                None => return Err(format!("unclosed \" in {text:?}")),
                            },
                            Some(c) => word.push(c),
                            None => return Err(format!("unclosed \" in {text:?}")),
                        }
                    }
                }
                '\\' => {
                    in_word = true;
                    match chars.next() {
                        Some(c) => word.push(c),
                        None => return Err(format!("{text:?} ends with a lone backslash")),
                    }
                }
                c => {
                    in_word = true;
                    word.push(c);
                }
            }
        }
        if in_word {
            words.push(word);
        }
        if words.is_empty() {
            return Err("the command is empty".into());
        }
        Ok(CommandTemplate { words })
    }

    /// Whether some word holds `{name}`.
    pub fn uses(&self, name: &str) -> bool {
        let p = format!("{{{name}}}");
        self.words.iter().any(|w| w.contains(&p))
    }

    /// The words with every `{name}` of `vars` replaced; other braces are left alone.
    pub fn render(&self, vars: &[(&str, &str)]) -> Vec<String> {
        self.words
            .iter()
            .map(|w| {
                vars.iter()
                    .fold(w.clone(), |w, (k, v)| w.replace(&format!("{{{k}}}"), v))
            })
            .collect()
    }

    /// The program, as written (before replacement).
    pub fn program(&self) -> &str {
        &self.words[0]
    }
}

impl fmt::Display for CommandTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&display_argv(&self.words))
    }
}

/// A command line for logs and messages: words with blanks or quotes are single-quoted.
pub fn display_argv(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if !w.is_empty()
                && !w
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\' | '$' | '`'))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell_without_expansion() {
        type Want = Result<&'static [&'static str], &'static str>;
        let cases: &[(&str, &str, Want)] = &[
            (
                "plain words",
                "mlflow models  serve\t-p {port}",
                Ok(&["mlflow", "models", "serve", "-p", "{port}"]),
            ),
            (
                "single quotes keep blanks",
                "sh -c 'echo a; exit 3'",
                Ok(&["sh", "-c", "echo a; exit 3"]),
            ),
            (
                "double quotes and escapes",
                r#"java "-Dmojo.path={pipeline}" "a\"b\\c" "\n""#,
                Ok(&["java", "-Dmojo.path={pipeline}", "a\"b\\c", "\\n"]),
            ),
            (
                "backslash outside quotes",
                r"/opt/my\ venv/bin/mlflow x",
                Ok(&["/opt/my venv/bin/mlflow", "x"]),
            ),
            (
                "adjacent quoted parts form one word",
                r#"a'b c'"d""#,
                Ok(&["ab cd"]),
            ),
            ("empty quoted word", "a '' b", Ok(&["a", "", "b"])),
            ("no expansion", "echo $HOME *", Ok(&["echo", "$HOME", "*"])),
            ("empty", "   ", Err("the command is empty")),
            ("unclosed single", "a 'b", Err("unclosed '")),
            ("unclosed double", "a \"b", Err("unclosed \"")),
            ("lone backslash", "a \\", Err("lone backslash")),
        ];
        for (name, text, want) in cases {
            match (CommandTemplate::parse(text), want) {
                (Ok(t), Ok(w)) => assert_eq!(t.words, *w, "{name}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn renders_placeholders_inside_words() {
        let t = CommandTemplate::parse(
            "java -Dmojo.path={pipeline} -jar s.jar --server.port={port} {x} {{port}}",
        )
        .unwrap();
        assert!(t.uses("port") && t.uses("pipeline") && !t.uses("model"));
        assert_eq!(
            t.render(&[("pipeline", "/m dir/pipeline.mojo"), ("port", "8081")]),
            [
                "java",
                "-Dmojo.path=/m dir/pipeline.mojo",
                "-jar",
                "s.jar",
                "--server.port=8081",
                "{x}",
                "{8081}"
            ]
        );
        assert_eq!(t.program(), "java");
        assert_eq!(
            display_argv(&t.render(&[("pipeline", "/m dir/p"), ("port", "1")])[..2]),
            "java '-Dmojo.path=/m dir/p'"
        );
    }
}
