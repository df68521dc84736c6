//! Request facts: what the decision engine is told about a call, and the
//! content hash that identifies it for idempotency.
//!
//! Why here and not in the engine: the engine is pure and knows nothing of
//! the chat shape; counting tokens, spotting tools and images, merging
//! metadata and hashing a request are the runtime's reading of a
//! `providers::ChatRequest`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use providers::{ChatRequest, ContentPart, ResponseFormat, estimate_tokens};
use router_core::{DataClass, Facts, Feature, Features, Metadata, RequestFacts, WorkloadId};
use serde_json::Value;

use crate::router::Call;

/// Tokens an image part is assumed to cost (a typical tile-based figure,
/// the same the simulated provider uses).
const IMAGE_TOKENS: u64 = 765;

/// Per-message framing tokens (role markers), as OpenAI's chat format adds.
const MESSAGE_OVERHEAD: u64 = 4;

/// Estimated input tokens of `req`: text and images of every message,
/// tool calls the assistant made, and tool definitions.
pub(crate) fn input_tokens(req: &ChatRequest) -> u64 {
    let mut n = 0u64;
    for m in &req.messages {
        n = n.saturating_add(MESSAGE_OVERHEAD);
        for part in &m.content {
            n = n.saturating_add(match part {
                ContentPart::Text { text } => estimate_tokens(text),
                ContentPart::Image { .. } => IMAGE_TOKENS,
            });
        }
        for call in &m.tool_calls {
            n = n
                .saturating_add(estimate_tokens(&call.name))
                .saturating_add(estimate_tokens(&call.arguments));
        }
    }
    for tool in &req.tools {
        n = n
            .saturating_add(estimate_tokens(&tool.name))
            .saturating_add(tool.description.as_deref().map_or(0, estimate_tokens))
            .saturating_add(estimate_tokens(&tool.parameters.to_string()));
    }
    n
}

/// The features a `when has …` condition and the capability filter see.
pub(crate) fn features(req: &ChatRequest, stream: bool) -> Features {
    let mut f = Features::NONE;
    f.set(Feature::Tools, !req.tools.is_empty());
    f.set(
        Feature::Images,
        req.messages
            .iter()
            .flat_map(|m| &m.content)
            .any(|p| matches!(p, ContentPart::Image { .. })),
    );
    f.set(
        Feature::JsonSchema,
        matches!(req.response_format, Some(ResponseFormat::JsonSchema { .. })),
    );
    f.set(Feature::Stream, stream);
    f
}

/// The facts the engine decides `call` on, for `workload`: `stream` is
/// whether the caller asked for a stream ([`crate::Router::stream`]), `seed`
/// the call's request seed. The one place a call becomes facts; the
/// router and [`Call::request_facts`] both read it.
pub(crate) fn facts_of<'a>(
    call: &'a Call,
    workload: WorkloadId,
    metadata: &'a MergedMetadata<'a>,
    stream: bool,
    seed: u64,
) -> Facts<'a> {
    Facts {
        workload,
        input_tokens: input_tokens(&call.request),
        max_output_tokens: call.request.max_tokens.map(u64::from),
        features: features(&call.request, stream),
        task: None,
        metadata,
        user: call.user.as_deref().or(call.request.user.as_deref()),
        data: call.data_class,
        request_seed: seed,
    }
}

impl Call {
    /// The facts the router decides this call on, as data: estimated input
    /// tokens (`providers::estimate_tokens` over the text, plus framing,
    /// images and tools), the requested max output, tools / images / JSON
    /// schema / stream (the request's `stream` flag, as the gateway reads
    /// it), user, metadata (the call's over the request's) and data class.
    /// The request seed is left at 0: the router draws one per call.
    ///
    /// `routec explain --request` uses it, so an explanation sees the same
    /// facts as the runtime.
    ///
    /// ```
    /// use providers::ChatRequest;
    /// use router_runtime::Call;
    ///
    /// let mut call = Call::new("content_summary", ChatRequest::user("Summarise: routing saves money."));
    /// call.user = Some("alice".into());
    /// let facts = call.request_facts();
    /// assert_eq!(facts.user.as_deref(), Some("alice"));
    /// assert!(facts.input_tokens > 4 && !facts.tools);
    /// ```
    pub fn request_facts(&self) -> RequestFacts {
        let metadata = MergedMetadata::of(self);
        let facts = facts_of(self, WorkloadId(0), &metadata, self.request.stream, 0);
        let has = |f| facts.features.has(f);
        RequestFacts {
            input_tokens: facts.input_tokens,
            max_output: facts.max_output_tokens,
            tools: has(Feature::Tools),
            images: has(Feature::Images),
            json_schema: has(Feature::JsonSchema),
            stream: has(Feature::Stream),
            embedding: has(Feature::Embedding),
            task: facts.task,
            metadata: metadata.to_map(),
            user: facts.user.map(str::to_owned),
            data: facts.data,
            request_seed: facts.request_seed,
        }
    }
}

/// The call's metadata first, then the request's own.
pub(crate) struct MergedMetadata<'a> {
    pub(crate) call: &'a [(String, String)],
    pub(crate) request: &'a BTreeMap<String, String>,
}

impl<'a> MergedMetadata<'a> {
    pub(crate) fn of(call: &'a Call) -> Self {
        MergedMetadata {
            call: &call.metadata,
            request: &call.request.metadata,
        }
    }

    /// Every key with the value [`Metadata::get`] gives it.
    fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = self.request.clone();
        // In reverse, so the first of repeated call keys wins, as in `get`.
        for (k, v) in self.call.iter().rev() {
            map.insert(k.clone(), v.clone());
        }
        map
    }
}

impl Metadata for MergedMetadata<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.call
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .or_else(|| self.request.get(key).map(String::as_str))
    }
}

/// What identifies a call's content for idempotency.
pub(crate) struct HashInput<'a> {
    pub(crate) workload: &'a str,
    pub(crate) request: &'a ChatRequest,
    pub(crate) user: Option<&'a str>,
    pub(crate) metadata: &'a [(String, String)],
    pub(crate) data_class: Option<DataClass>,
    pub(crate) scope: Option<&'a str>,
}

/// xxh3-128 over a canonical serialisation of the normalised call: JSON
/// with object keys sorted at every level, the `stream` flag cleared (a
/// streamed and a whole call of one request are the same call), metadata
/// pairs sorted.
pub(crate) fn content_hash(input: &HashInput<'_>) -> u128 {
    let mut request = serde_json::to_value(input.request).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut request {
        map.remove("stream");
    }
    let mut metadata: Vec<(&str, &str)> = input.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    metadata.sort_unstable();
    let call = serde_json::json!({
        "workload": input.workload,
        "request": request,
        "user": input.user,
        "metadata": metadata,
        "data": input.data_class.map(DataClass::as_str),
        "scope": input.scope,
    });
    let mut text = String::new();
    canonical(&call, &mut text);
    xxhash_rust::xxh3::xxh3_128(text.as_bytes())
}

/// Writes `v` as JSON with object keys in byte order, whatever map type
/// `serde_json` was built with.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}", Value::String(k.clone()));
                out.push(':');
                if let Some(child) = map.get(k) {
                    canonical(child, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            let _ = write!(out, "{v}");
        }
    }
}

#[cfg(test)]
mod tests {
    use providers::{Message, Role, Tool};

    use super::*;

    fn input<'a>(req: &'a ChatRequest, metadata: &'a [(String, String)]) -> HashInput<'a> {
        HashInput {
            workload: "w",
            request: req,
            user: None,
            metadata,
            data_class: None,
            scope: None,
        }
    }

    #[test]
    fn tokens_count_text_images_and_tools() {
        let plain = ChatRequest::user("one two three four");
        let base = input_tokens(&plain);
        assert!(base > MESSAGE_OVERHEAD, "{base}");
        let mut with_image = plain.clone();
        with_image.messages[0].content.push(ContentPart::Image {
            url: "https://example.com/a.png".into(),
            detail: None,
        });
        assert_eq!(input_tokens(&with_image), base + IMAGE_TOKENS);
        let mut with_tool = plain.clone();
        with_tool.tools.push(Tool {
            name: "lookup".into(),
            description: Some("finds things".into()),
            parameters: serde_json::json!({"type": "object"}),
        });
        assert!(input_tokens(&with_tool) > base);
        assert!(features(&with_tool, false).has(Feature::Tools));
        assert!(features(&with_image, true).has(Feature::Images));
        assert!(features(&plain, true).has(Feature::Stream));
        assert!(!features(&plain, false).has(Feature::JsonSchema));
    }

    #[test]
    fn the_hash_ignores_key_order_and_the_stream_flag_but_not_content() {
        let a: ChatRequest = serde_json::from_value(serde_json::json!({
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "response_format": {"type": "json_schema", "name": "s", "schema": {"a": 1, "b": 2}},
        }))
        .unwrap();
        let b: ChatRequest = serde_json::from_value(serde_json::json!({
            "response_format": {"type": "json_schema", "name": "s", "schema": {"b": 2, "a": 1}},
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "stream": true,
        }))
        .unwrap();
        let none: &[(String, String)] = &[];
        assert_eq!(content_hash(&input(&a, none)), content_hash(&input(&b, none)));
        let mut c = a.clone();
        c.messages.push(Message::text(Role::User, "more"));
        assert_ne!(content_hash(&input(&a, none)), content_hash(&input(&c, none)));
        let m1 = [("x".to_owned(), "1".to_owned()), ("y".to_owned(), "2".to_owned())];
        let m2 = [("y".to_owned(), "2".to_owned()), ("x".to_owned(), "1".to_owned())];
        assert_eq!(content_hash(&input(&a, &m1)), content_hash(&input(&a, &m2)));
        assert_ne!(content_hash(&input(&a, &m1)), content_hash(&input(&a, none)));
    }

    #[test]
    fn request_facts_are_the_facts_the_router_decides_on() {
        let mut req = ChatRequest::user("one two three four five");
        req.max_tokens = Some(300);
        req.stream = true;
        req.user = Some("from-request".into());
        req.metadata.insert("team".into(), "infra".into());
        req.metadata.insert("tier".into(), "gold".into());
        req.tools.push(Tool {
            name: "lookup".into(),
            description: None,
            parameters: serde_json::json!({"type": "object"}),
        });
        let mut call = Call::new("w", req);
        call.metadata = vec![
            ("team".to_owned(), "growth".to_owned()),
            ("team".to_owned(), "shadowed".to_owned()),
        ];
        call.data_class = Some(DataClass::Internal);

        let data = call.request_facts();
        let metadata = MergedMetadata::of(&call);
        let live = facts_of(&call, WorkloadId(0), &metadata, true, 0);
        let replayed = data.facts(WorkloadId(0));
        assert_eq!(format!("{live:?}"), format!("{replayed:?}"));
        for key in ["team", "tier", "none"] {
            assert_eq!(live.metadata.get(key), replayed.metadata.get(key), "{key}");
        }
        assert_eq!(data.metadata.get("team").map(String::as_str), Some("growth"));
        assert_eq!(data.input_tokens, input_tokens(&call.request));
        assert!(data.tools && data.stream && !data.images);
        assert_eq!(
            (data.max_output, data.user.as_deref(), data.data),
            (Some(300), Some("from-request"), Some(DataClass::Internal))
        );
        call.user = Some("caller".into());
        assert_eq!(call.request_facts().user.as_deref(), Some("caller"));
    }

    #[test]
    fn call_metadata_wins_over_the_request_s() {
        let call = [("team".to_owned(), "growth".to_owned())];
        let mut request = BTreeMap::new();
        request.insert("team".to_owned(), "infra".to_owned());
        request.insert("tier".to_owned(), "gold".to_owned());
        let m = MergedMetadata {
            call: &call,
            request: &request,
        };
        assert_eq!(m.get("team"), Some("growth"));
        assert_eq!(m.get("tier"), Some("gold"));
        assert_eq!(m.get("none"), None);
    }
}
