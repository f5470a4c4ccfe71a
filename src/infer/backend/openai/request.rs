//! The JSON body of one streaming `/completions` request.
//!
//! Sampling fields go under the names both server families read: vLLM and SGLang take `top_k`,
//! `min_p`, `presence_penalty` and `repetition_penalty`; llama-cpp-python and llama.cpp's
//! server read the repetition penalty as `repeat_penalty` (and default it to 1.1, top-k to 40
//! and min-p to 0.05), so every field is always sent, with its "off" value when unused. A
//! server ignores the name it does not know (vLLM logs it). Top-k "off" is 0: current vLLM
//! and SGLang read 0 so, llama-cpp-python rejects -1 (vLLM before 0.8 wanted -1).

use serde_json::{Value, json};

use super::OpenAiOptions;
use crate::infer::backend::SampleParams;

/// The request for `prompt` (the whole text so far) asking for at most `max_tokens`.
pub fn body(
    options: &OpenAiOptions,
    params: &SampleParams,
    prompt: &str,
    max_tokens: u64,
) -> Value {
    let mut body = json!({
        "model": options.model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k,
        "min_p": params.min_p,
        "presence_penalty": params.presence_penalty,
        "repetition_penalty": params.repetition_penalty,
        "repeat_penalty": params.repetition_penalty,
        "seed": params.seed,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !options.stop.is_empty() {
        body["stop"] = json!(options.stop);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_every_sampling_field_under_both_names() {
        let options = OpenAiOptions::new("http://x/v1", "m");
        let params = SampleParams {
            top_k: 20,
            repetition_penalty: 1.05,
            ..SampleParams::default()
        };
        let b = body(&options, &params, "P", 7);
        assert_eq!(b["max_tokens"], json!(7));
        assert_eq!(b["top_k"], json!(20));
        assert_eq!(b["repeat_penalty"], b["repetition_penalty"]);
        assert_eq!(b["stream_options"]["include_usage"], json!(true));
        assert!(b.get("stop").is_none());
        let off = body(&options, &SampleParams::default(), "P", 7);
        assert_eq!(off["top_k"], json!(0));
        assert_eq!(off["repeat_penalty"], json!(1.0));
    }
}
