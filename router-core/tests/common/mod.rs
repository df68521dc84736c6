//! Policies shared by the integration tests and the bench: the seed scenario
//! and a generated 50-workload policy, both compiled from `.route` text.

#![allow(dead_code, reason = "each test binary uses a different part")]
#![allow(
    clippy::panic,
    reason = "test setup: a policy that does not compile is a broken test"
)]

use std::fmt::Write as _;
use std::path::Path;

use policy_lang::{SourceFile, compile};
use router_core::Policy;

/// Compiles policy text, panicking with the diagnostics if it does not.
pub fn compile_text(name: &str, text: &str) -> Policy {
    match compile(&[SourceFile::new(name, text)]) {
        Ok(c) => c.into_policy(),
        Err(report) => panic!("{name} does not compile:\n{report}"),
    }
}

/// `examples/policies/seed.route`, compiled.
pub fn seed_policy() -> Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies/seed.route");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    compile_text("seed.route", &text)
}

/// A policy with `workloads` workloads over 10 providers, its routes cycling
/// through every combinator, nested two deep, as a large real policy might.
pub fn generated_policy_text(workloads: usize) -> String {
    let mut s = String::new();
    let tiers = ["free", "subscription", "paid", "paid", "paid"];
    for p in 0..10 {
        let tier = tiers[p % tiers.len()];
        let _ = writeln!(s, "provider p{p} {{\n  adapter mock\n  tier {tier}\n  data private");
        for m in 0..3 {
            let price = if tier == "paid" {
                format!("price ${}/M in, ${}/M out", 1 + p + m, 4 * (1 + p + m))
            } else {
                "price free".to_owned()
            };
            let _ = writeln!(
                s,
                "  model m{m} {{ {price}; context 200k; max_output 32k; supports tools, json_schema, stream }}"
            );
        }
        s.push_str("}\n\n");
    }
    let t = |i: usize| format!("p{}/m{}", i % 10, (i / 10) % 3);
    for w in 0..workloads {
        let a = |k: usize| t(w * 7 + k);
        let route = match w % 5 {
            0 => format!(
                "split by user {{\n    70: free_first [ {}, {}, {}, {} ] on 429, 503, timeout(15s)\n    30: fallback [ {}, {} ]\n  }}",
                a(0),
                a(1),
                a(2),
                a(3),
                a(4),
                a(5)
            ),
            1 => format!(
                "select cheapest [ {}, {}, {}, {}, {} ] retry 1",
                a(0),
                a(1),
                a(2),
                a(3),
                a(4)
            ),
            2 => format!(
                "match {{\n    when input_tokens > 8k => select fastest [ {}, {} ]\n    when has tools => fallback [ {}, {} ]\n    else => free_first [ {}, {}, {} ]\n  }}",
                a(0),
                a(1),
                a(2),
                a(3),
                a(4),
                a(5),
                a(6)
            ),
            3 => format!("escalate [ {}, {}, {} ] check json_valid", a(0), a(1), a(2)),
            _ => format!(
                "fallback [ select weighted {{ 60: {}, 40: {} }}, {}, {} ] on 429, timeout(20s)",
                a(0),
                a(1),
                a(2),
                a(3)
            ),
        };
        let data = ["public", "internal", "private"][w % 3];
        let _ = writeln!(
            s,
            "workload w{w} {{\n  task generate\n  data {data}\n  max_tokens 4000\n  latency 60s\n  budget 50M tokens/day\n  route {route}\n}}\n"
        );
    }
    s
}

/// [`generated_policy_text`], compiled.
pub fn generated_policy(workloads: usize) -> Policy {
    compile_text("generated.route", &generated_policy_text(workloads))
}
