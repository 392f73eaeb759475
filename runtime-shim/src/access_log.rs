//! The access line of each request, written straight into the batched stderr
//! ([`crate::log_writer`]) in the very form `tracing-subscriber` gives it.
//!
//! Why (issue 20: "keep the access log off the hot path"): through `tracing`'s
//! formatter the line cost ~8.8k instructions per request (callgrind, 1-row requests:
//! the timestamp's `Display`, a visitor and `fmt::write` per field, styles even when
//! colours are off), about a seventh of a 1-row request's 61k. Here it is a few appends into one
//! buffer. The line is byte for byte what the subscriber the binary installs would write
//! (text without colours, or JSON; the tests compare both with the real subscriber), and
//! `RUST_LOG` still decides whether it is written (`access=off`). When stderr is a
//! terminal (coloured lines), or before [`init`], the line goes through `tracing`.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use artifact_core::cli::LogFormat;

use crate::log_writer::BatchedStderr;

/// The form of the lines, set once by the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Text,
    Json,
}

/// The lines' form and the writer the subscriber writes to, set once by the binary.
static SINK: OnceLock<(Form, BatchedStderr)> = OnceLock::new();

/// Tells this module how the installed subscriber writes lines (`format`, coloured or
/// not) and where (`writer`, the subscriber's own). Coloured lines keep going through
/// `tracing`.
pub fn init(format: LogFormat, ansi: bool, writer: BatchedStderr) {
    let form = match format {
        LogFormat::Text if ansi => return,
        LogFormat::Text => Form::Text,
        LogFormat::Json => Form::Json,
    };
    let _ = SINK.set((form, writer));
}

/// What one access line says.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub bytes: u64,
    pub micros: u64,
}

/// Logs `a` at INFO with the target `access`.
pub fn record(a: &Access<'_>) {
    if !tracing::enabled!(target: "access", tracing::Level::INFO) {
        return;
    }
    match SINK.get() {
        Some((form, writer)) => {
            let mut line = Vec::with_capacity(160);
            write_line(&mut line, *form, SystemTime::now(), a);
            writer.append_info(&line);
        }
        None => via_tracing(a),
    }
}

/// The access line as a `tracing` event (what [`write_line`] reproduces).
fn via_tracing(a: &Access<'_>) {
    tracing::info!(
        target: "access",
        method = %a.method,
        path = %a.path,
        status = a.status,
        bytes = a.bytes,
        micros = a.micros,
        "request"
    )
}

/// The line (with its newline) as `tracing-subscriber` writes it at `now`.
fn write_line(out: &mut Vec<u8>, form: Form, now: SystemTime, a: &Access<'_>) {
    match form {
        Form::Text => {
            write_timestamp(out, now);
            out.extend_from_slice(b"  INFO request method=");
            out.extend_from_slice(a.method.as_bytes());
            out.extend_from_slice(b" path=");
            out.extend_from_slice(a.path.as_bytes());
            out.extend_from_slice(b" status=");
            push_u64(out, u64::from(a.status));
            out.extend_from_slice(b" bytes=");
            push_u64(out, a.bytes);
            out.extend_from_slice(b" micros=");
            push_u64(out, a.micros);
        }
        Form::Json => {
            out.extend_from_slice(b"{\"timestamp\":\"");
            write_timestamp(out, now);
            out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\",\"method\":");
            crate::api::write_json_str(out, a.method);
            out.extend_from_slice(b",\"path\":");
            crate::api::write_json_str(out, a.path);
            out.extend_from_slice(b",\"status\":");
            push_u64(out, u64::from(a.status));
            out.extend_from_slice(b",\"bytes\":");
            push_u64(out, a.bytes);
            out.extend_from_slice(b",\"micros\":");
            push_u64(out, a.micros);
            out.push(b'}');
        }
    }
    out.push(b'\n');
}

/// `v`'s decimal digits (std's integer formatting, as elsewhere in the shim).
fn push_u64(out: &mut Vec<u8>, v: u64) {
    // Writing into a `Vec` cannot fail.
    let _ = std::io::Write::write_fmt(out, format_args!("{v}"));
}

/// RFC 3339 in UTC with microseconds (`2026-12-03T15:07:26.406161Z`), as
/// `tracing-subscriber`'s `SystemTime` timer writes it (times before 1970 do not occur).
fn write_timestamp(out: &mut Vec<u8>, now: SystemTime) {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    let two = |v: u64, out: &mut Vec<u8>| {
        out.push(b'0' + (v / 10) as u8);
        out.push(b'0' + (v % 10) as u8);
    };
    let y = y as u64;
    two(y / 100, out);
    two(y % 100, out);
    out.push(b'-');
    two(m, out);
    out.push(b'-');
    two(day, out);
    out.push(b'T');
    two(rem / 3600, out);
    out.push(b':');
    two(rem / 60 % 60, out);
    out.push(b':');
    two(rem % 60, out);
    out.push(b'.');
    let micros = u64::from(d.subsec_micros());
    two(micros / 10_000, out);
    two(micros / 100 % 100, out);
    two(micros % 100, out);
    out.push(b'Z');
}

/// Year, month (1–12) and day (1–31) of `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What the binary's subscriber (`artifact_core::cli::init_logging_to`'s settings)
    /// writes for `a`.
    fn from_tracing(form: Form, a: &Access<'_>) -> String {
        let out = Captured::default();
        let w = out.clone();
        let builder = tracing_subscriber::fmt()
            .with_writer(move || w.clone())
            .with_ansi(false)
            .with_target(false);
        let log = || via_tracing(a);
        match form {
            Form::Text => tracing::subscriber::with_default(builder.finish(), log),
            Form::Json => {
                tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), log)
            }
        }
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// The line without its timestamp (the two are written at different instants).
    fn untimed(line: &str) -> String {
        match line.find("Z") {
            Some(at) => line[at + 1..].to_string(),
            None => line.to_string(),
        }
    }

    #[test]
    fn lines_are_tracings() {
        let cases = [
            ("score", "POST", "/model/score", 200, 5036, 56),
            ("not found", "GET", "/model/sc%22ore", 404, 22, 16),
            ("header timeout", "-", "-", 408, 0, 10_000_000),
            ("quote and backslash", "GET", "/a\"b\\c", 404, 0, 0),
            ("unicode", "GET", "/ä€😀", 404, 1, 1),
            ("control", "GET", "/a\u{1}b\tc", 400, u64::MAX, u64::MAX),
        ];
        for (name, method, path, status, bytes, micros) in cases {
            let a = Access {
                method,
                path,
                status,
                bytes,
                micros,
            };
            for form in [Form::Text, Form::Json] {
                let mut mine = Vec::new();
                write_line(&mut mine, form, SystemTime::now(), &a);
                let mine = String::from_utf8(mine).unwrap();
                let theirs = from_tracing(form, &a);
                assert_eq!(untimed(&mine), untimed(&theirs), "{name}, {form:?}");
                assert_eq!(mine.find('Z'), theirs.find('Z'), "{name}, {form:?}: {mine}");
            }
        }
    }

    #[test]
    fn timestamps() {
        let cases = [
            ("epoch", 0, 0, "1970-01-01T00:00:00.000000Z"),
            (
                "leap day 2000",
                951_782_400,
                1,
                "2000-02-29T00:00:00.000001Z",
            ),
            (
                "end of 1999",
                946_684_799,
                999_999,
                "1999-12-31T23:59:59.999999Z",
            ),
            (
                "2026",
                1_796_310_446,
                406_161,
                "2026-12-03T15:07:26.406161Z",
            ),
            (
                "leap day 2024",
                1_709_251_199,
                500_000,
                "2024-02-29T23:59:59.500000Z",
            ),
            (
                "2100 is no leap year",
                4_107_542_400,
                42,
                "2100-03-01T00:00:00.000042Z",
            ),
            (
                "year 9999",
                253_402_300_799,
                999_999,
                "9999-12-31T23:59:59.999999Z",
            ),
        ];
        for (name, secs, micros, want) in cases {
            let mut mine = Vec::new();
            write_timestamp(&mut mine, UNIX_EPOCH + Duration::new(secs, micros * 1000));
            assert_eq!(String::from_utf8(mine).unwrap(), want, "{name}");
        }
        // Every day of 1000 years against a plain day-by-day calendar.
        let mut days = 0i64;
        for year in 1970..2970i64 {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            let lens = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            for (m, len) in lens.iter().enumerate() {
                for d in 1..=*len {
                    assert_eq!(civil_from_days(days), (year, m as u64 + 1, d), "day {days}");
                    days += 1;
                }
            }
        }
    }
}
