//! A simulated provider for demos, tests and the offline simulator.
//!
//! Everything random comes from [`SimProfile::sample`], a pure function of
//! (seed, call index, input size): the simulator replays a million calls on a
//! virtual clock with no runtime at all, and the async [`SimulatedProvider`]
//! sleeps for the sampled latency and answers with the sampled outcome. Same
//! seed, same answers, on any machine: the generator is splitmix64, not a
//! thread RNG.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{ErrorClass, ProviderError};
use crate::provider::{Capabilities, EventStream, Provider};
use crate::tokens::estimate_tokens;
use crate::types::{
    ChatRequest, ChatResponse, ContentPart, EmbedRequest, EmbedResponse, FinishReason, ResponseFormat, StreamEvent,
    ToolCall, ToolChoice, Usage,
};

/// z-score of the 95th percentile of the standard normal distribution.
const Z95: f64 = 1.644_853_626_951_472_2;

/// How a simulated provider behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct SimProfile {
    /// Median latency (to the whole answer).
    pub p50: Duration,
    /// 95th-percentile latency; with `p50` it fixes a log-normal distribution.
    pub p95: Duration,
    /// Share of calls that fail with `error_class`, in basis points (1/10 000).
    pub error_bp: u32,
    /// Share of calls rate limited (429), in basis points.
    pub rate_limit_bp: u32,
    /// The class of the non-429 failures (server error by default).
    pub error_class: ErrorClass,
    /// The `Retry-After` a simulated 429 carries.
    pub retry_after: Duration,
    /// Output tokens per input token, before jitter (±50 %) and the max-tokens cap.
    pub output_ratio: f64,
    /// The output cap when a request sets no `max_tokens`.
    pub default_max_output: u64,
    /// Share of streamed answers cut off halfway (after their first event,
    /// before their end), in basis points.
    pub stream_break_bp: u32,
}

impl SimProfile {
    /// No latency, no failures: the `mock` adapter's default.
    pub fn instant() -> Self {
        Self {
            p50: Duration::ZERO,
            p95: Duration::ZERO,
            error_bp: 0,
            rate_limit_bp: 0,
            error_class: ErrorClass::ServerError,
            retry_after: Duration::from_secs(1),
            output_ratio: 0.5,
            default_max_output: 1024,
            stream_break_bp: 0,
        }
    }

    /// A profile with these latencies and no failures.
    pub fn with_latency(p50: Duration, p95: Duration) -> Self {
        Self {
            p50,
            p95,
            ..Self::instant()
        }
    }

    /// One call's outcome, as a pure function of its inputs.
    ///
    /// `call_index` distinguishes calls under one seed (the simulator passes
    /// the request number). Failures take the same latency distribution as
    /// successes: a simplification, stated so nobody relies on it.
    pub fn sample(&self, seed: u64, call_index: u64, input_tokens: u64, max_output: u64) -> SimOutcome {
        let mut rng = SplitMix64::new(seed ^ call_index.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17));
        let outcome = rng.next_f64();
        let latency = self.latency(&mut rng);
        let jitter = 0.5 + rng.next_f64();
        let rate_limit = f64::from(self.rate_limit_bp) / 10_000.0;
        let error = f64::from(self.error_bp) / 10_000.0;
        let result = if outcome < rate_limit {
            SimResult::Err {
                class: ErrorClass::RateLimited,
                retry_after: Some(self.retry_after),
            }
        } else if outcome < rate_limit + error {
            SimResult::Err {
                class: self.error_class,
                retry_after: None,
            }
        } else {
            let wanted = (input_tokens as f64 * self.output_ratio * jitter).round() as u64;
            SimResult::Ok {
                output_tokens: wanted.clamp(1, max_output.max(1)),
            }
        };
        SimOutcome { latency, result }
    }

    /// Whether a streamed answer of call `call_index` is cut off halfway: a
    /// draw of its own, so a profile without stream breaks samples every
    /// other outcome exactly as before.
    pub fn stream_breaks(&self, seed: u64, call_index: u64) -> bool {
        if self.stream_break_bp == 0 {
            return false;
        }
        let mut rng = SplitMix64::new(seed ^ call_index.wrapping_mul(0xD1B5_4A32_D192_ED03).rotate_left(29) ^ 0x5EED);
        rng.next_f64() < f64::from(self.stream_break_bp) / 10_000.0
    }

    fn latency(&self, rng: &mut SplitMix64) -> Duration {
        let p50 = self.p50.as_secs_f64();
        if p50 <= 0.0 {
            rng.next_f64();
            rng.next_f64();
            return Duration::ZERO;
        }
        let sigma = (self.p95.as_secs_f64() / p50).ln().max(0.0) / Z95;
        // Box–Muller; `1 - u` keeps the logarithm's argument in (0, 1].
        let u1 = 1.0 - rng.next_f64();
        let u2 = rng.next_f64();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let secs = p50 * (sigma * z).exp();
        // Whole microseconds, so last-bit differences between libm
        // implementations cannot change a replayed simulation.
        Duration::from_micros((secs * 1e6).round() as u64)
    }
}

/// What [`SimProfile::sample`] decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimOutcome {
    /// How long the call takes.
    pub latency: Duration,
    /// Success with a token count, or a failure class.
    pub result: SimResult,
}

/// A simulated call's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimResult {
    /// Success.
    Ok {
        /// Generated tokens.
        output_tokens: u64,
    },
    /// Failure.
    Err {
        /// Its class.
        class: ErrorClass,
        /// The retry hint a 429 carries.
        retry_after: Option<Duration>,
    },
}

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and the same everywhere.
/// Outcomes played in order by the simulated providers that share it; a
/// call past the end fails as a server error.
#[derive(Debug, Default)]
pub struct SimScript {
    outcomes: Mutex<VecDeque<SimOutcome>>,
}

impl SimScript {
    /// A script of `outcomes`, first to last.
    pub fn new(outcomes: impl IntoIterator<Item = SimOutcome>) -> Self {
        SimScript {
            outcomes: Mutex::new(outcomes.into_iter().collect()),
        }
    }

    /// The next outcome, if any is left.
    pub fn next(&self) -> Option<SimOutcome> {
        // A poisoned lock only means another caller panicked mid-pop; the
        // queue itself is still whole.
        let mut q = self.outcomes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        q.pop_front()
    }

    /// How many outcomes are left.
    pub fn remaining(&self) -> usize {
        self.outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The simulated provider behind the `mock` adapter.
#[derive(Debug)]
pub struct SimulatedProvider {
    name: String,
    profile: SimProfile,
    script: Option<Arc<SimScript>>,
    seed: u64,
    calls: AtomicU64,
    models: Vec<String>,
}

impl SimulatedProvider {
    /// A provider named `name` with `profile` and seed 0.
    pub fn new(name: impl Into<String>, profile: SimProfile) -> Self {
        Self {
            name: name.into(),
            profile,
            script: None,
            seed: 0,
            calls: AtomicU64::new(0),
            models: Vec::new(),
        }
    }

    /// Sets the seed.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The models from the policy, for [`Provider::models`].
    /// Takes each call's outcome from `script` instead of sampling the
    /// profile: several providers sharing one script play its outcomes in
    /// the order calls reach them (a recorded incident, or a test that runs
    /// the same outcomes through the router and the simulator).
    #[must_use]
    pub fn scripted(mut self, script: Arc<SimScript>) -> Self {
        self.script = Some(script);
        self
    }

    pub(crate) fn with_configured_models(mut self, models: Vec<String>) -> Self {
        self.models = models;
        self
    }

    /// How many calls have been made.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    async fn call(&self, model: &str, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let index = self.calls.fetch_add(1, Ordering::Relaxed);
        let input_tokens = request_tokens(req);
        let max_output = req.max_tokens.map_or(self.profile.default_max_output, u64::from);
        let outcome = match &self.script {
            Some(script) => script.next().unwrap_or(SimOutcome {
                latency: Duration::ZERO,
                result: SimResult::Err {
                    class: ErrorClass::ServerError,
                    retry_after: None,
                },
            }),
            None => self.profile.sample(self.seed, index, input_tokens, max_output),
        };
        let outcome = match outcome.result {
            SimResult::Ok { output_tokens } => SimOutcome {
                result: SimResult::Ok {
                    output_tokens: output_tokens.clamp(1, max_output.max(1)),
                },
                ..outcome
            },
            SimResult::Err { .. } => outcome,
        };
        tokio::time::sleep(outcome.latency).await;
        match outcome.result {
            SimResult::Err { class, retry_after } => Err(ProviderError::new(&self.name, class, "simulated failure")
                .with_status(simulated_status(class))
                .with_retry_after(retry_after)),
            SimResult::Ok { output_tokens } => Ok(self.answer(model, req, index, input_tokens, output_tokens)),
        }
    }

    /// An embedding call: the same sampled latency and failures as a chat
    /// call of that input size, and a vector per text that depends on the
    /// text alone (unit length, so cosine similarity is a dot product).
    async fn embed_call(&self, model: &str, req: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        let index = self.calls.fetch_add(1, Ordering::Relaxed);
        let input_tokens = crate::provider::estimate_embed_tokens(req);
        let outcome = match &self.script {
            Some(script) => script.next().unwrap_or(SimOutcome {
                latency: Duration::ZERO,
                result: SimResult::Err {
                    class: ErrorClass::ServerError,
                    retry_after: None,
                },
            }),
            None => self.profile.sample(self.seed, index, input_tokens, 1),
        };
        tokio::time::sleep(outcome.latency).await;
        if let SimResult::Err { class, retry_after } = outcome.result {
            return Err(ProviderError::new(&self.name, class, "simulated failure")
                .with_status(simulated_status(class))
                .with_retry_after(retry_after));
        }
        let dims = req
            .dimensions
            .map_or(SIM_EMBED_DIMENSIONS, |d| d.clamp(1, MAX_SIM_EMBED_DIMENSIONS));
        Ok(EmbedResponse {
            model: model.to_owned(),
            vectors: req.input.iter().map(|t| sim_vector(t, dims)).collect(),
            usage: Usage {
                input_tokens,
                output_tokens: 0,
                cached_tokens: 0,
            },
        })
    }

    fn answer(
        &self,
        model: &str,
        req: &ChatRequest,
        index: u64,
        input_tokens: u64,
        output_tokens: u64,
    ) -> ChatResponse {
        let usage = Usage {
            input_tokens,
            output_tokens,
            cached_tokens: 0,
        };
        let forced_tool = match &req.tool_choice {
            Some(ToolChoice::Tool(name)) => Some(name.clone()),
            Some(ToolChoice::Required) => req.tools.first().map(|t| t.name.clone()),
            _ => None,
        };
        let id = Some(format!("sim-{}-{index}", self.seed));
        if let Some(name) = forced_tool {
            return ChatResponse {
                id,
                model: model.to_owned(),
                content: String::new(),
                tool_calls: vec![ToolCall {
                    id: format!("call_{index}"),
                    name,
                    arguments: "{}".to_owned(),
                }],
                finish_reason: FinishReason::ToolCalls,
                usage,
            };
        }
        let content = match req.response_format {
            Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. }) => {
                format!("{{\"simulated\":true,\"tokens\":{output_tokens}}}")
            }
            None | Some(ResponseFormat::Text) => filler_text(self.seed ^ index, output_tokens),
        };
        ChatResponse {
            id,
            model: model.to_owned(),
            content,
            tool_calls: Vec::new(),
            finish_reason: FinishReason::Stop,
            usage,
        }
    }
}

fn simulated_status(class: ErrorClass) -> u16 {
    match class {
        ErrorClass::RateLimited => 429,
        ErrorClass::Overloaded => 503,
        ErrorClass::ServerError
        | ErrorClass::MalformedResponse
        | ErrorClass::ResponseTooLarge
        | ErrorClass::Connection => 500,
        ErrorClass::Timeout(_) => 504,
        ErrorClass::Auth => 401,
        ErrorClass::BadRequest | ErrorClass::ContextLengthExceeded | ErrorClass::ContentPolicy => 400,
    }
}

/// A simulated embedding's length unless the request asks for another.
const SIM_EMBED_DIMENSIONS: u32 = 8;
/// The longest simulated embedding (real models stop near 4k too).
const MAX_SIM_EMBED_DIMENSIONS: u32 = 4096;

/// A unit vector that depends only on `text`: equal texts, equal vectors.
fn sim_vector(text: &str, dims: u32) -> Vec<f32> {
    let seed = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut rng = SplitMix64::new(seed);
    let raw: Vec<f32> = (0..dims)
        .map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        return raw;
    }
    raw.into_iter().map(|x| x / norm).collect()
}

/// Tokens of every text part, as the estimator counts them.
fn request_tokens(req: &ChatRequest) -> u64 {
    req.messages
        .iter()
        .flat_map(|m| m.content.iter())
        .map(|p| match p {
            ContentPart::Text { text } => estimate_tokens(text),
            // A typical tile-based image cost; the simulator needs a number.
            ContentPart::Image { .. } => 765,
        })
        .sum()
}

/// `tokens` words of deterministic filler (each word is one token).
fn filler_text(seed: u64, tokens: u64) -> String {
    const WORDS: [&str; 8] = ["route", "policy", "token", "budget", "model", "answer", "cheap", "fast"];
    let mut rng = SplitMix64::new(seed);
    let mut text = String::with_capacity(tokens as usize * 7);
    for i in 0..tokens {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(WORDS[(rng.next_u64() % WORDS.len() as u64) as usize]);
    }
    text
}

#[async_trait]
impl Provider for SimulatedProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn models(&self) -> &[String] {
        &self.models
    }

    fn capabilities(&self, _model: &str) -> Capabilities {
        Capabilities {
            tools: true,
            json_schema: true,
            vision: true,
            stream: true,
        }
    }

    async fn complete(&self, model: &str, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.call(model, req).await
    }

    async fn embed(&self, model: &str, req: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        self.embed_call(model, req).await
    }

    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let index = self.calls.load(Ordering::Relaxed);
        let response = self.call(model, req).await?;
        let breaks = self.script.is_none() && self.profile.stream_breaks(self.seed, index);
        let mut events = Vec::new();
        // Deltas of a few words, so stream consumers see more than one.
        let mut chunk = String::new();
        for (i, word) in response.content.split_inclusive(' ').enumerate() {
            chunk.push_str(word);
            if i % 8 == 7 {
                events.push(Ok(StreamEvent::TextDelta {
                    text: std::mem::take(&mut chunk),
                }));
            }
        }
        if !chunk.is_empty() {
            events.push(Ok(StreamEvent::TextDelta { text: chunk }));
        }
        for (i, call) in response.tool_calls.into_iter().enumerate() {
            events.push(Ok(StreamEvent::ToolCallDelta {
                index: i as u32,
                id: Some(call.id),
                name: Some(call.name),
                arguments: call.arguments,
            }));
        }
        if breaks {
            // Cut halfway, as a dropped connection cuts a real stream: some
            // text, then an error, never a `Done`.
            events.truncate(events.len().div_ceil(2).max(1));
            events.push(Err(ProviderError::new(
                &self.name,
                ErrorClass::Connection,
                "simulated stream cut off mid-answer",
            )));
            return Ok(Box::pin(futures::stream::iter(events)));
        }
        events.push(Ok(StreamEvent::Usage(response.usage)));
        events.push(Ok(StreamEvent::Done {
            finish_reason: response.finish_reason,
            skipped_events: 0,
        }));
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

#[cfg(test)]
#[path = "simulated_tests.rs"]
mod tests;
