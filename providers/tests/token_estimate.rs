//! The token estimator against real BPE tokenizers (OpenAI's `o200k_base`
//! and `cl100k_base`, via tiktoken-rs) on the samples in `testdata/tokens/`.
//! The figures printed here are the ones in `docs/providers.md`; run with
//! `cargo test -p providers --test token_estimate -- --nocapture`.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use providers::estimate_tokens;

const SAMPLES: &[&str] = &["prose.txt", "code.txt", "json.txt", "multilingual.txt"];

/// Signed relative error of the estimate, in percent.
fn error_pct(estimate: usize, actual: usize) -> f64 {
    (estimate as f64 - actual as f64) / actual as f64 * 100.0
}

#[test]
fn estimate_is_close_to_real_tokenizers() {
    let o200k = tiktoken_rs::o200k_base_singleton();
    let cl100k = tiktoken_rs::cl100k_base_singleton();
    let (mut est_total, mut o_total, mut c_total) = (0, 0, 0);
    println!("| sample | bytes | estimate | o200k_base | error | cl100k_base | error |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for name in SAMPLES {
        let text = std::fs::read_to_string(format!("{}/testdata/tokens/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let est = estimate_tokens(&text) as usize;
        let o = o200k.encode_ordinary(&text).len();
        let c = cl100k.encode_ordinary(&text).len();
        println!(
            "| {name} | {} | {est} | {o} | {:+.1} % | {c} | {:+.1} % |",
            text.len(),
            error_pct(est, o),
            error_pct(est, c)
        );
        // Per kind of text the estimate stays within a quarter of the real count.
        assert!(error_pct(est, o).abs() <= 25.0, "{name}: {est} vs {o}");
        est_total += est;
        o_total += o;
        c_total += c;
    }
    println!(
        "| all | | {est_total} | {o_total} | {:+.1} % | {c_total} | {:+.1} % |",
        error_pct(est_total, o_total),
        error_pct(est_total, c_total)
    );
    // Over a mix, within a tenth: what a budget reservation needs.
    assert!(error_pct(est_total, o_total).abs() <= 10.0);
}
