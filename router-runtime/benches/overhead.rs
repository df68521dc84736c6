//! The runtime's added cost per call: `Router::complete` against calling
//! the same adapter directly, in the same run.
//!
//! `cargo bench -p router-runtime --bench overhead`. Cases:
//!
//! - in-process: a provider that answers a canned response at once (no
//!   timer: `SimulatedProvider` sleeps even for zero latency, and a tokio
//!   timer tick is ~1 ms, which would hide the router) — direct, through an
//!   unbudgeted workload, and through a budgeted one (memory store: a
//!   status read, a reserve and a commit per call);
//! - loopback HTTP: the OpenAI adapter against `fake-upstream` on
//!   127.0.0.1 — direct, and through the router.
//!
//! After criterion, every case is timed again in interleaved rounds and the
//! per-call medians and ratios to the direct call are printed, so the ratio
//! comes from one run under one load.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    reason = "a benchmark binary: setup failures should stop it loudly"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::Criterion;
use fake_upstream::{FakeUpstream, Flavor};
use policy_lang::{SourceFile, compile};
use providers::{
    AdapterConfig, AdapterKind, ApiKey, Capabilities, ChatRequest, ChatResponse, EventStream, FinishReason, Provider,
    ProviderError, Usage, adapter_for,
};
use router_runtime::{Call, Router};
use tokio::runtime::Runtime;

/// Answers at once with a canned response: the in-process fake.
#[derive(Debug)]
struct Canned(ChatResponse);

#[async_trait]
impl Provider for Canned {
    fn name(&self) -> &str {
        "canned"
    }
    fn models(&self) -> &[String] {
        &[]
    }
    fn capabilities(&self, _model: &str) -> Capabilities {
        Capabilities::default()
    }
    async fn complete(&self, _model: &str, _req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        Ok(self.0.clone())
    }
    async fn stream(&self, _model: &str, _req: &ChatRequest) -> Result<EventStream, ProviderError> {
        Ok(Box::pin(futures::stream::empty()))
    }
}

struct Setup {
    rt: Runtime,
    sim: Arc<dyn Provider>,
    http: Arc<dyn Provider>,
    router: Router,
    _fake: FakeUpstream,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fake = rt.block_on(FakeUpstream::start(Flavor::OpenAi)).unwrap();
    let text = format!(
        r#"
        provider sim {{ adapter mock; tier free; model m {{ price free }} }}
        provider http {{ adapter openai; base_url "{}"; key env("BENCH_KEY"); tier paid
          model m {{ id "gpt-4o-mini"; price $1/M in, $1/M out }} }}
        workload plain {{ data public; route sim/m }}
        workload budgeted {{ data public; max_tokens 100; budget 1000000000000 tokens/day; route sim/m }}
        workload over_http {{ data public; route http/m }}
        "#,
        fake.base_url()
    );
    let policy = compile(&[SourceFile::new("bench.route", text.as_str())])
        .unwrap()
        .into_policy();
    let sim: Arc<dyn Provider> = Arc::new(Canned(ChatResponse {
        id: Some("canned-1".into()),
        model: "m".into(),
        content: "Revenue grew; costs fell; the outlook is steady.".into(),
        tool_calls: Vec::new(),
        finish_reason: FinishReason::Stop,
        usage: Usage {
            input_tokens: 19,
            output_tokens: 10,
            cached_tokens: 0,
        },
    }));
    let mut config = AdapterConfig::new("http");
    config.base_url = Some(fake.base_url());
    config.api_key = ApiKey::new("sk-bench");
    let http = adapter_for(&AdapterKind::OpenAi, config).unwrap();
    let router = rt.block_on(async {
        Router::builder(Arc::new(policy))
            .provider("sim", Arc::clone(&sim))
            .provider("http", Arc::clone(&http))
            .seed(1)
            .build()
            .unwrap()
    });
    Setup {
        rt,
        sim,
        http,
        router,
        _fake: fake,
    }
}

#[derive(Clone, Copy)]
enum Case {
    SimDirect,
    SimRouter,
    SimRouterBudgeted,
    HttpDirect,
    HttpRouter,
}

const CASES: [(Case, &str); 5] = [
    (Case::SimDirect, "in-process: adapter direct (baseline)"),
    (Case::SimRouter, "in-process: router, unbudgeted"),
    (Case::SimRouterBudgeted, "in-process: router, budgeted (memory store)"),
    (Case::HttpDirect, "loopback http: adapter direct (baseline)"),
    (Case::HttpRouter, "loopback http: router, unbudgeted"),
];

/// Runs `iters` calls of `case` inside one `block_on`; returns the time.
fn run(s: &Setup, case: Case, iters: u64) -> Duration {
    let req = ChatRequest::user("Summarise the quarterly report in three bullet points.");
    s.rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            match case {
                Case::SimDirect => drop(black_box(s.sim.complete("m", &req).await.unwrap())),
                Case::HttpDirect => drop(black_box(s.http.complete("gpt-4o-mini", &req).await.unwrap())),
                Case::SimRouter | Case::SimRouterBudgeted | Case::HttpRouter => {
                    let workload = match case {
                        Case::SimRouter => "plain",
                        Case::SimRouterBudgeted => "budgeted",
                        Case::HttpRouter | Case::SimDirect | Case::HttpDirect => "over_http",
                    };
                    let call = Call::new(workload, req.clone());
                    drop(black_box(s.router.complete(call).await.unwrap()));
                }
            }
        }
        start.elapsed()
    })
}

fn bench(c: &mut Criterion, s: &Setup) {
    let mut group = c.benchmark_group("per_call");
    for (case, name) in CASES {
        group.bench_function(name, |b| b.iter_custom(|iters| run(s, case, iters)));
    }
    group.finish();
}

/// Interleaved rounds: the median per-call time of each case, and its
/// ratio to the direct call over the same transport.
fn ratios(s: &Setup) {
    const ROUNDS: usize = 15;
    let per_round = |case: Case| match case {
        Case::HttpDirect | Case::HttpRouter => 300,
        Case::SimDirect | Case::SimRouter | Case::SimRouterBudgeted => 20_000,
    };
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); CASES.len()];
    for _ in 0..ROUNDS {
        for (i, (case, _)) in CASES.iter().enumerate() {
            let n = per_round(*case);
            samples[i].push(run(s, *case, n).as_secs_f64() * 1e6 / n as f64);
        }
    }
    let medians: Vec<f64> = samples
        .iter_mut()
        .map(|v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect();
    eprintln!("\nper-call medians over {ROUNDS} interleaved rounds:");
    for (i, (case, name)) in CASES.iter().enumerate() {
        let base = match case {
            Case::SimDirect | Case::SimRouter | Case::SimRouterBudgeted => medians[0],
            Case::HttpDirect | Case::HttpRouter => medians[3],
        };
        eprintln!(
            "  {name:<45} {:>9.2} µs   {:>6.1}×   (+{:.2} µs)",
            medians[i],
            medians[i] / base,
            medians[i] - base
        );
    }
}

fn main() {
    let s = setup();
    let mut c = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    bench(&mut c, &s);
    c.final_summary();
    ratios(&s);
}
