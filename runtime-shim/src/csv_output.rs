//! How `runtime-shim score` writes its output CSV: the bytes the csv crate's writer gives
//! with its defaults, without its byte-at-a-time state machine.
//!
//! The scored blocks are formatted on the scoring threads, and formatting was a fifth of
//! the batch command's instructions: most cells are numbers, which never need quotes, and
//! the csv crate pushes every byte of them through its writer's state machine. [`Records`]
//! checks a cell for the four bytes that need quoting and copies it whole otherwise.
//! The dialect is the csv crate's default one, which the tests compare it with: `,`
//! between cells, `\n` after a record, a cell quoted only when it holds `,`, `"`, `\r` or
//! `\n` (quotes doubled inside), and a record of no cells or of one empty cell written as
//! `""` so that it still reads back as one row.

/// CSV records formatted in memory.
#[derive(Debug, Default)]
pub struct Records(Vec<u8>);

impl Records {
    /// For about `rows` records.
    pub fn new(rows: usize) -> Self {
        Records(Vec::with_capacity(rows * 64))
    }

    /// Into `buf`, emptied first (a buffer reused from an earlier piece).
    pub fn with_buffer(mut buf: Vec<u8>) -> Self {
        buf.clear();
        Records(buf)
    }

    /// Appends one record.
    pub fn record<S: AsRef<[u8]>>(&mut self, row: &[S]) {
        let out = &mut self.0;
        if row.is_empty() || (row.len() == 1 && row[0].as_ref().is_empty()) {
            out.extend_from_slice(b"\"\"\n");
            return;
        }
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let cell = cell.as_ref();
            // `fold` rather than `any`: no early exit, so the check is branch-free.
            let special = cell
                .iter()
                .fold(false, |s, &b| s | matches!(b, b',' | b'"' | b'\n' | b'\r'));
            if special {
                out.push(b'"');
                for &b in cell {
                    if b == b'"' {
                        out.push(b'"');
                    }
                    out.push(b);
                }
                out.push(b'"');
            } else {
                out.extend_from_slice(cell);
            }
        }
        out.push(b'\n');
    }

    /// The formatted bytes.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_csv_crate(rows: &[Vec<&str>]) -> Vec<u8> {
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(Vec::new());
        for r in rows {
            w.write_record(r).unwrap();
        }
        w.into_inner().unwrap()
    }

    #[test]
    fn same_bytes_as_the_csv_crate() {
        let cases: &[(&str, Vec<Vec<&str>>)] = &[
            ("numbers and labels", vec![vec!["a", "0.25", "1.0E-5"]]),
            ("empty cells", vec![vec!["", "x", ""], vec!["", ""]]),
            ("one empty cell", vec![vec![""]]),
            ("no cells", vec![vec![]]),
            ("a delimiter", vec![vec!["a,b", "c"]]),
            ("quotes doubled", vec![vec!["say \"hi\"", "\""]]),
            ("line breaks", vec![vec!["a\nb", "c\rd", "\r\n"]]),
            ("spaces and tabs stay bare", vec![vec![" a ", "\tb"]]),
            ("non-ASCII", vec![vec!["café", "日本"]]),
            (
                "several records",
                vec![vec!["1", "2"], vec!["x,y", ""], vec![""]],
            ),
        ];
        for (name, rows) in cases {
            let mut ours = Records::new(rows.len());
            for r in rows {
                ours.record(r);
            }
            assert_eq!(
                String::from_utf8_lossy(&ours.finish()),
                String::from_utf8_lossy(&with_csv_crate(rows)),
                "{name}"
            );
        }
    }
}
