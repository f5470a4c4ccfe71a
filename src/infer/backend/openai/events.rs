//! The server-sent events of a streaming `/completions` response, one `data:` line at a time.
//!
//! A chunk carries a text delta and, on its last one, a `finish_reason`; with
//! `stream_options.include_usage` (vLLM, SGLang) a last chunk with no choices carries the
//! request's `usage`; `data: [DONE]` ends the stream. An `error` object (vLLM reports failures
//! that happen mid-stream so) is a failure of this stream.

use serde_json::Value;

/// Why the server stopped one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The model ended (end of sequence, or a stop string).
    Stop,
    /// The request's `max_tokens`, or the server's context, ran out.
    Length,
}

/// Tokens the server counted for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Tokens of the prompt it was sent.
    pub prompt_tokens: u64,
    /// Tokens it generated.
    pub completion_tokens: u64,
}

/// One line of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Not an event (a comment, `event:`, `id:`, a blank separator).
    Skip,
    /// `data: [DONE]`.
    Done,
    /// A chunk.
    Chunk {
        /// Its text delta (often empty on the last one).
        text: String,
        /// Its finish reason, if it is the request's last.
        finish: Option<Finish>,
        /// The request's token counts, if it carries them.
        usage: Option<Usage>,
    },
}

/// Parses one line (without its line break); `Err` says what is wrong with it.
///
/// # Errors
/// A message when the line is not JSON, has no choices nor usage, or reports an error.
pub fn parse(line: &str) -> Result<Line, String> {
    let Some(data) = line.trim_end().strip_prefix("data:") else {
        return Ok(Line::Skip);
    };
    let data = data.trim_start();
    if data == "[DONE]" {
        return Ok(Line::Done);
    }
    let value: Value =
        serde_json::from_str(data).map_err(|e| format!("an event is not JSON: {e}"))?;
    if let Some(err) = value.get("error").filter(|e| !e.is_null()) {
        return Err(format!("the server reported an error mid-stream: {err}"));
    }
    let usage = value.get("usage").and_then(|u| {
        Some(Usage {
            prompt_tokens: u.get("prompt_tokens")?.as_u64()?,
            completion_tokens: u.get("completion_tokens")?.as_u64()?,
        })
    });
    let choice = value.get("choices").and_then(|c| c.get(0));
    let Some(choice) = choice else {
        return match usage {
            Some(_) => Ok(Line::Chunk {
                text: String::new(),
                finish: None,
                usage,
            }),
            None => Err("an event has neither choices nor usage".to_string()),
        };
    };
    let text = choice
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let finish = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("length") => Some(Finish::Length),
        Some(_) => Some(Finish::Stop),
        None => None,
    };
    Ok(Line::Chunk {
        text,
        finish,
        usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunks_usage_and_the_end() {
        assert_eq!(parse(": ping"), Ok(Line::Skip));
        assert_eq!(parse("data: [DONE]"), Ok(Line::Done));
        assert_eq!(
            parse(r#"data: {"choices":[{"text":"Hi","finish_reason":null}],"usage":null}"#),
            Ok(Line::Chunk {
                text: "Hi".into(),
                finish: None,
                usage: None
            })
        );
        assert_eq!(
            parse(r#"data: {"choices":[{"text":"","finish_reason":"length"}]}"#),
            Ok(Line::Chunk {
                text: String::new(),
                finish: Some(Finish::Length),
                usage: None
            })
        );
        assert_eq!(
            parse(
                r#"data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#
            ),
            Ok(Line::Chunk {
                text: String::new(),
                finish: None,
                usage: Some(Usage {
                    prompt_tokens: 7,
                    completion_tokens: 3
                })
            })
        );
    }

    #[test]
    fn rejects_garbage_and_errors() {
        assert!(parse("data: {not json").is_err());
        assert!(parse(r#"data: {"choices":[]}"#).is_err());
        let e = parse(r#"data: {"error":{"message":"boom"}}"#).unwrap_err();
        assert!(e.contains("boom"), "{e}");
    }
}
