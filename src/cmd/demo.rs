//! `routec demo`: the gateway on a built-in policy of simulated providers,
//! a burst of mixed traffic through it over real loopback HTTP, and what
//! happened, per workload. No keys, no network.
//!
//! The policy is `examples/policies/demo.route`, built in. The traffic
//! follows the brief's mix (35 % Q&A, 25 % code, 20 % summaries, 15 %
//! reasoning, 5 % multilingual). Latencies are wall-clock, measured by the
//! client around each HTTP call: the simulated providers really wait.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::{Gateway, PolicySource};
use router_core::{Policy, Price, Usd};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::exit;

const DEMO_POLICY: &str = include_str!("../../examples/policies/demo.route");

/// Arguments of `routec demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Calls to send
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Calls in flight at once
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seed of the simulated providers and the traffic
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the gateway up afterwards and print how to call it
    #[arg(long)]
    serve: bool,
    /// Address for `--serve` (the burst alone uses a free loopback port)
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

/// The traffic classes: workload, share in percent, prompts.
const MIX: [(&str, u32, &[&str]); 5] = [
    ("demo_qa", 35, QA),
    ("demo_code", 25, CODE),
    ("demo_summary", 20, SUMMARY),
    ("demo_reasoning", 15, REASONING),
    ("demo_translate", 5, TRANSLATE),
];

const QA: &[&str] = &[
    "What is the capital of Australia?",
    "How many bytes are in a kibibyte?",
    "Which HTTP status means too many requests?",
    "What does TTL stand for in DNS?",
];
const CODE: &[&str] = &[
    "Write a Rust function that parses a comma-separated list of integers into a Vec<i64>, returning an error \
     that names the first invalid item. Include unit tests for empty input, whitespace and overflow.",
    "Scaffold an axum 0.8 handler for POST /orders that validates a JSON body with an id, a quantity between 1 \
     and 100 and an optional note, and answers 201 with the stored order or 422 with field errors.",
];
const SUMMARY: &[&str] = &[
    "Summarise for a status page: Between 09:12 and 09:47 UTC, requests to the EU region saw elevated error \
     rates. The cause was a configuration change to the load balancer that halved the connection pool to the \
     database proxies. Requests that could not get a connection waited up to 30 seconds before failing. The \
     change was rolled back at 09:41 and error rates returned to normal by 09:47. No data was lost. We are \
     adding a canary stage for load balancer changes and an alert on connection pool saturation. Customers \
     who saw failed payments during the window can retry them safely; each payment is idempotent. We apologise \
     for the disruption and will publish a full review within five working days, including the timeline, the \
     contributing factors, and the actions we are taking to prevent a recurrence.",
];
const REASONING: &[&str] = &[
    "A warehouse ships 1,200 orders a day. Each picker handles 40 orders an hour; shifts are 8 hours with one \
     hour of breaks. Orders arrive 30 % in the morning, 50 % midday and 20 % in the evening, and must ship within \
     4 hours of arriving. How many pickers are needed per shift window, and what happens to the backlog if one \
     picker calls in sick during the midday peak? Reason step by step and state your assumptions.",
    "Two services each retry failed calls three times with no jitter and a fixed 100 ms delay. Service A calls B, \
     B calls a database that starts timing out. Estimate the load multiplication on the database during the \
     outage, explain the retry storm, and propose a retry policy that bounds it.",
];
const TRANSLATE: &[&str] = &[
    "Translate into French and German: Your order has shipped and will arrive within three working days.",
    "Traduce al inglés y al japonés: El pago se ha procesado correctamente. Gracias por tu compra.",
];

/// What one call came back with.
#[derive(Debug)]
struct Outcome {
    workload: &'static str,
    latency: Duration,
    result: Result<Answered, String>,
}

#[derive(Debug)]
struct Answered {
    target: String,
    attempts: u32,
    input_tokens: u64,
    output_tokens: u64,
}

/// Runs the command and returns its exit code.
pub fn run(args: Args) -> u8 {
    if std::env::var_os("RUST_LOG").is_some() {
        crate::cmd::serve::init_logging(crate::cmd::serve::LogFormat::Text);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::USAGE;
        }
    };
    rt.block_on(demo(args))
}

async fn demo(args: Args) -> u8 {
    let seed = args.seed;
    let source = PolicySource::Text {
        name: "demo.route".into(),
        text: DEMO_POLICY.into(),
    };
    let gateway = match Gateway::builder(source)
        .customize_router(move |b| b.seed(seed))
        .build()
        .await
    {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: the built-in demo policy did not load: {e}");
            return exit::FAILED;
        }
    };
    let policy = Arc::clone(gateway.current_router().policy());
    let addr = if args.serve {
        args.listen
    } else {
        SocketAddr::from(([127, 0, 0, 1], 0))
    };
    let listener = match gateway.bind(addr, false).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let Ok(bound) = listener.local_addr() else {
        eprintln!("error: the listener has no address");
        return exit::USAGE;
    };
    let hash = gateway.policy_hash();
    let running = gateway.spawn(listener);
    let base = format!("http://{bound}");

    let started = Instant::now();
    let outcomes = burst(&base, args.requests, args.concurrency.max(1), seed).await;
    let elapsed = started.elapsed();
    println!(
        "routec demo: {} calls through the gateway at {base} in {:.1} s (policy {hash}, {} at a time)",
        outcomes.len(),
        elapsed.as_secs_f64(),
        args.concurrency.max(1),
    );
    println!("providers are simulated (adapter mock); latencies are wall-clock, measured by the client\n");
    print!("{}", report(&policy, &outcomes));

    if args.serve {
        print_snippets(&base);
        let _ = tokio::signal::ctrl_c().await;
    }
    if let Err(e) = running.shutdown().await {
        eprintln!("error: {e}");
        return exit::FAILED;
    }
    exit::OK
}

/// The i-th call's workload and prompt: the mix, interleaved by a seeded
/// shuffle so classes arrive mixed, as they would.
fn plan(n: usize, seed: u64) -> Vec<(&'static str, &'static str)> {
    let mut calls = Vec::with_capacity(n);
    let mut remainders: Vec<(usize, u64)> = Vec::new();
    let mut assigned = 0;
    for (i, (_, share, _)) in MIX.iter().enumerate() {
        let exact = n as u64 * u64::from(*share);
        let count = usize::try_from(exact / 100).unwrap_or(0);
        assigned += count;
        remainders.push((i, exact % 100));
        calls.extend(std::iter::repeat_n(i, count));
    }
    // Largest remainders first, so the counts add up to `n`.
    remainders.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (i, _) in remainders.iter().cycle().take(n.saturating_sub(assigned)) {
        calls.push(*i);
    }
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    for i in (1..calls.len()).rev() {
        state = splitmix(state);
        let j = usize::try_from(state % (i as u64 + 1)).unwrap_or(0);
        calls.swap(i, j);
    }
    calls
        .into_iter()
        .enumerate()
        .map(|(k, i)| {
            let (workload, _, prompts) = MIX[i];
            (workload, prompts[k % prompts.len()])
        })
        .collect()
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn burst(base: &str, n: usize, concurrency: usize, seed: u64) -> Vec<Outcome> {
    let client = reqwest::Client::new();
    let url = format!("{base}/v1/chat/completions");
    let permits = Arc::new(Semaphore::new(concurrency));
    let bar = std::io::stderr().is_terminal().then(|| progress_bar(n as u64));
    let mut tasks = Vec::with_capacity(n);
    for (i, (workload, prompt)) in plan(n, seed).into_iter().enumerate() {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let (client, url, bar) = (client.clone(), url.clone(), bar.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({
                "model": workload,
                "messages": [{"role": "user", "content": prompt}],
                "user": format!("user-{}", i % 17),
            });
            let started = Instant::now();
            let result = call(&client, &url, &body).await;
            let outcome = Outcome {
                workload,
                latency: started.elapsed(),
                result,
            };
            if let Some(bar) = bar {
                bar.inc(1);
            }
            drop(permit);
            outcome
        }));
    }
    let mut outcomes = Vec::with_capacity(n);
    for t in tasks {
        if let Ok(o) = t.await {
            outcomes.push(o);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    outcomes
}

async fn call(client: &reqwest::Client, url: &str, body: &Value) -> Result<Answered, String> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("transport: {e}"))?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let target = header("x-routec-target");
    let attempts = header("x-routec-attempts").and_then(|a| a.parse().ok()).unwrap_or(1);
    let ok = response.status().is_success();
    let bytes = response.bytes().await.map_err(|e| format!("body: {e}"))?;
    let json: Value = serde_json::from_slice(&bytes).map_err(|e| format!("body: {e}"))?;
    if !ok {
        return Err(json["error"]["code"].as_str().unwrap_or("error").to_owned());
    }
    Ok(Answered {
        target: target.unwrap_or_default(),
        attempts,
        input_tokens: json["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
        output_tokens: json["usage"]["completion_tokens"].as_u64().unwrap_or(0),
    })
}

fn progress_bar(len: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} calls")
    {
        bar.set_style(style);
    }
    bar
}

/// Prices by `provider/model`, and the frontier: the model with the
/// highest output price, which "everything to the frontier" would use.
fn prices(policy: &Policy) -> (BTreeMap<String, Price>, Option<(String, Price)>) {
    let mut map = BTreeMap::new();
    for t in &policy.targets {
        if let Some(price) = t.price {
            map.insert(format!("{}/{}", policy.provider(t.provider).name, t.model), price);
        }
    }
    // The first of equally priced models, in policy order.
    let mut frontier: Option<(String, Price)> = None;
    for t in &policy.targets {
        let Some(price) = t.price else { continue };
        let beats = frontier.as_ref().is_none_or(|(_, best)| {
            (price.output_per_mtok, price.input_per_mtok) > (best.output_per_mtok, best.input_per_mtok)
        });
        if beats {
            frontier = Some((format!("{}/{}", policy.provider(t.provider).name, t.model), price));
        }
    }
    (map, frontier)
}

#[derive(Default)]
struct Row {
    calls: usize,
    answered: usize,
    fallbacks: usize,
    halts: usize,
    errors: usize,
    latencies: Vec<Duration>,
    cost: Usd,
    frontier: Usd,
    targets: BTreeMap<String, usize>,
    error_codes: BTreeMap<String, usize>,
}

fn report(policy: &Policy, outcomes: &[Outcome]) -> String {
    let (price_of, frontier) = prices(policy);
    let mut rows: BTreeMap<&str, Row> = MIX.iter().map(|(w, _, _)| (*w, Row::default())).collect();
    for o in outcomes {
        let row = rows.entry(o.workload).or_default();
        row.calls += 1;
        match &o.result {
            Ok(a) => {
                row.answered += 1;
                row.latencies.push(o.latency);
                if a.attempts > 1 {
                    row.fallbacks += 1;
                }
                if let Some(p) = price_of.get(&a.target) {
                    row.cost += p.cost(a.input_tokens, a.output_tokens);
                }
                if let Some((_, p)) = &frontier {
                    row.frontier += p.cost(a.input_tokens, a.output_tokens);
                }
                *row.targets.entry(a.target.clone()).or_default() += 1;
            }
            Err(code) if code.starts_with("budget") => row.halts += 1,
            Err(code) => {
                row.errors += 1;
                *row.error_codes.entry(code.clone()).or_default() += 1;
            }
        }
    }
    let mut out = String::new();
    out.push_str(&format!(
        "{:<16} {:>5} {:>6} {:>9} {:>6} {:>6} {:>8} {:>8} {:>10} {:>12} {:>6}\n",
        "workload", "calls", "ok", "fallback", "halted", "errors", "p50", "p95", "cost", "all-frontier", "saved"
    ));
    let mut total = Row::default();
    for (name, row) in &rows {
        out.push_str(&format!(
            "{:<16} {:>5} {:>6} {:>9} {:>6} {:>6} {:>8} {:>8} {:>10} {:>12} {:>6}\n",
            name,
            row.calls,
            row.answered,
            row.fallbacks,
            row.halts,
            row.errors,
            millis(percentile(&row.latencies, 50)),
            millis(percentile(&row.latencies, 95)),
            dollars(row.cost),
            dollars(row.frontier),
            saved(row.cost, row.frontier),
        ));
        total.calls += row.calls;
        total.answered += row.answered;
        total.fallbacks += row.fallbacks;
        total.halts += row.halts;
        total.errors += row.errors;
        total.latencies.extend(&row.latencies);
        total.cost += row.cost;
        total.frontier += row.frontier;
    }
    out.push_str(&format!(
        "{:<16} {:>5} {:>6} {:>9} {:>6} {:>6} {:>8} {:>8} {:>10} {:>12} {:>6}\n\n",
        "total",
        total.calls,
        total.answered,
        total.fallbacks,
        total.halts,
        total.errors,
        millis(percentile(&total.latencies, 50)),
        millis(percentile(&total.latencies, 95)),
        dollars(total.cost),
        dollars(total.frontier),
        saved(total.cost, total.frontier),
    ));
    out.push_str("targets chosen\n");
    for (name, row) in &rows {
        let parts: Vec<String> = row.targets.iter().map(|(t, n)| format!("{t} {n}")).collect();
        out.push_str(&format!("  {:<16} {}\n", name, parts.join(", ")));
    }
    let errors: Vec<String> = rows
        .iter()
        .flat_map(|(w, r)| r.error_codes.iter().map(move |(c, n)| format!("{w}: {c} {n}")))
        .collect();
    if !errors.is_empty() {
        out.push_str(&format!("errors\n  {}\n", errors.join(", ")));
    }
    if let Some((name, _)) = &frontier {
        out.push_str(&format!(
            "\nall-frontier: the same calls, same tokens, priced at {name}; \
             fallback: answered after a failed attempt; halted: refused by a budget\n"
        ));
    }
    out
}

fn percentile(samples: &[Duration], p: usize) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted.get(rank - 1).copied()
}

fn millis(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{} ms", d.as_millis()))
}

fn dollars(usd: Usd) -> String {
    format!("${:.4}", usd.as_dollars_f64())
}

fn saved(cost: Usd, frontier: Usd) -> String {
    if frontier.nanos() == 0 {
        return "-".to_owned();
    }
    let share = 100.0 * (1.0 - cost.as_dollars_f64() / frontier.as_dollars_f64());
    format!("{share:.0} %")
}

fn print_snippets(base: &str) {
    println!("\nthe gateway stays up at {base} (Ctrl-C to stop). Try:\n");
    println!(
        "curl -s {base}/v1/chat/completions -H 'Content-Type: application/json' \\\n  \
         -d '{{\"model\": \"demo_qa\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}' -i\n"
    );
    println!(
        "curl -s {base}/v1/embeddings -H 'Content-Type: application/json' \\\n  \
         -d '{{\"model\": \"demo_embed\", \"input\": [\"routing saves money\"]}}'\n"
    );
    println!(
        "python3 - <<'EOF'\nfrom openai import OpenAI\nclient = OpenAI(base_url=\"{base}/v1\", api_key=\"open\")\n\
         r = client.chat.completions.with_raw_response.create(\n    model=\"gpt-4o-mini\",  # an alias of demo_qa\n    \
         messages=[{{\"role\": \"user\", \"content\": \"Hello\"}}])\n\
         print(r.headers[\"x-routec-target\"], r.parse().choices[0].message.content)\nEOF\n"
    );
    println!("models: {base}/v1/models · budgets: {base}/v1/routec/budgets · metrics: {base}/metrics");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_follows_the_mix_exactly() {
        let calls = plan(200, 7);
        assert_eq!(calls.len(), 200);
        let count = |w: &str| calls.iter().filter(|(c, _)| *c == w).count();
        assert_eq!(
            [
                count("demo_qa"),
                count("demo_code"),
                count("demo_summary"),
                count("demo_reasoning"),
                count("demo_translate")
            ],
            [70, 50, 40, 30, 10]
        );
        assert_eq!(plan(7, 1).len(), 7);
        assert_eq!(plan(200, 7), calls, "seeded");
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&ms, 95), Some(Duration::from_millis(95)));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn the_built_in_policy_checks_clean() {
        let compiled = policy_lang::compile(&[policy_lang::SourceFile::new("demo.route", DEMO_POLICY)]).unwrap();
        assert!(compiled.report().is_clean());
    }
}
