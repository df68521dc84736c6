//! Three `routec serve` processes on one `redis-server`, as behind a load
//! balancer: a provider's `rpm` holds across all three, a 429 seen by one
//! instance is honoured by the others, and with Redis gone each instance
//! keeps to its share of the limit. What reached a provider is counted by
//! the fake provider itself, never by routec.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_upstream::redis::RedisServer;
use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use gateway_support::{Answer, Serve, chat_body, post};

/// `limited/m` allows 60 requests a minute and falls back to `spare/m`;
/// `hot/m` falls back to `spare/m` on a 429.
fn policy(limited: &str, hot: &str, spare: &str) -> String {
    let provider = |name: &str, url: &str, limits: &str| {
        format!(
            r#"
provider {name} {{
  adapter openai_compatible
  base_url "{url}"
  key env("ROUTEC_TEST_PROVIDER_KEY")
  tier paid
  data private
  {limits}
  model m {{
    price $1/M in, $2/M out
    context 128k
    max_output 8k
  }}
}}
"#
        )
    };
    format!(
        r#"{}{}{}
workload paced {{
  task chat
  data public
  max_tokens 100
  route fallback [
    limited/m
    spare/m
  ] on rate_limited, overloaded, server_error
}}

workload cooled {{
  task chat
  data public
  max_tokens 100
  route fallback [
    hot/m
    spare/m
  ] on rate_limited, overloaded, server_error
}}
"#,
        provider("limited", limited, "limits rpm 60"),
        provider("hot", hot, ""),
        provider("spare", spare, ""),
    )
}

/// Sends `n` calls of `workload`, round-robin over `gateways`, at most 12
/// at a time; every answer, in no particular order.
async fn spread(gateways: &[&Serve], workload: &str, n: usize) -> Vec<Answer> {
    let gate = Arc::new(tokio::sync::Semaphore::new(12));
    let mut tasks = Vec::new();
    for i in 0..n {
        let base = gateways[i % gateways.len()].base.clone();
        let (gate, body) = (Arc::clone(&gate), chat_body(workload));
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            post(&base, "/v1/chat/completions", body, &[]).await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        let a = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("every call answered within 60 s")
            .unwrap();
        assert_eq!(a.status, 200, "{}", a.body);
        answers.push(a);
    }
    answers
}

/// A subscription to Redis keyspace events of one key, read on a blocking
/// socket with a deadline: the test learns that a key was written when
/// Redis says so, without polling.
struct KeyEvents {
    reader: BufReader<TcpStream>,
}

impl KeyEvents {
    fn subscribe(port: u16, key: &str) -> KeyEvents {
        let mut config = TcpStream::connect(("127.0.0.1", port)).unwrap();
        config.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        config
            .write_all(&resp(&["CONFIG", "SET", "notify-keyspace-events", "K$"]))
            .unwrap();
        let mut line = String::new();
        BufReader::new(config).read_line(&mut line).unwrap();
        assert_eq!(line, "+OK\r\n", "CONFIG SET notify-keyspace-events");
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&resp(&["SUBSCRIBE", &format!("__keyspace@0__:{key}")]))
            .unwrap();
        let mut events = KeyEvents {
            reader: BufReader::new(s),
        };
        // The subscription's confirmation: *3, $9 subscribe, $N channel, :1.
        let confirm = events.lines(6);
        assert!(confirm.contains(&"subscribe".to_owned()), "{confirm:?}");
        events
    }

    fn lines(&mut self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let mut line = String::new();
                self.reader
                    .read_line(&mut line)
                    .expect("an event from redis within 10 s");
                line.trim_end().to_owned()
            })
            .collect()
    }

    /// Waits (up to 10 s) for the next event on the key; its name (`set`).
    fn next(&mut self) -> String {
        // *3, $7 message, $N channel, $M event.
        self.lines(7).pop().unwrap_or_default()
    }
}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    out.into_bytes()
}

fn targets(answers: &[Answer], target: &str) -> usize {
    answers
        .iter()
        .filter(|a| a.header("x-routec-target") == Some(target))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_on_one_redis_share_limits_and_cool_downs() {
    let limited = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let hot = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let spare = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.route");
    std::fs::write(&path, policy(&limited.base_url(), &hot.base_url(), &spare.base_url())).unwrap();
    let mut redis = RedisServer::start();
    let url = redis.url();
    let args = [
        "--policy",
        path.to_str().unwrap(),
        "--budget-store",
        &url,
        "--instances",
        "3",
    ];
    let a = Serve::start("instance-a", &args, "info").await;
    let b = Serve::start("instance-b", &args, "info").await;
    let c = Serve::start("instance-c", &args, "info").await;

    // 1. `rpm 60` across all three. The shared bucket holds 60 and refills
    // one a second, so within `elapsed` at most 60 + whole seconds pass it;
    // at least 60 do (each instance alone would let 50 of its 50 through).
    let started = Instant::now();
    let answers = spread(&[&a, &b, &c], "paced", 150).await;
    let elapsed = started.elapsed();
    let sent = usize::try_from(limited.calls()).unwrap();
    let most = 60 + usize::try_from(elapsed.as_secs()).unwrap();
    assert!(
        (60..=most).contains(&sent),
        "`limited` received {sent} calls in {elapsed:?}: the shared `rpm 60` allows 60 to {most}"
    );
    assert_eq!(
        targets(&answers, "limited/m"),
        sent,
        "answers agree with the provider's count"
    );
    assert_eq!(targets(&answers, "spare/m"), 150 - sent, "the rest fell back");
    assert_eq!(usize::try_from(spare.calls()).unwrap(), 150 - sent);

    // 2. A 429 seen by A cools `hot/m` down for B and C too.
    let mut events = KeyEvents::subscribe(redis.port(), "routec:{provider:hot}:cooldown:m");
    hot.push(Behaviour::rate_limited("30"));
    let first = post(&a.base, "/v1/chat/completions", chat_body("cooled"), &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        first.header("x-routec-target"),
        Some("spare/m"),
        "A fell back after the 429"
    );
    assert_eq!(hot.calls(), 1);
    assert_eq!(events.next(), "set", "A published the cool-down");
    let spare_before = spare.calls();
    let answers = spread(&[&b, &c, &a], "cooled", 9).await;
    assert_eq!(
        hot.calls(),
        1,
        "no instance called `hot` while it cools down (its next answer would have been a 200)"
    );
    assert_eq!(targets(&answers, "spare/m"), 9);
    assert_eq!(spare.calls(), spare_before + 9);

    // 3. Redis gone: each instance keeps to its share, 60 / 3 = 20 a
    // minute (refilled a third of a call a second), and says so once.
    redis.stop();
    let before = limited.calls();
    let started = Instant::now();
    let answers = spread(&[&a, &b, &c], "paced", 90).await;
    let elapsed = started.elapsed();
    let sent = usize::try_from(limited.calls() - before).unwrap();
    let most = 60 + usize::try_from(elapsed.as_secs()).unwrap();
    assert!(
        (60..=most).contains(&sent),
        "without Redis `limited` received {sent} calls in {elapsed:?}: three shares of 20 allow 60 to {most}"
    );
    assert_eq!(targets(&answers, "limited/m"), sent);
    for gw in [&a, &b, &c] {
        let warning = "shared provider state not answering";
        gw.wait_for_log(warning, Duration::from_secs(10)).await;
        assert_eq!(gw.log_text().matches(warning).count(), 1, "one warning per outage");
        let metrics = gateway_support::get(&gw.base, "/metrics", &[]).await.body;
        assert!(metrics.lines().any(|l| l == "routec_shared_state_up 0"), "{metrics}");
    }
}
