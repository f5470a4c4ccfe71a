use super::*;

fn prompt(system: Option<&str>) -> Prompt {
    Prompt {
        system: system.map(str::to_string),
        user: "What is 6*7?".into(),
    }
}

fn render(preset: Preset, system: Option<&str>) -> RenderedPrompt {
    ChatTemplate::preset(preset)
        .render(&prompt(system))
        .unwrap()
}

#[test]
fn presets_render_the_models_own_text() {
    let s = Some("Be brief.");
    assert_eq!(
        render(Preset::ChatMl, s).text,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 6*7?<|im_end|>\n\
         <|im_start|>assistant\n"
    );
    assert_eq!(
        render(Preset::ChatMl, None).text,
        "<|im_start|>user\nWhat is 6*7?<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        render(Preset::QwQ32BPreview, s).text,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 6*7?<|im_end|>\n\
         <|im_start|>assistant\n"
    );
    assert_eq!(
        render(Preset::QwQ32BPreview, None).text,
        "<|im_start|>system\nYou are a helpful and harmless assistant. You are Qwen developed by \
         Alibaba. You should think step-by-step.<|im_end|>\n<|im_start|>user\nWhat is 6*7?\
         <|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(
        render(Preset::QwQ32B, s).text,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 6*7?<|im_end|>\n\
         <|im_start|>assistant\n<think>\n"
    );
    assert_eq!(
        render(Preset::QwQ32B, None).text,
        "<|im_start|>user\nWhat is 6*7?<|im_end|>\n<|im_start|>assistant\n<think>\n"
    );
    let r1 = render(Preset::DeepSeekR1, s);
    assert_eq!(
        r1.text,
        "<｜begin▁of▁sentence｜>Be brief.<｜User｜>What is 6*7?<｜Assistant｜><think>\n"
    );
    assert_eq!(
        r1.completion_text(),
        "Be brief.<｜User｜>What is 6*7?<｜Assistant｜><think>\n"
    );
    assert_eq!(
        render(Preset::DeepSeekR1, None).text,
        "<｜begin▁of▁sentence｜><｜User｜>What is 6*7?<｜Assistant｜><think>\n"
    );
    assert_eq!(
        render(Preset::Qwen3, s).text,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 6*7?<|im_end|>\n\
         <|im_start|>assistant\n"
    );
    let no_thinking = ChatTemplate::preset(Preset::Qwen3)
        .with_kwarg("enable_thinking", false.into())
        .render(&prompt(None))
        .unwrap();
    assert_eq!(
        no_thinking.text,
        "<|im_start|>user\nWhat is 6*7?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    );
    // Only a template that writes the BOS itself has one to drop.
    for preset in [Preset::ChatMl, Preset::QwQ32B, Preset::Qwen3] {
        let r = render(preset, s);
        assert_eq!((r.bos_bytes, r.completion_text()), (0, r.text.as_str()));
    }
}

#[test]
fn preset_names_parse() {
    for preset in Preset::ALL {
        assert_eq!(preset.name().parse::<Preset>().unwrap(), preset);
        assert_eq!(ChatTemplate::preset(preset).name(), preset.name());
    }
    let err = "qwq".parse::<Preset>().unwrap_err();
    assert!(matches!(err, TemplateError::UnknownPreset(_)));
    assert!(
        err.to_string()
            .contains("qwq-32b-preview, qwq-32b, deepseek-r1")
    );
}

#[test]
fn tokenizer_config_with_a_list_of_templates() {
    let config = serde_json::json!({
        "bos_token": {"content": "<s>", "lstrip": false},
        "eos_token": "</s>",
        "chat_template": [
            {"name": "tool_use", "template": "TOOLS {{ messages[0].content }}"},
            {"name": "default", "template":
                "{{ bos_token }}{% for m in messages %}[{{ m.role | upper }}] {{ m.content.strip() }}\n{% endfor %}\
                 {% if add_generation_prompt %}[ASSISTANT]{% endif %}{{ eos_token if false }}"},
        ],
    });
    let t = ChatTemplate::from_tokenizer_config("tc.json", &config, None).unwrap();
    assert_eq!(t.bos_token(), "<s>");
    let p = Prompt {
        system: Some(" S ".into()),
        user: "U".into(),
    };
    let r = t.render(&p).unwrap();
    assert_eq!(r.text, "<s>[SYSTEM] S\n[USER] U\n[ASSISTANT]");
    assert_eq!(r.completion_text(), "[SYSTEM] S\n[USER] U\n[ASSISTANT]");
    let tools = ChatTemplate::from_tokenizer_config("tc.json", &config, Some("tool_use")).unwrap();
    assert_eq!(tools.render(&p).unwrap().text, "TOOLS  S ");
    assert_eq!(tools.name(), "tc.json#tool_use");

    let err = ChatTemplate::from_tokenizer_config("tc.json", &config, Some("rag")).unwrap_err();
    assert!(
        matches!(&err, TemplateError::Config { reason, .. } if reason.contains("tool_use, default")),
        "{err}"
    );
    let err =
        ChatTemplate::from_tokenizer_config("tc.json", &serde_json::json!({}), None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("tc.json: no chat_template field"),
        "{err}"
    );
}

#[test]
fn files_are_tokenizer_configs_or_jinja_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tokenizer_config.json");
    std::fs::write(
        &config,
        r#"{"chat_template": "{{ bos_token }}{{ messages[-1].content }}", "bos_token": "<B>"}"#,
    )
    .unwrap();
    let r = ChatTemplate::from_file(&config)
        .unwrap()
        .render(&prompt(None))
        .unwrap();
    assert_eq!((r.text.as_str(), r.bos_bytes), ("<B>What is 6*7?", 3));

    let jinja = dir.path().join("t.jinja");
    std::fs::write(
        &jinja,
        "{% for m in messages %}{{ m.content }}{% endfor %}!\n",
    )
    .unwrap();
    let t = ChatTemplate::from_file(&jinja).unwrap();
    assert_eq!(t.render(&prompt(None)).unwrap().text, "What is 6*7?!");

    let big = dir.path().join("big.jinja");
    std::fs::write(&big, "x".repeat(MAX_TEMPLATE_BYTES + 1)).unwrap();
    assert!(matches!(
        ChatTemplate::from_file(&big),
        Err(TemplateError::TooLarge { bytes, .. }) if bytes == MAX_TEMPLATE_BYTES as u64 + 1
    ));
    assert!(matches!(
        ChatTemplate::from_jinja("t", "x".repeat(MAX_TEMPLATE_BYTES + 1), "", ""),
        Err(TemplateError::TooLarge { .. })
    ));
    assert!(ChatTemplate::from_jinja("t", "x".repeat(MAX_TEMPLATE_BYTES), "", "").is_ok());
    assert!(matches!(
        ChatTemplate::from_file(&dir.path().join("missing.jinja")),
        Err(TemplateError::Io { .. })
    ));
}

#[test]
fn bad_templates_give_typed_errors_naming_the_template() {
    let err = ChatTemplate::from_jinja("broken.jinja", "{% if %}", "", "").unwrap_err();
    assert!(
        matches!(&err, TemplateError::Syntax { name, reason } if name == "broken.jinja" && reason.contains("line 1")),
        "{err}"
    );

    let raising = ChatTemplate::from_jinja(
        "strict",
        "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}ok",
        "",
        "",
    )
    .unwrap();
    assert_eq!(raising.render(&prompt(None)).unwrap().text, "ok");
    let err = raising.render(&prompt(Some("S"))).unwrap_err();
    assert!(
        matches!(&err, TemplateError::Render { name, reason } if name == "strict" && reason.contains("System role not supported")),
        "{err}"
    );

    // A template that would run for ever stops at its fuel, one that recurses at its depth.
    let spin = ChatTemplate::from_jinja(
        "spin",
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "",
        "",
    )
    .unwrap();
    let err = spin.render(&prompt(None)).unwrap_err();
    assert!(err.to_string().contains("fuel"), "{err}");
    let deep = ChatTemplate::from_jinja(
        "deep",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "",
        "",
    )
    .unwrap();
    assert!(matches!(
        deep.render(&prompt(None)),
        Err(TemplateError::Render { .. })
    ));
}

#[test]
fn python_methods_and_tojson_as_hugging_face_has_them() {
    let t = ChatTemplate::from_jinja(
        "py",
        "{% set c = messages[-1].content %}{{ c.startswith('What') }} {{ c.split(' ')[-1] }} \
         {{ '  x \n'.strip() }}|{{ {'a': '<b> & é', 'n': [1, 2.5, true, none]} | tojson }}|\
         {{ {'b': 1, 'a': [1]} | tojson(indent=2, sort_keys=true) }}|{{ 'é' | tojson(ensure_ascii=true) }}",
        "",
        "",
    )
    .unwrap();
    assert_eq!(
        t.render(&prompt(None)).unwrap().text,
        "True 6*7? x|{\"a\": \"<b> & é\", \"n\": [1, 2.5, true, null]}|\
         {\n  \"a\": [\n    1\n  ],\n  \"b\": 1\n}|\"\\u00e9\""
    );
}
