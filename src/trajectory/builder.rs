//! [`TrajectoryBuilder`]: trajectories put together piece by piece, for tests and benches.

use crate::problem::ProblemKind;

use super::{Counters, InsertPoint, Segment, StopReason, ToolCall, ToolStatus, Trajectory};

/// Builds a [`Trajectory`] piece by piece, keeping what the driver keeps consistent: each hint
/// records the byte offset where it was inserted, and each tool call gets its output block
/// (pointing back at the call) in the segments.
///
/// The defaults are: sample 0, problem `problem ID`, the prompt the problem, no gold answer,
/// backend `test`, seed 0, no segments, stop [`StopReason::Eos`], zero counters and times.
///
/// # Examples
///
/// ```
/// use start::trajectory::{InsertPoint, StopReason, TrajectoryBuilder};
///
/// let t = TrajectoryBuilder::math("p1")
///     .answer("4")
///     .model("It is 4.\nWait")
///     .hint("check", InsertPoint::AfterTrigger { word: "Wait".into() }, ", let me check.\n```python\n")
///     .model("print(2 + 2)\n```\n")
///     .tool_call("print(2 + 2)", "4\n")
///     .model("So \\boxed{4}.")
///     .stop(StopReason::Eos)
///     .build();
/// assert_eq!(t.hints(), 1);
/// assert_eq!(t.tool_calls[0].stdout, "4\n");
/// assert!(t.text().ends_with("```\n```output\n4\n```\nSo \\boxed{4}."));
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build`"]
pub struct TrajectoryBuilder {
    trajectory: Trajectory,
    prompt: Option<String>,
    text_bytes: usize,
}

impl TrajectoryBuilder {
    /// A trajectory of problem `id`, of `kind`, with the defaults.
    pub fn new(id: impl Into<String>, kind: ProblemKind) -> TrajectoryBuilder {
        let id = id.into();
        TrajectoryBuilder {
            trajectory: Trajectory {
                problem: format!("problem {id}"),
                id,
                sample: 0,
                kind,
                answer: None,
                backend: "test".into(),
                seed: 0,
                prompt: String::new(),
                segments: Vec::new(),
                tool_calls: Vec::new(),
                stop: StopReason::Eos,
                counters: Counters::default(),
                wall_ms: 0.0,
                generate_ms: 0.0,
                rendered_prompt: None,
                error: None,
            },
            prompt: None,
            text_bytes: 0,
        }
    }

    /// A math problem's trajectory.
    pub fn math(id: impl Into<String>) -> TrajectoryBuilder {
        Self::new(id, ProblemKind::Math)
    }

    /// A code problem's trajectory.
    pub fn code(id: impl Into<String>) -> TrajectoryBuilder {
        Self::new(id, ProblemKind::Code)
    }

    /// Which sample of the problem it is.
    pub fn sample(mut self, sample: u32) -> TrajectoryBuilder {
        self.trajectory.sample = sample;
        self
    }

    /// The problem text (also the prompt, unless [`TrajectoryBuilder::prompt`] sets one).
    pub fn problem(mut self, problem: impl Into<String>) -> TrajectoryBuilder {
        self.trajectory.problem = problem.into();
        self
    }

    /// The prompt's text.
    pub fn prompt(mut self, prompt: impl Into<String>) -> TrajectoryBuilder {
        self.prompt = Some(prompt.into());
        self
    }

    /// The gold answer.
    pub fn answer(mut self, gold: impl Into<String>) -> TrajectoryBuilder {
        self.trajectory.answer = Some(gold.into());
        self
    }

    /// The backend's name.
    pub fn backend(mut self, backend: impl Into<String>) -> TrajectoryBuilder {
        self.trajectory.backend = backend.into();
        self
    }

    /// The sampler seed.
    pub fn seed(mut self, seed: u64) -> TrajectoryBuilder {
        self.trajectory.seed = seed;
        self
    }

    /// Appends text the model wrote (code blocks included).
    pub fn model(mut self, text: impl Into<String>) -> TrajectoryBuilder {
        let text = text.into();
        self.push(Segment::Model { text });
        self
    }

    /// Appends a hint from the library (`hint_id`), inserted at `point`: `text` is what was
    /// inserted (separator and hint), at the end of the text so far.
    pub fn hint(
        mut self,
        hint_id: impl Into<String>,
        point: InsertPoint,
        text: impl Into<String>,
    ) -> TrajectoryBuilder {
        let offset = self.text_bytes;
        self.push(Segment::Hint {
            hint_id: hint_id.into(),
            point,
            text: text.into(),
            offset,
        });
        self
    }

    /// Records a run of `code` that finished and printed `stdout` (all of it shown to the
    /// model), and appends its output block.
    pub fn tool_call(
        self,
        code: impl Into<String>,
        stdout: impl Into<String>,
    ) -> TrajectoryBuilder {
        let stdout = stdout.into();
        self.call(ToolCall {
            code: code.into(),
            status: ToolStatus::Finished,
            shown: stdout.clone(),
            stdout,
            stderr: String::new(),
            exec_ms: 1.0,
            driver_ms: 0.1,
        })
    }

    /// Records a run of `code` that ended with `status` (`exception`, `exit`,
    /// `limit_exceeded`, ...) and wrote `stderr` (all of it shown to the model), and appends
    /// its output block.
    pub fn failed_tool_call(
        self,
        code: impl Into<String>,
        status: ToolStatus,
        stderr: impl Into<String>,
    ) -> TrajectoryBuilder {
        let stderr = stderr.into();
        self.call(ToolCall {
            code: code.into(),
            status,
            stdout: String::new(),
            shown: stderr.clone(),
            stderr,
            exec_ms: 1.0,
            driver_ms: 0.1,
        })
    }

    /// Records `call` as it is and appends its output block, made of `call.shown`.
    pub fn call(mut self, call: ToolCall) -> TrajectoryBuilder {
        // Fenced as the driver fences it, so the scorer reads it back the same way.
        let text = start_grade::fence::output_block(&call.shown);
        let index = self.trajectory.tool_calls.len();
        self.trajectory.tool_calls.push(call);
        self.push(Segment::Output { text, call: index });
        self
    }

    /// Why the run ended.
    pub fn stop(mut self, stop: StopReason) -> TrajectoryBuilder {
        self.trajectory.stop = stop;
        self
    }

    /// The backend's token accounting.
    pub fn counters(mut self, counters: Counters) -> TrajectoryBuilder {
        self.trajectory.counters = counters;
        self
    }

    /// Wall time of the whole run, in milliseconds.
    pub fn wall_ms(mut self, wall_ms: f64) -> TrajectoryBuilder {
        self.trajectory.wall_ms = wall_ms;
        self
    }

    /// Time spent generating, in milliseconds.
    pub fn generate_ms(mut self, generate_ms: f64) -> TrajectoryBuilder {
        self.trajectory.generate_ms = generate_ms;
        self
    }

    /// The trajectory.
    pub fn build(self) -> Trajectory {
        let mut trajectory = self.trajectory;
        trajectory.prompt = self.prompt.unwrap_or_else(|| trajectory.problem.clone());
        trajectory
    }

    fn push(&mut self, segment: Segment) {
        self.text_bytes += segment.text().len();
        self.trajectory.segments.push(segment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_calls_follow_the_text() {
        let t = TrajectoryBuilder::code("c")
            .sample(2)
            .model("```python\n1/0\n```\n")
            .failed_tool_call(
                "1/0",
                ToolStatus::Exception,
                "ZeroDivisionError: division by zero",
            )
            .hint("general", InsertPoint::BeforeEos, "\nCheck.")
            .build();
        assert_eq!(
            (t.kind, t.sample, t.prompt.as_str()),
            (ProblemKind::Code, 2, "problem c")
        );
        assert_eq!(t.tool_calls[0].stderr, t.tool_calls[0].shown);
        match &t.segments[2] {
            Segment::Hint { offset, .. } => assert_eq!(*offset, t.text().len() - "\nCheck.".len()),
            other => panic!("expected the hint, got {other:?}"),
        }
        assert!(matches!(t.segments[1], Segment::Output { call: 0, .. }));
    }
}
