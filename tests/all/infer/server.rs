//! The `openai` backend against a real OpenAI-compatible server: llama-cpp-python's, built from
//! source into a venv the tests own (`target/tmp/venvs/llama-server`, see [`crate::venv`]),
//! serving the example model (SmolLM2-135M, ChatML) with a 2,048-token context. Greedy sampling
//! keeps the tiny model's text reproducible. Faults go through [`Proxy`] between the driver
//! and the server.
//!
//! One server serves every test of the binary. A `static` is never dropped, so instead of a
//! Drop guard the server is tied to the thread that starts it, which lives as long as the test
//! process: the kernel kills it (`PR_SET_PDEATHSIG`) when the process ends, however it ends.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use start::infer::backend::openai::{OpenAiBackend, OpenAiOptions};
use start::infer::backend::{Prompt, SampleParams};
use start::infer::driver::{Driver, GenerateOptions, SessionRunner};
use start::infer::hints::HintLibrary;
use start::infer::insert::InsertPolicy;
use start::infer::prompt::user_prompt;
use start::infer::template::{ChatTemplate, Preset};
use start::problem::Problem;
use start::trajectory::{StopReason, Trajectory};
use start_runtime::Progress;

use super::proxy::{Fault, Proxy};

/// The alias the model is served under.
const MODEL: &str = "smollm2";
/// The server's context, in tokens.
const N_CTX: u64 = 2048;

/// A running server. One this test started (see [`Server::launch`]) is killed when dropped.
pub struct Server {
    /// `127.0.0.1:PORT`.
    pub addr: SocketAddr,
    child: Option<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Server {
    /// Starts a server on a free port and waits until it serves `/v1/models`. The kernel also
    /// kills it when the calling thread ends (`PR_SET_PDEATHSIG`), however that happens.
    pub fn launch() -> Server {
        let venv = crate::venv::venv(
            "llama-server",
            &["llama-cpp-python[server]==0.3.36"],
            // A native build picks AMX on this machine's CPUs and crashes on the first decode.
            &[(
                "CMAKE_ARGS",
                "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON",
            )],
        );
        let model = start::infer::model::example_model(
            &start_runtime::default_cache_dir(),
            &Progress::stderr(),
        )
        .expect("the example model must be downloadable (pip) or already cached");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("llama-server-{port}.log"));
        let mut command = Command::new(venv.python());
        command
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&model)
            .args(["--model_alias", MODEL, "--n_ctx", &N_CTX.to_string()])
            .args(["--n_threads", "2", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            // By default a waiting request interrupts the one streaming (its stream ends with
            // `[DONE]` and no reason; the client goes on from the text so far): the tests run
            // at once and would keep interrupting each other.
            .args(["--interrupt_requests", "False"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::options().append(true).open(&log).unwrap());
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let server = Server {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: Some(command.spawn().unwrap()),
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let up = ureq::get(format!("{}/models", server.url()))
                .call()
                .is_ok_and(|r| r.status().is_success());
            if up {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "llama-cpp-python's server did not come up; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Its API base.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Tokens of `text` as the server's own tokenizer counts them.
    pub fn count_tokens(&self, text: &str) -> u64 {
        let reply: Value = ureq::post(format!("http://{}/extras/tokenize/count", self.addr))
            .send_json(json!({"input": text}))
            .unwrap()
            .into_body()
            .read_json()
            .unwrap();
        reply["count"].as_u64().unwrap()
    }
}

/// The server the tests share, started on first use by a thread that lives (and keeps it
/// alive) as long as the test process: a `static` is never dropped, so the kernel ends it.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let server = Server::launch();
            tx.send(server.addr).unwrap();
            loop {
                std::thread::park();
            }
        });
        Server {
            addr: rx.recv().expect("the server did not start"),
            child: None,
        }
    })
}

/// The raw prompt the server is sent for `prompt` (the default ChatML template, BOS left to
/// the server's tokenizer).
fn chatml(prompt: &Prompt) -> String {
    ChatTemplate::preset(Preset::ChatMl)
        .render(prompt)
        .unwrap()
        .completion_text()
        .to_string()
}

fn problem(id: &str, text: &str) -> Problem {
    Problem::math(id, text)
}

/// Generation options with no hints and greedy sampling.
fn plain(max_tokens: u64) -> GenerateOptions {
    GenerateOptions {
        policy: InsertPolicy {
            after_triggers: false,
            before_end: false,
            ..InsertPolicy::default()
        },
        sampling: SampleParams::default(),
        max_tokens,
        ..GenerateOptions::default()
    }
}

/// The prompts of the requests the proxy saw, as text.
fn prompts(proxy: &Proxy) -> Vec<String> {
    proxy
        .seen()
        .iter()
        .map(|s| s.body["prompt"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The whole text of `t` as the server saw it: the rendered prompt and the assistant's text.
fn whole(t: &Trajectory, problem: &Problem) -> String {
    let prompt = Prompt {
        system: None,
        user: user_prompt(problem),
    };
    format!("{}{}", chatml(&prompt), t.text())
}

/// Every request continued from the text so far: each prompt is a prefix of the finished text,
/// and none goes back behind the one before it.
fn assert_continued(prompts: &[String], whole: &str) {
    for (i, p) in prompts.iter().enumerate() {
        assert!(
            whole.starts_with(p.as_str()),
            "request {i} is not a prefix:\n{p}\n---\n{whole}"
        );
        if i > 0 {
            assert!(
                p.starts_with(prompts[i - 1].as_str()),
                "request {i} went back"
            );
        }
    }
}

#[test]
fn a_long_thought_continues_across_requests() {
    let server = server();
    let proxy = Proxy::start(server.addr, None);
    let backend = OpenAiBackend::new(OpenAiOptions {
        max_tokens_per_request: Some(16),
        ..OpenAiOptions::new(&proxy.url, MODEL)
    });
    let hints = HintLibrary::bundled();
    let options = plain(72);
    let driver = Driver::new(&backend, &hints, &options);
    let mut runner = SessionRunner::for_options(crate::sandbox(), &options);
    let p = problem("count", "Count from 1 to 100, one number per line.");
    let t = driver.run(&p, 0, &mut runner).unwrap();
    assert!(
        t.counters.requests > 1,
        "{:?} {:?} {:?}\n{}",
        t.counters,
        t.stop,
        t.error,
        t.render()
    );
    assert!(
        matches!(t.stop, StopReason::TokenCap | StopReason::Eos),
        "{:?}",
        t.stop
    );
    let seen = proxy.seen();
    assert_eq!(seen.len() as u64, t.counters.requests);
    for s in &seen {
        let asked = s.body["max_tokens"].as_u64().unwrap();
        assert!(asked <= 16, "{asked}");
    }
    // The last request asks only for what the budget has left.
    let asked: u64 = seen
        .iter()
        .map(|s| s.body["max_tokens"].as_u64().unwrap())
        .sum();
    assert!(asked <= 72 + 16, "{asked}");
    assert_continued(&prompts(&proxy), &whole(&t, &p));
    assert!(
        t.stop == StopReason::Eos || t.counters.generated_tokens >= 72,
        "{:?}",
        t.counters
    );
}

/// A problem whose prompt leaves the model `room` tokens of the context, as the server counts.
fn long_problem(server: &Server, id: &str, room: u64) -> Problem {
    let mut numbers = String::from("Continue this list of numbers up to 5000: 1");
    let mut n = 1;
    loop {
        let p = problem(id, &numbers);
        let prompt = Prompt {
            system: None,
            user: user_prompt(&p),
        };
        if server.count_tokens(&chatml(&prompt)) + room >= N_CTX {
            return p;
        }
        for _ in 0..20 {
            n += 1;
            numbers.push_str(&format!(", {n}"));
        }
    }
}

fn read_trajectories(path: &Path) -> Vec<Trajectory> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn infer(url: &str, input: &Path, output: &Path) -> crate::TestCommand {
    let mut c = crate::start();
    c.args(["infer", "--quiet", "--no-trigger-hints", "--no-end-hints"])
        .args(["--temperature", "0", "--top-k", "0", "--top-p", "1"])
        .args(["--model", url, "--model-name", MODEL])
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output);
    c
}

#[test]
fn a_trajectory_that_fills_the_context_is_written_marked_and_not_retried() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let p = long_problem(server, "long", 120);
    let input = dir.path().join("problems.jsonl");
    std::fs::write(
        &input,
        format!("{}\n", json!({"id": p.id, "problem": p.text})),
    )
    .unwrap();
    let output = dir.path().join("out.jsonl");
    // A budget far past the context: the context ends it.
    infer(&server.url(), &input, &output)
        .args(["--max-tokens", "100000"])
        .assert_success();
    let written = read_trajectories(&output);
    assert_eq!(written.len(), 1);
    let t = &written[0];
    assert_eq!(t.stop, StopReason::Length, "{}", t.render());
    assert!(t.counters.generated_tokens > 20, "{:?}", t.counters);
    let before = std::fs::read(&output).unwrap();
    let out = infer(&server.url(), &input, &output)
        .args(["--max-tokens", "100000"])
        .assert_success();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing to do"), "{stderr}");
    assert_eq!(std::fs::read(&output).unwrap(), before);
}

#[test]
fn faults_are_retried_or_recorded_and_the_run_goes_on() {
    // Its own server, so the other tests' requests do not hold it up past the read timeout.
    let server = Server::launch();
    // The proxy also tells the client the context, as vLLM's /v1/models does.
    let proxy = Proxy::start(server.addr, Some(N_CTX));
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("problems.jsonl");
    let problems: Vec<Problem> = (0..6)
        .map(|i| {
            problem(
                &format!("p{i}"),
                &format!("Count from {i} to {}, one per line.", i + 50),
            )
        })
        .collect();
    let rows: String = problems
        .iter()
        .map(|p| format!("{}\n", json!({"id": p.id, "problem": p.text})))
        .collect();
    std::fs::write(&input, rows).unwrap();
    let output = dir.path().join("out.jsonl");
    let overflow = "This model's maximum context length is 2048 tokens. However, you requested \
                    100000 tokens (60 in the messages, 99940 in the completion).";
    proxy.queue([
        Fault::Cut(700),
        Fault::Stall(700, Duration::from_secs(10)),
        Fault::Reply {
            status: 503,
            headers: vec![("Retry-After", "1".into())],
            body: "{\"error\": \"busy\"}".into(),
        },
        Fault::Refuse(Duration::from_millis(300)),
        Fault::Reply {
            status: 400,
            headers: Vec::new(),
            body: json!({"error": {"message": overflow, "code": "context_length_exceeded"}})
                .to_string(),
        },
        Fault::Pass,
        Fault::Reply {
            status: 400,
            headers: Vec::new(),
            body: json!({"error": {"message": "logit_bias: not a valid token id"}}).to_string(),
        },
    ]);
    let run = || {
        let mut c = infer(&proxy.url, &input, &output);
        c.args(["--max-tokens", "40", "--request-max-tokens", "16"])
            .args(["--jobs", "1", "--read-timeout", "4", "--attempts", "5"]);
        c
    };
    run().assert_success();
    let written = read_trajectories(&output);
    let ids: HashSet<&str> = written.iter().map(|t| t.id.as_str()).collect();
    assert_eq!((written.len(), ids.len()), (6, 6), "one line per problem");
    let errors: Vec<&Trajectory> = written
        .iter()
        .filter(|t| t.stop == StopReason::Error)
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "only the non-context 400 ends a trajectory"
    );
    let message = errors[0].error.as_deref().unwrap_or_default();
    assert!(
        message.contains("400") && message.contains("logit_bias"),
        "{message}"
    );
    for t in &written {
        assert!(t.stop == StopReason::Error || t.error.is_none());
        let p = problems.iter().find(|p| p.id == t.id).unwrap();
        let full = whole(t, p);
        let mine: Vec<String> = prompts(&proxy)
            .into_iter()
            .filter(|prompt| prompt.contains(&p.text))
            .collect();
        assert_continued(&mine, &full);
    }
    // After the cut and the stall, the retry goes on from the text that had arrived (on a busy
    // machine the first token may itself come after the read timeout: then nothing had).
    let seen = proxy.seen();
    for (i, s) in seen.iter().enumerate() {
        if matches!(s.fault, Fault::Cut(_) | Fault::Stall(..)) {
            let prompt = s.body["prompt"].as_str().unwrap();
            let next = seen[i + 1].body["prompt"].as_str().unwrap();
            assert!(
                next.starts_with(prompt),
                "request {i} ({:?}): {prompt:?}\nthen: {next:?}",
                s.fault
            );
        }
    }
    // The overflow's numbers sized the retry: at most the context less the prompt it counted.
    let sized = seen
        .iter()
        .position(
            |s| matches!(&s.fault, Fault::Reply { body, .. } if body.contains("maximum context")),
        )
        .unwrap();
    assert!(seen[sized + 1].body["max_tokens"].as_u64().unwrap() <= N_CTX - 60);
    // A resume finds every pair done and sends nothing.
    let before = (std::fs::read(&output).unwrap(), proxy.seen().len());
    let out = run().assert_success();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nothing to do"), "{stderr}");
    assert_eq!(
        (std::fs::read(&output).unwrap(), proxy.seen().len()),
        before
    );
}

/// Tokens of `text` by the server's tokenizer, special tokens read as such.
fn tokenize(server: &Server, text: &str) -> Vec<u64> {
    let reply: Value = ureq::post(format!("http://{}/extras/tokenize", server.addr))
        .send_json(json!({"input": text}))
        .unwrap()
        .into_body()
        .read_json()
        .unwrap();
    reply["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap())
        .collect()
}

/// The text of `tokens` by the server's tokenizer.
fn detokenize(server: &Server, tokens: &[u64]) -> String {
    let reply: Value = ureq::post(format!("http://{}/extras/detokenize", server.addr))
        .send_json(json!({"tokens": tokens}))
        .unwrap()
        .into_body()
        .read_json()
        .unwrap();
    reply["text"].as_str().unwrap().to_string()
}

#[test]
fn prompts_from_a_preset_and_a_template_file_reach_the_server_byte_for_byte() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    // A template file in the Hugging Face dialect, and a tokenizer_config.json holding one.
    let jinja = dir.path().join("template.jinja");
    std::fs::write(
        &jinja,
        "{%- for message in messages -%}\n\
         {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>\\n' -}}\n\
         {%- endfor -%}\n\
         {%- if add_generation_prompt %}{{ '<|im_start|>assistant\\nLet me think. ' }}{% endif -%}",
    )
    .unwrap();
    let config = dir.path().join("tokenizer_config.json");
    std::fs::write(
        &config,
        json!({
            "bos_token": {"content": "<|endoftext|>"},
            "eos_token": "<|im_end|>",
            "chat_template": "{{ bos_token }}{% for m in messages %}### {{ m.role | upper }}: \
                              {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}\
                              ### ASSISTANT: <think>\n{% endif %}",
        })
        .to_string(),
    )
    .unwrap();
    let templates = [
        ChatTemplate::preset(Preset::QwQ32B),
        ChatTemplate::preset(Preset::QwQ32BPreview),
        ChatTemplate::preset(Preset::DeepSeekR1),
        ChatTemplate::from_file(&jinja).unwrap(),
        ChatTemplate::from_file(&config).unwrap(),
    ];
    let p = problem(
        "prompt",
        "What is 6 times 7? Say \"42\" — «quoted», ünïcode, 数学.",
    );
    let prompt = Prompt {
        system: None,
        user: user_prompt(&p),
    };
    // The model's special tokens: each is one token, which the server's detokenizer leaves out.
    let specials: Vec<(&str, u64)> = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
        .into_iter()
        .map(|marker| {
            let ids = tokenize(server, marker);
            assert_eq!(ids.len(), 1, "{marker} is one special token");
            (marker, ids[0])
        })
        .collect();
    for template in templates {
        let name = template.name().to_string();
        let rendered = template.render(&prompt).unwrap();
        let expected = rendered.completion_text().to_string();
        let proxy = Proxy::start(server.addr, None);
        let backend =
            OpenAiBackend::new(OpenAiOptions::new(&proxy.url, MODEL)).with_template(template);
        let hints = HintLibrary::bundled();
        let options = plain(4);
        let driver = Driver::new(&backend, &hints, &options);
        let mut runner = SessionRunner::for_options(crate::sandbox(), &options);
        let t = driver.run(&p, 0, &mut runner).unwrap();
        assert_eq!(
            t.rendered_prompt.as_deref(),
            Some(rendered.text.as_str()),
            "{name}"
        );
        let sent = prompts(&proxy);
        assert_eq!(
            sent[0].as_bytes(),
            expected.as_bytes(),
            "{name}: the request"
        );
        // The server's tokenizer reads those bytes as the model's format: each special marker
        // as its one token, the rest as the text it is.
        let tokens = tokenize(server, &sent[0]);
        let mut plain = expected.clone();
        for (marker, id) in &specials {
            let count = tokens.iter().filter(|t| *t == id).count();
            assert_eq!(count, expected.matches(marker).count(), "{name}: {marker}");
            plain = plain.replace(marker, "");
        }
        assert_eq!(
            detokenize(server, &tokens),
            plain,
            "{name}: the server's round trip"
        );
    }
}
