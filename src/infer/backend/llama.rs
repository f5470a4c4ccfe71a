//! llama.cpp in-process, through the `llama-cpp-2` crate, on a local GGUF file.
//!
//! Truncate-and-continue reuses the KV cache: the generation keeps the token sequence with the
//! byte offset where each token's text ends; [`Generation::truncate`] drops the tokens past the
//! cut from the cache (`kv_cache_seq_rm`) and re-tokenizes only the cut token's kept bytes, and
//! [`Generation::append`] tokenizes only the new text. The next [`Generation::next_piece`]
//! decodes just the tokens not yet in the cache, in one batch. [`Counters`] make this checkable:
//! `decoded_tokens == context_tokens + discarded_tokens`.
//!
//! Prompts are rendered by our [`ChatTemplate`] renderer, not llama.cpp's own template code, so
//! this backend and a server given the same template prompt the model with the same text: by
//! default the GGUF's embedded Hugging Face template ([`LlamaCppBackend::embedded_template`]),
//! tokenized with special tokens parsed and the BOS added as the model's vocabulary says.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use super::{
    Backend, BackendError, ChatTemplate, DEFAULT_CONTEXT_TOKENS, EndReason, Generation, Piece,
    RenderedPrompt, SampleParams, TemplateError, Utf8Buffer,
};
use crate::infer::template::Preset;
use crate::trajectory::Counters;

/// Tokens decoded per batch.
const BATCH_TOKENS: usize = 512;

/// llama.cpp's process-wide backend: it may be initialised only once per process.
fn llama_backend() -> Result<&'static LlamaBackend, BackendError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            LlamaBackend::init()
                .map(|mut b| {
                    b.void_logs();
                    b
                })
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| BackendError::Engine(format!("cannot start llama.cpp: {e}")))
}

/// Options of the llama backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaOptions {
    /// Context window in tokens (prompt plus everything generated and appended).
    pub context_tokens: u32,
    /// CPU threads for generation and prompt processing.
    pub threads: i32,
}

impl Default for LlamaOptions {
    fn default() -> Self {
        LlamaOptions {
            context_tokens: DEFAULT_CONTEXT_TOKENS,
            threads: std::thread::available_parallelism()
                .map(|n| i32::try_from(n.get()).unwrap_or(1))
                .unwrap_or(1),
        }
    }
}

/// A loaded GGUF model.
pub struct LlamaCppBackend {
    model: LlamaModel,
    path: PathBuf,
    options: LlamaOptions,
    template: ChatTemplate,
    /// Creating contexts in parallel is unsound in llama.cpp (it mutates the model).
    new_context: Mutex<()>,
}

impl std::fmt::Debug for LlamaCppBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaCppBackend")
            .field("path", &self.path)
            .field("options", &self.options)
            .field("template", &self.template.name())
            .finish_non_exhaustive()
    }
}

impl LlamaCppBackend {
    /// The sampler chain for `params`: penalties over the whole context (as servers apply
    /// them), then top-k, top-p and min-p, then greedy or a seeded draw at the temperature.
    fn sampler(&self, params: &SampleParams, seed: u32) -> LlamaSampler {
        let mut chain = Vec::new();
        if params.repetition_penalty != 1.0 || params.presence_penalty != 0.0 {
            chain.push(LlamaSampler::penalties(
                self.model.n_vocab(),
                i32::try_from(self.options.context_tokens).unwrap_or(i32::MAX),
                params.repetition_penalty.max(f32::MIN_POSITIVE),
                0.0,
                params.presence_penalty,
            ));
        }
        if params.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
            return LlamaSampler::chain_simple(chain);
        }
        if params.top_k > 0 {
            chain.push(LlamaSampler::top_k(
                i32::try_from(params.top_k).unwrap_or(i32::MAX),
            ));
        }
        chain.push(LlamaSampler::top_p(params.top_p.clamp(0.0, 1.0), 1));
        if params.min_p > 0.0 {
            chain.push(LlamaSampler::min_p(params.min_p.clamp(0.0, 1.0), 1));
        }
        chain.push(LlamaSampler::temp(params.temperature));
        chain.push(LlamaSampler::dist(seed));
        LlamaSampler::chain_simple(chain)
    }

    /// Loads a GGUF model.
    ///
    /// # Errors
    /// [`BackendError::Load`] when the file is missing or not a model llama.cpp can load.
    pub fn load(path: &Path, options: LlamaOptions) -> Result<Self, BackendError> {
        let load_error = |reason: String| BackendError::Load {
            path: path.display().to_string(),
            reason,
        };
        if !path.is_file() {
            return Err(load_error("no such file".into()));
        }
        let backend = llama_backend()?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| load_error(e.to_string()))?;
        let mut backend = LlamaCppBackend {
            model,
            path: path.to_path_buf(),
            options,
            template: ChatTemplate::preset(Preset::ChatMl),
            new_context: Mutex::new(()),
        };
        if let Ok(template) = backend.embedded_template() {
            backend.template = template;
        }
        Ok(backend)
    }

    /// Renders prompts with `template` instead of the GGUF's own.
    pub fn with_template(mut self, template: ChatTemplate) -> Self {
        self.template = template;
        self
    }

    /// The GGUF's embedded chat template (`tokenizer.chat_template`, Hugging Face's Jinja),
    /// with the model's BOS and EOS tokens: the default of [`LlamaCppBackend::load`], which
    /// falls back to ChatML when the file has none or it does not compile.
    ///
    /// # Errors
    /// [`TemplateError::Config`] when the file has no template, [`TemplateError::Syntax`]
    /// when ours cannot compile it (pass a preset or a template file then).
    pub fn embedded_template(&self) -> Result<ChatTemplate, TemplateError> {
        let name = format!("gguf:{}", self.path.display());
        let source = self
            .model
            .chat_template(None)
            .ok()
            .and_then(|t| t.to_string().ok())
            .ok_or_else(|| TemplateError::Config {
                name: name.clone(),
                reason: "the model file has no chat template".into(),
            })?;
        let vocab = self.model.vocab();
        let token_text = |token: LlamaToken| {
            if token.0 < 0 || token.0 >= vocab.n_tokens() {
                return String::new();
            }
            vocab
                .text(token)
                .and_then(|t| t.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        ChatTemplate::from_jinja(
            name,
            source,
            token_text(vocab.bos()),
            token_text(vocab.eos()),
        )
    }
}

impl Backend for LlamaCppBackend {
    fn describe(&self) -> String {
        format!("llama:{}", self.path.display())
    }

    fn chat_template(&self) -> &ChatTemplate {
        &self.template
    }

    fn start<'a>(
        &'a self,
        prompt: &RenderedPrompt,
        params: &SampleParams,
    ) -> Result<Box<dyn Generation + 'a>, BackendError> {
        let backend = llama_backend()?;
        let ctx_params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(self.options.context_tokens))
            .with_n_batch(BATCH_TOKENS as u32)
            .with_n_threads(self.options.threads)
            .with_n_threads_batch(self.options.threads);
        let ctx = {
            let _guard = self.new_context.lock().unwrap_or_else(|p| p.into_inner());
            self.model
                .new_context(backend, ctx_params)
                .map_err(|e| BackendError::Engine(format!("cannot create a context: {e}")))?
        };
        // As a server tokenizes a raw prompt: special tokens parsed, the BOS added if the
        // vocabulary says so (the template's own BOS is left out of the text for that).
        let text = prompt.completion_text();
        let prompt_tokens = self.model.vocab().tokenize(text.as_bytes(), true, true);
        if prompt_tokens.len() + 1 >= self.options.context_tokens as usize {
            return Err(BackendError::Invalid(format!(
                "the prompt has {} tokens; the context holds {}",
                prompt_tokens.len(),
                self.options.context_tokens
            )));
        }
        // Seeds are 32-bit in llama.cpp; fold the high half in.
        let seed = (params.seed ^ (params.seed >> 32)) as u32;
        let sampler = self.sampler(params, seed);
        let counters = Counters {
            prompt_tokens: prompt_tokens.len() as u64,
            requests: 1,
            ..Counters::default()
        };
        Ok(Box::new(LlamaGeneration {
            model: &self.model,
            ctx,
            sampler,
            prompt: prompt_tokens,
            seq: Vec::new(),
            bytes: Vec::new(),
            in_cache: 0,
            stale_logits: false,
            utf8: Utf8Buffer::default(),
            n_ctx: self.options.context_tokens as usize,
            counters,
        }))
    }
}

struct LlamaGeneration<'a> {
    model: &'a LlamaModel,
    ctx: LlamaContext<'a>,
    sampler: LlamaSampler,
    prompt: Vec<LlamaToken>,
    /// The assistant's tokens with the byte offset (in `bytes`) where each one's text ends.
    seq: Vec<(LlamaToken, usize)>,
    /// The assistant's text as bytes (may end inside a character).
    bytes: Vec<u8>,
    /// How many of `prompt ++ seq` are in the KV cache.
    in_cache: usize,
    /// The last decode's logits belong to a token that a truncation removed.
    stale_logits: bool,
    utf8: Utf8Buffer,
    n_ctx: usize,
    counters: Counters,
}

impl LlamaGeneration<'_> {
    fn total(&self) -> usize {
        self.prompt.len() + self.seq.len()
    }

    fn token_at(&self, pos: usize) -> Option<LlamaToken> {
        if pos < self.prompt.len() {
            self.prompt.get(pos).copied()
        } else {
            self.seq.get(pos - self.prompt.len()).map(|(t, _)| *t)
        }
    }

    /// Decodes every token not yet in the cache, in batches, logits on the last one only.
    fn catch_up(&mut self) -> Result<(), BackendError> {
        let total = self.total();
        if self.stale_logits && self.in_cache == total && total > 0 {
            // Nothing new to decode, but the logits are for a removed token: decode the last
            // kept token again.
            let last = u32::try_from(total - 1)
                .map_err(|_| BackendError::Engine("position out of range".into()))?;
            self.ctx
                .kv_cache_seq_rm(0, Some(last), None)
                .map_err(|e| BackendError::Engine(format!("cannot cut the KV cache: {e}")))?;
            self.in_cache -= 1;
            self.counters.discarded_tokens += 1;
        }
        self.stale_logits = false;
        while self.in_cache < total {
            let end = (self.in_cache + BATCH_TOKENS).min(total);
            let mut batch = LlamaBatch::new(BATCH_TOKENS, 1);
            for pos in self.in_cache..end {
                let token = self
                    .token_at(pos)
                    .ok_or_else(|| BackendError::Engine("token index out of range".into()))?;
                let pos_i32 = i32::try_from(pos)
                    .map_err(|_| BackendError::Engine("position out of range".into()))?;
                batch
                    .add(token, pos_i32, &[0], pos + 1 == total)
                    .map_err(|e| BackendError::Engine(e.to_string()))?;
            }
            self.ctx
                .decode(&mut batch)
                .map_err(|e| BackendError::Engine(format!("decode failed: {e}")))?;
            self.counters.decoded_tokens += (end - self.in_cache) as u64;
            self.in_cache = end;
        }
        self.counters.context_tokens = self.in_cache as u64;
        Ok(())
    }

    fn push_text_tokens(&mut self, text: &[u8]) {
        if text.is_empty() {
            return;
        }
        let tokens = self.model.vocab().tokenize(text, false, false);
        let start = self.bytes.len();
        self.bytes.extend_from_slice(text);
        let n = tokens.len();
        for (i, token) in tokens.into_iter().enumerate() {
            // Byte ends of appended tokens are only needed at the end of the text; inner
            // tokens get the start offset so a later cut inside re-tokenizes the whole text.
            let end = if i + 1 == n { self.bytes.len() } else { start };
            self.seq.push((token, end));
        }
        self.counters.appended_tokens += n as u64;
    }
}

impl Generation for LlamaGeneration<'_> {
    fn next_piece(&mut self) -> Result<Piece, BackendError> {
        if self.total() + 1 >= self.n_ctx {
            return Ok(Piece::End(EndReason::Length));
        }
        self.catch_up()?;
        let token = self.sampler.sample(&self.ctx, -1);
        if self.model.vocab().is_eog(token) {
            return Ok(Piece::End(EndReason::Eos));
        }
        let piece = self.model.vocab().token_to_piece(token, false, None);
        self.bytes.extend_from_slice(&piece);
        self.seq.push((token, self.bytes.len()));
        self.counters.generated_tokens += 1;
        Ok(Piece::Text(self.utf8.push(&piece)))
    }

    fn truncate(&mut self, len: usize) -> Result<(), BackendError> {
        if len > self.bytes.len() {
            return Err(BackendError::Invalid(format!(
                "truncate to {len} bytes, but the text has {}",
                self.bytes.len()
            )));
        }
        self.utf8.clear();
        // Keep the tokens whose text ends at or before the cut.
        let keep = self.seq.iter().take_while(|(_, end)| *end <= len).count();
        let kept_bytes = if keep == 0 { 0 } else { self.seq[keep - 1].1 };
        let tail = self.bytes[kept_bytes..len].to_vec();
        self.seq.truncate(keep);
        self.bytes.truncate(kept_bytes);
        let keep_pos = self.prompt.len() + keep;
        if self.in_cache > keep_pos {
            let p0 = u32::try_from(keep_pos)
                .map_err(|_| BackendError::Engine("position out of range".into()))?;
            self.ctx
                .kv_cache_seq_rm(0, Some(p0), None)
                .map_err(|e| BackendError::Engine(format!("cannot cut the KV cache: {e}")))?;
            self.counters.discarded_tokens += (self.in_cache - keep_pos) as u64;
            self.in_cache = keep_pos;
            self.counters.context_tokens = keep_pos as u64;
            self.stale_logits = true;
        }
        self.push_text_tokens(&tail);
        Ok(())
    }

    fn append(&mut self, text: &str) -> Result<(), BackendError> {
        self.utf8.clear();
        self.push_text_tokens(text.as_bytes());
        Ok(())
    }

    fn counters(&self) -> Counters {
        self.counters
    }
}
