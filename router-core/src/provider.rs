//! Providers and the targets (a model at a provider) that routes end in.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::failure::FailureSettings;
use crate::origin::Origin;
use crate::units::{Price, opt_duration_ms};

/// How sensitive a request's data is. Ordered: `Public < Internal < Private`.
///
/// A provider declares the highest class it may receive; a workload declares
/// the class of its data. A target is eligible only when
/// `workload.data <= provider.max_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    /// May be sent anywhere.
    Public,
    /// Company-internal; not for providers that keep or train on inputs.
    Internal,
    /// Personal or regulated data (PII); only to providers cleared for it.
    Private,
}

impl DataClass {
    /// Every class, lowest first.
    pub const ALL: [DataClass; 3] = [DataClass::Public, DataClass::Internal, DataClass::Private];

    /// The keyword used in policies.
    pub const fn as_str(self) -> &'static str {
        match self {
            DataClass::Public => "public",
            DataClass::Internal => "internal",
            DataClass::Private => "private",
        }
    }
}

impl fmt::Display for DataClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a provider is paid for. Ordered the way free-tier-first tries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// A free tier: no marginal cost, usually tight rate limits.
    Free,
    /// A flat-rate subscription (e.g. a local subscription CLI).
    Subscription,
    /// Pay per token.
    Paid,
}

impl Tier {
    /// The keyword used in policies.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Subscription => "subscription",
            Tier::Paid => "paid",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a model can do beyond plain text chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Function / tool calling.
    Tools,
    /// Structured output constrained by a JSON schema.
    JsonSchema,
    /// Image inputs.
    Vision,
    /// Server-sent streaming of the response.
    Stream,
    /// Continues a trailing assistant message (a prefill) instead of
    /// answering it anew: what `stream_recovery continue` needs.
    Prefill,
    /// An embedding model: it turns text into vectors and answers
    /// embedding calls only; chat calls never reach it.
    Embeddings,
}

impl Capability {
    /// Every capability, in keyword order.
    pub const ALL: [Capability; 6] = [
        Capability::Tools,
        Capability::JsonSchema,
        Capability::Vision,
        Capability::Stream,
        Capability::Prefill,
        Capability::Embeddings,
    ];

    /// The keyword used in policies.
    pub const fn as_str(self) -> &'static str {
        match self {
            Capability::Tools => "tools",
            Capability::JsonSchema => "json_schema",
            Capability::Vision => "vision",
            Capability::Stream => "stream",
            Capability::Prefill => "prefill",
            Capability::Embeddings => "embeddings",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Capability::Tools => 1,
            Capability::JsonSchema => 2,
            Capability::Vision => 4,
            Capability::Stream => 8,
            Capability::Prefill => 16,
            Capability::Embeddings => 32,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Capability`] values; a bit set so filtering costs one AND.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(u8);

impl Capabilities {
    /// The empty set.
    pub const NONE: Capabilities = Capabilities(0);

    /// This set with `cap` added.
    #[must_use]
    pub const fn with(self, cap: Capability) -> Self {
        Capabilities(self.0 | cap.bit())
    }

    /// Adds `cap` to the set.
    pub fn insert(&mut self, cap: Capability) {
        self.0 |= cap.bit();
    }

    /// Whether `cap` is in the set.
    pub const fn has(self, cap: Capability) -> bool {
        self.0 & cap.bit() != 0
    }

    /// Whether every capability of `needed` is in this set.
    pub const fn covers(self, needed: Capabilities) -> bool {
        self.0 & needed.0 == needed.0
    }

    /// The capabilities of `needed` that this set lacks.
    pub const fn missing(self, needed: Capabilities) -> Capabilities {
        Capabilities(needed.0 & !self.0)
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members, in keyword order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL.into_iter().filter(move |c| self.has(*c))
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut set = Capabilities::NONE;
        for c in iter {
            set.insert(c);
        }
        set
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for c in self.iter() {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            f.write_str(c.as_str())?;
        }
        Ok(())
    }
}

impl Serialize for Capabilities {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Capabilities {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Capability>::deserialize(d)?.into_iter().collect())
    }
}

/// The wire protocol a provider speaks, chosen by `adapter` in the policy.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Adapter {
    /// OpenAI chat completions.
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `generateContent`.
    Gemini,
    /// Any OpenAI-compatible service; `preset` names a known one (groq,
    /// cerebras, openrouter, …) whose base URL and quirks apply.
    OpenaiCompatible {
        /// The preset's name, when the policy used one.
        preset: Option<String>,
    },
    /// A local command (e.g. a subscription CLI) fed the prompt on stdin.
    Cli {
        /// Program and arguments.
        command: Vec<String>,
    },
    /// The built-in simulated provider, for demos, tests and simulation.
    Mock,
}

/// A reference to an API key: the *name* of an environment variable.
///
/// The policy never holds a key; this type holds only where to find one, so
/// printing it is safe.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyRef {
    /// The environment variable the runtime reads the key from.
    pub env: String,
}

/// An extra HTTP header sent with every request to a provider.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// A provider's published limits; the runtime paces calls to stay under them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limits {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
    /// Calls in flight at once.
    pub concurrency: Option<u64>,
}

/// How the simulated provider behaves for a provider or model: used by
/// `adapter mock`, `routec demo` and `routec simulate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SimProfile {
    /// Median latency of a call.
    #[serde(with = "crate::units::duration_ms")]
    pub latency_p50: Duration,
    /// 95th-percentile latency of a call.
    #[serde(with = "crate::units::duration_ms")]
    pub latency_p95: Duration,
    /// Share of calls that fail with a server error, in basis points (1/100 %).
    pub error_bp: u16,
    /// Share of calls answered 429, in basis points.
    pub rate_limit_bp: u16,
    /// Share of streamed answers cut off halfway, in basis points.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stream_break_bp: u16,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

/// Identifies a provider within one [`crate::Policy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProviderId(pub u32);

/// Identifies a target (one model at one provider) within one [`crate::Policy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TargetId(pub u32);

/// A provider block of the policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Provider {
    /// The provider's name in the policy.
    pub name: String,
    /// The wire protocol.
    pub adapter: Adapter,
    /// Overrides the adapter's (or preset's) base URL.
    pub base_url: Option<String>,
    /// Where the API key comes from, if the provider needs one.
    pub key: Option<KeyRef>,
    /// How the provider is paid for.
    pub tier: Tier,
    /// Where the provider processes data (`us`, `eu`, `cn`, `local`, …).
    pub jurisdiction: Option<String>,
    /// The most sensitive data class the provider may receive.
    pub max_data: DataClass,
    /// Whether the provider may train on inputs.
    pub trains_on_inputs: bool,
    /// Whether the provider keeps inputs (when the no-store header is not sent).
    pub stores_inputs: bool,
    /// A header that asks the provider not to store inputs; always sent.
    pub no_store_header: Option<Header>,
    /// Other headers sent with every request.
    pub headers: Vec<Header>,
    /// Published rate and concurrency limits.
    pub limits: Limits,
    /// Default per-attempt timeout for this provider's calls (`timeout d`,
    /// or `timeouts total d`).
    #[serde(with = "opt_duration_ms")]
    pub timeout: Option<Duration>,
    /// Its other failure settings: connect, first-token and idle timeouts
    /// (never `total`, which is `timeout`), breaker, `Retry-After` wait and
    /// cool-down scope; unset ones come from `defaults`.
    #[serde(skip_serializing_if = "FailureSettings::is_unset")]
    pub failure: FailureSettings,
    /// Simulated behaviour for `adapter mock`, demo and simulation.
    pub simulate: Option<SimProfile>,
    /// The targets (models) this provider offers.
    pub targets: Vec<TargetId>,
    /// Where the block is written.
    #[serde(skip)]
    pub origin: Origin,
}

/// A model offered by a provider: what a route ultimately sends a call to.
/// Written `provider/model` in policies.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    /// The provider offering the model.
    pub provider: ProviderId,
    /// The model's name in the policy (the part after `/`).
    pub model: String,
    /// The model id sent upstream (defaults to the name).
    pub api_id: String,
    /// A pinned model version, when the policy gives one.
    pub version: Option<String>,
    /// Price per million tokens; `None` when the policy gives none.
    pub price: Option<Price>,
    /// Context window in tokens.
    pub context_window: Option<u64>,
    /// Maximum output tokens per call.
    pub max_output: Option<u64>,
    /// What the model supports.
    pub capabilities: Capabilities,
    /// Simulated behaviour, overriding the provider's.
    pub simulate: Option<SimProfile>,
    /// Where the model block is written.
    #[serde(skip)]
    pub origin: Origin,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_classes_order_from_public_to_private() {
        assert!(DataClass::Public < DataClass::Internal);
        assert!(DataClass::Internal < DataClass::Private);
    }

    #[test]
    fn tiers_order_free_first() {
        assert!(Tier::Free < Tier::Subscription && Tier::Subscription < Tier::Paid);
    }

    #[test]
    fn capability_sets_cover_and_report_what_is_missing() {
        let model = Capabilities::NONE.with(Capability::Tools).with(Capability::Stream);
        let needs = Capabilities::NONE.with(Capability::Tools).with(Capability::Vision);
        assert!(!model.covers(needs));
        assert_eq!(model.missing(needs), Capabilities::NONE.with(Capability::Vision));
        assert!(model.covers(Capabilities::NONE.with(Capability::Tools)));
        assert_eq!(model.to_string(), "tools, stream");
        let json = serde_json::to_string(&model).unwrap();
        assert_eq!(json, r#"["tools","stream"]"#);
        let back: Capabilities = serde_json::from_str(&json).unwrap();
        assert_eq!(back, model);
    }
}
