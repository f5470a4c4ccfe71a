//! The hostile-guest catalogue, `programs.toml` beside this file: each program, the limits it
//! runs under and the outcomes it accepts. Shared (by `#[path]`) by the hostile-guest suite
//! (`tests/all/hostile.rs`) and the soak bench (`crates/start-daemon/benches/soak.rs`), so both
//! run the same programs and judge them the same way.
//!
//! A program passes only with an outcome its `accept` list names; anything else (another
//! status, a missing stdout marker, a host error, a lost worker) is a failure. Programs marked
//! `needs = ["file-limits"]` depend on the scratch byte/entry budget and descriptor cap
//! ([`start_sandbox::FileLimits`]) being enforced.
//!
//! Also here, for both: [`RssSampler`], the peak resident memory of a daemon and its workers.

#![allow(dead_code)]

use std::time::Duration;

use serde::Deserialize;
use start_sandbox::{Limit, Limits, Outcome, Status};

/// The catalogue's text, compiled in.
pub const CATALOGUE_TOML: &str = include_str!("programs.toml");

/// What a program depends on that a build may not have yet: the scratch budget and descriptor
/// cap.
pub const NEEDS_FILE_LIMITS: &str = "file-limits";

/// The whole catalogue.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// The canary: run after hostile programs, its stdout must equal `canary.stdout`.
    pub canary: Canary,
    /// The hostile programs.
    pub program: Vec<Program>,
}

/// A known-good program whose output shows that nothing a hostile one did is left over.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    /// Python source.
    pub code: String,
    /// Its exact stdout.
    pub stdout: String,
}

/// One hostile program.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// A unique name (kebab-case).
    pub name: String,
    /// Its class (fork, recursion, memory, descriptors, inodes, disk, output, traceback, loop,
    /// escape, exit, state, random, misc).
    pub class: String,
    /// What it tries, in a sentence.
    #[serde(default)]
    pub about: String,
    /// Python source.
    pub code: String,
    /// The code is `code` repeated this many times (a big program without a big catalogue).
    #[serde(default = "one")]
    pub repeat: usize,
    /// Wall time, in milliseconds.
    #[serde(default = "default_wall_ms")]
    pub wall_time_ms: u64,
    /// Memory cap, in MiB.
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
    /// What the build must enforce for the accepted outcomes to hold (`file-limits`).
    #[serde(default)]
    pub needs: Vec<String>,
    /// Two runs must print different stdout (fresh randomness per execution).
    #[serde(default)]
    pub varies: bool,
    /// Leave it out of the soak bench (too slow or too heavy to repeat for minutes).
    #[serde(default)]
    pub no_soak: bool,
    /// The outcomes accepted.
    pub accept: Vec<Accept>,
    /// The `start judge` statuses accepted; derived from `accept` when empty.
    #[serde(default)]
    pub judge: Vec<JudgeAccept>,
}

fn one() -> usize {
    1
}

/// Default wall time of a catalogue program: 1.5 s.
pub const DEFAULT_WALL_MS: u64 = 1500;
/// Default memory cap of a catalogue program: 256 MiB (`start judge`'s default too).
pub const DEFAULT_MEMORY_MIB: u64 = 256;

fn default_wall_ms() -> u64 {
    DEFAULT_WALL_MS
}

fn default_memory_mib() -> u64 {
    DEFAULT_MEMORY_MIB
}

/// How an execution ended, as the catalogue names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// [`Status::Finished`].
    Finished,
    /// [`Status::Exception`].
    Exception,
    /// [`Status::Exit`].
    Exit,
    /// [`Status::LimitExceeded`].
    LimitExceeded,
    /// [`Status::Crashed`].
    Crashed,
}

/// One accepted outcome: a status kind and, optionally, what it must carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accept {
    /// The status kind.
    pub kind: Kind,
    /// For `exception`: the exception's name (any when absent).
    pub name: Option<String>,
    /// For `exit`: the exit code (any when absent).
    pub code: Option<i32>,
    /// For `limit_exceeded`: which limit.
    pub limit: Option<Limit>,
    /// A substring stdout must contain.
    pub stdout: Option<String>,
    /// A substring stderr must contain.
    pub stderr: Option<String>,
    /// Whether stdout must (or must not) have been truncated.
    pub stdout_truncated: Option<bool>,
    /// Whether stderr must (or must not) have been truncated.
    pub stderr_truncated: Option<bool>,
}

/// A `start judge` test status the program may get (the judge runs it as a stdio test whose
/// expected output it never prints, so `passed` is never accepted: it would be a forged
/// verdict).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeAccept {
    /// `wrong_answer`, `runtime_error` or `limit_exceeded`.
    pub kind: String,
    /// For `limit_exceeded`: which limit.
    pub limit: Option<Limit>,
    /// For `runtime_error`: a substring of the error.
    pub error: Option<String>,
}

/// The output a judged hostile program is expected to print: no program prints it, so a
/// `passed` verdict can only be forged (the `state-forge-judge-*` programs try, knowing it as
/// a model knows a problem's example output).
pub const JUDGE_EXPECTED_OUTPUT: &str = "a line no hostile program prints 7f3a9c\n";

impl Catalogue {
    /// Parses [`CATALOGUE_TOML`] and checks it (unique names, accept lists well formed).
    ///
    /// # Panics
    /// On a malformed catalogue, saying where.
    pub fn load() -> Catalogue {
        let catalogue: Catalogue = match toml::from_str(CATALOGUE_TOML) {
            Ok(c) => c,
            Err(e) => panic!("tests/hostile/programs.toml: {e}"),
        };
        let mut names = std::collections::BTreeSet::new();
        for p in &catalogue.program {
            assert!(names.insert(p.name.clone()), "duplicate program {}", p.name);
            assert!(!p.accept.is_empty(), "{}: accepts nothing", p.name);
            for a in &p.accept {
                assert!(
                    a.name.is_none() || a.kind == Kind::Exception,
                    "{}: `name` goes only with kind = exception",
                    p.name
                );
                assert_eq!(
                    a.limit.is_some(),
                    a.kind == Kind::LimitExceeded,
                    "{}: `limit` goes with (and only with) kind = limit_exceeded",
                    p.name
                );
            }
            for j in &p.judge {
                assert!(
                    [
                        "wrong_answer",
                        "runtime_error",
                        "syntax_error",
                        "limit_exceeded",
                        "output_limit_exceeded"
                    ]
                    .contains(&j.kind.as_str()),
                    "{}: judge kind {} (passed is never accepted)",
                    p.name,
                    j.kind
                );
            }
            for n in &p.needs {
                assert_eq!(n, NEEDS_FILE_LIMITS, "{}: unknown need {n}", p.name);
            }
        }
        catalogue
    }
}

impl Program {
    /// The program's source (its `code`, repeated `repeat` times).
    pub fn source(&self) -> String {
        self.code.repeat(self.repeat)
    }

    /// The limits it runs under: its wall time and memory cap, the rest the defaults.
    pub fn limits(&self) -> Limits {
        Limits {
            wall_time: Duration::from_millis(self.wall_time_ms),
            memory_bytes: self.memory_mib << 20,
            ..Limits::default()
        }
    }

    /// Whether it depends on the scratch budget and descriptor cap.
    pub fn needs_file_limits(&self) -> bool {
        self.needs.iter().any(|n| n == NEEDS_FILE_LIMITS)
    }

    /// Whether `outcome` is one the program accepts.
    pub fn accepts(&self, outcome: &Outcome) -> bool {
        self.accept.iter().any(|a| a.matches(outcome))
    }

    /// Whether a `start judge` test status (its JSON) is one the program accepts.
    pub fn judge_accepts(&self, status: &serde_json::Value) -> bool {
        let kind = status["kind"].as_str().unwrap_or("");
        let accepts = |j: &JudgeAccept| {
            j.kind == kind
                && j.limit
                    .is_none_or(|l| serde_json::to_value(l).is_ok_and(|l| status["limit"] == l))
                && j.error.as_ref().is_none_or(|e| {
                    status["error"]
                        .as_str()
                        .is_some_and(|text| text.contains(e))
                })
        };
        if self.judge.is_empty() {
            self.derived_judge().iter().any(accepts)
        } else {
            self.judge.iter().any(accepts)
        }
    }

    /// The judge statuses that match `accept`: the harness catches every exception (and
    /// `SystemExit`) and reports it as a runtime error naming it, maps a `MemoryError` to the
    /// memory limit, compares the stdout of a program that finished, and reports stdout past
    /// its cap as the output limit.
    fn derived_judge(&self) -> Vec<JudgeAccept> {
        let mut out = Vec::new();
        let mut push = |kind: &str, limit: Option<Limit>, error: Option<&str>| {
            out.push(JudgeAccept {
                kind: kind.into(),
                limit,
                error: error.map(String::from),
            })
        };
        for a in &self.accept {
            // Stdout past the cap cannot be compared: the judge's verdict is the output limit.
            if a.stdout_truncated == Some(true) {
                push("output_limit_exceeded", None, None);
                continue;
            }
            match a.kind {
                Kind::Finished => push("wrong_answer", None, None),
                Kind::Exception => {
                    let name = a.name.as_deref().unwrap_or("");
                    if name.ends_with("MemoryError") {
                        push("limit_exceeded", Some(Limit::Memory), None);
                    }
                    push("runtime_error", None, Some(name));
                }
                Kind::Exit => {
                    push("runtime_error", None, Some("SystemExit"));
                    push("runtime_error", None, Some("ended the interpreter"));
                }
                Kind::LimitExceeded => {
                    push("limit_exceeded", a.limit, None);
                    if a.limit == Some(Limit::Memory) {
                        push("runtime_error", None, Some("MemoryError"));
                    }
                }
                Kind::Crashed => push("runtime_error", None, Some("crashed")),
            }
        }
        out
    }
}

impl Accept {
    /// Whether `outcome` matches this accepted outcome.
    pub fn matches(&self, outcome: &Outcome) -> bool {
        let status = match (&outcome.status, self.kind) {
            (Status::Finished, Kind::Finished) | (Status::Crashed { .. }, Kind::Crashed) => true,
            (Status::Exception { name, .. }, Kind::Exception) => {
                self.name.as_ref().is_none_or(|n| n == name)
            }
            (Status::Exit { code }, Kind::Exit) => self.code.is_none_or(|c| c == *code),
            (Status::LimitExceeded { limit }, Kind::LimitExceeded) => {
                self.limit.is_none_or(|l| l == *limit)
            }
            _ => false,
        };
        status
            && self
                .stdout
                .as_ref()
                .is_none_or(|s| outcome.stdout.contains(s.as_str()))
            && self
                .stderr
                .as_ref()
                .is_none_or(|s| outcome.stderr.contains(s.as_str()))
            && self
                .stdout_truncated
                .is_none_or(|t| t == outcome.stdout_truncated)
            && self
                .stderr_truncated
                .is_none_or(|t| t == outcome.stderr_truncated)
    }
}

/// A short description of an outcome for a failure message: its status and the ends of its
/// output (never megabytes).
pub fn describe(outcome: &Outcome) -> String {
    let status = match &outcome.status {
        Status::Exception { name, traceback } => {
            let short = head(name, 80);
            let more = if short.len() < name.len() {
                format!(" (a name of {} bytes)", name.len())
            } else {
                String::new()
            };
            format!("exception {short}{more}: {:?}", tail(traceback, 200))
        }
        other => format!("{other:?}"),
    };
    format!(
        "{status}; stdout{} {:?}; stderr{} {:?}; {:.0} ms",
        if outcome.stdout_truncated {
            " (truncated)"
        } else {
            ""
        },
        head(&outcome.stdout, 200),
        if outcome.stderr_truncated {
            " (truncated)"
        } else {
            ""
        },
        tail(&outcome.stderr, 300),
        outcome.wall_ms,
    )
}

fn head(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn tail(s: &str, n: usize) -> String {
    let count = s.chars().count();
    s.chars().skip(count.saturating_sub(n)).collect()
}

/// Peak resident memory (`VmRSS`) of a daemon and of its descendants (its workers).
#[derive(Debug, Clone, Copy, Default)]
pub struct RssPeak {
    /// The daemon process alone, in bytes.
    pub daemon: u64,
    /// The largest single descendant, in bytes.
    pub worker: u64,
    /// The daemon and all its descendants at one sample, in bytes.
    pub total: u64,
}

/// A thread that samples [`RssPeak`] every 50 ms until stopped: a memory bomb's peak lasts
/// less than an execution, so sampling between requests would miss it.
pub struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<RssPeak>,
}

impl RssSampler {
    /// Starts sampling `pid` and its descendants.
    pub fn start(pid: u32) -> RssSampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = RssPeak::default();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let daemon = vm_rss(pid).unwrap_or(0);
                let mut total = daemon;
                for child in descendants(pid) {
                    let rss = vm_rss(child).unwrap_or(0);
                    peak.worker = peak.worker.max(rss);
                    total += rss;
                }
                peak.daemon = peak.daemon.max(daemon);
                peak.total = peak.total.max(total);
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        });
        RssSampler { stop, thread }
    }

    /// Stops sampling; the peaks seen.
    pub fn stop(self) -> RssPeak {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// `VmRSS` of a process, in bytes.
pub fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}

/// The descendants of `pid`, from `/proc/<pid>/task/*/children`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}
