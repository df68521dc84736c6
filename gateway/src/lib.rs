//! routec's OpenAI-compatible HTTP gateway: existing clients (the `openai`
//! SDKs, curl, LangChain) route through a policy by changing only their
//! base URL.
//!
//! A request flows: socket → layers (hop-by-hop stripping, access span,
//! panic guard) → auth (the bearer key, hashed and looked up in the keys
//! file, → tenant, pinning one policy generation) → the handler (body read
//! timeout, body limits, JSON depth, OpenAI wire → `Call`) → [`router_runtime::Router`] → provider → OpenAI wire response
//! (or server-sent events) with `x-routec-*` headers. Every error leaves in
//! OpenAI's error shape with a stable code. See `docs/gateway.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use gateway::{Gateway, PolicySource};
//!
//! let gateway = Gateway::builder(PolicySource::Path("examples/policies/demo.route".into()))
//!     .build()
//!     .await?;
//! let _triggers = gateway.reload_triggers(true)?; // SIGHUP and file changes
//! let listener = gateway.bind("127.0.0.1:8080".parse()?, false).await?;
//! gateway.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! **Architecture invariant:** with the CLI, the gateway is the only place
//! errors are rendered and logged. No API key — the client's or a
//! provider's — is ever formatted into a log line, an error body or a
//! header: client keys are hashed on arrival and the header is removed
//! before any handler runs; provider keys never leave `providers`.

mod admin;
mod auth;
mod body;
mod cache;
mod chat;
mod embeddings;
mod error;
mod hop;
mod keys;
mod live;
mod messages;
mod owners;
mod server;
mod trace;
mod watch;

pub use body::Limits;
pub use cache::DEFAULT_CACHE_BYTES;
pub use keys::{KeysError, hash_key};
pub use live::{LoadError, PolicySource, ReloadOutcome};
pub use server::{DEFAULT_KEPT_DECISIONS, Gateway, GatewayBuilder, Running, StartError};
pub use watch::ReloadTriggers;
