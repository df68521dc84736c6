//! Helpers for the router's end-to-end tests: policies pointing at fake
//! upstreams on 127.0.0.1, a provider wrapper that says when a call has
//! started, and budget readings.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fake_upstream::FakeUpstream;
use policy_lang::{SourceFile, compile};
use providers::{Capabilities, ChatRequest, ChatResponse, EventStream, Provider, ProviderError};
use router_core::Policy;
use router_runtime::{Call, Router, RouterBuilder};
use tokio::sync::Notify;

/// The key the fakes are called with.
pub const KEY: &str = "sk-test-key";

/// Compiles policy text, failing the test with the report.
pub fn policy(text: &str) -> Arc<Policy> {
    match compile(&[SourceFile::new("test.route", text)]) {
        Ok(c) => Arc::new(c.into_policy()),
        Err(report) => panic!("policy does not compile: {report:?}\n{text}"),
    }
}

/// A paid OpenAI provider block served by `fake` (model `m`, $1/M in and out).
pub fn openai(name: &str, fake: &FakeUpstream, extra: &str) -> String {
    format!(
        r#"provider {name} {{
             adapter openai; base_url "{}"; key env("FAKE_KEY"); tier paid; data private
             {extra}
             model m {{ id "gpt-4o-mini"; price $1/M in, $1/M out; supports stream, json_schema }}
           }}
        "#,
        fake.base_url()
    )
}

/// A router over `text` with the fakes' key, a fixed seed and short backoffs.
pub fn router(text: &str) -> RouterBuilder {
    Router::builder(policy(text))
        .env_vars([("FAKE_KEY", KEY)])
        .seed(11)
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
}

/// A one-message call.
pub fn ask(workload: &str) -> Call {
    Call::new(workload, ChatRequest::user("hi"))
}

/// Committed and reserved tokens of `workload`'s token limit, once every
/// background settlement has landed.
pub async fn tokens(router: &Router, workload: &str) -> (u64, u64) {
    router.settled().await;
    let status = router.ledger().status().await.unwrap();
    let w = status
        .iter()
        .find(|s| s.workload == workload)
        .unwrap_or_else(|| panic!("no workload {workload}"));
    let l = w.limits.iter().find(|l| !l.limit.is_usd()).expect("a token limit");
    (l.committed, l.reserved)
}

/// What one attempt at `workload`'s first target reserves, read from the
/// decision of one call on a separate router over the same policy text
/// (so the test does not restate the runtime's token estimate).
pub async fn estimate_of(text: &str, workload: &str) -> u64 {
    let r = router(text).build().unwrap();
    let done = r.complete(ask(workload)).await.unwrap();
    let record = r.decision(&done.decision_id).unwrap();
    record.decision().plan().attempts()[0].estimate.tokens
}

/// Wraps an adapter and notifies when a call has entered it.
#[derive(Debug)]
pub struct Entered {
    pub inner: Arc<dyn Provider>,
    pub entered: Arc<Notify>,
}

#[async_trait]
impl Provider for Entered {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn models(&self) -> &[String] {
        self.inner.models()
    }
    fn capabilities(&self, model: &str) -> Capabilities {
        self.inner.capabilities(model)
    }
    async fn complete(&self, model: &str, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.entered.notify_one();
        self.inner.complete(model, req).await
    }
    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        self.entered.notify_one();
        self.inner.stream(model, req).await
    }
}

/// The OpenAI adapter for `fake`, built directly.
pub fn openai_adapter(name: &str, fake: &FakeUpstream) -> Arc<dyn Provider> {
    let mut config = providers::AdapterConfig::new(name);
    config.base_url = Some(fake.base_url());
    config.api_key = providers::ApiKey::new(KEY);
    providers::adapter_for(&providers::AdapterKind::OpenAi, config).unwrap()
}
