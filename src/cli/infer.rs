//! `start infer`: Hint-infer over a JSONL file of problems, writing one trajectory per line.

use std::io::{BufReader, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use start::infer::backend::openai::{OpenAiBackend, OpenAiOptions};
use start::infer::backend::scripted::ScriptedBackend;
use start::infer::backend::{Backend, SampleParams};
use start::infer::batch::{self, BatchPlan, Event};
use start::infer::driver::{Driver, GenerateOptions};
use start::infer::hints::HintLibrary;
use start::infer::insert::InsertPolicy;
use start::infer::template::{ChatTemplate, Preset, TemplateSource};
use start::problem::ProblemKind;
use start::problem::{self, Fields, Problem, Shard};
use start::trajectory::TrajectoryWriter;
use start_runtime::Progress;
use start_sandbox::{SessionLimits, TurnLimits};

use super::{ExecutorArgs, RuntimeArgs, read_text};

/// Trajectories generated at once against a server, by default: enough to keep a vLLM or
/// SGLang batch full.
const DEFAULT_SERVER_JOBS: usize = 64;
/// Most trajectories generated at once (each holds a thread and, against a server, a connection).
const MAX_JOBS: usize = 4096;

/// Problem kind on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// Math reasoning (the six math hints).
    Math,
    /// Code generation (the debug hint with the problem's sample tests).
    Code,
}

#[derive(Debug, Args)]
pub struct InferArgs {
    /// Run the bundled sample problems with the bundled tiny model (fetched on first use) and
    /// print each trajectory.
    #[arg(long)]
    example: bool,
    /// A GGUF file (llama.cpp in-process), or an OpenAI-compatible server's base URL such as
    /// http://localhost:8000/v1 (with --model-name).
    #[arg(long, value_name = "PATH.gguf | URL")]
    model: Option<String>,
    /// The model name a server serves (for an http(s) --model).
    #[arg(long, value_name = "NAME")]
    model_name: Option<String>,
    /// Bearer token for the server.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Problems, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Trajectories, appended one JSON line each; rerunning skips finished (id, sample) pairs.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Kind of problems (a row's own "kind" field wins).
    #[arg(long, value_enum, default_value_t = KindArg::Math)]
    kind: KindArg,
    /// Trajectories per problem.
    #[arg(long, default_value_t = 1, value_name = "N")]
    samples: u32,
    /// Only this slice of the input: the rows whose id hashes to I of N (shard =
    /// fmix64(fnv1a64(id)) * N >> 64: 64-bit FNV-1a of the id's UTF-8 bytes, MurmurHash3's
    /// finalizer; stable across versions and platforms). It depends on the id alone, so
    /// machines may list the rows in any order; `start merge` joins the shards' files.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Base seed (hint sampling and the model's sampler; derived per problem and sample).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Trajectories generated at once (default: 1 in-process, 64 against a server; at most
    /// 4096).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Stop at the first malformed input line instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Print each trajectory, readably, on stdout.
    #[arg(long)]
    print: bool,
    /// A hint library (TOML, the layout of the bundled src/hints.toml).
    #[arg(long, value_name = "FILE")]
    hints: Option<PathBuf>,
    /// Trigger words after which a hint may go, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "Wait,Alternatively")]
    triggers: Vec<String>,
    /// Do not insert hints after trigger words.
    #[arg(long)]
    no_trigger_hints: bool,
    /// Do not insert hints before the end of thinking.
    #[arg(long)]
    no_end_hints: bool,
    /// Hints after trigger words per trajectory, at most.
    #[arg(long, default_value_t = start::infer::insert::DEFAULT_MAX_TRIGGER_HINTS, value_name = "N")]
    max_trigger_hints: u32,
    /// Hints before the end of thinking (`</think>` or the end of sequence) per trajectory, at
    /// most; each makes the model think on with a tool call. Trigger hints never use them up.
    #[arg(long, default_value_t = start::infer::insert::DEFAULT_MAX_END_HINTS, value_name = "N")]
    max_end_hints: u32,
    /// Hints of both kinds together, at most (default: the two budgets' sum). Trigger hints
    /// leave room for the end hints within it: --max-hints 2 is one of each.
    #[arg(long, value_name = "N")]
    max_hints: Option<u32>,
    /// Generated tokens since the last hint (or the start) before a trigger word may get a
    /// hint, so that trigger hints spread over the thought instead of taking its first "Wait"s;
    /// about a third of the model's usual thought fits (default 2048, or a quarter of
    /// --max-tokens when that is less; 0: the first trigger words).
    #[arg(long, value_name = "N")]
    hint_gap_tokens: Option<u64>,
    /// Probability that a trigger word past the gap gets a hint.
    #[arg(long, default_value_t = 1.0, value_name = "P")]
    trigger_probability: f64,
    /// Also run the code blocks after the end of thinking (`</think>`). By default they are
    /// the answer (a code problem's final program, for the judge): not run, no output block.
    /// A model that never writes `</think>` thinks throughout: all its blocks run.
    #[arg(long)]
    run_after_think: bool,
    /// Generated tokens per trajectory, at most, across all its requests (default: 32768 against
    /// a server, 4096 in-process, 640 with --example).
    #[arg(long, value_name = "N")]
    max_tokens: Option<u64>,
    /// Cap on each request's max_tokens against a server (default: none, each request asks for
    /// what the trajectory's budget and the context still allow). A request stopped by it is
    /// continued from the text so far.
    #[arg(long, value_name = "N")]
    request_max_tokens: Option<u64>,
    /// Longest wait, in seconds, for a server's reply or the next bytes of its stream; a stream
    /// quiet for longer is stalled and retried from the text so far.
    #[arg(long, default_value_t = 120.0, value_name = "SECONDS")]
    read_timeout: f64,
    /// Failed requests in a row (refused connections, stalls, broken streams, HTTP 429/5xx) a
    /// trajectory retries, with exponential backoff and the server's Retry-After, before it
    /// gives up.
    #[arg(long, default_value_t = start::infer::backend::openai::DEFAULT_ATTEMPTS, value_name = "N")]
    attempts: u32,
    /// Code blocks executed per trajectory, at most.
    #[arg(long, default_value_t = 8, value_name = "N")]
    max_tool_calls: u32,
    /// Wall time per trajectory, at most, in seconds (default: 7200 against a server, 600
    /// in-process).
    #[arg(long, value_name = "SECONDS")]
    max_wall_time: Option<f64>,
    /// Wall time per code block, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    code_timeout: f64,
    /// Memory of a trajectory's interpreter, in MiB.
    #[arg(long, default_value_t = 512, value_name = "MIB")]
    code_memory_mib: u64,
    /// Bytes of a code block's output shown to the model.
    #[arg(long, default_value_t = start::infer::driver::DEFAULT_OUTPUT_BYTES, value_name = "BYTES")]
    output_bytes: usize,
    /// Sampling temperature; 0 is greedy (default: 0.6 against a server, the recommended
    /// sampling of QwQ, DeepSeek-R1 and Qwen3 thinking; 0 in-process).
    #[arg(long, value_name = "T")]
    temperature: Option<f32>,
    /// Nucleus sampling mass; 1 keeps every token (default: 0.95 against a server, 1
    /// in-process).
    #[arg(long, value_name = "P")]
    top_p: Option<f32>,
    /// Sample among the K most likely tokens only; 0 is off (default: 20 against a server, 0
    /// in-process).
    #[arg(long, value_name = "K")]
    top_k: Option<u32>,
    /// Drop tokens less likely than P times the most likely one; 0 is off.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    min_p: f32,
    /// Presence penalty (OpenAI's, -2 to 2) on tokens already in the text; 0 is off. Qwen
    /// suggests up to 1.5 against endless repetitions.
    #[arg(long, default_value_t = 0.0, value_name = "X")]
    presence_penalty: f32,
    /// Multiplicative repetition penalty on tokens already in the text; 1 is off.
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    repetition_penalty: f32,
    /// Context window, in tokens: of an in-process model (default 4096), or of a server's
    /// model (default: its /v1/models max_model_len where it gives one, as vLLM does; else the
    /// server's own limit decides). Every request is sized to fit it; a trajectory that fills it
    /// ends with stop "length".
    #[arg(long, value_name = "N")]
    context_tokens: Option<u32>,
    /// CPU threads of an in-process model (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<i32>,
    /// System prompt.
    #[arg(long)]
    system: Option<String>,
    /// The model's chat template: a tokenizer_config.json (its "chat_template", "bos_token"
    /// and "eos_token") or a Jinja file (Hugging Face's dialect). Default: a GGUF's own
    /// embedded template; ChatML for a server. Both backends render it the same way, and each
    /// trajectory records the rendered text ("rendered_prompt").
    #[arg(long, value_name = "FILE", conflicts_with = "template_preset")]
    chat_template: Option<PathBuf>,
    /// A built-in chat template: qwq-32b-preview (ChatML with QwQ-32B-Preview's default system
    /// prompt), qwq-32b (ChatML, the answer opens with <think>), deepseek-r1 (DeepSeek-R1 and
    /// its distills), qwen3 (thinking mode), chatml.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(Preset::NAMES))]
    template_preset: Option<String>,
    /// An extra variable for the chat template, KEY=VALUE, the value read as JSON if it parses
    /// (else as a string), such as enable_thinking=false for Qwen3; repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    template_var: Vec<String>,
    /// JSON field of the id.
    #[arg(long, default_value = "id", value_name = "NAME")]
    id_field: String,
    /// JSON field of the problem statement.
    #[arg(long, default_value = "problem", value_name = "NAME")]
    problem_field: String,
    /// JSON field of the gold answer.
    #[arg(long, default_value = "answer", value_name = "NAME")]
    answer_field: String,
    /// JSON field of the tests: {"input", "output"} items, or {"args", "expected"} items with
    /// the row's "fn_name" (a row may instead give "check" and "entry_point"), as `start judge`.
    #[arg(long, default_value = "tests", value_name = "NAME")]
    tests_field: String,
    /// JSON field of the public tests, the only tests the debug hint shows (else it shows the
    /// statement's samples; never the judged --tests-field): the shapes of --tests-field, also
    /// {"input": [...], "output": [...]} or a JSON string of one (LiveCodeBench).
    #[arg(long, default_value = "public_tests", value_name = "NAME")]
    public_tests_field: String,
    /// JSON field of the starter code: a problem with one (or with functional or "check"
    /// tests) is asked for that function instead of a stdin program.
    #[arg(long, default_value = "starter_code", value_name = "NAME")]
    starter_code_field: String,
    /// JSON field of the kind ("math" or "code").
    #[arg(long, default_value = "kind", value_name = "NAME")]
    kind_field: String,
    /// Testing: delay per piece of a `scripted:FILE` model, in milliseconds.
    #[arg(long, hide = true, default_value_t = 0)]
    scripted_delay_ms: u64,
    #[command(flatten)]
    executor: ExecutorArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

impl InferArgs {
    fn cache_dir(&self) -> PathBuf {
        self.runtime
            .cache_dir
            .clone()
            .unwrap_or_else(start_runtime::default_cache_dir)
    }

    fn options(&self) -> Result<GenerateOptions> {
        let seconds = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(Duration::from_secs_f64(v.min(1e9)))
            } else {
                bail!("--{name} must be a positive number of seconds, not {v}")
            }
        };
        if self.code_memory_mib == 0 || self.code_memory_mib > 4096 {
            bail!("--code-memory-mib must be between 1 and 4096");
        }
        let server = self.is_server();
        let default_tokens = match (self.example, server) {
            (true, _) => 640,
            (false, true) => 32768,
            (false, false) => 4096,
        };
        let max_tokens = self.max_tokens.unwrap_or(default_tokens);
        let policy = InsertPolicy {
            triggers: self.triggers.iter().map(|t| t.trim().to_string()).collect(),
            after_triggers: !self.no_trigger_hints,
            before_end: !self.no_end_hints,
            trigger_probability: self.trigger_probability,
            hint_gap_tokens: self
                .hint_gap_tokens
                .unwrap_or(start::infer::insert::DEFAULT_HINT_GAP_TOKENS.min(max_tokens / 4)),
            max_trigger_hints: self.max_trigger_hints,
            max_end_hints: self.max_end_hints,
            max_hints: self
                .max_hints
                .unwrap_or(self.max_trigger_hints.saturating_add(self.max_end_hints)),
            ..InsertPolicy::default()
        };
        policy.validate()?;
        let pick = |flag: Option<f32>, on_server: f32, in_process: f32| {
            flag.unwrap_or(if server { on_server } else { in_process })
        };
        let sampling = SampleParams {
            temperature: pick(self.temperature, 0.6, 0.0).max(0.0),
            top_p: pick(self.top_p, 0.95, 1.0),
            top_k: self.top_k.unwrap_or(if server { 20 } else { 0 }),
            min_p: self.min_p,
            presence_penalty: self.presence_penalty,
            repetition_penalty: self.repetition_penalty,
            seed: 0,
            budget_tokens: None,
        };
        if !(0.0..=1.0).contains(&sampling.top_p) || !(0.0..=1.0).contains(&sampling.min_p) {
            bail!("--top-p and --min-p must be between 0 and 1");
        }
        if !(-2.0..=2.0).contains(&sampling.presence_penalty) {
            bail!("--presence-penalty must be between -2 and 2");
        }
        if !(sampling.repetition_penalty.is_finite() && sampling.repetition_penalty > 0.0) {
            bail!("--repetition-penalty must be a positive number (1 is off)");
        }
        let wall = self
            .max_wall_time
            .unwrap_or(if server { 7200.0 } else { 600.0 });
        Ok(GenerateOptions {
            policy,
            sampling,
            seed: self.seed,
            max_tokens,
            max_wall_time: seconds("max-wall-time", wall)?,
            max_tool_calls: self.max_tool_calls,
            turn_limits: TurnLimits {
                wall_time: seconds("code-timeout", self.code_timeout)?,
                stdout_bytes: 64 * 1024,
                stderr_bytes: 64 * 1024,
                ..TurnLimits::default()
            },
            session_limits: SessionLimits {
                memory_bytes: self.code_memory_mib << 20,
                ..SessionLimits::default()
            },
            output_bytes: self.output_bytes,
            system: self.system.clone(),
            run_after_think: self.run_after_think,
        })
    }

    /// Whether --model is a server's URL.
    fn is_server(&self) -> bool {
        self.model
            .as_deref()
            .is_some_and(|m| m.starts_with("http://") || m.starts_with("https://"))
    }

    fn problems(&self) -> Result<Vec<Problem>> {
        if self.example {
            return Ok(problem::examples());
        }
        let Some(path) = &self.input else {
            bail!("give --input problems.jsonl (or --example)");
        };
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open the input {}", path.display()))?;
        let fields = Fields {
            id: self.id_field.clone(),
            problem: self.problem_field.clone(),
            answer: self.answer_field.clone(),
            tests: self.tests_field.clone(),
            public_tests: self.public_tests_field.clone(),
            starter_code: self.starter_code_field.clone(),
            kind: self.kind_field.clone(),
        };
        let kind = match self.kind {
            KindArg::Math => ProblemKind::Math,
            KindArg::Code => ProblemKind::Code,
        };
        let source = path.display().to_string();
        let (problems, errors) = problem::read_jsonl(BufReader::new(file), &source, &fields, kind)?;
        if let Some(first) = errors.first() {
            if self.strict {
                bail!("{first} (--strict)");
            }
            for e in &errors {
                eprintln!("start: {e}; skipped");
            }
        }
        Ok(problems)
    }

    fn backend(&self) -> Result<Box<dyn Backend>> {
        let model = match (&self.model, self.example) {
            (Some(m), _) => m.clone(),
            (None, true) => {
                let path = start::infer::model::example_model(&self.cache_dir(), &progress(self))?;
                path.display().to_string()
            }
            (None, false) => {
                bail!("give --model PATH.gguf or --model http://HOST/v1 (or --example)")
            }
        };
        let chatml = || Ok(ChatTemplate::preset(Preset::ChatMl));
        if let Some(file) = model.strip_prefix("scripted:") {
            let script = read_text(std::path::Path::new(file))?;
            return Ok(Box::new(
                ScriptedBackend::new(script)
                    .with_delay(Duration::from_millis(self.scripted_delay_ms))
                    .with_template(self.template(chatml)?),
            ));
        }
        if model.starts_with("http://") || model.starts_with("https://") {
            let Some(name) = &self.model_name else {
                bail!("a server --model needs --model-name (the name it serves the model under)");
            };
            if !(self.read_timeout.is_finite() && self.read_timeout > 0.0) {
                bail!("--read-timeout must be a positive number of seconds");
            }
            let mut options = OpenAiOptions::new(model, name.clone());
            options.api_key = self.api_key.clone();
            options.max_tokens_per_request = self.request_max_tokens.filter(|n| *n > 0);
            options.context_tokens = self.context_tokens.map(u64::from);
            options.attempts = self.attempts.max(1);
            options.read_timeout = Duration::from_secs_f64(self.read_timeout.min(1e9));
            let template = self.template(chatml)?;
            return Ok(Box::new(
                OpenAiBackend::new(options).with_template(template),
            ));
        }
        let path = PathBuf::from(&model);
        if !path.is_file() {
            bail!("the model file {} does not exist", path.display());
        }
        self.llama_backend(&path)
    }

    #[cfg(feature = "llama")]
    fn llama_backend(&self, path: &std::path::Path) -> Result<Box<dyn Backend>> {
        use start::infer::backend::llama::{LlamaCppBackend, LlamaOptions};
        let step = progress(self).spinner(&format!("loading {}", path.display()));
        let options = LlamaOptions {
            context_tokens: if self.example {
                2048
            } else {
                self.context_tokens
                    .unwrap_or(start::infer::backend::DEFAULT_CONTEXT_TOKENS)
            },
            threads: self
                .threads
                .filter(|n| *n > 0)
                .unwrap_or(LlamaOptions::default().threads),
        };
        let backend = LlamaCppBackend::load(path, options)?;
        step.finish();
        let template = self.template(|| backend.embedded_template())?;
        Ok(Box::new(backend.with_template(template)))
    }

    #[cfg(not(feature = "llama"))]
    fn llama_backend(&self, path: &std::path::Path) -> Result<Box<dyn Backend>> {
        bail!(
            "cannot load {}: this `start` was built without the `llama` feature; rebuild with \
             default features, or serve the model and pass --model http://HOST/v1",
            path.display()
        )
    }
}

impl InferArgs {
    /// The chat template the flags ask for; `default` gives the backend's own.
    fn template(
        &self,
        default: impl FnOnce() -> Result<ChatTemplate, start::infer::template::TemplateError>,
    ) -> Result<ChatTemplate> {
        let source = match (&self.chat_template, &self.template_preset) {
            (Some(path), _) => TemplateSource::File(path.clone()),
            (None, Some(name)) => TemplateSource::Preset(name.parse()?),
            (None, None) => TemplateSource::Default,
        };
        let mut template = source.load(default).context(
            "cannot use the chat template (pass --template-preset NAME or --chat-template FILE)",
        )?;
        for var in &self.template_var {
            let Some((key, value)) = var.split_once('=') else {
                bail!("--template-var takes KEY=VALUE, not {var:?}");
            };
            let value = serde_json::from_str(value)
                .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
            template = template.with_kwarg(key.trim(), value);
        }
        Ok(template)
    }
}

fn progress(args: &InferArgs) -> Progress {
    if args.runtime.quiet {
        Progress::hidden()
    } else {
        Progress::stderr()
    }
}

/// Runs `start infer`.
pub fn run(args: InferArgs) -> Result<ExitCode> {
    let options = args.options()?;
    let hints = match &args.hints {
        Some(path) => HintLibrary::from_toml(&read_text(path)?)
            .with_context(|| format!("cannot use the hint library {}", path.display()))?,
        None => HintLibrary::bundled(),
    };
    let problems = args.problems()?;
    let shard = args.shard.unwrap_or(Shard::ALL);
    let output = match (&args.output, args.example) {
        (Some(path), _) => path.clone(),
        (None, true) => {
            let dir = args.cache_dir().join("example");
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join("trajectories.jsonl");
            // The example always shows a fresh run.
            let _ = std::fs::remove_file(&path);
            path
        }
        (None, false) => bail!("give --output trajectories.jsonl"),
    };
    let mut writer = TrajectoryWriter::open(&output)
        .with_context(|| format!("cannot open the output {}", output.display()))?;
    if let Some(first) = writer.first_unreadable_line {
        eprintln!(
            "start: {}: {} line(s) are not trajectories (malformed or over {} bytes, the first \
             at line {first}); kept, not counted as done",
            output.display(),
            writer.unreadable_lines,
            start::trajectory::MAX_TRAJECTORY_LINE_BYTES
        );
    }
    let plan = BatchPlan {
        shard,
        samples: args.samples,
    };
    let (work, skipped) = batch::pending(&problems, &plan, &writer);
    if work.is_empty() {
        eprintln!(
            "start: nothing to do: all {skipped} trajectories are already in {}",
            output.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let backend = args.backend()?;
    let jobs = args
        .jobs
        .unwrap_or(if backend.describe().starts_with("openai:") {
            DEFAULT_SERVER_JOBS
        } else {
            1
        })
        .clamp(1, MAX_JOBS);
    let executor = args.executor.open(&args.runtime, jobs)?;
    let print = args.print || args.example;
    let total = work.len();
    let bar = progress_bar(total as u64, args.runtime.quiet);
    let started = Instant::now();
    let driver = Driver::new(backend.as_ref(), &hints, &options);
    let (mut written, mut errors, mut tool_calls) = (0usize, 0usize, 0usize);
    let result = batch::run(
        &driver,
        executor.executor(),
        work,
        jobs,
        &mut writer,
        |event| {
            match event {
                Event::Written(t) => {
                    written += 1;
                    tool_calls += t.tool_calls.len();
                    if print {
                        bar.suspend(|| println!("{}", t.render()));
                    }
                    if let Some(error) = &t.error {
                        bar.suspend(|| {
                            eprintln!(
                                "start: {} sample {} ended by an error: {error}",
                                t.id, t.sample
                            )
                        });
                    }
                    if bar.is_hidden() && !args.runtime.quiet {
                        eprintln!(
                            "start: [{}/{total}] {} sample {}: {} hint(s), {} tool call(s), {:.1} s",
                            written + errors,
                            t.id,
                            t.sample,
                            t.hints(),
                            t.tool_calls.len(),
                            t.wall_ms / 1e3
                        );
                    }
                }
                Event::Failed { id, sample, error } => {
                    errors += 1;
                    bar.suspend(|| eprintln!("start: {id} sample {sample} failed: {error}"));
                }
            }
            let minutes = started.elapsed().as_secs_f64() / 60.0;
            bar.set_message(format!(
                "{:.1}/min, {tool_calls} tool calls, {errors} errors",
                written as f64 / minutes.max(1e-9)
            ));
            bar.inc(1);
        },
    );
    bar.finish_and_clear();
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "stopped after {written} trajectories (they are in {}; rerun to resume)",
                output.display()
            )));
        }
    };
    let (written, errors, tool_calls, hints_inserted) = (
        summary.written,
        summary.failed,
        summary.tool_calls,
        summary.hints,
    );
    eprintln!(
        "start: wrote {written} trajectories to {} ({skipped} already there, {errors} failed); \
         {hints_inserted} hints, {tool_calls} tool calls, {:.1} s",
        output.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} trajectories [{elapsed}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
