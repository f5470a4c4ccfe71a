//! The resumable trajectory file: one flushed JSONL line per trajectory, read back on open to
//! skip the `(id, sample)` pairs already done.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{MAX_TRAJECTORY_LINE_BYTES, Trajectory};
use crate::jsonl::{Line, LineReader};

/// Why the trajectory file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct WriterError {
    /// The file.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// The key of a finished trajectory in the output file.
#[derive(Debug, Deserialize)]
struct Key {
    id: String,
    sample: u32,
}

/// Appends trajectories to a JSONL file, one flushed line each; resumable.
#[derive(Debug)]
pub struct TrajectoryWriter {
    file: File,
    path: PathBuf,
    done: HashSet<(String, u32)>,
    /// Lines in the file that could not be read back (kept, not counted as done).
    pub unreadable_lines: usize,
    /// The first unreadable line's 1-based number, to name in a warning.
    pub first_unreadable_line: Option<usize>,
}

impl TrajectoryWriter {
    /// Opens (creating it if needed) `path` for appending and reads which `(id, sample)` pairs
    /// it already holds. A torn last line (a run killed while writing) is cut off; lines that are
    /// not trajectories (malformed, or over [`MAX_TRAJECTORY_LINE_BYTES`], skipped unread) are
    /// kept and counted in [`TrajectoryWriter::unreadable_lines`].
    ///
    /// # Errors
    /// [`WriterError`] when the file cannot be opened, read or trimmed.
    pub fn open(path: &Path) -> Result<Self, WriterError> {
        let err = |source| WriterError {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(err)?;
        let mut done = HashSet::new();
        let mut unreadable_lines = 0;
        let mut first_unreadable_line = None;
        let mut complete_len = 0u64;
        {
            let mut reader = LineReader::new(BufReader::new(&mut file), path.display().to_string())
                .with_max_line_bytes(MAX_TRAJECTORY_LINE_BYTES);
            loop {
                let key = match reader
                    .next_line()
                    .map_err(|e| err(std::io::Error::other(e)))?
                {
                    None => break,
                    Some(Line::Record(line)) => serde_json::from_slice::<Key>(line).ok(),
                    // An over-long line is skipped like any unreadable one, never read whole.
                    Some(Line::TooLong(_)) => None,
                };
                if !reader.terminated() {
                    break; // a torn last line: cut off below
                }
                complete_len = reader.bytes_read();
                match key {
                    Some(key) => {
                        done.insert((key.id, key.sample));
                    }
                    None => {
                        unreadable_lines += 1;
                        first_unreadable_line.get_or_insert(reader.line_number());
                    }
                }
            }
        }
        if file.metadata().map_err(err)?.len() != complete_len {
            file.set_len(complete_len).map_err(err)?;
        }
        file.seek(SeekFrom::End(0)).map_err(err)?;
        Ok(TrajectoryWriter {
            file,
            path: path.to_path_buf(),
            done,
            unreadable_lines,
            first_unreadable_line,
        })
    }

    /// Whether `(id, sample)` is already in the file.
    pub fn is_done(&self, id: &str, sample: u32) -> bool {
        self.done.contains(&(id.to_string(), sample))
    }

    /// How many trajectories the file holds.
    pub fn done_count(&self) -> usize {
        self.done.len()
    }

    /// Appends one trajectory as a single line and flushes it.
    ///
    /// # Errors
    /// [`WriterError`] on an I/O failure.
    pub fn write(&mut self, trajectory: &Trajectory) -> Result<(), WriterError> {
        let mut line = serde_json::to_vec(trajectory).map_err(|e| WriterError {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        // One write call per line: a kill leaves at most one torn line, which `open` removes.
        self.file.write_all(&line).map_err(|source| WriterError {
            path: self.path.clone(),
            source,
        })?;
        self.file.flush().map_err(|source| WriterError {
            path: self.path.clone(),
            source,
        })?;
        self.done.insert((trajectory.id.clone(), trajectory.sample));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trajectory::TrajectoryBuilder;

    fn sample(id: &str, sample: u32) -> Trajectory {
        TrajectoryBuilder::math(id)
            .sample(sample)
            .problem("1+1?")
            .answer("2")
            .seed(1)
            .model("2")
            .wall_ms(1.0)
            .generate_ms(1.0)
            .build()
    }

    #[test]
    fn resume_skips_done_and_drops_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        {
            let mut w = TrajectoryWriter::open(&path).unwrap();
            w.write(&sample("a", 0)).unwrap();
            w.write(&sample("b", 0)).unwrap();
        }
        // A run killed mid-line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"id\":\"c\",\"sam").unwrap();
        drop(f);
        let mut w = TrajectoryWriter::open(&path).unwrap();
        assert!(w.is_done("a", 0) && w.is_done("b", 0) && !w.is_done("c", 0));
        w.write(&sample("c", 0)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        for line in text.lines() {
            let t: Trajectory = serde_json::from_str(line).unwrap();
            assert_eq!(t.text(), "2");
        }
    }
}
