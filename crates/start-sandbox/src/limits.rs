//! [`Limits`]: what one execution may use. Each limit is independent; each has a default.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default wall-time limit: 10 s.
pub const DEFAULT_WALL_TIME: Duration = Duration::from_secs(10);
/// Default linear-memory cap: 512 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 512 << 20;
/// Default cap on each of stdout and stderr: 1 MiB.
pub const DEFAULT_OUTPUT_BYTES: usize = 1 << 20;
/// The most memory any guest may have: wasm32's whole address space (4 GiB).
pub const MAX_MEMORY_BYTES: u64 = 4 << 30;
/// The largest code accepted for one execution or turn: 4 MiB.
pub const MAX_CODE_BYTES: usize = 4 << 20;
/// The largest stdin accepted for one execution: 64 MiB.
pub const MAX_STDIN_BYTES: usize = 64 << 20;

/// Default of [`FileLimits::scratch_bytes`]: 256 MiB.
pub const DEFAULT_SCRATCH_BYTES: u64 = 256 << 20;
/// Default of [`FileLimits::scratch_entries`]: 4096 files and folders.
pub const DEFAULT_SCRATCH_ENTRIES: u32 = 4096;
/// Default of [`FileLimits::open_files`]: 256 descriptors.
pub const DEFAULT_OPEN_FILES: u32 = 256;
/// The most [`FileLimits::scratch_bytes`] may be: 16 GiB.
pub const MAX_SCRATCH_BYTES: u64 = 16 << 30;
/// The most [`FileLimits::scratch_entries`] may be: one million.
pub const MAX_SCRATCH_ENTRIES: u32 = 1_000_000;
/// The most [`FileLimits::open_files`] may be: 4096 (each is a host descriptor of the process
/// that runs the guest).
pub const MAX_OPEN_FILES: u32 = 4096;

/// What a guest may keep in its scratch folder and hold open. A write past `scratch_bytes`
/// fails with `ENOSPC`, a new file or folder past `scratch_entries` with `ENOSPC`, an open past
/// `open_files` with `EMFILE`; Python raises `OSError`, and an execution that ends on it
/// reports [`crate::Limit::Scratch`] or [`crate::Limit::OpenFiles`]. Bytes count the files'
/// sizes as written (a hole made by seeking counts too); removing a file gives its bytes and
/// entry back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileLimits {
    /// Bytes all files in the scratch folder may hold together. Default 256 MiB, at most
    /// [`MAX_SCRATCH_BYTES`].
    pub scratch_bytes: u64,
    /// Files, folders and links the scratch folder may hold. Default 4096, at most
    /// [`MAX_SCRATCH_ENTRIES`]: this also bounds how deep a tree can be and how long its
    /// removal takes.
    pub scratch_entries: u32,
    /// Descriptors the guest may hold open besides stdio and its two folders. Default 256, at
    /// most [`MAX_OPEN_FILES`].
    pub open_files: u32,
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            scratch_bytes: DEFAULT_SCRATCH_BYTES,
            scratch_entries: DEFAULT_SCRATCH_ENTRIES,
            open_files: DEFAULT_OPEN_FILES,
        }
    }
}

impl FileLimits {
    /// Lowers every limit to at most the matching one in `ceiling`, and to the maximums.
    pub fn clamp_to(&mut self, ceiling: &FileLimits) {
        self.scratch_bytes = self
            .scratch_bytes
            .min(ceiling.scratch_bytes)
            .min(MAX_SCRATCH_BYTES);
        self.scratch_entries = self
            .scratch_entries
            .min(ceiling.scratch_entries)
            .min(MAX_SCRATCH_ENTRIES);
        self.open_files = self.open_files.min(ceiling.open_files).min(MAX_OPEN_FILES);
    }
}

/// Default per-turn wall time: 10 s.
pub const DEFAULT_TURN_WALL_TIME: Duration = Duration::from_secs(10);
/// Default idle timeout after which an owner should close a session: 10 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Default cap on the number of turns in one session.
pub const DEFAULT_MAX_TURNS: u32 = 1000;

/// Limits for one turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnLimits {
    /// Wall time for this turn (epoch interruption plus a timer). Default 10 s.
    #[serde(with = "duration_ms", rename = "wall_time_ms")]
    pub wall_time: Duration,
    /// Fuel for this turn; only honoured when the session was opened with a fuel budget
    /// (metered sessions use the metered engine). Default none.
    pub fuel: Option<u64>,
    /// Bytes of stdout kept for this turn. Default 1 MiB.
    pub stdout_bytes: usize,
    /// Bytes of stderr kept for this turn. Default 1 MiB.
    pub stderr_bytes: usize,
}

impl Default for TurnLimits {
    fn default() -> Self {
        TurnLimits {
            wall_time: DEFAULT_TURN_WALL_TIME,
            fuel: None,
            stdout_bytes: DEFAULT_OUTPUT_BYTES,
            stderr_bytes: DEFAULT_OUTPUT_BYTES,
        }
    }
}

/// Limits for a whole session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionLimits {
    /// Linear-memory cap for the session's interpreter. Default 512 MiB.
    pub memory_bytes: u64,
    /// Total wall time all turns may use together; `None` (default) for no total.
    #[serde(with = "opt_duration_ms", rename = "total_wall_time_ms")]
    pub total_wall_time: Option<Duration>,
    /// Meter fuel in this session (turns may then set [`TurnLimits::fuel`]). Default false.
    pub metered: bool,
    /// How long the session may sit unused before [`Session::is_idle`](crate::Session::is_idle) says so. Default 10 min.
    #[serde(with = "duration_ms", rename = "idle_timeout_ms")]
    pub idle_timeout: Duration,
    /// The most turns the session runs. Default 1000.
    pub max_turns: u32,
    /// Seed for `random` and numpy at open; `None` (default) draws from host entropy.
    pub seed: Option<u64>,
    /// What the session's interpreter may keep in its scratch folder and hold open, over the
    /// session's whole life (files persist between turns).
    pub files: FileLimits,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            total_wall_time: None,
            metered: false,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_turns: DEFAULT_MAX_TURNS,
            seed: None,
            files: FileLimits::default(),
        }
    }
}

/// What one execution may use.
///
/// ```
/// use std::time::Duration;
/// let limits = start_sandbox::Limits { wall_time: Duration::from_secs(2), ..Default::default() };
/// assert_eq!(limits.memory_bytes, start_sandbox::DEFAULT_MEMORY_BYTES);
/// assert!(limits.fuel.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock time for the call, enforced by epoch interruption (CPU loops) and by a timer
    /// (blocking calls such as `time.sleep`). Precision: about 10 ms. Default 10 s.
    #[serde(with = "duration_ms", rename = "wall_time_ms")]
    pub wall_time: Duration,
    /// Deterministic instruction budget (wasmtime fuel). `None` (the default) means unmetered,
    /// which is faster: metering costs 0-5% on short calls and ~20% on compute-heavy ones, and
    /// its first use compiles a second copy of the runtime (~40 s, cached).
    pub fuel: Option<u64>,
    /// Cap on the guest's linear memory in bytes; growth past it fails, which Python reports
    /// as `MemoryError`. Default 512 MiB, at most [`MAX_MEMORY_BYTES`].
    pub memory_bytes: u64,
    /// Bytes of stdout kept; the rest is dropped and `stdout_truncated` set. Default 1 MiB.
    pub stdout_bytes: usize,
    /// Bytes of stderr kept; the rest is dropped and `stderr_truncated` set. Default 1 MiB.
    pub stderr_bytes: usize,
    /// What the guest reads from stdin (default: nothing, i.e. end of file at once). At most
    /// [`MAX_STDIN_BYTES`].
    pub stdin: String,
    /// Seed for `random`, sympy's and numpy's generators, as Python's own `random.seed(seed)`
    /// would seed them; `None` (default) gives them fresh states from host entropy per call.
    /// Set it to replay a run exactly.
    pub seed: Option<u64>,
    /// What the guest may keep in its scratch folder and hold open.
    pub files: FileLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall_time: DEFAULT_WALL_TIME,
            fuel: None,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            stdout_bytes: DEFAULT_OUTPUT_BYTES,
            stderr_bytes: DEFAULT_OUTPUT_BYTES,
            stdin: String::new(),
            seed: None,
            files: FileLimits::default(),
        }
    }
}

impl Limits {
    /// Lowers every limit to at most the matching one in `ceiling` (a server's maximums).
    ///
    /// A missing fuel budget stays missing only if the ceiling has none either.
    pub fn clamp_to(&mut self, ceiling: &Limits) {
        self.wall_time = self.wall_time.min(ceiling.wall_time);
        self.memory_bytes = self.memory_bytes.min(ceiling.memory_bytes);
        self.stdout_bytes = self.stdout_bytes.min(ceiling.stdout_bytes);
        self.stderr_bytes = self.stderr_bytes.min(ceiling.stderr_bytes);
        self.files.clamp_to(&ceiling.files);
        self.fuel = match (self.fuel, ceiling.fuel) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        };
    }
}

pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

pub(crate) mod opt_duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_from_json() {
        let l: SessionLimits =
            serde_json::from_str(r#"{"total_wall_time_ms": 1500, "max_turns": 3}"#).unwrap();
        assert_eq!(l.total_wall_time, Some(Duration::from_millis(1500)));
        assert_eq!(l.max_turns, 3);
        let t: TurnLimits = serde_json::from_str(r#"{"wall_time_ms": 20}"#).unwrap();
        assert_eq!(t.wall_time, Duration::from_millis(20));
    }

    #[test]
    fn clamp_lowers_to_ceiling() {
        let ceiling = Limits {
            wall_time: Duration::from_secs(1),
            fuel: Some(100),
            ..Limits::default()
        };
        let mut asked = Limits {
            wall_time: Duration::from_secs(3600),
            memory_bytes: u64::MAX,
            ..Limits::default()
        };
        asked.clamp_to(&ceiling);
        assert_eq!(asked.wall_time, Duration::from_secs(1));
        assert_eq!(asked.fuel, Some(100));
        assert_eq!(asked.memory_bytes, DEFAULT_MEMORY_BYTES);
    }

    #[test]
    fn json_round_trip_uses_milliseconds() {
        let limits: Limits = serde_json::from_str(r#"{"wall_time_ms": 250, "seed": 7}"#).unwrap();
        assert_eq!(limits.wall_time, Duration::from_millis(250));
        assert_eq!(limits.seed, Some(7));
        let back: Limits = serde_json::from_str(&serde_json::to_string(&limits).unwrap()).unwrap();
        assert_eq!(back, limits);
        assert!(serde_json::from_str::<Limits>(r#"{"wall_tim": 1}"#).is_err());
    }
}
