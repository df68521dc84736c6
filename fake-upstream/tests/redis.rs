//! The `redis-server` harness: ready when started, gone when stopped, back
//! on the same port, and a taken port reported as such.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

use fake_upstream::redis::RedisServer;

fn ping(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"PING\r\n").unwrap();
    let mut reply = [0u8; 7];
    s.read_exact(&mut reply).unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn a_server_is_ready_when_started_and_comes_back_on_its_port() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}/0"));
    assert_eq!(ping(port), "+PONG\r\n");

    let taken = RedisServer::try_start_on(port).unwrap_err();
    assert_eq!(taken.kind(), ErrorKind::AddrInUse, "{taken}");

    redis.stop();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "stopped");
    let back = RedisServer::start_on(port);
    assert_eq!(ping(back.port()), "+PONG\r\n");
}
