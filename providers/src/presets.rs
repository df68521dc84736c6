//! OpenAI-compatible presets: one table, one row per service.
//!
//! Adding a service is one `Preset { … }` row below (and a line in
//! `docs/providers.md`). Quirks are data, not code paths, so the OpenAI
//! adapter reads them in one place when it builds the wire request.

/// Which body field carries the output-token limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaxTokensField {
    /// `max_tokens`: what most compatible servers accept.
    MaxTokens,
    /// `max_completion_tokens`: OpenAI's current name, required by its reasoning models.
    MaxCompletionTokens,
}

/// How the service lets a caller opt out of storing or training on inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoStore {
    /// The service has no such body switch; only headers (configured) can say it.
    Unsupported,
    /// OpenAI's `"store": false`.
    StoreFalse,
    /// OpenRouter's `"provider": {"data_collection": "deny"}`, which routes
    /// only to upstreams that neither store nor train on prompts.
    OpenRouterDataCollection,
}

/// One OpenAI-compatible service.
#[derive(Debug)]
pub(crate) struct Preset {
    /// The name used in policies (`adapter groq`).
    pub name: &'static str,
    /// Base URL up to and excluding `/chat/completions`.
    pub base_url: &'static str,
    /// Whether a key is required (local servers accept none).
    pub key_required: bool,
    /// The output-token limit field.
    pub max_tokens_field: MaxTokensField,
    /// The body field for the sampling seed (Mistral calls it `random_seed`);
    /// `None` drops the seed.
    pub seed_field: Option<&'static str>,
    /// Whether to send `stream_options.include_usage` (strict servers reject
    /// unknown fields; those that omit it report usage on the last chunk anyway).
    pub stream_usage_option: bool,
    /// Whether `response_format: json_schema` is accepted; otherwise it is
    /// sent as `json_object` with the schema in a system message.
    pub json_schema: bool,
    /// How `no_store` is expressed.
    pub no_store: NoStore,
    /// Whether image parts are accepted.
    pub vision: bool,
}

/// OpenAI itself.
pub(crate) const OPENAI: Preset = Preset {
    name: "openai",
    base_url: "https://api.openai.com/v1",
    key_required: true,
    max_tokens_field: MaxTokensField::MaxCompletionTokens,
    seed_field: Some("seed"),
    stream_usage_option: true,
    json_schema: true,
    no_store: NoStore::StoreFalse,
    vision: true,
};

/// A bare `openai_compatible` adapter: conservative choices, base URL required.
pub(crate) const GENERIC: Preset = Preset {
    name: "openai_compatible",
    base_url: "",
    key_required: false,
    max_tokens_field: MaxTokensField::MaxTokens,
    seed_field: Some("seed"),
    stream_usage_option: true,
    json_schema: true,
    no_store: NoStore::Unsupported,
    vision: true,
};

/// The table. Base URLs and quirks are from each service's public API docs.
pub(crate) const PRESETS: &[Preset] = &[
    Preset {
        name: "groq",
        base_url: "https://api.groq.com/openai/v1",
        // Groq reports stream usage under `x_groq.usage`; the chunk decoder reads both places.
        ..COMPAT
    },
    Preset {
        name: "cerebras",
        base_url: "https://api.cerebras.ai/v1",
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        vision: false,
        ..COMPAT
    },
    Preset {
        name: "openrouter",
        base_url: "https://openrouter.ai/api/v1",
        no_store: NoStore::OpenRouterDataCollection,
        ..COMPAT
    },
    Preset {
        name: "xai",
        base_url: "https://api.x.ai/v1",
        ..COMPAT
    },
    Preset {
        name: "deepseek",
        base_url: "https://api.deepseek.com/v1",
        // DeepSeek accepts only `json_object`; it reports cached prompt tokens
        // as `prompt_cache_hit_tokens`, which the usage decoder reads.
        json_schema: false,
        vision: false,
        ..COMPAT
    },
    Preset {
        name: "together",
        base_url: "https://api.together.xyz/v1",
        ..COMPAT
    },
    Preset {
        name: "fireworks",
        base_url: "https://api.fireworks.ai/inference/v1",
        ..COMPAT
    },
    Preset {
        name: "mistral",
        base_url: "https://api.mistral.ai/v1",
        // Mistral rejects unknown fields (422) and names the seed `random_seed`;
        // it sends usage on the final chunk without being asked.
        seed_field: Some("random_seed"),
        stream_usage_option: false,
        ..COMPAT
    },
    Preset {
        name: "zai",
        base_url: "https://api.z.ai/api/paas/v4",
        json_schema: false,
        ..COMPAT
    },
    Preset {
        name: "vllm",
        base_url: "http://127.0.0.1:8000/v1",
        key_required: false,
        ..COMPAT
    },
    Preset {
        name: "ollama",
        base_url: "http://127.0.0.1:11434/v1",
        key_required: false,
        ..COMPAT
    },
];

/// The common ground of hosted compatible services, for `..COMPAT` above.
const COMPAT: Preset = Preset {
    name: "",
    base_url: "",
    key_required: true,
    max_tokens_field: MaxTokensField::MaxTokens,
    seed_field: Some("seed"),
    stream_usage_option: true,
    json_schema: true,
    no_store: NoStore::Unsupported,
    vision: true,
};

/// Looks a preset up by name.
pub(crate) fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_urls_absolute() {
        for (i, p) in PRESETS.iter().enumerate() {
            assert!(!p.name.is_empty());
            assert!(p.base_url.starts_with("http"), "{}", p.name);
            assert!(!p.base_url.ends_with('/'), "{}", p.name);
            assert!(PRESETS[i + 1..].iter().all(|q| q.name != p.name), "{}", p.name);
            // A preset must not shadow an adapter name.
            assert!(!["openai", "anthropic", "gemini", "openai_compatible", "cli", "mock"].contains(&p.name));
        }
    }

    #[test]
    fn the_issue_lists_every_preset() {
        for name in [
            "groq",
            "cerebras",
            "openrouter",
            "xai",
            "deepseek",
            "together",
            "fireworks",
            "mistral",
            "zai",
            "vllm",
            "ollama",
        ] {
            assert!(find(name).is_some(), "{name}");
        }
    }
}
