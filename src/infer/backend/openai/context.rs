//! What a generation knows about the server's context window: how many tokens the text so far
//! takes (exact where the server counted them, in `usage` or in a context-overflow refusal;
//! estimated for text added since), and what a context-overflow refusal says.

/// Bytes per token assumed for text no server has counted yet. English runs at about 4 bytes
/// a token; assuming fewer makes the estimate err high, so a request asks for a little less
/// than the room left (and the next request asks for the rest) rather than overflowing.
pub const BYTES_PER_TOKEN_GUESS: usize = 3;

/// Tokens that `bytes` of uncounted text are assumed to take.
pub fn guess_tokens(bytes: usize) -> u64 {
    bytes.div_ceil(BYTES_PER_TOKEN_GUESS) as u64
}

/// What a server's "the request does not fit the context" refusal says, as far as it says it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overflow {
    /// The model's context length, in tokens.
    pub context: Option<u64>,
    /// Tokens of the prompt that was sent.
    pub prompt: Option<u64>,
}

/// Reads a context-overflow refusal (HTTP 400) of vLLM, SGLang or llama-cpp-python; `None` when
/// `message` is about something else. The servers word it differently and change the wording
/// between versions, so the numbers are looked up by the phrases around them, each optional:
///
/// - vLLM: "This model's maximum context length is 2048 tokens. However, you requested 2100
///   tokens (100 in the messages, 2000 in the completion)", or "... and your request has 100
///   input tokens (2000 > 2048 - 100)";
/// - llama-cpp-python: "... is 2048 tokens, however you requested 2100 tokens (2048 in your
///   prompt; 52 for the completion)";
/// - SGLang: "... maximum context length of 2048 tokens. You requested a total of 2100 tokens:
///   100 tokens from the input messages and 2000 tokens for the completion", or "The input (3000
///   tokens) is longer than the model's context length (2048 tokens)".
pub fn parse_overflow(message: &str) -> Option<Overflow> {
    let m = message.to_ascii_lowercase();
    if !(m.contains("context length") || m.contains("context window")) {
        return None;
    }
    let context = [
        "context length is ",
        "context length of ",
        "context window of ",
        "context length (",
    ]
    .iter()
    .find_map(|needle| number_after(&m, needle));
    let prompt = [
        " in the messages",
        " in your prompt",
        " input tokens",
        " tokens from the input",
    ]
    .iter()
    .find_map(|needle| number_before(&m, needle))
    .or_else(|| number_after(&m, "the input ("))
    .or_else(|| number_after(&m, "total length "));
    Some(Overflow { context, prompt })
}

/// The number that starts right after `needle`.
fn number_after(hay: &str, needle: &str) -> Option<u64> {
    let start = hay.find(needle)? + needle.len();
    let digits: String = hay[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The number that ends right before `needle`.
fn number_before(hay: &str, needle: &str) -> Option<u64> {
    let end = hay.find(needle)?;
    let head = &hay[..end];
    let start = head
        .rfind(|c: char| !(c.is_ascii_digit() || c == ','))
        .map_or(0, |i| i + 1);
    head[start..].replace(',', "").parse().ok()
}

/// Tokens of the whole request text (prompt plus assistant text), anchored at the last point a
/// server counted them: the text's byte length then and its token count. Text added since is
/// guessed with [`guess_tokens`]; a cut scales the anchor down in proportion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ledger {
    anchor: Option<(usize, u64)>,
}

impl Ledger {
    /// Records that the first `bytes` of the text take `tokens` tokens.
    pub fn set(&mut self, bytes: usize, tokens: u64) {
        self.anchor = Some((bytes, tokens));
    }

    /// Tokens of a text of `bytes` bytes that extends the anchored one; `None` before any count.
    pub fn estimate(&self, bytes: usize) -> Option<u64> {
        let (at, tokens) = self.anchor?;
        Some(if bytes >= at {
            tokens + guess_tokens(bytes - at)
        } else {
            scaled(tokens, bytes, at)
        })
    }

    /// The text was cut back to `bytes`.
    pub fn truncate(&mut self, bytes: usize) {
        if let Some((at, tokens)) = self.anchor
            && bytes < at
        {
            self.anchor = Some((bytes, scaled(tokens, bytes, at)));
        }
    }
}

/// `tokens * part / whole`, rounded up.
fn scaled(tokens: u64, part: usize, whole: usize) -> u64 {
    let whole = whole.max(1) as u128;
    (u128::from(tokens) * part as u128).div_ceil(whole) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_servers_overflow_messages() {
        let cases = [
            (
                "This model's maximum context length is 2048 tokens. However, you requested \
                 2100 tokens (100 in the messages, 2000 in the completion). Please reduce the \
                 length of the messages or completion.",
                Some(2048),
                Some(100),
            ),
            (
                "'max_tokens' or 'max_completion_tokens' is too large: 2000. This model's \
                 maximum context length is 32,768 tokens and your request has 1,000 input \
                 tokens (2000 > 32768 - 1000).",
                Some(32768),
                Some(1000),
            ),
            (
                "This model's maximum context length is 2048 tokens, however you requested \
                 2100 tokens (2048 in your prompt; 52 for the completion). Please reduce your \
                 prompt; or completion length.",
                Some(2048),
                Some(2048),
            ),
            (
                "Requested token count exceeds the model's maximum context length of 4096 \
                 tokens. You requested a total of 5000 tokens: 1000 tokens from the input \
                 messages and 4000 tokens for the completion.",
                Some(4096),
                Some(1000),
            ),
            (
                "The input (5000 tokens) is longer than the model's context length (4096 \
                 tokens).",
                Some(4096),
                Some(5000),
            ),
            ("the context length is exceeded", None, None),
        ];
        for (message, context, prompt) in cases {
            assert_eq!(
                parse_overflow(message),
                Some(Overflow { context, prompt }),
                "{message}"
            );
        }
        assert_eq!(parse_overflow("temperature must be positive"), None);
    }

    #[test]
    fn the_ledger_counts_from_its_anchor() {
        let mut l = Ledger::default();
        assert_eq!(l.estimate(100), None);
        l.set(400, 100);
        assert_eq!(l.estimate(400), Some(100));
        assert_eq!(l.estimate(430), Some(110));
        assert_eq!(l.estimate(200), Some(50));
        l.truncate(100);
        assert_eq!(l.estimate(100), Some(25));
        l.truncate(300);
        assert_eq!(l.estimate(100), Some(25), "a longer cut changes nothing");
    }
}
