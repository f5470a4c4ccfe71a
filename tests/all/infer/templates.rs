//! The llama backend renders prompts with our chat template renderer: by default the GGUF's
//! own embedded template (SmolLM2's adds its default system prompt, which llama.cpp's built-in
//! ChatML guess does not), tokenized with special tokens parsed.

use start::infer::backend::llama::{LlamaCppBackend, LlamaOptions};
use start::infer::backend::{Backend, Prompt, SampleParams};
use start::infer::template::{ChatTemplate, Preset};
use start_runtime::Progress;

#[test]
fn the_gguf_template_is_rendered_by_ours_and_special_tokens_are_parsed() {
    let model = start::infer::model::example_model(
        &start_runtime::default_cache_dir(),
        &Progress::stderr(),
    )
    .expect("the example model must be downloadable (pip) or already cached");
    let options = LlamaOptions {
        context_tokens: 512,
        threads: 2,
    };
    let backend = LlamaCppBackend::load(&model, options).unwrap();
    let prompt = Prompt {
        system: None,
        user: "Hi".into(),
    };
    let embedded = backend.embedded_template().unwrap();
    assert!(embedded.name().starts_with("gguf:"));
    let rendered = backend.render(&prompt).unwrap();
    assert_eq!(rendered, embedded.render(&prompt).unwrap());
    assert!(
        rendered
            .text
            .starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
            && rendered
                .text
                .ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
        "{}",
        rendered.text
    );

    let chatml = backend.with_template(ChatTemplate::preset(Preset::ChatMl));
    let rendered = chatml.render(&prompt).unwrap();
    assert_eq!(
        rendered.text,
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    let generation = chatml.start(&rendered, &SampleParams::default()).unwrap();
    // Each `<|im_start|>`/`<|im_end|>` is one special token, not a dozen pieces of text.
    let tokens = generation.counters().prompt_tokens;
    assert!((6..=12).contains(&tokens), "{tokens} prompt tokens");
}
