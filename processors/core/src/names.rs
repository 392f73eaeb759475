//! Validation of entry names: the one place that decides whether a name from an
//! archive or a directory walk may become a path under the staging directory.

use std::collections::{HashMap, HashSet};

use unicode_normalization::UnicodeNormalization;

use crate::limits::Limits;

/// Checks an entry name and returns it normalized (`/`-separated, no `.` components,
/// no trailing `/`). `Err` holds the reason the name is refused.
pub fn normalize_entry_name(raw: &str, limits: &Limits) -> Result<String, String> {
    if raw.is_empty() {
        return Err("empty name".into());
    }
    if raw.len() > limits.max_name_len {
        return Err(format!(
            "name is {} bytes long, more than {}",
            raw.len(),
            limits.max_name_len
        ));
    }
    if let Some(c) = raw.chars().find(|c| is_forbidden_char(*c)) {
        return Err(format!("name holds the control or format character {c:?}"));
    }
    if raw.contains('\\') {
        return Err("name holds a backslash".into());
    }
    if raw.starts_with('/') {
        return Err("absolute path".into());
    }
    let trimmed = raw.strip_suffix('/').unwrap_or(raw);
    let mut parts = Vec::new();
    for comp in trimmed.split('/') {
        match comp {
            "" => return Err("empty path component".into()),
            "." => continue,
            ".." => return Err("parent-directory component `..`".into()),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err("name has no component".into());
    }
    // On the final name, so that `./C:/x` is caught as well as `C:/x`.
    let first = parts[0].as_bytes();
    if first.len() >= 2 && first[1] == b':' && first[0].is_ascii_alphabetic() {
        return Err("drive-letter prefix".into());
    }
    if parts.len() > limits.max_depth {
        return Err(format!(
            "name is {} components deep, more than {}",
            parts.len(),
            limits.max_depth
        ));
    }
    if parts.iter().any(|p| p.len() > 255) {
        return Err("a path component is longer than 255 bytes".into());
    }
    Ok(parts.join("/"))
}

/// Whether a directory entry names the archive's root itself (`.` or `./`, as
/// `tar -C dir -cf x.tar .` writes): such an entry is passed over, not refused.
pub fn is_root_name(raw: &str) -> bool {
    !raw.is_empty()
        && !raw.starts_with('/')
        && raw.contains('.')
        && raw.split('/').all(|c| c == "." || c.is_empty())
        && !raw.contains("//")
}

fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Names that archivers add and that carry no model content (`__MACOSX/`, `.DS_Store`, `Thumbs.db`).
pub fn is_archive_noise(name: &str) -> bool {
    name == "__MACOSX"
        || name.starts_with("__MACOSX/")
        || name
            .rsplit('/')
            .next()
            .is_some_and(|b| b == ".DS_Store" || b == "Thumbs.db")
}

/// Tracks names seen in one source: duplicates, case-fold or Unicode-normalization
/// collisions, and a name used both as a file and as a directory are refused.
#[derive(Default)]
pub struct NameSet {
    exact: HashSet<String>,
    /// Folded form (NFC, lower case) of every name and implied ancestor -> the name itself.
    folded: HashMap<String, String>,
    files: HashSet<String>,
    dirs: HashSet<String>,
}

/// The form two names share when a case-insensitive or normalizing filesystem
/// (macOS, Windows) would store them as the same path.
fn fold(name: &str) -> String {
    let lower: String = name.nfc().flat_map(char::to_lowercase).collect();
    lower.nfc().collect()
}

impl NameSet {
    /// Records `name` (already normalized). `Err` holds the reason it collides.
    pub fn insert(&mut self, name: &str, is_dir: bool) -> Result<(), String> {
        if is_dir {
            if self.files.contains(name) {
                return Err("a file of the same name exists".into());
            }
            if !self.dirs.insert(name.to_string()) {
                return Ok(()); // repeated directory entries are harmless
            }
        } else {
            if self.dirs.contains(name) {
                return Err("a directory of the same name exists".into());
            }
            if !self.exact.insert(name.to_string()) {
                return Err("duplicate entry".into());
            }
            self.files.insert(name.to_string());
        }
        // Every ancestor must be (or become) a directory, never a file.
        let mut prefix = String::new();
        let comps: Vec<&str> = name.split('/').collect();
        let mut paths = Vec::with_capacity(comps.len());
        for comp in &comps[..comps.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(comp);
            if self.files.contains(&prefix) {
                return Err(format!("its parent {prefix:?} is a file"));
            }
            self.dirs.insert(prefix.clone());
            paths.push(prefix.clone());
        }
        paths.push(name.to_string());
        // The name and each of its ancestors must not fold onto a different name: `a/x`
        // and `A/y`, or `Model.ini` and `model.ini`, are one path on macOS or Windows.
        for p in paths {
            match self.folded.get(&fold(&p)) {
                Some(other) if *other != p => {
                    return Err(format!(
                        "name collides with {other:?} when case or Unicode normalization is ignored"
                    ))
                }
                Some(_) => {}
                None => {
                    self.folded.insert(fold(&p), p);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let l = Limits::default();
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("plain", "model.ini", Some("model.ini")),
            ("nested", "domains/d000.txt", Some("domains/d000.txt")),
            ("dot prefix", "./MLmodel", Some("MLmodel")),
            ("dir entry", "trees/", Some("trees")),
            ("parent", "../x", None),
            ("inner parent", "a/../../x", None),
            ("absolute", "/etc/passwd", None),
            ("drive", "C:x", None),
            ("drive after ./", "./C:/x", None),
            ("drive-like after ./", "./a:", None),
            ("colon later", "a/b:c", Some("a/b:c")),
            ("backslash", "a\\b", None),
            ("nul", "a\0b", None),
            ("newline", "a\nb", None),
            ("bidi override", "a\u{202E}b", None),
            ("empty", "", None),
            ("double slash", "a//b", None),
            ("only dot", "./", None),
        ];
        for (raw, root) in [
            (".", true),
            ("./", true),
            ("./.", true),
            ("/", false),
            ("", false),
            (".//", false),
            ("./a", false),
            ("..", false),
        ] {
            assert_eq!(is_root_name(raw), root, "is_root_name({raw:?})");
        }
        for (label, raw, want) in cases {
            let got = normalize_entry_name(raw, &l).ok();
            assert_eq!(got.as_deref(), *want, "case {label}");
        }
    }

    #[test]
    fn collisions() {
        type Case<'a> = (&'a str, &'a [(&'a str, bool)], bool);
        let cases: &[Case] = &[
            ("distinct", &[("a", false), ("b", false)], true),
            ("duplicate", &[("a", false), ("a", false)], false),
            (
                "case fold",
                &[("Model.ini", false), ("model.ini", false)],
                false,
            ),
            (
                "nfc vs nfd",
                &[("caf\u{e9}", false), ("cafe\u{301}", false)],
                false,
            ),
            ("file then child", &[("a", false), ("a/b", false)], false),
            ("child then file", &[("a/b", false), ("a", false)], false),
            (
                "dir twice",
                &[("a", true), ("a", true), ("a/b", false)],
                true,
            ),
            (
                "dir vs file by case",
                &[("Data", true), ("data", false)],
                false,
            ),
            (
                "ancestors by case",
                &[("a/x", false), ("A/y", false)],
                false,
            ),
            (
                "ancestor nfd",
                &[("caf\u{e9}/x", false), ("cafe\u{301}/y", false)],
                false,
            ),
            (
                "shared ancestor",
                &[("a/x", false), ("a/y", false), ("a", true)],
                true,
            ),
        ];
        for (label, entries, ok) in cases {
            let mut set = NameSet::default();
            let res: Result<(), String> = entries.iter().try_for_each(|(n, d)| set.insert(n, *d));
            assert_eq!(res.is_ok(), *ok, "case {label}: {res:?}");
        }
    }
}
