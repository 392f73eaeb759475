//! How `runtime-shim score` reads its input CSV: the csv crate's reader, except that a
//! blank line after the header is a row.
//!
//! The csv crate skips blank lines, and has no switch for it. But in a one-column file a
//! blank line is a row whose only cell is empty (Python's csv module writes it as `""`,
//! most other writers as nothing), and genmodel's `PredictCsv` scores it as a row with a
//! missing value: skipping it made `runtime-shim score` return 10 rows for a 12-word
//! Word2Vec file with two missing words. [`BlankLinesAsRows`] feeds the parser a `""`
//! (one empty field) wherever a record would start with a line terminator, so every line
//! is a row: in a one-column file a missing cell, in a wider one a row of one cell, which
//! the request checks then refuse like any short row (never silently dropped). Blank
//! lines before the header are still skipped, as before.
//!
//! The adapter tracks the csv crate's default dialect (comma, `"` quotes doubled to
//! escape, `\n`, `\r` or `\r\n` terminators, no comments), so a line break inside a
//! quoted field is never taken for a blank line.

use std::io::{self, Read};

/// The UTF-8 byte order mark, which the parser drops at the start of its input.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
/// [`BlankLinesAsRows::bom`] once the start of the input is past (it stays at 3 after a
/// whole mark until the next byte: the parser's first read must hold a byte after the
/// mark, or it takes the input for ended).
const BOM_SETTLED: usize = 4;

/// Where the parser is, as far as blank lines are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a record (or of the file).
    RecordStart,
    /// Just after a `\r` that ended a record: a `\n` here belongs to it.
    AfterCr,
    /// At the start of a field after a delimiter.
    FieldStart,
    /// In an unquoted field (a quote here is an ordinary character).
    Unquoted,
    /// In a quoted field.
    Quoted,
    /// A quote in a quoted field: its end, or the first half of an escaped quote.
    QuoteInQuoted,
}

/// A reader that turns every blank line after the first record into `""`.
#[derive(Debug)]
pub struct BlankLinesAsRows<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
    state: State,
    /// Whether the first record (the header) has begun.
    started: bool,
    /// Bytes of a UTF-8 byte order mark at the very start of the input matched so far;
    /// [`BOM_SETTLED`] once it is known whether there is one. The parser drops such a mark,
    /// so it must not move the state either (a quote right after it opens a field).
    bom: usize,
    /// Bytes still to hand out before reading on: an injected `""` and the terminator.
    pending: [u8; 3],
    pending_pos: usize,
    pending_len: usize,
}

impl<R: Read> BlankLinesAsRows<R> {
    pub fn new(inner: R) -> Self {
        BlankLinesAsRows {
            inner,
            buf: vec![0; 1 << 16].into_boxed_slice(),
            pos: 0,
            filled: 0,
            state: State::RecordStart,
            started: false,
            bom: 0,
            pending: [0; 3],
            pending_pos: 0,
            pending_len: 0,
        }
    }

    /// Advances the state by one byte; `true` when the byte is a blank line's terminator
    /// that needs an empty field before it.
    #[inline]
    fn step(&mut self, b: u8) -> bool {
        use State::*;
        if self.bom < BOM_SETTLED {
            if self.bom < BOM.len() && b == BOM[self.bom] {
                self.bom += 1;
                return false;
            }
            if self.bom > 0 && self.bom < BOM.len() {
                // Not a mark after all: its first bytes were the start of a field.
                self.started = true;
                self.state = Unquoted;
            }
            self.bom = BOM_SETTLED;
        }
        let terminator = |b: u8| b == b'\n' || b == b'\r';
        let mut state = self.state;
        if state == AfterCr {
            if b == b'\n' {
                self.state = RecordStart;
                return false;
            }
            state = RecordStart;
        }
        let (next, blank) = match state {
            RecordStart if terminator(b) => {
                let next = if b == b'\r' { AfterCr } else { RecordStart };
                (next, self.started)
            }
            RecordStart | FieldStart => {
                self.started = true;
                match b {
                    b'"' => (Quoted, false),
                    b',' => (FieldStart, false),
                    b'\n' => (RecordStart, false),
                    b'\r' => (AfterCr, false),
                    _ => (Unquoted, false),
                }
            }
            Unquoted | QuoteInQuoted => match b {
                b'"' if state == QuoteInQuoted => (Quoted, false),
                b',' => (FieldStart, false),
                b'\n' => (RecordStart, false),
                b'\r' => (AfterCr, false),
                _ => (Unquoted, false),
            },
            Quoted => (if b == b'"' { QuoteInQuoted } else { Quoted }, false),
            AfterCr => unreachable!("handled above"),
        };
        self.state = next;
        blank
    }
}

impl<R: Read> Read for BlankLinesAsRows<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            if self.pending_pos < self.pending_len {
                out[n] = self.pending[self.pending_pos];
                self.pending_pos += 1;
                n += 1;
                continue;
            }
            if self.pos == self.filled {
                // Hand out what there is, but not a start of the input that may still be
                // a byte order mark: the parser drops one only if its first read holds it.
                if n > 0 && (self.bom == 0 || self.bom == BOM_SETTLED) {
                    break;
                }
                self.filled = self.inner.read(&mut self.buf)?;
                self.pos = 0;
                if self.filled == 0 {
                    break;
                }
            }
            // Runs of bytes that cannot end a record or start a blank line are copied
            // whole: in an unquoted field up to the next quote or line terminator, in a
            // quoted field up to the next quote.
            let room = (out.len() - n).min(self.filled - self.pos);
            let avail = &self.buf[self.pos..self.pos + room];
            let run = match self.state {
                State::Unquoted | State::FieldStart => {
                    memchr::memchr3(b'"', b'\n', b'\r', avail).unwrap_or(room)
                }
                State::Quoted => memchr::memchr(b'"', avail).unwrap_or(room),
                _ => 0,
            };
            if run > 0 {
                out[n..n + run].copy_from_slice(&avail[..run]);
                if self.state != State::Quoted {
                    // A quote right after a delimiter opens a quoted field.
                    self.state = if avail[run - 1] == b',' {
                        State::FieldStart
                    } else {
                        State::Unquoted
                    };
                }
                self.pos += run;
                n += run;
                continue;
            }
            let b = self.buf[self.pos];
            self.pos += 1;
            if self.step(b) {
                self.pending = [b'"', b'"', b];
                self.pending_pos = 0;
                self.pending_len = 3;
            } else {
                out[n] = b;
                n += 1;
            }
        }
        Ok(n)
    }
}

impl<R: Read> BlankLinesAsRows<R> {
    /// Whether what was handed out so far ends where a record ends (or a blank line
    /// before the header does).
    fn at_record_end(&self) -> bool {
        self.pending_pos == self.pending_len
            && (self.bom == 0 || self.bom == BOM_SETTLED)
            && matches!(self.state, State::RecordStart | State::AfterCr)
    }

    /// Appends the next bytes, as [`Read::read`] hands them out, to `out`: `want` bytes
    /// unless the input ends first, then on to the end of the record under way, so that
    /// `out` never ends inside a record. Returns the number of bytes appended (0 at the
    /// end of the input).
    fn read_records(&mut self, out: &mut Vec<u8>, want: usize) -> io::Result<usize> {
        let start = out.len();
        let end = start + want;
        out.resize(end, 0);
        let mut len = start;
        while len < end {
            let n = self.read(&mut out[len..end])?;
            if n == 0 {
                break;
            }
            len += n;
        }
        out.truncate(len);
        if len == end {
            // The rest of the record, a byte at a time: a line's worth per piece.
            let mut b = [0u8];
            while !self.at_record_end() && self.read(&mut b)? == 1 {
                out.push(b[0]);
            }
        }
        Ok(out.len() - start)
    }
}

/// The input of `runtime-shim score` cut into pieces that end where records end, so
/// that several threads can parse it: the main thread only cuts (the adapter's state
/// machine already knows where records end) and the scoring threads parse their pieces
/// with a [`PieceParser`], which reads the records a [`reader`] of the whole input
/// reads there.
#[derive(Debug)]
pub struct Pieces<R> {
    inner: BlankLinesAsRows<R>,
}

impl<R: Read> Pieces<R> {
    pub fn new(input: R) -> Self {
        Pieces {
            inner: BlankLinesAsRows::new(input),
        }
    }

    /// The header record, read as [`reader`] reads it (blank lines before it skipped, a
    /// UTF-8 byte order mark dropped; an empty record for an empty input).
    pub fn header(&mut self) -> Result<csv::StringRecord, csv::Error> {
        // Blank lines before the header come one at a time (and a line holding only a
        // byte order mark reads as one): read on until the parser finds a record.
        let mut text = Vec::new();
        loop {
            let more = self.inner.read_records(&mut text, 1)? > 0;
            let header = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(true)
                .from_reader(&text[..])
                .headers()?
                .clone();
            if !more || !header.is_empty() {
                return Ok(header);
            }
        }
    }

    /// Replaces `piece` with the next records: about `want` bytes (more to finish the last
    /// record). `false` at the end of the input.
    pub fn next(&mut self, piece: &mut Vec<u8>, want: usize) -> io::Result<bool> {
        piece.clear();
        // A piece starts with a line break, which the parser skips as it skips any line
        // break at the start of a record (so a piece may also start with the `\n` of a
        // `\r\n` cut in two): it keeps the parser from taking the start of a first cell
        // for a UTF-8 byte order mark, which it drops at the start of its input.
        piece.push(b'\n');
        Ok(self.inner.read_records(piece, want.max(1))? > 0)
    }
}

/// The parser of the pieces from [`Pieces::next`]: reads the records a [`reader`] of the
/// whole input reads there, with the same csv-core state machine, but straight from the
/// piece (no copy into a reader's buffer) and with one parser per thread reused from piece
/// to piece (a csv reader builds its tables anew each time).
#[derive(Debug)]
pub struct PieceParser {
    core: csv_core::Reader,
    text: Vec<u8>,
    ends: Vec<usize>,
}

/// A record that is not valid UTF-8 (a [`reader`] gives the message, with its place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8;

impl Default for PieceParser {
    fn default() -> Self {
        PieceParser {
            core: csv_core::Reader::new(),
            text: vec![0; 4096],
            ends: vec![0; 64],
        }
    }
}

impl PieceParser {
    /// Hands the records of `piece` to `each`, in order, while it returns `true`;
    /// returns how many it was handed. A record that is not UTF-8 ends the piece with
    /// [`NotUtf8`] (after the records before it were handed out).
    pub fn records(
        &mut self,
        piece: &[u8],
        mut each: impl FnMut(Fields<'_>) -> bool,
    ) -> Result<usize, NotUtf8> {
        use csv_core::ReadRecordResult::*;
        self.core.reset();
        let mut input = piece;
        let (mut len, mut fields, mut handed) = (0, 0, 0);
        loop {
            let (res, nin, nout, nend) =
                self.core
                    .read_record(input, &mut self.text[len..], &mut self.ends[fields..]);
            input = &input[nin..];
            len += nout;
            fields += nend;
            match res {
                // The whole piece is the input: the next call, with none, ends it.
                InputEmpty => {}
                OutputFull => self.text.resize(self.text.len() * 2, 0),
                OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                Record => {
                    let ends = &self.ends[..fields];
                    // As the csv crate checks a record: all of it, and each field.
                    let text = std::str::from_utf8(&self.text[..len]).map_err(|_| NotUtf8)?;
                    if !ends.iter().all(|&e| text.is_char_boundary(e)) {
                        return Err(NotUtf8);
                    }
                    handed += 1;
                    if !each(Fields { text, ends }) {
                        return Ok(handed);
                    }
                    (len, fields) = (0, 0);
                }
                End => return Ok(handed),
            }
        }
    }
}

/// The fields of one record: their text back to back, and where each ends.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    text: &'a str,
    ends: &'a [usize],
}

impl<'a> Fields<'a> {
    /// From the parts [`Fields::text`] and [`Fields::ends`] gave (a copy kept for later).
    pub fn new(text: &'a str, ends: &'a [usize]) -> Self {
        Fields { text, ends }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `i`.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start..end)
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    pub fn ends(&self) -> &'a [usize] {
        self.ends
    }
}

/// The input CSV reader of `runtime-shim score`: a header row, blank lines kept as rows,
/// records of any width (the request checks judge them).
pub fn reader<R: Read>(input: R) -> csv::Reader<BlankLinesAsRows<R>> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(BlankLinesAsRows::new(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
        whole(text.as_bytes())
    }

    /// Reads through a reader that hands out one byte at a time, so that every state
    /// crosses a read boundary.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), out.first_mut()) {
                (Some((b, rest)), Some(o)) => {
                    *o = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn every_line_after_the_header_is_a_row() {
        type Case<'a> = (&'a str, &'a str, &'a [&'a [&'a str]]);
        let cases: &[Case] = &[
            (
                "blank lines in one column",
                "w\na\n\nb\n\n",
                &[&["a"], &[""], &["b"], &[""]],
            ),
            (
                "quoted empty cell",
                "w\na\n\"\"\nb\n",
                &[&["a"], &[""], &["b"]],
            ),
            ("CRLF", "w\r\na\r\n\r\nb\r\n", &[&["a"], &[""], &["b"]]),
            ("CR only", "w\ra\r\rb\r", &[&["a"], &[""], &["b"]]),
            ("no final newline", "w\na\n\nb", &[&["a"], &[""], &["b"]]),
            (
                "blank lines before the header are skipped",
                "\n\nw\na\n",
                &[&["a"]],
            ),
            (
                "newlines inside quotes are data",
                "w,v\n\"x\n\ny\",1\n\n",
                &[&["x\n\ny", "1"], &[""]],
            ),
            (
                "escaped quotes, then a blank line",
                "w\n\"a\"\"\n\"\n\n",
                &[&["a\"\n"], &[""]],
            ),
            (
                "a trailing empty field is not a blank line",
                "w,v\na,\n",
                &[&["a", ""]],
            ),
            (
                "quote inside an unquoted field",
                "w\na\"b\n\n",
                &[&["a\"b"], &[""]],
            ),
            ("empty file", "", &[]),
            (
                "a byte order mark, then a quoted header cell with a line break",
                "\u{feff}\"w\n\nx\"\na\n\n",
                &[&["a"], &[""]],
            ),
            (
                "a quote after a delimiter in the middle of a run",
                "w,v\na,\"x,\n\ny\"\n\n",
                &[&["a", "x,\n\ny"], &[""]],
            ),
            (
                "quotes inside and after unquoted text",
                "w,v\nab\"c,\"d\"\"\"\n\nz,\n",
                &[&["ab\"c", "d\""], &[""], &["z", ""]],
            ),
        ];
        for (name, text, want) in cases {
            let want: Vec<Vec<String>> = want
                .iter()
                .map(|r| r.iter().map(|c| c.to_string()).collect())
                .collect();
            let (_, got) = rows(text);
            assert_eq!(got, want, "{name}");
            let mut slow = reader(Trickle(text.as_bytes()));
            let trickled: Vec<Vec<String>> = slow
                .records()
                .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
                .collect();
            assert_eq!(trickled, want, "{name}, one byte at a time");
        }
        assert_eq!(rows("\n\nw,v\na,b\n").0, vec!["w", "v"]);
    }

    /// The transformation byte by byte with [`BlankLinesAsRows::step`] alone: what the
    /// run-copying fast path of `read` must reproduce.
    fn stepwise(text: &[u8]) -> Vec<u8> {
        let mut a = BlankLinesAsRows::new(&b""[..]);
        let mut out = Vec::new();
        for &b in text {
            if a.step(b) {
                out.extend_from_slice(b"\"\"");
            }
            out.push(b);
        }
        out
    }

    /// `count` pseudo-random texts (xorshift from `seed`) of `tokens`: fewer than `short`
    /// tokens each, but every `long.0`-th (the first included) `long.1` and up to 999 more.
    fn random_texts(
        mut seed: u64,
        tokens: &[&[u8]],
        count: usize,
        long: (usize, usize),
        short: u64,
    ) -> Vec<Vec<u8>> {
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        (0..count)
            .map(|case| {
                let len = if case % long.0 == 0 {
                    long.1 + (next() % 1000) as usize
                } else {
                    (next() % short) as usize
                };
                (0..len)
                    .flat_map(|_| {
                        tokens[(next() % tokens.len() as u64) as usize]
                            .iter()
                            .copied()
                    })
                    .collect()
            })
            .collect()
    }

    /// Header and records as [`reader`] reads the whole text.
    fn whole(text: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
        let mut r = reader(text);
        let header = r.headers().unwrap().iter().map(str::to_owned).collect();
        let rows = r
            .records()
            .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
            .collect();
        (header, rows)
    }

    /// Header and records read through [`Pieces`] of about `want` bytes, each piece
    /// parsed on its own by one reused [`PieceParser`].
    fn pieced(text: &[u8], want: usize) -> (Vec<String>, Vec<Vec<String>>) {
        let mut pieces = Pieces::new(text);
        let header = pieces.header().unwrap().iter().map(str::to_owned).collect();
        let mut rows = Vec::new();
        let mut piece = Vec::new();
        let mut parser = PieceParser::default();
        while pieces.next(&mut piece, want).unwrap() {
            parser
                .records(&piece, |rec| {
                    rows.push(
                        (0..rec.len())
                            .map(|i| rec.get(i).unwrap().to_owned())
                            .collect(),
                    );
                    true
                })
                .unwrap();
        }
        (header, rows)
    }

    #[test]
    fn the_piece_parser_refuses_what_the_csv_reader_refuses() {
        let cases: &[(&str, &[u8])] = &[
            ("ASCII", b"h\na,b\n"),
            ("UTF-8 in a field", "h\nq\u{e9},\u{1F600}\n".as_bytes()),
            ("a stray byte", b"h\na,\xff\n"),
            ("a character split over two fields", b"h\n\xc3,\xa9\n"),
            ("a cut character at the end", b"h\na\xe2\x82"),
            ("a bad record after good ones", b"h\na\nb\n\xc0\xaf\nc\n"),
        ];
        for (name, text) in cases {
            let mut want = Vec::new();
            let mut r = reader(*text);
            r.headers().unwrap();
            let want_err = r.records().any(|rec| match rec {
                Ok(rec) => {
                    want.push(rec.iter().map(str::to_owned).collect::<Vec<_>>());
                    false
                }
                Err(_) => true,
            });
            let mut pieces = Pieces::new(*text);
            pieces.header().unwrap();
            let mut piece = Vec::new();
            assert!(pieces.next(&mut piece, 1 << 16).unwrap(), "{name}");
            let mut got: Vec<Vec<String>> = Vec::new();
            let result = PieceParser::default().records(&piece, |rec| {
                got.push(
                    (0..rec.len())
                        .map(|i| rec.get(i).unwrap().to_owned())
                        .collect(),
                );
                true
            });
            assert_eq!(result.is_err(), want_err, "{name}");
            assert_eq!(got, want, "{name}: the records before the bad one");
        }
    }

    #[test]
    fn pieces_read_the_records_of_the_whole_input() {
        let mut cases: Vec<(String, Vec<u8>)> = vec![
            (
                "CRLF cut between CR and LF".into(),
                b"w\r\na\r\n\r\nb\r\n".to_vec(),
            ),
            ("CR only".into(), b"w\ra\r\rb\r".to_vec()),
            (
                "blank lines before the header".into(),
                b"\n\r\n\nw,v\na,b\n\n".to_vec(),
            ),
            ("header only, CRLF".into(), b"w\r\n".to_vec()),
            ("empty".into(), b"".to_vec()),
            (
                "a byte order mark opens the file and a cell".into(),
                "\u{feff}w\n\u{feff}a\n\u{feff}b\n".as_bytes().to_vec(),
            ),
            (
                "quoted line breaks".into(),
                b"w,v\n\"x\n\ny\",1\n\n\"\r\n\",2\n".to_vec(),
            ),
        ];
        // Pseudo-random texts over the bytes that matter (and a BOM at some cell starts).
        let tokens: [&[u8]; 7] = [b"a", b"b", b",", b"\"", b"\n", b"\r", "\u{feff}".as_bytes()];
        let texts = random_texts(0x2545_F491_4F6C_DD1D, &tokens, 300, (60, 3_000), 80);
        for (case, text) in texts.into_iter().enumerate() {
            cases.push((format!("random {case}"), text));
        }
        cases.sort_by_key(|c| c.1.len());
        for (name, text) in &cases {
            let want = whole(text);
            for size in [1, 2, 3, 5, 16, 1000, 1 << 16] {
                assert_eq!(
                    pieced(text, size),
                    want,
                    "{name}, pieces of {size} bytes: {:?}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }

    #[test]
    fn copying_runs_gives_the_bytes_of_stepping_one_by_one() {
        // Pseudo-random texts over the bytes that matter, some longer than the 64 KiB
        // buffer so that runs cross refills.
        let alphabet: [&[u8]; 6] = [b"a", b"b", b",", b"\"", b"\n", b"\r"];
        let texts = random_texts(0x9E37_79B9_7F4A_7C15, &alphabet, 400, (50, 70_000), 60);
        for (case, text) in texts.into_iter().enumerate() {
            let mut got = Vec::new();
            BlankLinesAsRows::new(&text[..])
                .read_to_end(&mut got)
                .unwrap();
            assert_eq!(
                got,
                stepwise(&text),
                "case {case}: {:?}",
                String::from_utf8_lossy(&text)
            );
        }
    }
}
