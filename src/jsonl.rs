//! Streaming JSONL: bounded line reading with byte positions (for progress bars) and
//! one-line-per-record writing, so a 1 GB file never needs 1 GB of memory.

use std::io::{BufRead, Read, Write};

use serde::Serialize;

/// The longest JSONL line read, in bytes (a trajectory with long outputs fits easily).
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Reading or writing a JSONL stream failed.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// An I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A line is longer than [`MAX_LINE_BYTES`].
    #[error("line {line} is longer than {MAX_LINE_BYTES} bytes")]
    TooLong {
        /// 1-based line number.
        line: usize,
    },
    /// A record could not be serialized.
    #[error("cannot serialize a record: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Reads non-blank lines one at a time, each at most [`MAX_LINE_BYTES`].
#[derive(Debug)]
pub struct LineReader<R> {
    reader: R,
    buf: Vec<u8>,
    /// Lines read so far (blank ones included), i.e. the 1-based number of the last line.
    pub line: usize,
    /// Bytes consumed so far.
    pub bytes: u64,
}

impl<R: BufRead> LineReader<R> {
    /// Wraps a buffered reader.
    pub fn new(reader: R) -> Self {
        LineReader {
            reader,
            buf: Vec::new(),
            line: 0,
            bytes: 0,
        }
    }

    /// The next non-blank line (without its newline), or `None` at the end.
    ///
    /// # Errors
    /// I/O errors and over-long lines.
    pub fn next_line(&mut self) -> Result<Option<&[u8]>, JsonlError> {
        loop {
            self.buf.clear();
            let n = (&mut self.reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            self.bytes += n as u64;
            if self.buf.len() > MAX_LINE_BYTES {
                return Err(JsonlError::TooLong { line: self.line });
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            while self.buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                self.buf.pop();
            }
            return Ok(Some(&self.buf));
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

    #[test]
    fn skips_blank_lines_and_counts() {
        let data = b"{\"a\":1}\n\n  \n{\"a\":2}\r\n{\"a\":3}";
        let mut r = LineReader::new(&data[..]);
        let mut got = Vec::new();
        while let Some(line) = r.next_line().unwrap() {
            got.push(String::from_utf8(line.to_vec()).unwrap());
        }
        assert_eq!(got, ["{\"a\":1}", "{\"a\":2}", "{\"a\":3}"]);
        assert_eq!(r.line, 5);
        assert_eq!(r.bytes, data.len() as u64);
    }
}
