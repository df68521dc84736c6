//! Embedding the router in a small service: build it from a policy, route
//! whole and streamed calls, read where each went, and handle a refusal.
//!
//! `cargo run --example embed` — simulated providers only: no keys, no network.

#![allow(clippy::print_stdout, reason = "an example shows its results")]

use std::sync::Arc;

use futures::StreamExt;
use policy_lang::{SourceFile, compile};
use providers::{ChatRequest, StreamEvent};
use router_core::DataClass;
use router_runtime::{Call, RouteError, Router};

/// A service that summarises texts through the router. It holds a
/// `Router` (an `Arc` inside), so it is cheap to clone into handlers.
#[derive(Clone)]
struct Summaries {
    router: Router,
}

impl Summaries {
    /// One summary, with where it came from.
    async fn summarise(&self, user: &str, text: &str) -> Result<String, RouteError> {
        let mut call = Call::new("summary", ChatRequest::user(format!("Summarise: {text}")));
        call.user = Some(user.to_owned());
        let answer = self.router.complete(call).await?;
        Ok(format!(
            "{} words from {} after {} attempt(s), decision {}",
            answer.value.content.split_whitespace().count(),
            answer.target,
            answer.attempts,
            answer.decision_id
        ))
    }

    /// A summary as it is generated.
    async fn summarise_streaming(&self, text: &str) -> Result<String, RouteError> {
        let call = Call::new("summary", ChatRequest::user(format!("Summarise: {text}")));
        let routed = self.router.stream(call).await?;
        println!("streaming from {}:", routed.target);
        let mut events = routed.value;
        let mut text = String::new();
        while let Some(event) = events.next().await {
            // After the first event a broken stream is an error item, never
            // a silently shorter answer.
            match event? {
                StreamEvent::TextDelta { text: delta } => text.push_str(&delta),
                StreamEvent::Usage(u) => println!("  usage: {} in, {} out", u.input_tokens, u.output_tokens),
                StreamEvent::Done { finish_reason, .. } => println!("  done: {finish_reason:?}"),
                StreamEvent::ToolCallDelta { .. } => {}
            }
        }
        Ok(text)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let source = SourceFile::new("examples/embed/policy.route", include_str!("policy.route"));
    let policy = compile(&[source]).map_err(|report| format!("the policy does not compile: {report:?}"))?;
    // Default stores: budgets in memory (use `.budget_store(...)` for SQLite
    // or Redis); a fixed seed so the simulated providers repeat themselves.
    let router = Router::builder(Arc::new(policy.into_policy())).seed(42).build()?;
    let service = Summaries { router: router.clone() };

    // Concurrent calls: the flaky free tier answers most, the paid one the rest.
    let users = ["ada", "grace", "edsger", "barbara", "ken", "dennis"];
    let calls = users.map(|user| {
        let service = service.clone();
        tokio::spawn(async move { (user, service.summarise(user, "the quarterly report").await) })
    });
    for call in calls {
        match call.await? {
            (user, Ok(line)) => println!("{user}: {line}"),
            (user, Err(e)) => println!("{user}: failed with {} ({}): {e}", e.code(), e.http_status()),
        }
    }

    let streamed = service.summarise_streaming("the incident review").await?;
    println!("  {} characters streamed", streamed.len());

    // A refusal: private data for a workload whose only provider may not see it.
    let mut call = Call::new("public_only", ChatRequest::user("my medical record …"));
    call.data_class = Some(DataClass::Private);
    match router.complete(call).await {
        Ok(answer) => println!("unexpectedly answered by {}", answer.target),
        Err(e) => {
            println!("refused: {} → HTTP {}: {e}", e.code(), e.http_status());
            if let Some(id) = e.decision_id()
                && let Some(record) = router.decision(&id)
            {
                println!("why:\n{}", record.render(router.policy()));
            }
        }
    }

    let metrics = router.metrics().render();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("routec_attempts_total") || l.starts_with("routec_cost_usd_total"))
    {
        println!("{line}");
    }
    Ok(())
}
