//! `routec serve`: the OpenAI-compatible gateway over a policy.
//!
//! The edge: parses flags, sets up logging (stderr, `RUST_LOG`), opens the
//! budget store, and hands everything else to the `gateway` crate. The
//! first stdout line is `listening on http://ADDR`, so a script (or a test)
//! that passes `--listen 127.0.0.1:0` learns the port.

use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gateway::{Gateway, Limits, LoadError, PolicySource, StartError, hash_key};
use router_runtime::{HealthConfig, SharedState, store_from_url};

use crate::exit;

/// The allocator of the whole `routec` binary, declared here because the
/// gateway is what needs it: a call through it allocates and frees ~150
/// small objects (hyper, reqwest, serde, the router), and with glibc's
/// malloc that was a fifth of the gateway's CPU. mimalloc cut the
/// gateway's user CPU per call by about a quarter (see
/// `docs/performance.md`, "Gateway"); the other commands only get faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Arguments of `routec serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The policy: a `.route` file or a directory of them (reloaded on SIGHUP and on change)
    #[arg(long, required_unless_present_any = ["hash_key", "new_key"])]
    policy: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free one (printed on the first stdout line)
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Serve /metrics on this address only (one only the scraper reaches), not beside the API
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Virtual keys file (TOML, key hashes per tenant); without it the gateway runs open
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Listen on a non-loopback address without a keys file (anyone who reaches it can spend your budget)
    #[arg(long)]
    allow_open: bool,
    /// The budget store: `memory:`, `sqlite:/path/file.db` or `redis://host:port/db`
    #[arg(long, default_value = "memory:")]
    budget_store: String,
    /// How many `routec serve` instances share a `redis://` budget store: each provider limit falls back to limit / N per instance while Redis cannot be reached
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    instances: u32,
    /// The in-memory response cache's bound, in bytes (workloads with `cache D`; with a `redis://` budget store the cache is kept there instead)
    #[arg(long, default_value_t = gateway::DEFAULT_CACHE_BYTES)]
    response_cache_bytes: u64,
    /// The largest request body accepted, in bytes
    #[arg(long, default_value_t = Limits::default().body_bytes)]
    max_body_bytes: usize,
    /// The deepest JSON nesting accepted
    #[arg(long, default_value_t = Limits::default().json_depth)]
    max_json_depth: usize,
    /// Recent decisions kept for /v1/routec/decisions/{id} (about 3 KB of memory each, 15 minutes at most)
    #[arg(long, default_value_t = gateway::DEFAULT_KEPT_DECISIONS)]
    keep_decisions: usize,
    /// Seconds to let requests in flight finish at shutdown
    #[arg(long, default_value_t = 30)]
    drain_timeout: u64,
    /// Do not watch the policy and keys files (SIGHUP still reloads)
    #[arg(long)]
    no_watch: bool,
    /// Log format on stderr
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Never eject a failing target (failures still fall through the plan)
    #[arg(long)]
    no_breaker: bool,
    /// Consecutive failures (5xx, overloaded, timeouts, resets) that eject a target
    #[arg(long, default_value_t = HealthConfig::default().failure_threshold)]
    breaker_failures: u32,
    /// Seconds of the first ejection; each failed half-open probe doubles it
    #[arg(long, default_value_t = HealthConfig::default().base_ejection.as_secs())]
    breaker_eject_secs: u64,
    /// The longest ejection, in seconds: a recovered target serves again within this
    #[arg(long, default_value_t = HealthConfig::default().max_ejection.as_secs())]
    breaker_max_eject_secs: u64,
    /// The longest Retry-After, in milliseconds, waited out before retrying the same target
    #[arg(long, default_value_t = 2_000)]
    retry_after_wait_ms: u64,
    /// Retry a timed-out attempt on the same target (within the route's `retry N`)
    #[arg(long)]
    retry_timeouts: bool,
    /// Export traces (a span per request and per attempt) over OTLP/HTTP to this collector, e.g. `http://127.0.0.1:4318`
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// Read a key from stdin and print the `sha256:` hash to put in a keys file, then exit
    #[arg(long, conflicts_with = "new_key")]
    hash_key: bool,
    /// Print a new random key and its hash, then exit
    #[arg(long)]
    new_key: bool,
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Runs the command and returns its exit code.
pub fn run(args: Args) -> u8 {
    if args.hash_key {
        return print_hash();
    }
    if args.new_key {
        return print_new_key();
    }
    init_logging(args.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::USAGE;
        }
    };
    rt.block_on(serve(args))
}

async fn serve(args: Args) -> u8 {
    let Some(policy) = args.policy else {
        eprintln!("error: --policy is required");
        return exit::USAGE;
    };
    let store = match store_from_url(&args.budget_store).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: budget store: {e}");
            return exit::USAGE;
        }
    };
    let mut builder = Gateway::builder(PolicySource::Path(policy))
        .budget_store(store)
        .limits(Limits {
            body_bytes: args.max_body_bytes,
            json_depth: args.max_json_depth,
        })
        .drain_timeout(Duration::from_secs(args.drain_timeout))
        .keep_decisions(args.keep_decisions, Duration::from_secs(15 * 60))
        .response_cache_bytes(args.response_cache_bytes);
    if args.budget_store.starts_with("redis://") || args.budget_store.starts_with("rediss://") {
        builder = builder.response_cache_redis(args.budget_store.clone());
        builder = builder.idempotency_redis(args.budget_store.clone());
    }
    if let Some(keys) = &args.keys {
        builder = builder.keys_file(keys);
    }
    if let Some(endpoint) = &args.otlp_endpoint {
        builder = builder.otlp_endpoint(endpoint);
    }
    if args.metrics_listen.is_some() {
        builder = builder.metrics_apart();
    }
    let health = HealthConfig {
        breaker: !args.no_breaker,
        failure_threshold: args.breaker_failures.max(1),
        base_ejection: Duration::from_secs(args.breaker_eject_secs),
        max_ejection: Duration::from_secs(args.breaker_max_eject_secs.max(args.breaker_eject_secs)),
        ..HealthConfig::default()
    };
    let retry_after_wait = Duration::from_millis(args.retry_after_wait_ms);
    let retry_timeouts = args.retry_timeouts;
    // With a Redis budget store, provider limits, cool-downs and ejections
    // are shared through the same Redis (one Redis, named once).
    let shared = if args.budget_store.starts_with("redis://") || args.budget_store.starts_with("rediss://") {
        match SharedState::connect(&args.budget_store, args.instances).await {
            Ok(s) => Some(Arc::new(s)),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::USAGE;
            }
        }
    } else {
        None
    };
    builder = builder.customize_router(move |b| {
        let b = b
            .health(health)
            .retry_after_wait(retry_after_wait)
            .retry_timeouts(retry_timeouts);
        match &shared {
            Some(s) => b.shared_state(Arc::clone(s)),
            None => b,
        }
    });
    let gateway = match builder.build().await {
        Ok(g) => g,
        Err(StartError::Load(LoadError::Policy { rendered })) => {
            eprintln!("{rendered}");
            eprintln!("error: the policy failed `routec check`; not serving");
            return exit::FAILED;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    };
    let listener = match gateway.bind(args.listen, args.allow_open).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let triggers = match gateway.reload_triggers(!args.no_watch) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let metrics = match args.metrics_listen {
        None => None,
        Some(at) => match tokio::net::TcpListener::bind(at).await {
            Ok(l) => {
                let bound = l.local_addr().map_or_else(|_| at.to_string(), |a| a.to_string());
                tracing::info!(addr = %bound, "routec serve: /metrics listening");
                Some(tokio::spawn(gateway.serve_metrics(l)))
            }
            Err(e) => {
                eprintln!("error: cannot listen on {at} for /metrics: {e}");
                return exit::USAGE;
            }
        },
    };
    let addr = listener
        .local_addr()
        .map_or_else(|_| args.listen.to_string(), |a| a.to_string());
    tracing::info!(
        addr = %addr,
        policy_hash = %gateway.policy_hash(),
        mode = if gateway.is_open() { "open (no keys file)" } else { "virtual keys" },
        "routec serve: listening"
    );
    println!("listening on http://{addr}");
    // Scripts read this line through a pipe, which is block-buffered.
    let _ = std::io::stdout().flush();
    let result = gateway.serve(listener, shutdown_signal()).await;
    drop(triggers);
    if let Some(task) = metrics {
        task.abort();
    }
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILED
        }
    }
}

/// Ctrl-C, or SIGTERM (what process managers send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Logs to stderr, `info` unless `RUST_LOG` says otherwise.
pub(crate) fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn print_hash() -> u8 {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("error: cannot read the key from stdin: {e}");
        return exit::USAGE;
    }
    // `echo KEY |` adds a newline that is not part of the key.
    let key = input.trim_end_matches(['\n', '\r']);
    if key.is_empty() {
        eprintln!("error: no key on stdin (try: echo -n \"$KEY\" | routec serve --hash-key)");
        return exit::USAGE;
    }
    println!("{}", hash_key(key));
    exit::OK
}

fn print_new_key() -> u8 {
    let mut bytes = [0u8; 24];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if let Err(e) = read {
        eprintln!("error: no source of randomness: {e}");
        return exit::USAGE;
    }
    let key: String = std::iter::once("rk-".to_owned())
        .chain(bytes.iter().map(|b| format!("{b:02x}")))
        .collect();
    println!("key:  {key}");
    println!("hash: {}", hash_key(&key));
    eprintln!("give the key to the client; put the hash in the keys file");
    exit::OK
}
