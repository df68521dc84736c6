//! A reference point for the gateway benchmark: the same HTTP stack as
//! `routec serve` (axum on hyper for the server side, reqwest for the client
//! side, mimalloc, a multi-threaded tokio runtime) doing nothing but passing
//! each request's bytes to one upstream and its answer back. No JSON, no
//! routing, no budgets. What the gateway costs above this is routec's own.
//!
//!   passthrough-proxy --listen 127.0.0.1:0 --upstream http://127.0.0.1:PORT
//!
//! Prints `listening on http://ADDR` on its first stdout line.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Base URL requests are passed to, e.g. `http://127.0.0.1:9000`.
    #[arg(long)]
    upstream: String,
}

#[derive(Clone)]
struct Upstream {
    client: reqwest::Client,
    base: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let upstream = Upstream {
        client: reqwest::Client::new(),
        base: args.upstream.trim_end_matches('/').to_owned(),
    };
    let app = axum::Router::new().fallback(pass).with_state(upstream);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    announce(listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

async fn pass(State(up): State<Upstream>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = up.client.post(format!("{}{path}", up.base)).body(body);
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        request = request.header(header::CONTENT_TYPE, ct.clone());
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
    };
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    match answer.bytes().await {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            if let Some(ct) = content_type {
                response.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            response
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

#[expect(
    clippy::print_stdout,
    reason = "the bound address on stdout is this binary's interface"
)]
fn announce(addr: SocketAddr) {
    use std::io::Write;
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
}
