//! What the user sees while long set-up work runs (download, unpack, compile, snapshot).
//!
//! On a terminal: indicatif bars and spinners on stderr. Elsewhere (CI logs, pipes): one plain
//! line per step, so a log still says what took the time. Hidden: nothing at all.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How set-up work reports itself.
#[derive(Debug, Clone)]
pub struct Progress {
    mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Hidden,
    Lines,
    Bars,
}

/// One step in progress; finish it to print how long it took.
#[derive(Debug)]
pub struct Step {
    bar: ProgressBar,
    msg: String,
    mode: Mode,
    started: Instant,
}

impl Progress {
    /// Progress on stderr: bars on a terminal, plain lines otherwise.
    pub fn stderr() -> Self {
        let mode = if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        Progress { mode }
    }

    /// No output at all (libraries, tests).
    pub fn hidden() -> Self {
        Progress { mode: Mode::Hidden }
    }

    /// Prints a one-line note.
    pub fn note(&self, msg: &str) {
        if self.mode != Mode::Hidden {
            eprintln!("start: {msg}");
        }
    }

    /// A spinner for a step of unknown length.
    pub fn spinner(&self, msg: &str) -> Step {
        let bar = self.bar(None);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(msg.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.start(bar, msg)
    }

    /// A byte-counting bar for a step of known size.
    pub fn bytes(&self, msg: &str, total: u64) -> Step {
        let bar = self.bar(Some(total));
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(msg.to_string());
        self.start(bar, msg)
    }

    fn bar(&self, len: Option<u64>) -> ProgressBar {
        let bar = match len {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let target = if self.mode == Mode::Bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        bar.set_draw_target(target);
        bar
    }

    fn start(&self, bar: ProgressBar, msg: &str) -> Step {
        if self.mode == Mode::Lines {
            eprintln!("start: {msg} ...");
        }
        Step {
            bar,
            msg: msg.to_string(),
            mode: self.mode,
            started: Instant::now(),
        }
    }
}

impl Step {
    /// Advances a byte bar.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Ends the step, saying how long it took.
    pub fn finish(self) {
        let took = self.started.elapsed().as_secs_f64();
        self.bar.finish_and_clear();
        if self.mode != Mode::Hidden {
            eprintln!("start: {} done in {took:.1} s", self.msg);
        }
    }
}
