//! A fault proxy: HTTP between the driver and a real server, breaking chosen
//! `/v1/completions` requests on purpose (a stream cut mid-way, a stalled stream, an error
//! status, a dropped connection and then refused ones) and passing everything else through.
//! It records every completions request's JSON body with the fault it got.
//!
//! One request per connection: the proxy asks the server to close after its reply and tells
//! the client the same, so no connection is reused across faults.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// What the proxy does to one completions request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Forward the reply as is.
    Pass,
    /// Forward the reply's head and this many bytes of its body, then close.
    Cut(usize),
    /// Forward the head and this many body bytes, then send nothing for the duration, then close.
    Stall(usize, Duration),
    /// Answer with this status, extra headers and body, without asking the server.
    Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Close the connection without a reply, then stop listening for the duration (connections
    /// are refused), then listen again.
    Refuse(Duration),
}

/// One completions request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Its JSON body.
    pub body: Value,
    /// What the proxy did to it.
    pub fault: Fault,
}

/// A running proxy (its thread lives as long as the test binary).
pub struct Proxy {
    /// Its API base, `http://127.0.0.1:PORT/v1`.
    pub url: String,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    /// A proxy in front of `upstream` (`host:port`); when `max_model_len` is given it adds that
    /// field to every model of `/v1/models`, as vLLM's reply has it.
    pub fn start(upstream: SocketAddr, max_model_len: Option<u64>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let faults = Arc::new(Mutex::new(VecDeque::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (f, s) = (faults.clone(), seen.clone());
        std::thread::spawn(move || accept_loop(listener, addr, upstream, max_model_len, f, s));
        Proxy {
            url: format!("http://{addr}/v1"),
            faults,
            seen,
        }
    }

    /// Queues faults for the next completions requests, in order (then [`Fault::Pass`]).
    pub fn queue(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().unwrap().extend(faults);
    }

    /// The completions requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn accept_loop(
    mut listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    max_model_len: Option<u64>,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    loop {
        let Ok((client, _)) = listener.accept() else {
            continue;
        };
        let Some((head, body)) = read_request(&client) else {
            continue;
        };
        let completions = head.starts_with("POST ") && head.contains("/completions ");
        let fault = if completions {
            faults.lock().unwrap().pop_front().unwrap_or(Fault::Pass)
        } else {
            Fault::Pass
        };
        if completions {
            seen.lock().unwrap().push(Seen {
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                fault: fault.clone(),
            });
        }
        if let Fault::Refuse(pause) = fault {
            drop(client);
            drop(listener);
            std::thread::sleep(pause);
            listener = TcpListener::bind(addr).unwrap();
            continue;
        }
        let models = head.starts_with("GET ") && head.contains("/models ");
        let inject = max_model_len.filter(|_| models);
        std::thread::spawn(move || handle(client, &head, &body, upstream, fault, inject));
    }
}

/// The request's head (request line and headers, `Connection` dropped) and its body.
fn read_request(stream: &TcpStream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        if !lower.starts_with("connection:") {
            head.push_str(&line);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

fn handle(
    mut client: TcpStream,
    head: &str,
    body: &[u8],
    upstream: SocketAddr,
    fault: Fault,
    max_model_len: Option<u64>,
) {
    if let Fault::Reply {
        status,
        headers,
        body,
    } = &fault
    {
        let mut reply = format!("HTTP/1.1 {status} Fault\r\nContent-Type: application/json\r\n");
        for (k, v) in headers {
            reply.push_str(&format!("{k}: {v}\r\n"));
        }
        reply.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ));
        let _ = client.write_all(reply.as_bytes());
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream) else {
        return;
    };
    let request = format!("{head}Connection: close\r\n\r\n");
    if server.write_all(request.as_bytes()).is_err() || server.write_all(body).is_err() {
        return;
    }
    let mut from_server = BufReader::new(server);
    let mut reply_head = String::new();
    loop {
        let mut line = String::new();
        if from_server.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        let dropped = lower.starts_with("connection:")
            || (max_model_len.is_some() && lower.starts_with("content-length:"));
        if !dropped {
            reply_head.push_str(&line);
        }
    }
    if let Some(len) = max_model_len {
        // Only /v1/models: the whole (small, unchunked) JSON, rewritten.
        let mut text = String::new();
        let _ = from_server.read_to_string(&mut text);
        let mut models: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(data) = models.get_mut("data").and_then(Value::as_array_mut) {
            for m in data {
                m["max_model_len"] = len.into();
            }
        }
        let text = models.to_string();
        let _ = write!(
            client,
            "{reply_head}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        );
        return;
    }
    if client
        .write_all(format!("{reply_head}Connection: close\r\n\r\n").as_bytes())
        .is_err()
    {
        return;
    }
    let (limit, stall) = match fault {
        Fault::Cut(n) => (Some(n), None),
        Fault::Stall(n, d) => (Some(n), Some(d)),
        _ => (None, None),
    };
    let mut sent = 0;
    let mut buf = [0u8; 256];
    loop {
        let want = limit.map_or(buf.len(), |l| (l - sent).min(buf.len()));
        if want == 0 {
            break;
        }
        let n = match from_server.read(&mut buf[..want]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if client.write_all(&buf[..n]).is_err() || client.flush().is_err() {
            return;
        }
        sent += n;
    }
    if let Some(d) = stall {
        std::thread::sleep(d);
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
}
