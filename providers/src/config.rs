//! Building adapters from plain configuration.
//!
//! The runtime reads provider blocks from the compiled policy and calls
//! [`adapter_for`]; this crate never sees the policy itself, which keeps it a
//! leaf that the runtime, the gateway and the simulator can all depend on.

use std::sync::Arc;
use std::time::Duration;

use crate::anthropic::AnthropicAdapter;
use crate::cli::CliAdapter;
use crate::gemini::GeminiAdapter;
use crate::openai::OpenAiAdapter;
use crate::presets::{self, Preset};
use crate::provider::Provider;
use crate::secret::ApiKey;
use crate::simulated::{SimProfile, SimulatedProvider};

/// The default cap on a response body: far above any real chat answer, far
/// below what would hurt the process.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Which adapter serves a provider, named as in the policy language
/// (`adapter openai|anthropic|gemini|openai_compatible|cli|mock`, or a preset
/// name such as `adapter groq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterKind {
    /// OpenAI's chat completions API.
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API (generateContent).
    Gemini,
    /// Any chat-completions-compatible service, optionally a named preset.
    OpenAiCompatible {
        /// A preset name (`groq`, `cerebras`, …); `None` needs a base URL.
        preset: Option<String>,
    },
    /// A local command that reads the prompt on stdin and prints the answer.
    Cli {
        /// The program and its arguments.
        command: Vec<String>,
    },
    /// The simulated provider, for tests and demos.
    Mock,
}

impl AdapterKind {
    /// Parses an adapter name from the policy: the six adapter names, or a
    /// preset name standing for `openai_compatible` with that preset. The
    /// `cli` kind's command comes from elsewhere, so it parses with none.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "openai" => Some(Self::OpenAi),
            "anthropic" => Some(Self::Anthropic),
            "gemini" => Some(Self::Gemini),
            "openai_compatible" => Some(Self::OpenAiCompatible { preset: None }),
            "cli" => Some(Self::Cli { command: Vec::new() }),
            "mock" => Some(Self::Mock),
            other => presets::find(other).map(|p| Self::OpenAiCompatible {
                preset: Some(p.name.to_owned()),
            }),
        }
    }

    /// The names of every OpenAI-compatible preset, for "did you mean" and docs.
    pub fn preset_names() -> impl Iterator<Item = &'static str> {
        presets::PRESETS.iter().map(|p| p.name)
    }
}

/// The three timeouts of an HTTP call, plus an optional overall one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP and TLS connection establishment.
    pub connect: Duration,
    /// From starting the request (connecting included) to the response headers.
    pub first_byte: Duration,
    /// Longest gap between two body chunks.
    pub idle: Duration,
    /// The whole call; for the CLI adapter, the child's lifetime.
    pub total: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            // Large models can think for a long time before the first token
            // of a non-streamed answer; the runtime sets tighter per-attempt
            // deadlines from the policy.
            first_byte: Duration::from_secs(120),
            idle: Duration::from_secs(60),
            total: None,
        }
    }
}

/// Everything an adapter needs, read from a policy's provider block.
#[derive(Debug, Clone)]
pub struct AdapterConfig {
    /// The provider's name in the policy; appears in errors and traces.
    pub name: String,
    /// Overrides the adapter's or preset's base URL (required for a bare
    /// `openai_compatible`).
    pub base_url: Option<String>,
    /// The key, read from `env("NAME")` by the runtime.
    pub api_key: ApiKey,
    /// Extra headers sent with every request.
    pub extra_headers: Vec<(String, String)>,
    /// Ask the provider not to store or train on inputs, where its API has a
    /// switch for it (OpenAI `store: false`, OpenRouter `data_collection: deny`).
    pub no_store: bool,
    /// Connect, first-byte, idle and total timeouts.
    pub timeouts: Timeouts,
    /// Cap on a response body; larger bodies are a malformed-response error.
    pub max_body_bytes: usize,
    /// The model ids configured for this provider.
    pub models: Vec<String>,
    /// Latency and failure profile for the `mock` adapter.
    pub simulation: Option<SimProfile>,
}

impl AdapterConfig {
    /// A configuration with defaults for everything but the name.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            base_url: None,
            api_key: ApiKey::none(),
            extra_headers: Vec::new(),
            no_store: false,
            timeouts: Timeouts::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            models: Vec::new(),
            simulation: None,
        }
    }
}

/// Why an adapter could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The preset name is not in the table.
    #[error("unknown openai-compatible preset `{name}`")]
    UnknownPreset {
        /// The name given.
        name: String,
    },
    /// A bare `openai_compatible` adapter needs a base URL.
    #[error("provider `{provider}` needs a base url")]
    MissingBaseUrl {
        /// The provider's name.
        provider: String,
    },
    /// The base URL is not an absolute http(s) URL.
    #[error("provider `{provider}` has an invalid base url")]
    InvalidBaseUrl {
        /// The provider's name.
        provider: String,
    },
    /// The adapter needs a key and none was given.
    #[error("provider `{provider}` needs an api key")]
    MissingKey {
        /// The provider's name.
        provider: String,
    },
    /// An extra header's name or value is not valid in HTTP.
    #[error("header `{name}` is not a valid http header")]
    InvalidHeader {
        /// The header name (values are never shown: they may be secrets).
        name: String,
    },
    /// A `cli` adapter without a command.
    #[error("provider `{provider}` has an empty cli command")]
    EmptyCommand {
        /// The provider's name.
        provider: String,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("http client could not be built: {reason}")]
    HttpClient {
        /// What the TLS stack said.
        reason: String,
    },
}

/// Builds the adapter for `kind` from `config`.
///
/// # Errors
/// A [`ConfigError`] for an unknown preset, a missing base URL or key, an
/// invalid header, or an empty CLI command.
pub fn adapter_for(kind: &AdapterKind, config: AdapterConfig) -> Result<Arc<dyn Provider>, ConfigError> {
    Ok(match kind {
        AdapterKind::OpenAi => Arc::new(OpenAiAdapter::new(config, &presets::OPENAI)?),
        AdapterKind::OpenAiCompatible { preset } => {
            let preset: &'static Preset = match preset {
                Some(name) => presets::find(name).ok_or_else(|| ConfigError::UnknownPreset { name: name.clone() })?,
                None => &presets::GENERIC,
            };
            Arc::new(OpenAiAdapter::new(config, preset)?)
        }
        AdapterKind::Anthropic => Arc::new(AnthropicAdapter::new(config)?),
        AdapterKind::Gemini => Arc::new(GeminiAdapter::new(config)?),
        AdapterKind::Cli { command } => Arc::new(CliAdapter::new(config, command.clone())?),
        AdapterKind::Mock => {
            let profile = config.simulation.clone().unwrap_or_else(SimProfile::instant);
            Arc::new(SimulatedProvider::new(config.name, profile).with_configured_models(config.models))
        }
    })
}

/// Checks a base URL enough to turn typos into configuration errors rather
/// than connection errors at the first request.
pub(crate) fn check_base_url(provider: &str, url: &str) -> Result<String, ConfigError> {
    let ok = (url.starts_with("http://") || url.starts_with("https://")) && !url.contains(char::is_whitespace);
    if ok {
        Ok(url.trim_end_matches('/').to_owned())
    } else {
        Err(ConfigError::InvalidBaseUrl {
            provider: provider.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_names_and_presets_parse() {
        assert_eq!(AdapterKind::from_name("openai"), Some(AdapterKind::OpenAi));
        assert_eq!(
            AdapterKind::from_name("groq"),
            Some(AdapterKind::OpenAiCompatible {
                preset: Some("groq".into())
            })
        );
        assert_eq!(AdapterKind::from_name("nope"), None);
        assert!(AdapterKind::preset_names().any(|n| n == "openrouter"));
    }

    #[test]
    fn unknown_preset_is_a_config_error() {
        let kind = AdapterKind::OpenAiCompatible {
            preset: Some("nope".into()),
        };
        let err = adapter_for(&kind, AdapterConfig::new("x")).unwrap_err();
        assert_eq!(err, ConfigError::UnknownPreset { name: "nope".into() });
    }

    #[test]
    fn bare_compatible_needs_a_base_url() {
        let kind = AdapterKind::OpenAiCompatible { preset: None };
        let err = adapter_for(&kind, AdapterConfig::new("x")).unwrap_err();
        assert_eq!(err, ConfigError::MissingBaseUrl { provider: "x".into() });
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(check_base_url("x", "ftp://a").is_err());
        assert!(check_base_url("x", "http://a b").is_err());
        assert_eq!(
            check_base_url("x", "http://127.0.0.1:1/v1/").unwrap(),
            "http://127.0.0.1:1/v1"
        );
    }

    #[test]
    fn invalid_header_names_the_header_not_the_value() {
        let mut config = AdapterConfig::new("x");
        config.api_key = ApiKey::new("k");
        config.extra_headers = vec![("bad header".into(), "sk-CANARY-secret".into())];
        let err = adapter_for(&AdapterKind::OpenAi, config).unwrap_err();
        assert!(!err.to_string().contains("CANARY"));
        assert!(matches!(err, ConfigError::InvalidHeader { .. }));
    }
}
