//! The built-in chat templates of the common reasoning models.
//!
//! Each is a short template written for this crate (in `presets/*.jinja`) that renders, for a
//! conversation of an optional system message and one user message with the generation
//! prompt, exactly the text the model's own Hugging Face template renders (checked against
//! those templates; the unit tests pin the expected text). Tool calls and multi-turn histories
//! are out of their scope: for those, pass the model's own `tokenizer_config.json`.

use super::TemplateError;

/// A built-in chat template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// `qwq-32b-preview`: ChatML, with QwQ-32B-Preview's default system prompt ("You are a
    /// helpful and harmless assistant. You are Qwen developed by Alibaba. You should think
    /// step-by-step.") when none is given.
    QwQ32BPreview,
    /// `qwq-32b`: ChatML; the assistant turn opens with `<think>\n`.
    QwQ32B,
    /// `deepseek-r1`: DeepSeek-R1 and its distills: `<｜begin▁of▁sentence｜>`, the system
    /// prompt, `<｜User｜>...<｜Assistant｜><think>\n`.
    DeepSeekR1,
    /// `qwen3`: Qwen3 in thinking mode (ChatML; the model opens `<think>` itself). With the
    /// variable `enable_thinking=false`, the empty thinking block of non-thinking mode.
    Qwen3,
    /// `chatml`: plain ChatML (Qwen2.5, SmolLM2 and many more).
    ChatMl,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 5] = [
        Preset::QwQ32BPreview,
        Preset::QwQ32B,
        Preset::DeepSeekR1,
        Preset::Qwen3,
        Preset::ChatMl,
    ];

    /// Their names, in [`Preset::ALL`]'s order (what `--template-preset` takes).
    pub const NAMES: [&'static str; 5] = [
        "qwq-32b-preview",
        "qwq-32b",
        "deepseek-r1",
        "qwen3",
        "chatml",
    ];

    /// The preset's name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::QwQ32BPreview => Self::NAMES[0],
            Preset::QwQ32B => Self::NAMES[1],
            Preset::DeepSeekR1 => Self::NAMES[2],
            Preset::Qwen3 => Self::NAMES[3],
            Preset::ChatMl => Self::NAMES[4],
        }
    }

    /// The template text, the BOS and the EOS token.
    pub(super) fn parts(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Preset::QwQ32BPreview => (
                include_str!("presets/qwq-32b-preview.jinja"),
                "",
                "<|im_end|>",
            ),
            Preset::QwQ32B => (include_str!("presets/qwq-32b.jinja"), "", "<|im_end|>"),
            Preset::DeepSeekR1 => (
                include_str!("presets/deepseek-r1.jinja"),
                "<｜begin▁of▁sentence｜>",
                "<｜end▁of▁sentence｜>",
            ),
            Preset::Qwen3 => (include_str!("presets/qwen3.jinja"), "", "<|im_end|>"),
            Preset::ChatMl => (include_str!("presets/chatml.jinja"), "", "<|im_end|>"),
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Preset {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| TemplateError::UnknownPreset(s.to_string()))
    }
}
