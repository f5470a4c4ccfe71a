//! Chat templates: how a conversation becomes the exact text a model is given.
//!
//! Models ship their prompt format as a Jinja template in Hugging Face's dialect (the
//! `chat_template` of a `tokenizer_config.json`, also embedded in GGUF files). A
//! [`ChatTemplate`] renders one with `minijinja` the way `transformers`' `apply_chat_template`
//! does: `trim_blocks` and `lstrip_blocks` on, the variables `messages` (each with `role` and
//! `content`), `add_generation_prompt` (always true here: the text ends by opening the
//! assistant's turn), `bos_token`, `eos_token` and any extra keyword arguments (such as Qwen3's
//! `enable_thinking`), Python's string methods (`.strip()`, `.split()`, `.startswith()`...),
//! `raise_exception(message)` and `tojson` as Hugging Face defines them.
//!
//! Sources ([`TemplateSource`]): a built-in [`Preset`] for the common reasoning models, a
//! `tokenizer_config.json` or a plain template file ([`ChatTemplate::from_file`]), or a template
//! text (the GGUF's own, [`ChatTemplate::from_jinja`]). Templates are untrusted input: a file
//! is at most [`MAX_TEMPLATE_BYTES`], rendering is bounded by minijinja's fuel
//! ([`TEMPLATE_FUEL`]) and recursion limit ([`TEMPLATE_RECURSION`]), and every failure is a
//! [`TemplateError`] naming the template and saying why.

mod json;
mod presets;

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};
use serde::Serialize;

pub use presets::Preset;

use crate::infer::backend::Prompt;

/// Largest template file (a `tokenizer_config.json` or a `.jinja`) accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 1 << 20;
/// Fuel of one rendering (minijinja's instruction budget): plenty for any chat template on one
/// conversation, and a stop for a template that loops without end.
pub const TEMPLATE_FUEL: u64 = 5_000_000;
/// Deepest nesting (macros, includes, nested blocks) a template may reach while rendering.
pub const TEMPLATE_RECURSION: usize = 64;

/// The name templates are registered under in their environment.
const TEMPLATE_NAME: &str = "chat_template";

/// Why a chat template cannot be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read.
    #[error("cannot read the chat template {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_TEMPLATE_BYTES`].
    #[error("the chat template {name} is {bytes} bytes; at most {MAX_TEMPLATE_BYTES} are accepted")]
    TooLarge {
        /// The template's name (its file).
        name: String,
        /// Its size.
        bytes: u64,
    },
    /// A `tokenizer_config.json` without a usable `chat_template`.
    #[error("{name}: {reason}")]
    Config {
        /// The file.
        name: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// The template is not valid Jinja.
    #[error("the chat template {name} is not valid Jinja: {reason}")]
    Syntax {
        /// The template's name.
        name: String,
        /// What minijinja said, with the line.
        reason: String,
    },
    /// Rendering failed: the template raised an exception, used something undefined, or ran
    /// out of fuel or recursion depth.
    #[error("the chat template {name} failed to render: {reason}")]
    Render {
        /// The template's name.
        name: String,
        /// What went wrong, with the line.
        reason: String,
    },
    /// No preset of that name.
    #[error("no template preset {0:?}; the presets are: {names}", names = Preset::NAMES.join(", "))]
    UnknownPreset(String),
}

/// Where a run's chat template comes from (the `start infer` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    /// The backend's default: a GGUF's own embedded template, ChatML for a server.
    Default,
    /// A built-in preset (`--template-preset`).
    Preset(Preset),
    /// A `tokenizer_config.json` or a Jinja file (`--chat-template`).
    File(std::path::PathBuf),
}

impl TemplateSource {
    /// The template for this source; `default` gives the backend's own (called only for
    /// [`TemplateSource::Default`]).
    ///
    /// # Errors
    /// [`TemplateError`] when the file cannot be read or parsed.
    pub fn load(
        &self,
        default: impl FnOnce() -> Result<ChatTemplate, TemplateError>,
    ) -> Result<ChatTemplate, TemplateError> {
        match self {
            TemplateSource::Default => default(),
            TemplateSource::Preset(preset) => Ok(ChatTemplate::preset(*preset)),
            TemplateSource::File(path) => ChatTemplate::from_file(path),
        }
    }
}

/// A prompt rendered by a chat template: the exact text before the assistant's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedPrompt {
    /// The whole text, as the template wrote it.
    pub text: String,
    /// Bytes at the start of `text` that are the BOS token the template wrote itself.
    pub bos_bytes: usize,
}

impl RenderedPrompt {
    /// The text for a completion endpoint or a tokenizer that adds the BOS token itself
    /// (vLLM, SGLang and llama.cpp all tokenize a raw prompt with special tokens added): the
    /// text without the BOS the template wrote, so the model does not see it twice.
    pub fn completion_text(&self) -> &str {
        self.text.get(self.bos_bytes..).unwrap_or(&self.text)
    }
}

/// A compiled chat template with its special tokens and extra variables.
#[derive(Clone)]
pub struct ChatTemplate {
    name: String,
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    /// Whether the template reads `bos_token` (only then can a leading BOS be its own).
    uses_bos: bool,
    kwargs: BTreeMap<String, serde_json::Value>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("name", &self.name)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("kwargs", &self.kwargs)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles a Jinja template text; `name` says where it came from in errors and logs.
    ///
    /// # Errors
    /// [`TemplateError::TooLarge`] over [`MAX_TEMPLATE_BYTES`], [`TemplateError::Syntax`] when
    /// it is not valid Jinja.
    pub fn from_jinja(
        name: impl Into<String>,
        source: impl Into<String>,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> Result<Self, TemplateError> {
        let name = name.into();
        let source = source.into();
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError::TooLarge {
                name,
                bytes: source.len() as u64,
            });
        }
        let env = environment(source).map_err(|e| TemplateError::Syntax {
            name: name.clone(),
            reason: describe(&e),
        })?;
        let uses_bos = env
            .get_template(TEMPLATE_NAME)
            .map(|t| t.undeclared_variables(false).contains("bos_token"))
            .unwrap_or(true);
        Ok(ChatTemplate {
            name,
            env,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
            uses_bos,
            kwargs: BTreeMap::new(),
        })
    }

    /// A built-in preset.
    pub fn preset(preset: Preset) -> Self {
        let (source, bos, eos) = preset.parts();
        match Self::from_jinja(preset.name(), source, bos, eos) {
            Ok(t) => t,
            // Every preset is compiled by a unit test; this arm is never taken.
            Err(_) => Self::plain_chatml(),
        }
    }

    /// ChatML written without Jinja: the fallback of last resort.
    fn plain_chatml() -> Self {
        let mut env = Environment::empty();
        env.set_fuel(Some(TEMPLATE_FUEL));
        let _ = env.add_template_owned(
            TEMPLATE_NAME,
            "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n\
             {% endfor %}<|im_start|>assistant\n",
        );
        ChatTemplate {
            name: "chatml".into(),
            env,
            bos_token: String::new(),
            eos_token: "<|im_end|>".into(),
            uses_bos: false,
            kwargs: BTreeMap::new(),
        }
    }

    /// Loads a file: a `tokenizer_config.json` (its `chat_template`, `bos_token` and
    /// `eos_token`) when it parses as a JSON object, else a Jinja template (with no special
    /// tokens).
    ///
    /// # Errors
    /// [`TemplateError`] when the file cannot be read, is over [`MAX_TEMPLATE_BYTES`], or holds
    /// no valid template.
    pub fn from_file(path: &Path) -> Result<Self, TemplateError> {
        let name = path.display().to_string();
        let text = read_bounded(path)?;
        let json = text
            .trim_start()
            .starts_with('{')
            .then(|| serde_json::from_str::<serde_json::Value>(&text).ok())
            .flatten()
            .filter(serde_json::Value::is_object);
        match json {
            Some(config) => Self::from_tokenizer_config(&name, &config, None),
            None => Self::from_jinja(name, text, "", ""),
        }
    }

    /// The template of a parsed `tokenizer_config.json`: its `chat_template` string, or from a
    /// list of `{"name", "template"}` the one named `which` (default `"default"`, as
    /// `transformers` picks); `bos_token`/`eos_token` may be strings or `{"content": ...}`.
    ///
    /// # Errors
    /// [`TemplateError::Config`] when there is no such template, [`TemplateError::Syntax`]
    /// when it is not valid Jinja.
    pub fn from_tokenizer_config(
        name: &str,
        config: &serde_json::Value,
        which: Option<&str>,
    ) -> Result<Self, TemplateError> {
        let bad = |reason: String| TemplateError::Config {
            name: name.to_string(),
            reason,
        };
        let source = match config.get("chat_template") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Array(list)) => {
                let wanted = which.unwrap_or("default");
                let mut names = Vec::new();
                let mut found = None;
                for entry in list {
                    let entry_name = entry.get("name").and_then(|v| v.as_str());
                    let template = entry.get("template").and_then(|v| v.as_str());
                    let (Some(entry_name), Some(template)) = (entry_name, template) else {
                        return Err(bad(
                            "each chat_template entry must be {\"name\": ..., \"template\": ...}"
                                .into(),
                        ));
                    };
                    names.push(entry_name.to_string());
                    if entry_name == wanted && found.is_none() {
                        found = Some(template.to_string());
                    }
                }
                found.ok_or_else(|| {
                    bad(format!(
                        "no chat template named {wanted:?}; it has {}",
                        names.join(", ")
                    ))
                })?
            }
            Some(_) => return Err(bad("chat_template must be a string or a list".into())),
            None => {
                return Err(bad(
                    "no chat_template field (is this a tokenizer_config.json? newer models \
                     keep it in chat_template.jinja: pass that file)"
                        .into(),
                ));
            }
        };
        let token = |key: &str| match config.get(key) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Object(o)) => o
                .get("content")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        };
        let label = match which {
            Some(w) => format!("{name}#{w}"),
            None => name.to_string(),
        };
        Self::from_jinja(label, source, token("bos_token"), token("eos_token"))
    }

    /// The same template with an extra variable (such as `enable_thinking = false`).
    #[must_use]
    pub fn with_kwarg(mut self, key: impl Into<String>, value: serde_json::Value) -> Self {
        self.kwargs.insert(key.into(), value);
        self
    }

    /// Where the template came from (a preset's name, a file, `gguf:...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The BOS token it renders with.
    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// Renders `prompt` (its system message, if any, then the user's) with the generation
    /// prompt: the text that comes before the assistant's.
    ///
    /// ```
    /// use start::infer::backend::Prompt;
    /// use start::infer::template::{ChatTemplate, Preset};
    ///
    /// let prompt = Prompt { system: None, user: "2+2?".into() };
    /// let text = ChatTemplate::preset(Preset::QwQ32B).render(&prompt).unwrap().text;
    /// assert_eq!(text, "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n");
    /// ```
    ///
    /// # Errors
    /// [`TemplateError::Render`] when the template raises, fails, or runs out of fuel.
    pub fn render(&self, prompt: &Prompt) -> Result<RenderedPrompt, TemplateError> {
        let mut messages = Vec::new();
        if let Some(system) = &prompt.system {
            messages.push(message("system", system));
        }
        messages.push(message("user", &prompt.user));
        let mut vars: BTreeMap<String, serde_json::Value> = self.kwargs.clone();
        vars.insert("messages".into(), serde_json::Value::Array(messages));
        vars.insert("add_generation_prompt".into(), true.into());
        vars.insert("bos_token".into(), self.bos_token.clone().into());
        vars.insert("eos_token".into(), self.eos_token.clone().into());
        let render_error = |e: JinjaError| TemplateError::Render {
            name: self.name.clone(),
            reason: describe(&e),
        };
        let text = self
            .env
            .get_template(TEMPLATE_NAME)
            .and_then(|t| t.render(Value::from(Serde(&vars))))
            .map_err(render_error)?;
        let bos_bytes =
            if self.uses_bos && !self.bos_token.is_empty() && text.starts_with(&self.bos_token) {
                self.bos_token.len()
            } else {
                0
            };
        Ok(RenderedPrompt { text, bos_bytes })
    }
}

fn message(role: &str, content: &str) -> serde_json::Value {
    serde_json::json!({ "role": role, "content": content })
}

/// Reads a file of at most [`MAX_TEMPLATE_BYTES`] without reading more than that.
fn read_bounded(path: &Path) -> Result<String, TemplateError> {
    use std::io::Read;
    let name = path.display().to_string();
    let io = |source| TemplateError::Io {
        path: name.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_TEMPLATE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_TEMPLATE_BYTES {
        let bytes = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        return Err(TemplateError::TooLarge { name, bytes });
    }
    String::from_utf8(bytes).map_err(|_| TemplateError::Config {
        name,
        reason: "the file is not UTF-8 text".into(),
    })
}

/// An environment set up as `transformers` sets up its own, holding `source`.
fn environment(source: String) -> Result<Environment<'static>, JinjaError> {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_recursion_limit(TEMPLATE_RECURSION);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |message: String| -> Result<Value, _> {
        Err(JinjaError::new(ErrorKind::InvalidOperation, message))
    });
    env.add_filter("tojson", json::tojson);
    env.add_template_owned(TEMPLATE_NAME, source)?;
    Ok(env)
}

/// minijinja's error with its line, in one line.
fn describe(e: &JinjaError) -> String {
    let mut reason = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(line) = e.line() {
        reason.push_str(&format!(" (line {line})"));
    }
    reason
}

#[cfg(test)]
mod tests;
