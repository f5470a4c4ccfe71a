//! The Hint-infer driver: generate, insert hints, run the model's code, feed the output back.
//!
//! [`Driver::run`] streams pieces from a [`Generation`], scans the model's own text with a
//! [`Scanner`], and at each event acts:
//!
//! - a trigger word ("Wait") or `</think>` or the end of sequence, where the trajectory's
//!   [`Placement`] allows (separate budgets, a gap between trigger hints): cut the text there,
//!   append a sampled hint (ending with an opened ```` ```python ```` fence);
//! - a closed ```` ```python ```` block inside the thinking: run the code with a [`CodeRunner`]
//!   (a sandbox session: state carries across the trajectory's blocks), append a
//!   ```` ```output ```` block with stdout and the error if any, truncated to a set size
//!   ([`start_grade::fence::output_block`]: its fence outgrows any backtick run in the output);
//!
//! and generates on, within caps on hints, tool calls, generated tokens and wall time. The result
//! is a [`Trajectory`] recording every segment.
//!
//! The thinking ends at a `</think>` that gets no hint before it. After it no hint goes in, and
//! code blocks are not run (a code problem's final program there is for the judge, and run on
//! empty stdin it would only feed an `EOFError` back), unless
//! [`GenerateOptions::run_after_think`]. A model that never writes `</think>` (one without a
//! thinking format, like the example model) thinks the whole time: every block runs.

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use start_sandbox::{Outcome, SessionLimits, Status, TurnLimits};

use crate::executor::{ExecError, ExecSession, Executor};

use crate::infer::backend::{
    Backend, BackendError, EndReason, Generation, Piece, Prompt, SampleParams,
};
use crate::infer::hints::{Hint, HintError, HintLibrary, HintSlots};
use crate::infer::insert::{Event, InsertPolicy, Placement, Scanner};
use crate::infer::prompt::{hint_slots, user_prompt};
use crate::problem::Problem;
use crate::trajectory::{InsertPoint, Segment, StopReason, ToolCall, ToolStatus, Trajectory};
use start_grade::fence::{self, CODE_CLOSE, CODE_OPEN};

/// Default cap on the output shown to the model per tool call, in bytes.
pub const DEFAULT_OUTPUT_BYTES: usize = 2048;

/// Caps and settings of one Hint-infer run.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Where hints go and how many.
    pub policy: InsertPolicy,
    /// Sampling (the seed is derived per problem and sample from [`GenerateOptions::seed`]).
    pub sampling: SampleParams,
    /// Base seed of the run.
    pub seed: u64,
    /// Cap on generated tokens per trajectory.
    pub max_tokens: u64,
    /// Cap on a trajectory's wall time.
    pub max_wall_time: Duration,
    /// Cap on executed code blocks per trajectory.
    pub max_tool_calls: u32,
    /// Limits of each code block's run.
    pub turn_limits: TurnLimits,
    /// Limits of the trajectory's interpreter session.
    pub session_limits: SessionLimits,
    /// Bytes of output shown to the model per call; the rest is cut with a note.
    pub output_bytes: usize,
    /// System prompt.
    pub system: Option<String>,
    /// Also run the code blocks after the end of thinking (`</think>`); by default they are
    /// the answer's, not tool calls, and get no output block.
    pub run_after_think: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            policy: InsertPolicy::default(),
            sampling: SampleParams::default(),
            seed: 0,
            max_tokens: 4096,
            max_wall_time: Duration::from_secs(600),
            max_tool_calls: 8,
            turn_limits: TurnLimits {
                wall_time: Duration::from_secs(10),
                stdout_bytes: 64 * 1024,
                stderr_bytes: 64 * 1024,
                ..TurnLimits::default()
            },
            session_limits: SessionLimits::default(),
            output_bytes: DEFAULT_OUTPUT_BYTES,
            system: None,
            run_after_think: false,
        }
    }
}

/// Why a run failed (the model's text and code never make it fail; those become segments).
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The hint library cannot serve this problem.
    #[error(transparent)]
    Hints(#[from] HintError),
    /// The sandbox failed on the host side (or the sandbox server, with `--sandbox-url`).
    #[error("the sandbox failed: {0}")]
    Sandbox(#[from] ExecError),
}

impl From<start_sandbox::Error> for GenerateError {
    fn from(e: start_sandbox::Error) -> Self {
        GenerateError::Sandbox(e.into())
    }
}

/// What running one code block gave.
#[derive(Debug, Clone, PartialEq)]
pub enum RunResult {
    /// The code ran (successfully or not).
    Ran(Outcome),
    /// The code was not run; the reason is shown to the model.
    NotRun(String),
}

/// Runs the model's code blocks for one trajectory.
pub trait CodeRunner {
    /// Runs one block.
    ///
    /// # Errors
    /// [`GenerateError::Sandbox`] on a host failure.
    fn run(&mut self, code: &str) -> Result<RunResult, GenerateError>;
}

/// Runs code in one interpreter session per trajectory (on the [`Executor`]: a local
/// [`start_sandbox::Session`] or a remote one), opened at the first block, so variables and
/// imports carry from block to block. A block that hits a limit ends the session; the next
/// block gets a fresh one, and its output says so.
#[derive(Debug)]
pub struct SessionRunner<'a> {
    executor: Executor<'a>,
    session_limits: SessionLimits,
    turn_limits: TurnLimits,
    session: Option<ExecSession<'a>>,
    restarted: bool,
}

impl<'a> SessionRunner<'a> {
    /// A runner that opens its session on first use.
    pub fn new(
        executor: impl Into<Executor<'a>>,
        session_limits: SessionLimits,
        turn_limits: TurnLimits,
    ) -> Self {
        SessionRunner {
            executor: executor.into(),
            session_limits,
            turn_limits,
            session: None,
            restarted: false,
        }
    }

    /// A runner with the session and turn limits of `options`.
    pub fn for_options(executor: impl Into<Executor<'a>>, options: &GenerateOptions) -> Self {
        SessionRunner::new(
            executor,
            options.session_limits.clone(),
            options.turn_limits.clone(),
        )
    }
}

impl CodeRunner for SessionRunner<'_> {
    fn run(&mut self, code: &str) -> Result<RunResult, GenerateError> {
        if self.session.as_ref().is_some_and(|s| s.ended().is_some()) {
            self.session = None;
            self.restarted = true;
        }
        let session = match &mut self.session {
            Some(s) => s,
            None => self
                .session
                .insert(self.executor.open_session(self.session_limits.clone())?),
        };
        match session.run(code, &self.turn_limits) {
            Ok(mut outcome) => {
                if std::mem::take(&mut self.restarted) {
                    outcome.stderr.insert_str(
                        0,
                        "(note: the interpreter was restarted after the previous block hit a \
                         limit; earlier variables are gone)\n",
                    );
                }
                Ok(RunResult::Ran(outcome))
            }
            Err(e) => match e.not_run_reason() {
                Some(why) => Ok(RunResult::NotRun(why)),
                None => Err(e.into()),
            },
        }
    }
}

/// A Bernoulli draw that tolerates any probability (NaN and below 0 never, 1 and above always).
fn draw(rng: &mut ChaCha8Rng, probability: f64) -> bool {
    if probability >= 1.0 {
        true
    } else if probability > 0.0 {
        rng.random_bool(probability)
    } else {
        false
    }
}

/// The per-(problem, sample) seed: reproducible whatever order workers finish in.
pub fn derive_seed(base: u64, id: &str, sample: u32) -> u64 {
    // FNV-1a over the base, the id and the sample, then a SplitMix64 finaliser.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in base
        .to_le_bytes()
        .iter()
        .chain(id.as_bytes())
        .chain(&sample.to_le_bytes())
    {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// What the model is shown for one block's result, cut to `limit_bytes`: what a terminal
/// shows for the run ([`Outcome::transcript`]: the guest's output, then the one Python-like
/// line for a limit), so the model reads what Python prints. `turn` is the turn's limits.
pub fn render_output(
    result: &RunResult,
    turn: &TurnLimits,
    limit_bytes: usize,
) -> (ToolStatus, String) {
    let (status, mut shown) = match result {
        RunResult::NotRun(why) => (ToolStatus::NotRun, format!("(not run: {why})")),
        RunResult::Ran(outcome) => {
            let status = match &outcome.status {
                Status::Finished => ToolStatus::Finished,
                Status::Exception { .. } => ToolStatus::Exception,
                Status::Exit { .. } => ToolStatus::Exit,
                Status::LimitExceeded { .. } => ToolStatus::LimitExceeded,
                Status::Crashed { .. } => ToolStatus::Crashed,
            };
            let shown = outcome.transcript(turn.wall_time, turn.stdout_bytes, turn.stderr_bytes);
            (status, shown.trim_end_matches('\n').to_string())
        }
    };
    if shown.len() > limit_bytes {
        shown.truncate(shown.floor_char_boundary(limit_bytes));
        if !shown.ends_with('\n') {
            shown.push('\n');
        }
        shown.push_str(&start_sandbox::truncation_message(limit_bytes));
    }
    if shown.trim().is_empty() {
        shown = "(no output)".to_string();
    }
    (status, shown)
}

/// Runs Hint-infer for problems, with one backend and hint library.
pub struct Driver<'a> {
    backend: &'a dyn Backend,
    hints: &'a HintLibrary,
    options: &'a GenerateOptions,
}

impl std::fmt::Debug for Driver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("backend", &self.backend.describe())
            .field("options", self.options)
            .finish_non_exhaustive()
    }
}

/// The state of one run in progress.
struct Run<'g> {
    generation: Box<dyn Generation + 'g>,
    text: String,
    segments: Vec<Segment>,
    /// Where the current model segment starts.
    seg_start: usize,
    scanner: Scanner,
    placement: Placement,
    rng: ChaCha8Rng,
}

impl Run<'_> {
    /// Closes the model segment at `end` and cuts text (and the generation) there.
    fn cut(&mut self, end: usize) -> Result<(), BackendError> {
        if end > self.seg_start {
            self.segments.push(Segment::Model {
                text: self.text[self.seg_start..end].to_string(),
            });
        }
        if end < self.text.len() {
            self.text.truncate(end);
            self.generation.truncate(end)?;
        }
        Ok(())
    }

    /// Appends driver text as `segment`; scanning restarts after it.
    fn append(&mut self, segment: Segment) -> Result<(), BackendError> {
        self.generation.append(segment.text())?;
        self.text.push_str(segment.text());
        self.segments.push(segment);
        self.seg_start = self.text.len();
        self.scanner.reset(self.text.len());
        Ok(())
    }
}

impl<'a> Driver<'a> {
    /// A driver for `backend`, `hints` and `options`.
    pub fn new(
        backend: &'a dyn Backend,
        hints: &'a HintLibrary,
        options: &'a GenerateOptions,
    ) -> Self {
        Driver {
            backend,
            hints,
            options,
        }
    }

    /// The options it generates with.
    pub fn options(&self) -> &GenerateOptions {
        self.options
    }

    /// Generates one trajectory for `problem`, running code in `runner`.
    ///
    /// # Errors
    /// [`GenerateError`] when the backend, the hint library or the sandbox host fails. Anything
    /// the model writes, and anything its code does, ends up in the trajectory instead.
    pub fn run(
        &self,
        problem: &Problem,
        sample: u32,
        runner: &mut dyn CodeRunner,
    ) -> Result<Trajectory, GenerateError> {
        let started = Instant::now();
        let opts = self.options;
        self.hints.require(problem.kind)?;
        let seed = derive_seed(opts.seed, &problem.id, sample);
        let testcases = hint_slots(problem);
        let prompt = Prompt {
            system: opts.system.clone(),
            user: user_prompt(problem),
        };
        let params = SampleParams {
            seed,
            budget_tokens: Some(opts.max_tokens),
            ..opts.sampling.clone()
        };
        let mut generate_time = Duration::ZERO;
        let rendered = self.backend.render(&prompt)?;
        let t = Instant::now();
        let generation = self.backend.start(&rendered, &params)?;
        generate_time += t.elapsed();
        let triggers = if opts.policy.after_triggers {
            opts.policy.triggers.clone()
        } else {
            Vec::new()
        };
        let mut run = Run {
            generation,
            text: String::new(),
            segments: Vec::new(),
            seg_start: 0,
            scanner: Scanner::new(&triggers, 0),
            placement: Placement::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        let mut tool_calls: Vec<ToolCall> = Vec::new();
        let mut error = None;
        let stop = loop {
            if started.elapsed() >= opts.max_wall_time {
                break StopReason::TimeCap;
            }
            if run.generation.counters().generated_tokens >= opts.max_tokens {
                break StopReason::TokenCap;
            }
            let t = Instant::now();
            let piece = match run.generation.next_piece() {
                Ok(piece) => piece,
                // Only this trajectory is refused: record it as it stands, with the reason.
                Err(e @ BackendError::Refused { .. }) => {
                    error = Some(e.to_string());
                    break StopReason::Error;
                }
                Err(e) => return Err(e.into()),
            };
            generate_time += t.elapsed();
            match piece {
                Piece::Text(s) => {
                    run.text.push_str(&s);
                    while let Some(event) = run.scanner.next_event(&run.text) {
                        if self.handle(
                            &mut run,
                            event,
                            problem,
                            &testcases,
                            runner,
                            &mut tool_calls,
                        )? {
                            break;
                        }
                    }
                }
                Piece::End(EndReason::Length) => break StopReason::Length,
                Piece::End(EndReason::Eos) => {
                    if let Some(code_start) = run.scanner.code_start() {
                        if !self.runs_code(&run) {
                            // An unfinished block of the answer: left as the model wrote it.
                            break StopReason::Eos;
                        }
                        // The model stopped inside a code block: close it and run it.
                        let end = run.text.len();
                        self.tool_call(&mut run, code_start, end, true, runner, &mut tool_calls)?;
                        continue;
                    }
                    if run.placement.end_allowed(&opts.policy) {
                        let at = run.text.len();
                        let point = InsertPoint::BeforeEos;
                        if self.insert_hint(&mut run, at, point, problem, &testcases)? {
                            continue;
                        }
                    }
                    break StopReason::Eos;
                }
            }
        };
        if run.text.len() > run.seg_start {
            run.segments.push(Segment::Model {
                text: run.text[run.seg_start..].to_string(),
            });
        }
        Ok(Trajectory {
            id: problem.id.clone(),
            sample,
            kind: problem.kind,
            problem: problem.text.clone(),
            answer: problem.answer.clone(),
            backend: self.backend.describe(),
            seed,
            prompt: prompt.user,
            rendered_prompt: Some(rendered.text),
            segments: run.segments,
            tool_calls,
            stop,
            error,
            counters: run.generation.counters(),
            wall_ms: started.elapsed().as_secs_f64() * 1e3,
            generate_ms: generate_time.as_secs_f64() * 1e3,
        })
    }

    /// Acts on one event; returns whether the text changed (so the scan restarts).
    fn handle(
        &self,
        run: &mut Run<'_>,
        event: Event,
        problem: &Problem,
        testcases: &HintSlots,
        runner: &mut dyn CodeRunner,
        tool_calls: &mut Vec<ToolCall>,
    ) -> Result<bool, GenerateError> {
        let policy = &self.options.policy;
        match event {
            Event::Trigger { word, end, .. } => {
                let tokens = run.generation.counters().generated_tokens;
                if run.placement.trigger_allowed(policy, tokens)
                    && draw(&mut run.rng, policy.trigger_probability)
                {
                    let point = InsertPoint::AfterTrigger { word };
                    return self.insert_hint(run, end, point, problem, testcases);
                }
                Ok(false)
            }
            Event::ThinkEnd { start } => {
                if run.placement.end_allowed(policy) {
                    let point = InsertPoint::BeforeThinkEnd;
                    if self.insert_hint(run, start, point, problem, testcases)? {
                        return Ok(true);
                    }
                }
                if !run.placement.thinking_over() {
                    run.placement.end_thinking();
                    run.scanner.stop_triggers();
                }
                Ok(false)
            }
            Event::CodeOpen { .. } => Ok(false),
            Event::CodeClose { .. } if !self.runs_code(run) => Ok(false),
            Event::CodeClose {
                code_start,
                fence_start,
                fence_end,
            } => {
                run.cut(fence_end)?;
                self.run_block(run, code_start, fence_start, false, runner, tool_calls)?;
                Ok(true)
            }
        }
    }

    /// Whether a block the model closes now is run: inside the thinking, or anywhere with
    /// [`GenerateOptions::run_after_think`].
    fn runs_code(&self, run: &Run<'_>) -> bool {
        !run.placement.thinking_over() || self.options.run_after_think
    }

    /// The model stopped inside a block (`closing` by us): close the fence and run it.
    fn tool_call(
        &self,
        run: &mut Run<'_>,
        code_start: usize,
        end: usize,
        closing: bool,
        runner: &mut dyn CodeRunner,
        tool_calls: &mut Vec<ToolCall>,
    ) -> Result<(), GenerateError> {
        run.cut(end)?;
        self.run_block(run, code_start, end, closing, runner, tool_calls)
    }

    /// Runs `text[code_start..code_end]` and appends its output block.
    fn run_block(
        &self,
        run: &mut Run<'_>,
        code_start: usize,
        code_end: usize,
        close_fence: bool,
        runner: &mut dyn CodeRunner,
        tool_calls: &mut Vec<ToolCall>,
    ) -> Result<(), GenerateError> {
        let began = Instant::now();
        let mut runner_time = Duration::ZERO;
        let mut code = run.text[code_start.min(code_end)..code_end].to_string();
        // Closing the block itself, the driver ends the last line first; that newline is part
        // of the code as the finished text shows it (and as the scorer reads it back).
        let end_line = close_fence && !run.text.ends_with('\n');
        if end_line {
            code.push('\n');
        }
        let result = if tool_calls.len() as u64 >= u64::from(self.options.max_tool_calls) {
            RunResult::NotRun(format!(
                "the limit of {} code runs per solution is reached",
                self.options.max_tool_calls
            ))
        } else {
            let t = Instant::now();
            let result = runner.run(&code)?;
            runner_time = t.elapsed();
            result
        };
        let exec_ms = match &result {
            RunResult::Ran(o) => o.wall_ms,
            RunResult::NotRun(_) => 0.0,
        };
        let (status, shown) = render_output(
            &result,
            &self.options.turn_limits,
            self.options.output_bytes,
        );
        let mut block = String::new();
        if close_fence {
            if end_line {
                block.push('\n');
            }
            block.push_str(CODE_CLOSE);
        }
        // On the line after the closing fence, fenced so that nothing in it ends it early.
        block.push('\n');
        block.push_str(&fence::output_block(&shown));
        let call = tool_calls.len();
        let (stdout, stderr) = match result {
            RunResult::Ran(o) => (o.stdout, o.stderr),
            RunResult::NotRun(_) => (String::new(), String::new()),
        };
        run.append(Segment::Output { text: block, call })?;
        let driver_ms = began.elapsed().saturating_sub(runner_time).as_secs_f64() * 1e3;
        tool_calls.push(ToolCall {
            code,
            status,
            stdout,
            stderr,
            shown,
            exec_ms,
            driver_ms,
        });
        Ok(())
    }

    /// Samples a hint for `problem` uniformly among those its trajectory may still get (the
    /// same draw as [`HintLibrary::sample`] while none is excluded); `None` when none is left.
    fn pick_hint(&self, run: &mut Run<'_>, problem: &Problem) -> Option<&'a Hint> {
        let hints = self.hints;
        let open: Vec<&'a Hint> = hints
            .of_kind(problem.kind)
            .filter(|h| run.placement.hint_available(h))
            .collect();
        if open.is_empty() {
            return None;
        }
        Some(open[run.rng.random_range(0..open.len())])
    }

    /// Cuts the text at `at` and appends a sampled hint; the model continues inside its fence.
    /// Returns whether it did. No hint goes in when the library has none left for the problem
    /// (a once-per-trajectory hint, the code debug hint, that was used: see
    /// [`crate::infer::insert::once_per_trajectory`]), or when it would complete a fence the
    /// model left unfinished there (the text ends with ```` ```python ```` and the hint starts
    /// with a newline), since a reader of the finished text would see a block open that the
    /// driver never ran.
    fn insert_hint(
        &self,
        run: &mut Run<'_>,
        at: usize,
        point: InsertPoint,
        problem: &Problem,
        testcases: &HintSlots,
    ) -> Result<bool, GenerateError> {
        let Some(hint) = self.pick_hint(run, problem) else {
            return Ok(false);
        };
        let prefix = match point {
            InsertPoint::AfterTrigger { .. } => &self.options.policy.trigger_separator,
            InsertPoint::BeforeThinkEnd | InsertPoint::BeforeEos => &self.options.policy.end_prefix,
        };
        let rendered = format!("{prefix}{}", hint.render(testcases));
        // Only the hint's own last fence opens a block: one in a sample test or in the prose is
        // defused, so the finished text opens the block exactly where the driver enters it.
        let prose = rendered.strip_suffix(CODE_OPEN).unwrap_or(&rendered);
        let text = format!("{}{CODE_OPEN}", fence::defuse(prose));
        if fence::opens_across(&run.text[..at.min(run.text.len())], &text) {
            return Ok(false);
        }
        run.cut(at)?;
        let tokens = run.generation.counters().generated_tokens;
        run.placement.inserted(hint, &point, tokens);
        run.append(Segment::Hint {
            hint_id: hint.id.clone(),
            point,
            text,
            offset: at,
        })?;
        let code_start = run.text.len();
        run.scanner.enter_code(code_start);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::backend::scripted::ScriptedBackend;
    use crate::problem::ProblemKind;

    /// Records the code it is given; prints `ran N`.
    #[derive(Default)]
    struct FakeRunner {
        codes: Vec<String>,
    }

    impl CodeRunner for FakeRunner {
        fn run(&mut self, code: &str) -> Result<RunResult, GenerateError> {
            self.codes.push(code.to_string());
            Ok(RunResult::Ran(Outcome::finished(format!(
                "ran {}\n",
                self.codes.len()
            ))))
        }
    }

    fn problem() -> Problem {
        Problem {
            id: "p".into(),
            kind: ProblemKind::Math,
            text: "What is 6*7?".into(),
            answer: Some("42".into()),
            tests: None,
            public_tests: None,
            starter_code: None,
        }
    }

    fn run_script(script: &str, options: &GenerateOptions) -> (Trajectory, Vec<String>) {
        let backend = ScriptedBackend::new(script);
        let hints = HintLibrary::bundled();
        let driver = Driver::new(&backend, &hints, options);
        let mut runner = FakeRunner::default();
        let t = driver.run(&problem(), 0, &mut runner).unwrap();
        assert_eq!(
            t.text(),
            t.segments.iter().map(Segment::text).collect::<String>()
        );
        (t, runner.codes)
    }

    /// Up to `n` trigger hints, no gap, no end hints.
    fn only_triggers(n: u32) -> GenerateOptions {
        GenerateOptions {
            policy: InsertPolicy {
                before_end: false,
                max_trigger_hints: n,
                max_hints: n,
                hint_gap_tokens: 0,
                ..InsertPolicy::default()
            },
            ..GenerateOptions::default()
        }
    }

    /// The default budgets without the gap (the scripts are short).
    fn no_gap() -> GenerateOptions {
        GenerateOptions {
            policy: InsertPolicy {
                hint_gap_tokens: 0,
                ..InsertPolicy::default()
            },
            ..GenerateOptions::default()
        }
    }

    /// A code problem read as a dataset row is (every optional field absent).
    fn code_problem() -> Problem {
        let row = r#"{"id": "c", "kind": "code", "problem": "Sum numbers.\n\nSample Input 1\n\n1 2 3\n\nSample Output 1\n\n6\n"}"#;
        let fields = crate::problem::Fields::default();
        let (mut problems, _) =
            crate::problem::read_jsonl(row.as_bytes(), "test", &fields, ProblemKind::Math).unwrap();
        problems.remove(0)
    }

    fn hint_ids(t: &Trajectory) -> Vec<String> {
        t.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Hint { hint_id, .. } => Some(hint_id.clone()),
                _ => None,
            })
            .collect()
    }

    fn hint_points(t: &Trajectory) -> Vec<(InsertPoint, usize)> {
        t.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Hint { point, offset, .. } => Some((point.clone(), *offset)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn hint_after_wait_then_code_runs() {
        let (t, codes) = run_script(
            "Hmm. Wait, x = 6*7\nprint(x)\n```\nThe answer is 42.",
            &only_triggers(2),
        );
        assert_eq!(
            hint_points(&t),
            vec![(
                InsertPoint::AfterTrigger {
                    word: "Wait".into()
                },
                9
            )]
        );
        assert_eq!(codes, vec!["x = 6*7\nprint(x)\n"]);
        let text = t.text();
        assert!(
            text.starts_with("Hmm. Wait, "),
            "the trigger is kept, the model's comma replaced by the separator: {text}"
        );
        assert!(text.contains("```python\nx = 6*7\nprint(x)\n```\n```output\nran 1\n```\n"));
        assert!(text.ends_with("The answer is 42."));
        assert_eq!(t.tool_calls.len(), 1);
        assert_eq!(t.tool_calls[0].status, ToolStatus::Finished);
        assert_eq!(t.stop, StopReason::Eos);
    }

    #[test]
    fn hint_after_alternatively() {
        let (t, codes) = run_script(
            "One way fails. Alternatively, print(2)\n```\nok",
            &only_triggers(2),
        );
        assert_eq!(
            hint_points(&t),
            vec![(
                InsertPoint::AfterTrigger {
                    word: "Alternatively".into()
                },
                28
            )]
        );
        assert_eq!(codes, vec!["print(2)\n"]);
    }

    #[test]
    fn hint_before_think_end() {
        let options = GenerateOptions {
            policy: InsertPolicy {
                after_triggers: false,
                max_hints: 1,
                ..InsertPolicy::default()
            },
            ..GenerateOptions::default()
        };
        let (t, codes) = run_script(
            "So 42. Wait, sure.\n</think>\nprint(42)\n```\nDone.",
            &options,
        );
        assert_eq!(hint_points(&t), vec![(InsertPoint::BeforeThinkEnd, 19)]);
        assert_eq!(codes, vec!["print(42)\n"]);
        let text = t.text();
        assert!(text.starts_with("So 42. Wait, sure.\n\n\nWait, "), "{text}");
        assert!(!text.contains("</think>"));
    }

    #[test]
    fn hint_before_eos_and_model_stopping_inside_code() {
        let options = GenerateOptions {
            policy: InsertPolicy {
                max_hints: 1,
                ..InsertPolicy::default()
            },
            ..GenerateOptions::default()
        };
        let (t, codes) = run_script("The answer is 42.", &options);
        assert_eq!(hint_points(&t), vec![(InsertPoint::BeforeEos, 17)]);
        // The script is spent, so the "model" stops inside the hint's block: the driver closes
        // the fence and runs the (empty) code, then stops since no hint is left.
        assert_eq!(codes, vec![String::new()]);
        assert!(
            t.text()
                .ends_with("```python\n```\n```output\nran 1\n```\n")
        );
        assert_eq!(t.stop, StopReason::Eos);
    }

    #[test]
    fn caps_on_hints_tool_calls_tokens_and_probability() {
        let script = "Wait, print(1)\n```\nWait, print(2)\n```\nWait, print(3)\n```\nend";
        let (t, codes) = run_script(script, &only_triggers(1));
        assert_eq!(t.hints(), 1);
        assert_eq!(codes.len(), 1);

        let options = GenerateOptions {
            max_tool_calls: 2,
            ..only_triggers(5)
        };
        let (t, codes) = run_script(script, &options);
        assert_eq!(t.hints(), 3);
        assert_eq!(codes.len(), 2, "the third block is not run");
        assert_eq!(t.tool_calls[2].status, ToolStatus::NotRun);
        assert!(t.tool_calls[2].shown.contains("limit of 2 code runs"));

        let options = GenerateOptions {
            max_tokens: 3,
            ..only_triggers(0)
        };
        let (t, _) = run_script("a b c d e f", &options);
        assert_eq!(t.stop, StopReason::TokenCap);
        assert_eq!(t.text(), "a b c ");

        let options = GenerateOptions {
            policy: InsertPolicy {
                trigger_probability: 0.0,
                before_end: false,
                ..InsertPolicy::default()
            },
            ..GenerateOptions::default()
        };
        let (t, codes) = run_script(script, &options);
        assert_eq!(t.hints(), 0);
        assert!(codes.is_empty());
    }

    #[test]
    fn model_opened_code_block_runs_without_hint() {
        let (t, codes) = run_script(
            "Compute:\n```python\nprint(5)\n```\nso 5.",
            &only_triggers(0),
        );
        assert_eq!(t.hints(), 0);
        assert_eq!(codes, vec!["print(5)\n"]);
        assert!(t.text().ends_with("```\n```output\nran 1\n```\nso 5."));
    }

    #[test]
    fn code_problem_gets_the_debug_hint_with_tests() {
        let backend = ScriptedBackend::new("Plan. Wait, print(6)\n```\n");
        let hints = HintLibrary::bundled();
        let options = only_triggers(1);
        let driver = Driver::new(&backend, &hints, &options);
        let problem = Problem {
            id: "c".into(),
            kind: ProblemKind::Code,
            text: "Sum numbers.\n\nSample Input 1\n\n1 2 3\n\nSample Output 1\n\n6\n".into(),
            answer: None,
            tests: None,
            public_tests: None,
            starter_code: None,
        };
        let t = driver.run(&problem, 0, &mut FakeRunner::default()).unwrap();
        let hint = t
            .segments
            .iter()
            .find_map(|s| match s {
                Segment::Hint { hint_id, text, .. } => Some((hint_id.clone(), text.clone())),
                _ => None,
            })
            .unwrap();
        assert_eq!(hint.0, "debug");
        assert!(
            hint.1.contains("1 2 3") && hint.1.contains("Alright, now I can write a debug code")
        );
    }

    #[test]
    fn the_end_hint_has_its_own_budget() {
        let script = "Wait, print(1)\n```\nWait, print(2)\n```\nWait, print(3)\n```\nSo 3.\n</think>\n\
                      print(4)\n```\nDone.";
        let (t, codes) = run_script(script, &no_gap());
        let points: Vec<_> = hint_points(&t).into_iter().map(|(p, _)| p).collect();
        let wait = InsertPoint::AfterTrigger {
            word: "Wait".into(),
        };
        // Both trigger hints are used, and the end of thinking still gets its own.
        assert_eq!(
            points,
            [wait.clone(), wait.clone(), InsertPoint::BeforeThinkEnd]
        );
        assert_eq!(codes, ["print(1)\n", "print(2)\n", "print(4)\n"]);
        assert!(!t.text().contains("</think>"));

        // A total cap keeps the end hint's share: two hints in all are one of each.
        let mut capped = no_gap();
        capped.policy.max_hints = 2;
        let (t, _) = run_script(script, &capped);
        let points: Vec<_> = hint_points(&t).into_iter().map(|(p, _)| p).collect();
        assert_eq!(points, [wait.clone(), InsertPoint::BeforeThinkEnd]);

        // Without end hints the trigger hints may take the whole total.
        capped.policy.before_end = false;
        let (t, _) = run_script(script, &capped);
        let points: Vec<_> = hint_points(&t).into_iter().map(|(p, _)| p).collect();
        assert_eq!(points, [wait.clone(), wait]);

        // Two end hints: after the first one's tool call the model ends again and gets another.
        let mut two = no_gap();
        two.policy.max_trigger_hints = 0;
        two.policy.max_end_hints = 2;
        two.policy.max_hints = 2;
        let (t, codes) = run_script("So 3.\n</think>\nprint(3)\n```\nYes.", &two);
        let points: Vec<_> = hint_points(&t).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            points,
            [InsertPoint::BeforeThinkEnd, InsertPoint::BeforeEos]
        );
        assert_eq!(codes, ["print(3)\n", ""]);
    }

    #[test]
    fn trigger_hints_keep_a_gap() {
        // One token per piece: "Wait, " is the 1st, 6th, 9th and 13th.
        let script = "Wait, no. a b c Wait, print(1)\n```\nWait, x y z Wait, print(2)\n```\nend.";
        let mut options = only_triggers(2);
        options.policy.hint_gap_tokens = 5;
        let (t, codes) = run_script(script, &options);
        assert_eq!(codes, ["print(1)\n", "print(2)\n"]);
        let offsets: Vec<usize> = hint_points(&t).into_iter().map(|(_, at)| at).collect();
        assert_eq!(offsets.len(), 2);
        let text = t.text();
        // The first "Wait" (before the gap) and the third (too soon after a hint) stay prose.
        assert!(text.starts_with("Wait, no. a b c Wait, "), "{text}");
        assert!(text.contains("```\nWait, x y z Wait, "), "{text}");
        assert_eq!(offsets[0], "Wait, no. a b c Wait".len());

        // Without a gap the first two "Wait"s take the budget.
        let (t, _) = run_script(script, &only_triggers(2));
        assert_eq!(hint_points(&t)[0].1, "Wait".len());
    }

    #[test]
    fn the_debug_hint_goes_in_once() {
        let script =
            "Plan. Wait, print(1)\n```\nWait, print(2)\n```\nDone.\n</think>\nprint(3)\n```\n";
        let hints = HintLibrary::bundled();
        let options = no_gap();
        let run = |hints: &HintLibrary, sample| {
            let backend = ScriptedBackend::new(script);
            let driver = Driver::new(&backend, hints, &options);
            let mut runner = FakeRunner::default();
            let t = driver.run(&code_problem(), sample, &mut runner).unwrap();
            (t, runner.codes)
        };
        // The bundled library has only the debug hint for code: one hint, then none, and the
        // `</think>` that finds no hint left ends the thinking.
        let (t, codes) = run(&hints, 0);
        assert_eq!(hint_ids(&t), ["debug"]);
        assert_eq!(codes, ["print(1)\n"]);
        assert!(t.text().contains("Done.\n</think>\nprint(3)\n```\n"));

        // A library with another code hint gives that one after the debug hint (math hints are
        // not for code problems).
        let two = HintLibrary::from_toml(
            "[[hint]]\nid = \"debug\"\nkind = \"code\"\ntext = \"Tests: {testcase}\\n```python\"\n\
             [[hint]]\nid = \"check\"\nkind = \"code\"\ntext = \"let me check.\\n```python\"\n\
             [[hint]]\nid = \"m\"\nkind = \"math\"\ntext = \"m\\n```python\"\n",
        )
        .unwrap();
        let mut with_debug = 0;
        for sample in 0..16 {
            let (t, codes) = run(&two, sample);
            let ids = hint_ids(&t);
            assert_eq!((ids.len(), codes.len()), (3, 3), "{ids:?}");
            let debug = ids.iter().filter(|id| *id == "debug").count();
            assert!(debug <= 1, "{ids:?}");
            assert!(ids.iter().all(|id| id != "m"), "{ids:?}");
            with_debug += debug;
        }
        assert!(with_debug > 0);
    }

    #[test]
    fn no_hint_and_no_run_after_the_thinking_ended() {
        let script = "Plan.\n```python\nprint(1)\n```\nOK. </think>\nFinal:\n```python\nprint(input())\n```\n\
                      Wait, done.";
        let mut options = no_gap();
        options.policy.max_end_hints = 0;
        let (t, codes) = run_script(script, &options);
        assert_eq!(codes, ["print(1)\n"]);
        assert_eq!(
            t.hints(),
            0,
            "no hint after </think>, nor at the end of sequence"
        );
        assert!(
            t.text()
                .ends_with("</think>\nFinal:\n```python\nprint(input())\n```\nWait, done."),
            "{}",
            t.text()
        );

        // The end hint goes before the first `</think>`; the second one, with the end budget
        // spent, ends the thinking: its block is the answer's.
        let script = "A. </think>\nprint(2)\n```\nB. </think>\n```python\nprint(3)\n```\nWait, end";
        let (t, codes) = run_script(script, &no_gap());
        assert_eq!(codes, ["print(2)\n"]);
        assert_eq!(hint_points(&t), [(InsertPoint::BeforeThinkEnd, 3)]);
        assert!(
            t.text()
                .ends_with("B. </think>\n```python\nprint(3)\n```\nWait, end")
        );

        // The model stopping inside the answer's block: it is left open, not run.
        let (t, codes) = run_script("A. </think>\n```python\nprint(5)", &options);
        assert!(codes.is_empty());
        assert_eq!(t.text(), "A. </think>\n```python\nprint(5)");
        assert_eq!(t.stop, StopReason::Eos);
    }

    #[test]
    fn run_after_think_runs_the_answer_blocks_too() {
        let script = "OK. </think>\n```python\nprint(3)\n```\nWait, so 3.\n```python\nprint(4)";
        let mut options = no_gap();
        options.policy.max_end_hints = 0;
        options.run_after_think = true;
        let (t, codes) = run_script(script, &options);
        assert_eq!(codes, ["print(3)\n", "print(4)\n"]);
        assert_eq!(t.hints(), 0, "still no hint after </think>");
        assert!(t.text().contains("print(3)\n```\n```output\nran 1\n```\n"));
    }

    #[test]
    fn seeds_are_stable_and_distinct() {
        assert_eq!(derive_seed(1, "a", 0), derive_seed(1, "a", 0));
        assert_ne!(derive_seed(1, "a", 0), derive_seed(1, "a", 1));
        assert_ne!(derive_seed(1, "a", 0), derive_seed(2, "a", 0));
    }

    #[test]
    fn output_is_cut_at_a_char_boundary() {
        let outcome = Outcome::finished("é".repeat(100));
        let (status, shown) = render_output(&RunResult::Ran(outcome), &TurnLimits::default(), 11);
        assert_eq!(status, ToolStatus::Finished);
        assert_eq!(shown, "ééééé\n[output truncated after 11 bytes]");
    }

    #[test]
    fn the_text_shows_the_code_that_ran_and_no_fence_it_did_not() {
        // Closing a block itself, the driver ends the code's last line first: the code that
        // runs (and is recorded) is the block's body as the finished text shows it.
        let (t, codes) = run_script("Compute:\n```python\nprint(4)", &only_triggers(0));
        assert_eq!(codes, ["print(4)\n"]);
        assert_eq!(t.tool_calls[0].code, "print(4)\n");
        assert!(
            t.text()
                .contains("```python\nprint(4)\n```\n```output\nran 1\n```\n")
        );
        // The end-of-sequence hint starts with a newline: after an unfinished "```python" it
        // would make a fence the driver never opened, so none goes there.
        let (t, codes) = run_script("All done. ```python", &GenerateOptions::default());
        assert_eq!((t.hints(), codes.len(), t.stop), (0, 0, StopReason::Eos));
        assert_eq!(t.text(), "All done. ```python");
    }
}
