//! Transport behaviour that needs a hand-made socket rather than the fake:
//! a connect that never completes, and cancellation closing the connection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use providers::{AdapterConfig, AdapterKind, ApiKey, ChatRequest, ErrorClass, TimeoutKind, Timeouts, adapter_for};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

fn config(base_url: String) -> AdapterConfig {
    let mut config = AdapterConfig::new("t");
    config.base_url = Some(base_url);
    config.api_key = ApiKey::new("sk-CANARY-transport");
    config.timeouts = Timeouts {
        connect: Duration::from_millis(200),
        first_byte: Duration::from_secs(5),
        idle: Duration::from_secs(5),
        total: None,
    };
    config
}

#[tokio::test]
async fn a_connect_that_never_completes_is_a_connect_timeout() {
    // A listener that never accepts, with the smallest backlog: once its
    // queue is full the kernel drops further SYNs, so connects hang.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    let mut full = false;
    for _ in 0..64 {
        match tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(e)) => panic!("connect failed: {e}"),
            Err(_) => {
                full = true;
                break;
            }
        }
    }
    assert!(full, "backlog never filled");
    let p = adapter_for(&AdapterKind::OpenAi, config(format!("http://{addr}/v1"))).unwrap();
    let e = p.complete("m", &ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Timeout(TimeoutKind::Connect), "{e}");
    assert!(!format!("{e:?}").contains("CANARY"));
    drop(listener);
}

#[tokio::test]
async fn dropping_the_call_closes_the_upstream_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let p = adapter_for(&AdapterKind::Anthropic, config(format!("http://{addr}"))).unwrap();
    let call = tokio::spawn(async move { p.complete("m", &ChatRequest::user("hi")).await });
    let (mut conn, _) = listener.accept().await.unwrap();
    // Read until the request's body has arrived: the call is now in flight.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..64 {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "client closed early");
        seen.extend_from_slice(&buf[..n]);
        if seen.ends_with(b"}") {
            break;
        }
    }
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    // The client's side closes: the server reads end-of-file.
    let n = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut buf))
        .await
        .expect("connection left open")
        .unwrap();
    assert_eq!(n, 0);
}
