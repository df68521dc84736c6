//! The report as one self-contained HTML page: inline CSS, an inline SVG
//! chart of cost over time by provider, and the report's tables. No
//! scripts, fonts or other requests, so it can be mailed or archived.

use std::fmt::Write;

use crate::report::{SimReport, money, opt_ms, percent};
use crate::time::format_hh_mm;

/// Colours for providers, in policy order (cycled).
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:72rem;\
color:#1d1d1f;padding:0 1rem}h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}\
table{border-collapse:collapse;margin:.5rem 0}th,td{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:right}\
th:first-child,td:first-child{text-align:left}th{background:#f4f4f6}.big{font-size:1.2rem}\
.ok{color:#1a7f37}.bad{color:#c62828;font-weight:bold}.legend span{display:inline-block;margin-right:1rem}\
.sw{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}\
.note{color:#555;font-size:.9rem}svg text{font:11px system-ui,sans-serif;fill:#333}";

/// Escapes text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The report as a standalone HTML page.
pub fn render_html(r: &SimReport) -> String {
    let mut o = String::with_capacity(32 * 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>routec simulate: {} requests</title><style>{CSS}</style></head><body>\n",
        r.requests
    );
    let _ = writeln!(o, "<h1>routec simulate</h1>");
    let _ = writeln!(
        o,
        "<p>{} requests, {} → {}, seed {}, policy <code>{}</code></p>",
        r.requests,
        esc(r.start.as_deref().unwrap_or("-")),
        esc(r.end.as_deref().unwrap_or("-")),
        r.seed,
        esc(&r.policy_hash)
    );
    let pii_class = if r.pii_violations == 0 { "ok" } else { "bad" };
    let _ = writeln!(
        o,
        "<table class=\"big\"><tr><td>total cost</td><td>{}</td></tr>\
         <tr><td>baseline cost</td><td>{}</td></tr>\
         <tr><td>savings</td><td>{}</td></tr>\
         <tr><td>latency p50 / p95</td><td>{} / {}</td></tr>\
         <tr><td>data-class violations</td><td class=\"{pii_class}\">{}</td></tr>\
         <tr><td>served / failed / budget halts / refused</td><td>{} / {} / {} / {}</td></tr></table>",
        money(r.total_cost),
        money(r.baseline_cost),
        percent(r.savings_ratio),
        opt_ms(r.p50_ms),
        opt_ms(r.p95_ms),
        r.pii_violations,
        r.served,
        r.failed,
        r.budget_halts,
        r.refused
    );
    let _ = writeln!(
        o,
        "<p class=\"note\">Baseline: every request on <code>{}</code> ({}). Violations are counted by the \
         simulator's own check of each of the {} dispatches against the provider's <code>data</code> class.</p>",
        esc(r.baseline.target.as_deref().unwrap_or("no priced target")),
        esc(&r.baseline.chosen_by),
        r.dispatches
    );
    chart(&mut o, r);
    workloads(&mut o, r);
    targets(&mut o, r);
    let a = &r.assumptions;
    let _ = writeln!(
        o,
        "<h2>Assumptions</h2><ul class=\"note\"><li>Targets without a <code>simulate</code> line: p50 {} ms, p95 {} ms, \
         no errors{}.</li><li>Attempt timeout when the plan has none: {} ms. Simulated 429s carry Retry-After {} ms. \
         Retries back off from {} ms, doubling, ±50 % jitter.</li><li>Quality checks pass at fixed rates for every \
         model (basis points): json_valid {}, json_schema {}, non_empty {}, regex {}, evaluator {}.</li><li>{}.</li></ul>",
        a.default_p50_ms,
        a.default_p95_ms,
        if a.defaulted_targets.is_empty() {
            String::new()
        } else {
            format!(" (used for {})", esc(&a.defaulted_targets.join(", ")))
        },
        a.attempt_timeout_ms,
        a.retry_after_ms,
        a.retry_backoff_ms,
        a.check_pass_bp.json_valid,
        a.check_pass_bp.json_schema,
        a.check_pass_bp.non_empty,
        a.check_pass_bp.regex,
        a.check_pass_bp.evaluator,
        esc(a.billing)
    );
    o.push_str("</body></html>\n");
    o
}

/// Stacked bars: one per time bucket, one segment per provider.
fn chart(o: &mut String, r: &SimReport) {
    let series = &r.cost_over_time;
    let _ = writeln!(o, "<h2>Cost over time by provider</h2>");
    if series.cost.is_empty() {
        let _ = writeln!(o, "<p class=\"note\">No cost was incurred.</p>");
        return;
    }
    let used: Vec<usize> = (0..series.providers.len())
        .filter(|&p| series.cost.iter().any(|b| b.get(p).copied().unwrap_or(0.0) > 0.0))
        .collect();
    let totals: Vec<f64> = series.cost.iter().map(|b| b.iter().sum()).collect();
    let max = totals.iter().copied().fold(0.0f64, f64::max).max(f64::MIN_POSITIVE);
    let (w, h, left, bottom, top) = (900.0, 320.0, 70.0, 40.0, 10.0);
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - top;
    let n = series.cost.len() as f64;
    let bar = plot_w / n;
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         role=\"img\" aria-label=\"cost over time by provider\">"
    );
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = top + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            o,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + plot_w,
            left - 6.0,
            y + 4.0,
            esc(&money(v))
        );
    }
    for (i, bucket) in series.cost.iter().enumerate() {
        let x = left + bar * i as f64;
        let mut y = top + plot_h;
        for &p in &used {
            let v = bucket.get(p).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let bh = plot_h * v / max;
            y -= bh;
            let _ = write!(
                o,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\">\
                 <title>{}: {}</title></rect>",
                x + bar * 0.1,
                bar * 0.8,
                PALETTE[p % PALETTE.len()],
                esc(&series.providers[p]),
                esc(&money(v))
            );
        }
        let every = (series.cost.len() / 12).max(1);
        if i % every == 0
            && let Some(start) = series.start_ms
        {
            let at = start + series.bucket_ms * i as u64;
            let _ = write!(
                o,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                top + plot_h + 16.0,
                format_hh_mm(at)
            );
        }
    }
    let _ = writeln!(
        o,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">UTC, {} min per bar</text></svg>",
        left + plot_w / 2.0,
        h - 6.0,
        series.bucket_ms / 60_000
    );
    o.push_str("<p class=\"legend\">");
    for &p in &used {
        let _ = write!(
            o,
            "<span><i class=\"sw\" style=\"background:{}\"></i>{}</span>",
            PALETTE[p % PALETTE.len()],
            esc(&series.providers[p])
        );
    }
    o.push_str("</p>\n");
}

fn table(o: &mut String, head: &[&str], rows: Vec<Vec<String>>) {
    o.push_str("<table><tr>");
    for h in head {
        let _ = write!(o, "<th>{}</th>", esc(h));
    }
    o.push_str("</tr>\n");
    for r in rows {
        o.push_str("<tr>");
        for c in r {
            let _ = write!(o, "<td>{}</td>", esc(&c));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
}

fn workloads(o: &mut String, r: &SimReport) {
    let _ = writeln!(o, "<h2>Workloads</h2>");
    let rows = r
        .workloads
        .iter()
        .map(|w| {
            vec![
                w.workload.clone(),
                w.requests.to_string(),
                w.served.to_string(),
                w.fallbacks.to_string(),
                w.escalations.to_string(),
                w.failed.to_string(),
                w.budget_halts.to_string(),
                w.refused.to_string(),
                (w.input_tokens + w.output_tokens).to_string(),
                money(w.cost),
                money(w.baseline_cost),
                percent(w.savings_ratio),
                opt_ms(w.p50_ms),
                opt_ms(w.p95_ms),
                w.pii_violations.to_string(),
            ]
        })
        .collect();
    table(
        o,
        &[
            "workload",
            "requests",
            "served",
            "fallbacks",
            "escalations",
            "failed",
            "budget halts",
            "refused",
            "tokens",
            "cost",
            "baseline",
            "savings",
            "p50",
            "p95",
            "violations",
        ],
        rows,
    );
}

fn targets(o: &mut String, r: &SimReport) {
    let _ = writeln!(o, "<h2>Targets</h2>");
    let rows = r
        .targets
        .iter()
        .map(|t| {
            vec![
                if t.default_profile {
                    format!("{} (default profile)", t.target)
                } else {
                    t.target.clone()
                },
                t.dispatches.to_string(),
                t.answered.to_string(),
                t.rate_limited.to_string(),
                t.errors.to_string(),
                t.timeouts.to_string(),
                t.check_failed.to_string(),
                t.skipped_unhealthy.to_string(),
                t.skipped_limit.to_string(),
                (t.input_tokens + t.output_tokens).to_string(),
                money(t.cost),
                opt_ms(t.p50_ms),
                opt_ms(t.p95_ms),
            ]
        })
        .collect();
    table(
        o,
        &[
            "target",
            "dispatches",
            "answered",
            "429",
            "errors",
            "timeouts",
            "check failed",
            "skipped (unhealthy)",
            "skipped (at limit)",
            "tokens",
            "cost",
            "p50",
            "p95",
        ],
        rows,
    );
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
