//! Exporting trajectories as supervised fine-tuning data, one JSON line per trajectory, in
//! one of two forms ([`ExportFormat`]):
//!
//! - chat messages, `{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}`, the
//!   layout TRL, LLaMA-Factory and OpenRLHF read;
//! - pre-rendered `{"prompt": ..., "completion": ...}`: the prompt exactly as the model saw it
//!   (the trajectory's `rendered_prompt`, its chat template applied), the completion the whole
//!   assistant text. Use this form for reasoning models: R1-style chat templates (DeepSeek-R1
//!   and its distills, QwQ-32B, Qwen3) drop everything before `</think>` from assistant turns
//!   when they render `messages`, so a trainer that renders the messages itself would silently
//!   train on the final answer alone and lose the whole tool-integrated trace.
//!
//! As in the paper, the tool output blocks stay inside the assistant text (the model learns to
//! write code and to read its output in one stream). With [`ExportOptions::mark_tool_output`]
//! the assistant message also carries `"tool_output_spans"`: `[start, end)` offsets, in Unicode
//! code points (Python string indices), of every output block, so a trainer can mask their loss.

use serde::Serialize;

use crate::infer::backend::Prompt;
use crate::infer::template::{ChatTemplate, Preset, TemplateError};
use crate::trajectory::{Segment, Trajectory};

/// Which form the examples take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExportFormat {
    /// `{"messages": [...]}` chat messages ([`SftExample`]).
    #[default]
    Messages,
    /// `{"prompt", "completion"}`, pre-rendered ([`PromptCompletion`]).
    PromptCompletion,
}

/// How to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Which form.
    pub format: ExportFormat,
    /// A system message to put first, if any (in the prompt/completion form, only in a prompt
    /// rendered here, for a trajectory without a rendered prompt).
    pub system: Option<String>,
    /// Add `tool_output_spans` to the assistant message.
    pub mark_tool_output: bool,
    /// Add `"meta": {"id", "sample"}` to each line.
    pub with_meta: bool,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
    /// Code-point spans of tool output inside `content` (assistant only, when marked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_output_spans: Option<Vec<(usize, usize)>>,
}

/// Where a line came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Meta {
    /// The problem id.
    pub id: String,
    /// The sample number.
    pub sample: u32,
}

/// One exported line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SftExample {
    /// The conversation.
    pub messages: Vec<Message>,
    /// Provenance, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// One exported line of the prompt/completion form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromptCompletion {
    /// The exact text before the assistant's: the chat template applied, generation prompt
    /// (and any `<think>` it opens) included.
    pub prompt: String,
    /// The whole assistant text: the thinking, hints, code and output blocks, and the answer
    /// after `</think>`.
    pub completion: String,
    /// Code-point spans of tool output inside `completion` (when marked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_output_spans: Option<Vec<(usize, usize)>>,
    /// Provenance, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

/// The whole assistant text and the code-point spans of its output blocks.
fn assistant_text(t: &Trajectory) -> (String, Vec<(usize, usize)>) {
    let mut content = String::new();
    let mut spans = Vec::new();
    let mut chars = 0usize;
    for segment in &t.segments {
        let text = segment.text();
        let n = text.chars().count();
        if matches!(segment, Segment::Output { .. }) {
            spans.push((chars, chars + n));
        }
        content.push_str(text);
        chars += n;
    }
    (content, spans)
}

/// The prompt/completion example for a trajectory, and whether its prompt is the one the
/// model was given (`true`) or, for a trajectory without `rendered_prompt`, a ChatML rendering
/// of `opts.system` and the user prompt made here (`false`; the caller says so).
///
/// # Errors
/// [`TemplateError`] when the ChatML fallback cannot be rendered (its fuel ran out).
pub fn to_prompt_completion(
    t: &Trajectory,
    opts: &ExportOptions,
) -> Result<(PromptCompletion, bool), TemplateError> {
    let (prompt, rendered) = match &t.rendered_prompt {
        Some(p) => (p.clone(), true),
        None => {
            let prompt = Prompt {
                system: opts.system.clone(),
                user: t.prompt.clone(),
            };
            let chatml = ChatTemplate::preset(Preset::ChatMl).render(&prompt)?;
            (chatml.text, false)
        }
    };
    let (completion, spans) = assistant_text(t);
    let example = PromptCompletion {
        prompt,
        completion,
        tool_output_spans: opts.mark_tool_output.then_some(spans),
        meta: opts.with_meta.then(|| Meta {
            id: t.id.clone(),
            sample: t.sample,
        }),
    };
    Ok((example, rendered))
}

/// The SFT example for a trajectory: the prompt as the user message, the whole assistant text
/// (hints and output blocks included) as the assistant message.
pub fn to_example(t: &Trajectory, opts: &ExportOptions) -> SftExample {
    let mut messages = Vec::with_capacity(3);
    if let Some(system) = &opts.system {
        messages.push(Message {
            role: "system",
            content: system.clone(),
            tool_output_spans: None,
        });
    }
    messages.push(Message {
        role: "user",
        content: t.prompt.clone(),
        tool_output_spans: None,
    });
    let (content, spans) = assistant_text(t);
    messages.push(Message {
        role: "assistant",
        content,
        tool_output_spans: opts.mark_tool_output.then_some(spans),
    });
    SftExample {
        messages,
        meta: opts.with_meta.then(|| Meta {
            id: t.id.clone(),
            sample: t.sample,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trajectory::TrajectoryBuilder;

    #[test]
    fn spans_cover_output_blocks_in_code_points() {
        let t = TrajectoryBuilder::math("p")
            .sample(3)
            .prompt("Ω?")
            .model("é```python\nprint(1)\n```\n")
            .tool_call("print(1)", "1\n")
            .model("done")
            .build();
        let ex = to_example(
            &t,
            &ExportOptions {
                system: Some("sys".into()),
                mark_tool_output: true,
                with_meta: true,
                ..ExportOptions::default()
            },
        );
        assert_eq!(ex.messages.len(), 3);
        let a = &ex.messages[2];
        let (s, e) = a.tool_output_spans.as_ref().unwrap()[0];
        let chars: Vec<char> = a.content.chars().collect();
        let span: String = chars[s..e].iter().collect();
        assert_eq!(span, "```output\n1\n```\n");
        let json = serde_json::to_value(&ex).unwrap();
        assert_eq!(json["meta"]["sample"], 3);
        let plain = serde_json::to_value(to_example(&t, &ExportOptions::default())).unwrap();
        assert!(plain.get("meta").is_none());
        assert!(plain["messages"][1].get("tool_output_spans").is_none());
    }

    #[test]
    fn prompt_completion_keeps_the_thinking_and_the_rendered_prompt() {
        let base = TrajectoryBuilder::math("p")
            .prompt("What is 1+1?")
            .model("<think>\nLet me run it.\n```python\nprint(1+1)\n```\n")
            .tool_call("print(1+1)", "2\n")
            .model("So 2.\n</think>\n\n\\boxed{2}");
        let opts = ExportOptions {
            format: ExportFormat::PromptCompletion,
            system: Some("S".into()),
            mark_tool_output: true,
            ..ExportOptions::default()
        };
        let mut t = base.build();
        t.rendered_prompt = Some("<｜User｜>What is 1+1?<｜Assistant｜><think>\n".into());
        let (ex, rendered) = to_prompt_completion(&t, &opts).unwrap();
        assert!(rendered);
        assert_eq!(ex.prompt, "<｜User｜>What is 1+1?<｜Assistant｜><think>\n");
        // Everything before </think> is in the completion, output block included.
        assert_eq!(ex.completion, t.text());
        assert!(ex.completion.starts_with("<think>\nLet me run it."));
        let (s, e) = ex.tool_output_spans.as_ref().unwrap()[0];
        let chars: Vec<char> = ex.completion.chars().collect();
        assert_eq!(
            chars[s..e].iter().collect::<String>(),
            "```output\n2\n```\n"
        );
        // Without a rendered prompt: ChatML of the system and user prompt, and says so.
        t.rendered_prompt = None;
        let (ex, rendered) = to_prompt_completion(&t, &opts).unwrap();
        assert!(!rendered);
        assert_eq!(
            ex.prompt,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nWhat is 1+1?<|im_end|>\n<|im_start|>assistant\n"
        );
        let json = serde_json::to_value(&ex).unwrap();
        assert!(json.get("meta").is_none() && json.get("messages").is_none());
    }
}
