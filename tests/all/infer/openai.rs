//! The `openai` backend against a local server that speaks the streaming completions protocol
//! over a real socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use start::infer::backend::openai::{OpenAiBackend, OpenAiOptions};
use start::infer::backend::{Backend, BackendError, EndReason, Piece, Prompt, SampleParams};
use start::infer::driver::{Driver, GenerateError, GenerateOptions, SessionRunner};
use start::infer::hints::HintLibrary;
use start::infer::insert::InsertPolicy;
use start::problem::Problem;
use start::problem::ProblemKind;
use start::trajectory::{InsertPoint, Segment};

/// What the server answers to one request.
enum Reply {
    Status(u16),
    /// Text deltas, then a finish reason on the last event.
    Stream(Vec<&'static str>, &'static str),
    /// Text deltas, a finish reason, then a usage chunk (prompt, completion tokens).
    Counted(Vec<&'static str>, &'static str, (u64, u64)),
}

/// Serves `replies` in order, one per connection; records each request's JSON body.
fn serve(replies: Vec<Reply>) -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for reply in replies {
            let (stream, _) = listener.accept().unwrap();
            let body = read_request(&stream);
            record.lock().unwrap().push(body);
            respond(stream, reply);
        }
    });
    (url, seen)
}

fn read_request(stream: &TcpStream) -> Value {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.starts_with("POST /v1/completions "), "{first}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    serde_json::from_slice(&body).unwrap()
}

fn respond(mut stream: TcpStream, reply: Reply) {
    match reply {
        Reply::Status(code) => {
            let _ = write!(
                stream,
                "HTTP/1.1 {code} Busy\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"
            );
        }
        Reply::Stream(deltas, finish) => send_events(stream, deltas, finish, None),
        Reply::Counted(deltas, finish, usage) => send_events(stream, deltas, finish, Some(usage)),
    }
}

fn send_events(
    mut stream: TcpStream,
    deltas: Vec<&'static str>,
    finish: &'static str,
    usage: Option<(u64, u64)>,
) {
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
    );
    let n = deltas.len();
    for (i, delta) in deltas.into_iter().enumerate() {
        let finish_reason = if i + 1 == n {
            json!(finish)
        } else {
            Value::Null
        };
        let event =
            json!({"choices": [{"index": 0, "text": delta, "finish_reason": finish_reason}]});
        // Each event on its own, so the client really reads a stream.
        if write!(stream, "data: {event}\n\n").is_err() || stream.flush().is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Some((prompt, completion)) = usage {
        let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion});
        let _ = write!(
            stream,
            "data: {}\n\n",
            json!({"choices": [], "usage": usage})
        );
    }
    let _ = write!(stream, "data: [DONE]\n\n");
}

fn options(url: &str) -> OpenAiOptions {
    OpenAiOptions {
        backoff: Duration::from_millis(10),
        // Known, so the backend does not ask this one-reply-per-connection server's /models.
        context_tokens: Some(4096),
        ..OpenAiOptions::new(url, "test-model")
    }
}

#[test]
fn streams_pieces_and_retries_a_busy_server() {
    let (url, seen) = serve(vec![
        Reply::Status(503),
        Reply::Stream(vec!["Hello", ", ", "world"], "stop"),
    ]);
    let backend = OpenAiBackend::new(options(&url));
    let prompt = Prompt {
        system: None,
        user: "Hi".into(),
    };
    let rendered = backend.render(&prompt).unwrap();
    let mut g = backend.start(&rendered, &SampleParams::default()).unwrap();
    let mut text = String::new();
    while let Piece::Text(t) = g.next_piece().unwrap() {
        text.push_str(&t);
    }
    assert_eq!(text, "Hello, world");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1]["stream"], json!(true));
    assert_eq!(seen[1]["model"], json!("test-model"));
    assert!(
        seen[1]["prompt"]
            .as_str()
            .unwrap()
            .ends_with("Hi<|im_end|>\n<|im_start|>assistant\n")
    );
}

#[test]
fn hint_infer_through_a_server() {
    let (url, seen) = serve(vec![
        // The model answers and stops: the driver inserts a hint before the end.
        Reply::Stream(vec!["The answer ", "is 42."], "stop"),
        // Inside the hint's code block; the driver cuts the stream at the closing fence.
        Reply::Stream(
            vec!["print(", "6 * 7)\n", "```", "\nignored ", "text"],
            "stop",
        ),
        // After the output block.
        Reply::Stream(vec!["Confirmed: ", "42."], "stop"),
    ]);
    let backend = OpenAiBackend::new(options(&url));
    let hints = HintLibrary::bundled();
    let options = GenerateOptions {
        policy: InsertPolicy {
            max_hints: 1,
            ..InsertPolicy::default()
        },
        ..GenerateOptions::default()
    };
    let driver = Driver::new(&backend, &hints, &options);
    let mut runner = SessionRunner::for_options(crate::sandbox(), &options);
    let problem = Problem {
        id: "six-sevens".into(),
        kind: ProblemKind::Math,
        text: "What is 6*7?".into(),
        answer: Some("42".into()),
        tests: None,
        public_tests: None,
        starter_code: None,
    };
    let t = driver.run(&problem, 0, &mut runner).unwrap();
    assert!(matches!(
        &t.segments[1],
        Segment::Hint {
            point: InsertPoint::BeforeEos,
            offset: 17,
            ..
        }
    ));
    assert_eq!(t.tool_calls.len(), 1);
    assert_eq!(t.tool_calls[0].stdout, "42\n");
    let text = t.text();
    assert!(
        text.contains("```python\nprint(6 * 7)\n```\n```output\n42\n```\nConfirmed: 42."),
        "{text}"
    );
    assert!(!text.contains("ignored"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    let third = seen[2]["prompt"].as_str().unwrap();
    assert!(third.ends_with("```output\n42\n```\n"), "{third}");
    assert_eq!(t.counters.requests, 3);
}

#[test]
fn unreachable_server_is_a_clear_error() {
    // A port nobody listens on: bind, note it, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let backend = OpenAiBackend::new(OpenAiOptions {
        attempts: 2,
        ..options(&format!("http://127.0.0.1:{port}/v1"))
    });
    let hints = HintLibrary::bundled();
    let options = GenerateOptions::default();
    let driver = Driver::new(&backend, &hints, &options);
    let mut runner = SessionRunner::for_options(crate::sandbox(), &options);
    let problem = Problem {
        id: "x".into(),
        kind: ProblemKind::Math,
        text: "1+1?".into(),
        answer: None,
        tests: None,
        public_tests: None,
        starter_code: None,
    };
    let err = driver.run(&problem, 0, &mut runner).unwrap_err();
    assert!(
        matches!(
            err,
            GenerateError::Backend(BackendError::Unreachable { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("after 2 attempts"), "{err}");
}

#[test]
fn usage_counts_tokens_and_sizes_the_continuation_to_the_context() {
    // Each delta is several tokens; the server's usage says how many. The context is 120
    // tokens: the first request's prompt takes 50, so after 40 generated the second request may
    // ask for 30 at most, and after those the context is full.
    let (url, seen) = serve(vec![
        Reply::Counted(vec!["one two ", "three four"], "length", (50, 40)),
        Reply::Counted(vec![" five six"], "length", (90, 30)),
    ]);
    let backend = OpenAiBackend::new(OpenAiOptions {
        context_tokens: Some(120),
        max_tokens_per_request: Some(40),
        ..options(&url)
    });
    let prompt = Prompt {
        system: None,
        user: "Count".into(),
    };
    let params = SampleParams {
        budget_tokens: Some(1000),
        ..SampleParams::default()
    };
    let rendered = backend.render(&prompt).unwrap();
    let mut g = backend.start(&rendered, &params).unwrap();
    let mut text = String::new();
    let end = loop {
        match g.next_piece().unwrap() {
            Piece::Text(t) => text.push_str(&t),
            Piece::End(end) => break end,
        }
    };
    assert_eq!(end, EndReason::Length);
    assert_eq!(text, "one two three four five six");
    let c = g.counters();
    assert_eq!(
        (c.requests, c.prompt_tokens, c.generated_tokens),
        (2, 50, 70)
    );
    assert_eq!(c.context_tokens, 120);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0]["max_tokens"], json!(40));
    assert_eq!(seen[1]["max_tokens"], json!(30));
    assert_eq!(seen[0]["stream_options"]["include_usage"], json!(true));
    assert!(
        seen[1]["prompt"]
            .as_str()
            .unwrap()
            .ends_with("assistant\none two three four")
    );
}
