//! The synthetic policy the compiler's benchmark and the large-policy
//! measurement both check: one block per number `i`, a provider with three
//! models, named routes using every combinator, and a workload routing
//! through them, so every check has work to do. Included by `#[path]`.

use std::fmt::Write as _;

/// Appends block `i` to `out`.
pub fn block(out: &mut String, i: usize) {
    let tier = ["free", "subscription", "paid"][i % 3];
    let data = ["public", "internal", "private"][i % 3];
    let _ = write!(
        out,
        "# Provider {i}.\nprovider p{i} {{\n  adapter openai_compatible\n  base_url \"https://llm{i}.example.com/v1\"\n  key env(\"P{i}_API_KEY\")\n  tier {tier}\n  jurisdiction us\n  data {data}\n  limits rpm 500, tpm 2M\n\n"
    );
    for m in 0..3 {
        let _ = write!(
            out,
            "  model m{m} {{\n    price ${m}.25/M in, ${m}.75/M out\n    context 128k\n    max_output 16k\n    supports tools, json_schema, stream\n  }}\n"
        );
    }
    out.push_str("}\n\n");
    let j = i.saturating_sub(1);
    let _ = write!(
        out,
        "route r{i} = free_first [\n  p{i}/m0\n  p{j}/m1\n] on 429, 503, timeout(10s)\n\nroute s{i} = split by user {{\n  70: r{i}\n  30: select cheapest [\n    p{i}/m1\n    p{j}/m2\n  ]\n}}\n\n"
    );
    let _ = write!(
        out,
        "workload w{i} {{\n  task chat\n  quality medium\n  data public\n  max_tokens 4000\n  budget $20/day, 5M tokens/day alert 80%\n  route match {{\n    when input_tokens > 32000 => p{i}/m2\n    when has tools and not has images => s{i}\n    else => r{i}\n  }}\n}}\n\n"
    );
}
