//! Provider adapters for routec: one normalised chat shape over OpenAI,
//! Anthropic, Gemini, OpenAI-compatible services, local CLIs and a simulated
//! provider, with one error classification the router's fallback relies on.
//!
//! ```no_run
//! use providers::{AdapterConfig, AdapterKind, ApiKey, ChatRequest, adapter_for};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = AdapterConfig::new("cerebras");
//! config.api_key = ApiKey::new(std::env::var("CEREBRAS_API_KEY")?);
//! let kind = AdapterKind::from_name("cerebras").ok_or("unknown adapter")?;
//! let provider = adapter_for(&kind, config)?;
//! match provider.complete("llama3.1-8b", &ChatRequest::user("Say hi")).await {
//!     Ok(answer) => drop(answer.content),
//!     Err(e) if e.can_fallback() => { /* try the next target; e.retry_after() says how long to cool down */ }
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(()) }
//! ```

mod anthropic;
pub mod anthropic_wire;
mod cli;
mod config;
mod error;
mod gemini;
mod http;
mod openai;
pub mod openai_wire;
mod presets;
mod provider;
mod secret;
mod simulated;
mod sse;
mod tokens;
mod types;

pub use config::{AdapterConfig, AdapterKind, ConfigError, DEFAULT_MAX_BODY_BYTES, Timeouts, adapter_for};
pub use error::{ErrorClass, ProviderError, TimeoutKind};
pub use provider::{Capabilities, EventStream, Provider, collect_stream, estimate_embed_tokens};
pub use secret::ApiKey;
pub use simulated::{SimOutcome, SimProfile, SimResult, SimScript, SimulatedProvider};
pub use tokens::estimate_tokens;
pub use types::{
    ChatRequest, ChatResponse, ContentPart, EmbedRequest, EmbedResponse, FinishReason, Message, ResponseFormat, Role,
    StreamEvent, Tool, ToolCall, ToolChoice, Usage,
};

/// Entry points for `benches/normalise.rs` only: not part of the supported
/// API, and free to change.
#[doc(hidden)]
pub mod bench_api {
    use crate::http::Ctx;
    use crate::{ApiKey, ChatRequest, ChatResponse, ProviderError, presets};

    /// The wire formats the benchmark normalises through.
    #[derive(Debug, Clone, Copy)]
    pub enum Wire {
        /// OpenAI chat completions.
        OpenAi,
        /// Anthropic Messages.
        Anthropic,
        /// Gemini generateContent.
        Gemini,
    }

    /// Normalised request → the adapter's wire body bytes.
    pub fn encode(wire: Wire, model: &str, req: &ChatRequest) -> Vec<u8> {
        let out = match wire {
            Wire::OpenAi => serde_json::to_vec(&crate::openai::encode_request(
                &presets::OPENAI,
                false,
                model,
                req,
                false,
            )),
            Wire::Anthropic => serde_json::to_vec(&crate::anthropic::encode_request(model, req, false)),
            Wire::Gemini => serde_json::to_vec(&crate::gemini::encode_request(req)),
        };
        out.unwrap_or_default()
    }

    /// Wire response bytes → normalised response.
    pub fn decode(wire: Wire, body: &[u8]) -> Result<ChatResponse, ProviderError> {
        let ctx = Ctx {
            name: "bench".into(),
            key: ApiKey::none(),
        };
        match wire {
            Wire::OpenAi => crate::openai::decode_response(&ctx, body),
            Wire::Anthropic => crate::anthropic::decode_response(&ctx, body, false),
            Wire::Gemini => crate::gemini::decode_response(&ctx, body, "bench"),
        }
    }
}

#[cfg(test)]
mod stream_tests;
