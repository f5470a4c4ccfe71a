//! Exporting trajectories as supervised fine-tuning data: one JSON line of chat messages per
//! trajectory, `{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}`, the layout
//! TRL, LLaMA-Factory and OpenRLHF read.
//!
//! As in the paper, the tool output blocks stay inside the assistant text (the model learns to
//! write code and to read its output in one stream). With [`ExportOptions::mark_tool_output`]
//! the assistant message also carries `"tool_output_spans"`: `[start, end)` offsets, in Unicode
//! code points (Python string indices), of every output block, so a trainer can mask their loss.

use serde::Serialize;

use crate::trajectory::{Segment, Trajectory};

/// How to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// A system message to put first, if any.
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
}
