//! Bounded JSONL reading for every JSONL input (problems, trajectories, judge batches, score
//! pairs, test files), and one-line-per-record writing, so a 1 GB file never needs 1 GB of
//! memory and a hostile line never needs more than its input's limit.
//!
//! The one policy for an over-long line: it is never read whole. [`LineReader`] keeps at most
//! the input's limit (plus one byte) of it, discards the rest up to its newline without
//! buffering it, and returns [`Line::TooLong`] with a [`LineError`] naming the file and line;
//! the caller counts it as a malformed line and reading goes on. Blank lines are skipped. Only
//! I/O errors end a stream ([`JsonlError`]).

use std::io::{BufRead, Read, Write};

use serde::Serialize;

/// The default longest JSONL line read, in bytes (a trajectory with long outputs fits easily).
/// Inputs with smaller records set their own limit with [`LineReader::with_max_line_bytes`].
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Reading or writing a JSONL stream failed; the stream cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// Reading failed.
    #[error("cannot read {source_name} (after line {line}): {error}")]
    Read {
        /// The file (or stream) being read.
        source_name: String,
        /// Lines read before the failure.
        line: usize,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },
    /// Writing failed.
    #[error("cannot write: {0}")]
    Write(#[from] std::io::Error),
    /// A record could not be serialized.
    #[error("cannot serialize a record: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// One line that could not be used: where it is and why. Reading goes on after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: line {line}: {reason}")]
pub struct LineError {
    /// The file (or stream) it is in.
    pub source_name: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// What [`LineReader::next_line`] found.
#[derive(Debug)]
pub enum Line<'a> {
    /// A non-blank line, without its line ending.
    Record(&'a [u8]),
    /// A line over the limit: skipped, never held in memory whole.
    TooLong(LineError),
}

/// Reports a skipped line (see [`LineReader::with_skip_report`]).
pub type SkipReport = Box<dyn FnMut(&LineError) + Send>;

/// Reads non-blank lines one at a time, each at most its limit in bytes.
///
/// ```
/// use start::jsonl::{Line, LineReader};
///
/// let data = "{\"a\":1}\n\n{\"a\":22222222}\n{\"a\":3}";
/// let mut reader = LineReader::new(data.as_bytes(), "pairs.jsonl").with_max_line_bytes(8);
/// let mut records = Vec::new();
/// let mut skipped = Vec::new();
/// while let Some(line) = reader.next_line().unwrap() {
///     match line {
///         Line::Record(bytes) => records.push(String::from_utf8_lossy(bytes).into_owned()),
///         Line::TooLong(e) => skipped.push(e.to_string()),
///     }
/// }
/// assert_eq!(records, ["{\"a\":1}", "{\"a\":3}"]);
/// assert_eq!(skipped, ["pairs.jsonl: line 3: longer than 8 bytes"]);
/// ```
pub struct LineReader<R> {
    reader: R,
    report: Option<SkipReport>,
    buf: Vec<u8>,
    source_name: String,
    max_line_bytes: usize,
    line: usize,
    bytes: u64,
    terminated: bool,
}

impl<R> std::fmt::Debug for LineReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineReader")
            .field("source_name", &self.source_name)
            .field("max_line_bytes", &self.max_line_bytes)
            .field("line", &self.line)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> LineReader<R> {
    /// Wraps a buffered reader; `source_name` (a path, `<stdin>`) names it in errors. The limit
    /// is [`MAX_LINE_BYTES`].
    pub fn new(reader: R, source_name: impl Into<String>) -> Self {
        LineReader {
            reader,
            report: None,
            buf: Vec::new(),
            source_name: source_name.into(),
            max_line_bytes: MAX_LINE_BYTES,
            line: 0,
            bytes: 0,
            terminated: true,
        }
    }

    /// Sets the longest line accepted, in bytes.
    pub fn with_max_line_bytes(mut self, max_line_bytes: usize) -> Self {
        self.max_line_bytes = max_line_bytes;
        self
    }

    /// Sets where [`LineReader::next_record`] reports each over-long line it skips (a CLI
    /// prints them; a library caller may collect them).
    pub fn with_skip_report(mut self, report: impl FnMut(&LineError) + Send + 'static) -> Self {
        self.report = Some(Box::new(report));
        self
    }

    /// The next non-blank line, or `None` at the end.
    ///
    /// # Errors
    /// [`JsonlError::Read`] when reading fails.
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>, JsonlError> {
        loop {
            self.buf.clear();
            let limit = self.max_line_bytes as u64 + 1;
            let n = (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buf)
                .map_err(|error| self.read_error(error))?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            self.bytes += n as u64;
            self.terminated = self.buf.last() == Some(&b'\n');
            let content = self.buf.len() - usize::from(self.terminated);
            if content > self.max_line_bytes {
                if !self.terminated {
                    let (skipped, found_newline) = self
                        .skip_rest_of_line()
                        .map_err(|error| self.read_error(error))?;
                    self.bytes += skipped;
                    self.terminated = found_newline;
                }
                self.buf.clear();
                return Ok(Some(Line::TooLong(
                    self.error(format!("longer than {} bytes", self.max_line_bytes)),
                )));
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            while self.buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                self.buf.pop();
            }
            return Ok(Some(Line::Record(&self.buf)));
        }
    }

    /// The next record, for a stream that only counts what it skips: each over-long line adds
    /// one to `skipped` and goes to the reader's skip report, if it has one.
    ///
    /// # Errors
    /// [`JsonlError::Read`] when reading fails.
    pub fn next_record(&mut self, skipped: &mut usize) -> Result<Option<&[u8]>, JsonlError> {
        loop {
            match self.next_line()? {
                None => return Ok(None),
                Some(Line::TooLong(e)) => {
                    *skipped += 1;
                    if let Some(report) = &mut self.report {
                        report(&e);
                    }
                }
                Some(Line::Record(_)) => break,
            }
        }
        Ok(Some(&self.buf))
    }

    /// A [`LineError`] at the line just returned, for a caller that cannot use it.
    pub fn error(&self, reason: impl Into<String>) -> LineError {
        LineError {
            source_name: self.source_name.clone(),
            line: self.line,
            reason: reason.into(),
        }
    }

    /// The 1-based number of the line just returned (blank lines count).
    pub fn line_number(&self) -> usize {
        self.line
    }

    /// Bytes consumed so far, for progress bars.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Whether the line just returned ended with a newline; `false` for a torn last line (a
    /// writer killed mid-line).
    pub fn terminated(&self) -> bool {
        self.terminated
    }

    /// The name errors give the input.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Consumes the rest of the current line without buffering it: the bytes skipped, and
    /// whether a newline ended it (rather than the end of the stream).
    fn skip_rest_of_line(&mut self) -> std::io::Result<(u64, bool)> {
        let mut skipped = 0u64;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Ok((skipped, false));
            }
            match available.iter().position(|b| *b == b'\n') {
                Some(at) => {
                    self.reader.consume(at + 1);
                    return Ok((skipped + at as u64 + 1, true));
                }
                None => {
                    let n = available.len();
                    self.reader.consume(n);
                    skipped += n as u64;
                }
            }
        }
    }

    fn read_error(&self, error: std::io::Error) -> JsonlError {
        JsonlError::Read {
            source_name: self.source_name.clone(),
            line: self.line,
            error,
        }
    }
}

/// Writes `value` as one JSON line.
///
/// # Errors
/// Serialization and I/O errors.
pub fn write_line(out: &mut impl Write, value: &impl Serialize) -> Result<(), JsonlError> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(data: &[u8], max: usize) -> (Vec<String>, Vec<LineError>, LineReader<&[u8]>) {
        let mut reader = LineReader::new(data, "in.jsonl").with_max_line_bytes(max);
        let (mut records, mut errors) = (Vec::new(), Vec::new());
        while let Some(line) = reader.next_line().unwrap() {
            match line {
                Line::Record(b) => records.push(String::from_utf8(b.to_vec()).unwrap()),
                Line::TooLong(e) => errors.push(e),
            }
        }
        (records, errors, reader)
    }

    #[test]
    fn skips_blank_lines_and_counts() {
        let data = b"{\"a\":1}\n\n  \n{\"a\":2}\r\n{\"a\":3}";
        let (records, errors, reader) = collect(data, MAX_LINE_BYTES);
        assert_eq!(records, ["{\"a\":1}", "{\"a\":2}", "{\"a\":3}"]);
        assert!(errors.is_empty());
        assert_eq!(reader.line_number(), 5);
        assert_eq!(reader.bytes_read(), data.len() as u64);
        assert!(!reader.terminated());
    }

    #[test]
    fn an_over_long_line_is_skipped_and_named() {
        let data = b"1234\n123456789\n12345\n123456789";
        let (records, errors, reader) = collect(data, 5);
        assert_eq!(records, ["1234", "12345"]);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 4]);
        assert_eq!(
            errors[0].to_string(),
            "in.jsonl: line 2: longer than 5 bytes"
        );
        assert_eq!(reader.bytes_read(), data.len() as u64);
        assert!(!reader.terminated(), "the last line had no newline");
    }

    /// A stream of `head`, then a line of `len` bytes of `x`, then `tail`, made on the fly.
    pub(crate) struct HugeLine {
        head: std::io::Cursor<Vec<u8>>,
        left: u64,
        tail: std::io::Cursor<Vec<u8>>,
    }

    impl HugeLine {
        pub(crate) fn new(head: &str, len: u64, tail: &str) -> Self {
            HugeLine {
                head: std::io::Cursor::new(head.as_bytes().to_vec()),
                left: len,
                tail: std::io::Cursor::new(format!("\n{tail}").into_bytes()),
            }
        }
    }

    impl Read for HugeLine {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.head.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if self.left > 0 {
                let n = buf.len().min(self.left as usize);
                buf[..n].fill(b'x');
                self.left -= n as u64;
                return Ok(n);
            }
            self.tail.read(buf)
        }
    }

    #[test]
    fn a_200_mb_line_is_skipped_with_bounded_memory() {
        const LINE: u64 = 200 << 20;
        let stream = std::io::BufReader::new(HugeLine::new("{\"a\":1}\n", LINE, "{\"a\":2}\n"));
        let mut reader = LineReader::new(stream, "huge.jsonl").with_max_line_bytes(4 << 20);
        let (mut records, mut errors) = (Vec::new(), Vec::new());
        while let Some(line) = reader.next_line().unwrap() {
            match line {
                Line::Record(b) => records.push(String::from_utf8(b.to_vec()).unwrap()),
                Line::TooLong(e) => errors.push(e.to_string()),
            }
            // The buffer never holds more than the limit (plus the byte that shows it is over).
            assert!(
                reader.buf.capacity() <= 2 * (4 << 20) + 1,
                "{}",
                reader.buf.capacity()
            );
        }
        assert_eq!(records, ["{\"a\":1}", "{\"a\":2}"]);
        assert_eq!(errors, ["huge.jsonl: line 2: longer than 4194304 bytes"]);
        assert_eq!(reader.bytes_read(), 8 + LINE + 1 + 8);
    }

    #[test]
    fn a_line_exactly_at_the_limit_is_read() {
        let (records, errors, _) = collect(b"12345\n12345", 5);
        assert_eq!(records, ["12345", "12345"]);
        assert!(errors.is_empty());
    }
}
