//! Slow readers must not cost unbounded memory: `routec serve` as a
//! process, streaming from an upstream that sends ~660 KB per answer as
//! fast as it may, to many clients that read nothing. The gateway must
//! stop reading the upstream when a client stops reading, so its memory
//! stays bounded by connections × a small per-stream buffer; the bound is
//! read from the process's own `VmHWM` in `/proc`.
//!
//! The number of clients is `ROUTEC_SLOW_READERS` (default 200; the issue's
//! scenario is 500, which this test also passes, in about twice the time),
//! the answer's size `ROUTEC_SLOW_ANSWER_KB` (default 660).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

mod gateway_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gateway_support::Serve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Bytes of SSE each upstream answer carries (as in the issue's report).
const ANSWER_BYTES: usize = 660 * 1024;

fn answer_bytes() -> usize {
    std::env::var("ROUTEC_SLOW_ANSWER_KB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(ANSWER_BYTES, |kb| kb * 1024)
}

/// What the upstream has done, shared with the test.
#[derive(Default)]
struct Upstream {
    requests: AtomicU64,
    bytes_sent: AtomicU64,
    arrived: Notify,
}

/// An OpenAI-shaped upstream on 127.0.0.1 that answers every request with
/// a ~660 KB event stream, one HTTP chunk per event, written as fast as
/// the gateway takes it (a write waits when the gateway stops reading).
async fn start_upstream(stats: Arc<Upstream>) -> (String, tokio::task::JoinHandle<()>) {
    // A small send buffer (inherited by accepted sockets): what the
    // upstream has sent is then what the gateway has taken, give or take
    // 32 KB, not what this side's kernel holds.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(16 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1024).unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let stats = Arc::clone(&stats);
            tokio::spawn(async move {
                let _ = answer(socket, &stats).await;
            });
        }
    });
    (base, task)
}

async fn answer(mut socket: TcpStream, stats: &Upstream) -> std::io::Result<()> {
    // The request: headers, then `content-length` bytes of body.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let body_start = loop {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..body_start]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    while buf.len() < body_start + length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    stats.requests.fetch_add(1, Ordering::SeqCst);
    stats.arrived.notify_one();

    socket
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        .await?;
    let text = "x".repeat(200);
    let delta = format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":null}}]}}\n\n"
    );
    let framed = format!("{:x}\r\n{delta}\r\n", delta.len());
    let mut sent = 0;
    let total = answer_bytes();
    while sent < total {
        socket.write_all(framed.as_bytes()).await?;
        sent += delta.len();
        stats.bytes_sent.fetch_add(framed.len() as u64, Ordering::Relaxed);
    }
    let last = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":5,\"total_tokens\":10}}\n\ndata: [DONE]\n\n";
    socket
        .write_all(format!("{:x}\r\n{last}\r\n0\r\n\r\n", last.len()).as_bytes())
        .await?;
    Ok(())
}

fn policy(base: &str) -> String {
    format!(
        r#"
provider up {{
  adapter openai_compatible
  base_url "{base}"
  tier paid
  data private
  model m {{
    price $1/M in, $2/M out
    context 128k
    max_output 8k
    supports stream
  }}
}}
workload chat {{
  data public
  max_tokens 1000
  route up/m
}}
"#
    )
}

/// `VmRSS` and `VmHWM` of `pid`, in KB.
fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_slow_readers_keep_the_gateways_memory_bounded() {
    let readers: u64 = std::env::var("ROUTEC_SLOW_READERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let stats = Arc::new(Upstream::default());
    let (upstream, upstream_task) = start_upstream(Arc::clone(&stats)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.route");
    std::fs::write(&path, policy(&upstream)).unwrap();
    let serve = Serve::start("slow-readers", &["--policy", path.to_str().unwrap()], "warn").await;
    let addr = serve.base.trim_start_matches("http://").to_owned();

    // One whole stream first, read to its end: the stream works, and the
    // baseline includes everything a first call allocates for good.
    let whole = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", serve.base))
        .header("content-type", "application/json")
        .body(r#"{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        whole.len() > ANSWER_BYTES / 2,
        "a whole stream passes: {} bytes",
        whole.len()
    );
    assert!(
        whole.ends_with("data: [DONE]\n\n"),
        "{}",
        &whole[whole.len().saturating_sub(300)..]
    );
    let (baseline_kb, _) = memory_kb(serve.pid());
    let sent_before = stats.bytes_sent.load(Ordering::Relaxed);

    // Clients that send their request and then read nothing.
    let body = r#"{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut clients = Vec::new();
    for _ in 0..readers {
        // A small receive buffer: the client's kernel takes little, so
        // what the gateway holds is what is measured.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut socket = socket.connect(addr.parse().unwrap()).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        clients.push(socket);
    }
    let started = Instant::now();
    let all_arrived = tokio::time::timeout(Duration::from_secs(120), async {
        while stats.requests.load(Ordering::SeqCst) < readers + 1 {
            stats.arrived.notified().await;
        }
    })
    .await;
    assert!(
        all_arrived.is_ok(),
        "only {} of {} streams reached the upstream within 120 s",
        stats.requests.load(Ordering::SeqCst) - 1,
        readers
    );
    // Then until the upstream can write no more: the gateway has stopped
    // reading (or has read everything). Sampled, as nothing signals "every
    // write is waiting": a bounded measurement of a steady state, not a
    // wait for an event. What the upstream sent includes what the kernel
    // buffers of the gateway's two sockets hold.
    let mut last = 0;
    let mut stable = 0;
    while stable < 8 {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the upstream was still sending after 180 s ({} bytes): the gateway keeps reading for clients that do not",
            stats.bytes_sent.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = stats.bytes_sent.load(Ordering::Relaxed);
        stable = if now == last { stable + 1 } else { 0 };
        last = now;
    }
    let (rss_kb, hwm_kb) = memory_kb(serve.pid());
    let per_stream_kb = hwm_kb.saturating_sub(baseline_kb) / readers;
    let taken_per_stream_kb = last.saturating_sub(sent_before) / 1024 / readers;
    eprintln!(
        "{readers} slow readers: gateway VmRSS {baseline_kb} KB before, {rss_kb} KB with them, VmHWM {hwm_kb} KB; \
         {per_stream_kb} KB per stream; the upstream sent {taken_per_stream_kb} KB per stream before it had to wait"
    );
    assert!(
        hwm_kb < 100 * 1024,
        "the gateway reached {hwm_kb} KB with {readers} slow readers (limit 100 MB)"
    );
    // The per-stream figure of a debug build on a shared machine moves
    // between ~70 and ~130 KB from run to run (allocator and task-stack
    // granularity); 256 KB still fails the buffering the issue saw (1.2 MB
    // per client), and the whole-answer check below fails any buffering of
    // the upstream's answer.
    assert!(
        per_stream_kb < 256,
        "{per_stream_kb} KB of gateway memory per slow stream (limit 256 KB)"
    );
    assert!(
        (taken_per_stream_kb as usize) < answer_bytes() / 1024,
        "the gateway took the whole answer ({taken_per_stream_kb} KB) for clients that read nothing"
    );
    drop(clients);
    upstream_task.abort();
    drop(serve);
}
