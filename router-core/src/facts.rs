//! Request facts: what the engine knows about one call before it is sent.
//!
//! The hot-path form, [`Facts`], borrows everything from the caller so that
//! building it costs nothing; [`RequestFacts`] is an owned, serde-friendly
//! form for files, the CLI's `--set key=value` and tests.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::policy::Policy;
use crate::provider::{Capabilities, Capability, DataClass};
use crate::route::Feature;
use crate::workload::{Task, WorkloadId};

/// Request metadata the engine can look keys up in (`metadata.team`).
///
/// A trait rather than one map type so callers pass whatever they already
/// hold (a `HashMap`, a `BTreeMap`, a slice of pairs) without copying it.
pub trait Metadata {
    /// The value of `key`, if the request carries it.
    fn get(&self, key: &str) -> Option<&str>;
}

/// No metadata at all.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMetadata;

impl Metadata for NoMetadata {
    fn get(&self, _key: &str) -> Option<&str> {
        None
    }
}

impl Metadata for &[(&str, &str)] {
    fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl<const N: usize> Metadata for [(&str, &str); N] {
    fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl Metadata for Vec<(String, String)> {
    fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl Metadata for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Metadata for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

/// The request features a `when has …` condition tests; a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Features(u8);

impl Features {
    /// No feature.
    pub const NONE: Features = Features(0);

    const fn bit(f: Feature) -> u8 {
        match f {
            Feature::Tools => 1,
            Feature::Images => 2,
            Feature::JsonSchema => 4,
            Feature::Stream => 8,
            Feature::Embedding => 16,
        }
    }

    /// This set with `f` added.
    #[must_use]
    pub const fn with(self, f: Feature) -> Self {
        Features(self.0 | Self::bit(f))
    }

    /// Adds or removes `f`.
    pub fn set(&mut self, f: Feature, on: bool) {
        if on {
            self.0 |= Self::bit(f);
        } else {
            self.0 &= !Self::bit(f);
        }
    }

    /// Whether the request uses `f`.
    pub const fn has(self, f: Feature) -> bool {
        self.0 & Self::bit(f) != 0
    }

    /// The model capabilities these features need: tools → `tools`, images →
    /// `vision`, a JSON schema → `json_schema`, a stream → `stream`, an
    /// embedding call → `embeddings`.
    pub fn required_capabilities(self) -> Capabilities {
        let mut caps = Capabilities::NONE;
        for (f, c) in [
            (Feature::Tools, Capability::Tools),
            (Feature::Images, Capability::Vision),
            (Feature::JsonSchema, Capability::JsonSchema),
            (Feature::Stream, Capability::Stream),
            (Feature::Embedding, Capability::Embeddings),
        ] {
            if self.has(f) {
                caps.insert(c);
            }
        }
        caps
    }
}

/// What the engine knows about one call, borrowed from the caller.
///
/// The workload is resolved by the caller ([`Policy::workload_id`]) so an
/// unknown name is the caller's error, not a routing outcome. Randomness the
/// engine needs (`split by request`, `select weighted`) comes from
/// `request_seed`: the engine has none of its own.
#[derive(Clone, Copy)]
pub struct Facts<'a> {
    /// The workload the call is tagged with.
    pub workload: WorkloadId,
    /// Estimated input (prompt) tokens.
    pub input_tokens: u64,
    /// The output tokens the request asks for, if it says.
    pub max_output_tokens: Option<u64>,
    /// Features the request uses (tools, images, JSON schema, stream).
    pub features: Features,
    /// The task, when the request overrides the workload's.
    pub task: Option<Task>,
    /// Request metadata.
    pub metadata: &'a dyn Metadata,
    /// The caller's user id, the usual split key.
    pub user: Option<&'a str>,
    /// A data class the request declares; it can raise the workload's class,
    /// never lower it.
    pub data: Option<DataClass>,
    /// A caller-chosen random number for this request.
    pub request_seed: u64,
}

impl Facts<'static> {
    /// Facts for a call of `workload` with nothing else known: zero input
    /// tokens, no features, no metadata, no user, seed 0.
    pub fn new(workload: WorkloadId) -> Facts<'static> {
        Facts {
            workload,
            input_tokens: 0,
            max_output_tokens: None,
            features: Features::NONE,
            task: None,
            metadata: &NoMetadata,
            user: None,
            data: None,
            request_seed: 0,
        }
    }
}

impl fmt::Debug for Facts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Facts")
            .field("workload", &self.workload)
            .field("input_tokens", &self.input_tokens)
            .field("max_output_tokens", &self.max_output_tokens)
            .field("features", &self.features)
            .field("task", &self.task)
            .field("user", &self.user)
            .field("data", &self.data)
            .field("request_seed", &self.request_seed)
            .finish_non_exhaustive()
    }
}

/// Request facts as data: what `--request facts.json`, `--set key=value` and
/// the eval corpus hold. Borrow it as [`Facts`] with [`RequestFacts::facts`].
///
/// ```
/// use router_core::RequestFacts;
///
/// let facts: RequestFacts = serde_json::from_str(
///     r#"{"input_tokens": 1200, "user": "alice", "tools": true, "metadata": {"team": "growth"}}"#,
/// ).unwrap();
/// assert_eq!(facts.user.as_deref(), Some("alice"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestFacts {
    /// Estimated input tokens.
    pub input_tokens: u64,
    /// Requested max output tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output: Option<u64>,
    /// The request offers tools.
    #[serde(skip_serializing_if = "is_false")]
    pub tools: bool,
    /// The request contains images.
    #[serde(skip_serializing_if = "is_false")]
    pub images: bool,
    /// The request asks for JSON-schema output.
    #[serde(skip_serializing_if = "is_false")]
    pub json_schema: bool,
    /// The request asks for a stream.
    #[serde(skip_serializing_if = "is_false")]
    pub stream: bool,
    /// The request asks for embeddings (`POST /v1/embeddings`).
    #[serde(skip_serializing_if = "is_false")]
    pub embedding: bool,
    /// A task overriding the workload's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// Metadata key/value pairs.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The caller's user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A declared data class (raises the workload's, never lowers it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<DataClass>,
    /// The per-request random number (`split by request`, `select weighted`).
    #[serde(skip_serializing_if = "is_zero")]
    pub request_seed: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Why a `key=value` fact could not be set.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FactsError {
    /// The key names no fact.
    #[error("unknown fact `{key}`; known facts: {KNOWN_KEYS}")]
    UnknownKey {
        /// The key given.
        key: String,
    },
    /// The value does not parse for the fact's type.
    #[error("fact `{key}` takes {expected}, not `{value}`")]
    BadValue {
        /// The key given.
        key: String,
        /// The value given.
        value: String,
        /// What the fact takes, in words.
        expected: &'static str,
    },
}

const KNOWN_KEYS: &str = "input_tokens, max_output, tools, images, json_schema, stream, task, user, data, \
                          request_seed, metadata.NAME";

impl RequestFacts {
    /// Sets one fact from `key=value` text, as `routec explain --set` does.
    /// Keys mirror the JSON fields; `metadata.NAME` sets a metadata value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), FactsError> {
        let bad = |expected: &'static str| FactsError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            expected,
        };
        let number = || parse_count(value).ok_or_else(|| bad("a whole number (`1200`, `8k`, `1.5M`)"));
        let flag = || match value {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" => Ok(false),
            _ => Err(bad("`true` or `false`")),
        };
        match key {
            "input_tokens" => self.input_tokens = number()?,
            "max_output" | "max_output_tokens" | "max_tokens" => self.max_output = Some(number()?),
            "tools" => self.tools = flag()?,
            "images" => self.images = flag()?,
            "json_schema" => self.json_schema = flag()?,
            "stream" => self.stream = flag()?,
            "embedding" => self.embedding = flag()?,
            "task" => self.task = Some(Task::from_keyword(value).ok_or_else(|| bad("a task keyword (`code`, …)"))?),
            "user" => self.user = Some(value.to_owned()),
            "data" => {
                let class = DataClass::ALL.into_iter().find(|c| c.as_str() == value);
                self.data = Some(class.ok_or_else(|| bad("`public`, `internal` or `private`"))?);
            }
            "request_seed" | "seed" => self.request_seed = value.parse().map_err(|_| bad("a whole number"))?,
            _ => match key.strip_prefix("metadata.") {
                Some(name) if !name.is_empty() => {
                    self.metadata.insert(name.to_owned(), value.to_owned());
                }
                _ => return Err(FactsError::UnknownKey { key: key.to_owned() }),
            },
        }
        Ok(())
    }

    /// The request's features as a set.
    pub fn features(&self) -> Features {
        let mut f = Features::NONE;
        f.set(Feature::Tools, self.tools);
        f.set(Feature::Images, self.images);
        f.set(Feature::JsonSchema, self.json_schema);
        f.set(Feature::Stream, self.stream);
        f.set(Feature::Embedding, self.embedding);
        f
    }

    /// Borrows these facts for a call of `workload`.
    pub fn facts(&self, workload: WorkloadId) -> Facts<'_> {
        Facts {
            workload,
            input_tokens: self.input_tokens,
            max_output_tokens: self.max_output,
            features: self.features(),
            task: self.task,
            metadata: &self.metadata,
            user: self.user.as_deref(),
            data: self.data,
            request_seed: self.request_seed,
        }
    }

    /// Borrows these facts for a call of the workload called `name`; `None`
    /// when the policy has no such workload.
    pub fn facts_for<'a>(&'a self, policy: &Policy, name: &str) -> Option<Facts<'a>> {
        policy.workload_id(name).map(|id| self.facts(id))
    }
}

/// Parses `1200`, `1_200`, `8k`, `1.5M`, `2B` as a whole count.
fn parse_count(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    let (digits, scale) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1_000u64),
        Some((i, 'M')) => (&s[..i], 1_000_000),
        Some((i, 'B')) => (&s[..i], 1_000_000_000),
        _ => (s.as_str(), 1),
    };
    if let Ok(n) = digits.parse::<u64>() {
        return n.checked_mul(scale);
    }
    // A decimal with a suffix (`1.5M`): exact when the fraction fits the scale.
    let (whole, frac) = digits.split_once('.')?;
    if scale == 1 || frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac_n: u64 = frac.parse().ok()?;
    let denom = 10u64.checked_pow(u32::try_from(frac.len()).ok()?)?;
    let frac_scaled = frac_n.checked_mul(scale)?;
    if frac_scaled % denom != 0 {
        return None;
    }
    whole.checked_mul(scale)?.checked_add(frac_scaled / denom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_with_suffixes() {
        assert_eq!(parse_count("1200"), Some(1200));
        assert_eq!(parse_count("1_200"), Some(1200));
        assert_eq!(parse_count("8k"), Some(8000));
        assert_eq!(parse_count("1.5M"), Some(1_500_000));
        assert_eq!(parse_count("0.5k"), Some(500));
        assert_eq!(parse_count("1.2345k"), None);
        assert_eq!(parse_count("lots"), None);
        assert_eq!(parse_count("1.5"), None);
    }

    #[test]
    fn set_mirrors_the_json_fields() {
        let mut f = RequestFacts::default();
        f.set("user", "alice").unwrap();
        f.set("input_tokens", "1.2k").unwrap();
        f.set("tools", "true").unwrap();
        f.set("metadata.team", "growth").unwrap();
        f.set("data", "private").unwrap();
        f.set("task", "code").unwrap();
        let json: RequestFacts = serde_json::from_str(
            r#"{"user":"alice","input_tokens":1200,"tools":true,"metadata":{"team":"growth"},
                "data":"private","task":"code"}"#,
        )
        .unwrap();
        assert_eq!(f, json);
        let facts = f.facts(WorkloadId(0));
        assert_eq!(facts.metadata.get("team"), Some("growth"));
        assert!(facts.features.has(Feature::Tools));
        assert_eq!(
            facts.features.required_capabilities(),
            Capabilities::NONE.with(Capability::Tools)
        );
    }

    #[test]
    fn set_rejects_unknown_keys_and_bad_values() {
        let mut f = RequestFacts::default();
        assert!(matches!(f.set("colour", "red"), Err(FactsError::UnknownKey { .. })));
        assert!(matches!(f.set("metadata.", "x"), Err(FactsError::UnknownKey { .. })));
        let err = f.set("data", "secret").unwrap_err();
        assert_eq!(
            err.to_string(),
            "fact `data` takes `public`, `internal` or `private`, not `secret`"
        );
        assert!(f.set("tools", "maybe").is_err());
    }

    #[test]
    fn metadata_lookups_work_for_every_container() {
        let pairs: &[(&str, &str)] = &[("team", "growth")];
        assert_eq!(Metadata::get(&pairs, "team"), Some("growth"));
        assert_eq!(Metadata::get(&[("team", "growth")], "team"), Some("growth"));
        let owned = vec![("team".to_owned(), "growth".to_owned())];
        assert_eq!(Metadata::get(&owned, "team"), Some("growth"));
        assert_eq!(NoMetadata.get("team"), None);
        let map: HashMap<String, String> = owned.iter().cloned().collect();
        assert_eq!(Metadata::get(&map, "team"), Some("growth"));
        assert_eq!(Metadata::get(&map, "nope"), None);
    }
}
