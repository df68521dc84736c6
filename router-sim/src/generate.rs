//! Synthetic traffic: the product brief's reported task-class mix.
//!
//! | class | share | workload | task |
//! |---|---|---|---|
//! | simple Q&A | 35 % | `simple_qa` | chat |
//! | code scaffolding | 25 % | `code_scaffolding` | code |
//! | summarisation | 20 % | `doc_summary` | summarise |
//! | complex reasoning | 15 % | `complex_reasoning` | reason |
//! | multilingual | 5 % | `multilingual_chat` | translate |
//!
//! Token sizes are log-normal per class (median and 95th percentile below,
//! clamped to a sane range), users follow a skewed popularity curve over
//! 400 ids, and arrivals follow a working-day curve over one UTC day
//! (quiet at night, peaking mid-afternoon), in time order. A share of
//! summaries carry internal documents (`"data": "internal"`), and some code
//! requests offer tools, so routing sees raised data classes and
//! capability needs. Same (requests, seed, start) → the same bytes.

use std::io::{self, Write};

use router_core::{DataClass, Task};

use crate::rng::SplitMix64;
use crate::traffic::TrafficRequest;

/// Midnight UTC on 2026-11-01: the default start of generated traffic
/// (fixed so that generated files do not depend on the day they are made).
pub const DEFAULT_START_MS: u64 = 1_793_491_200_000;

/// The traffic mixes `generate` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// The brief's task-class mix (see the module docs).
    SeedMix,
}

impl Mix {
    /// The mix named on the command line (`seed-mix`).
    pub fn from_name(name: &str) -> Option<Mix> {
        match name {
            "seed-mix" | "seed_mix" => Some(Mix::SeedMix),
            _ => None,
        }
    }

    /// The names `from_name` accepts.
    pub const NAMES: &'static [&'static str] = &["seed-mix"];
}

/// A log-normal size: median and 95th percentile, clamped to `[min, max]`.
#[derive(Clone, Copy, Debug)]
struct Size {
    median: f64,
    p95: f64,
    min: u64,
    max: u64,
}

impl Size {
    fn sample(&self, rng: &mut SplitMix64) -> u64 {
        // z-score of the 95th percentile of the standard normal.
        let sigma = (self.p95 / self.median).ln() / 1.644_853_626_951_472_2;
        let v = self.median * (sigma * rng.next_normal()).exp();
        (v.round() as u64).clamp(self.min, self.max)
    }
}

/// One task class of the mix.
#[derive(Clone, Copy, Debug)]
struct Class {
    workload: &'static str,
    /// Share in basis points; the shares sum to 10 000.
    share_bp: u32,
    task: Task,
    input: Size,
    output: Size,
    /// Share of requests that declare `internal` data, in basis points.
    internal_bp: u32,
    /// Share of requests that offer tools, in basis points.
    tools_bp: u32,
}

const SEED_MIX: [Class; 5] = [
    Class {
        workload: "simple_qa",
        share_bp: 3_500,
        task: Task::Chat,
        input: Size {
            median: 350.0,
            p95: 1_500.0,
            min: 20,
            max: 8_000,
        },
        output: Size {
            median: 180.0,
            p95: 600.0,
            min: 5,
            max: 2_000,
        },
        internal_bp: 0,
        tools_bp: 0,
    },
    Class {
        workload: "code_scaffolding",
        share_bp: 2_500,
        task: Task::Code,
        input: Size {
            median: 1_200.0,
            p95: 6_000.0,
            min: 50,
            max: 30_000,
        },
        output: Size {
            median: 700.0,
            p95: 2_500.0,
            min: 20,
            max: 8_000,
        },
        internal_bp: 0,
        tools_bp: 2_000,
    },
    Class {
        workload: "doc_summary",
        share_bp: 2_000,
        task: Task::Summarise,
        input: Size {
            median: 3_500.0,
            p95: 14_000.0,
            min: 200,
            max: 60_000,
        },
        output: Size {
            median: 300.0,
            p95: 800.0,
            min: 30,
            max: 2_000,
        },
        internal_bp: 1_500,
        tools_bp: 0,
    },
    Class {
        workload: "complex_reasoning",
        share_bp: 1_500,
        task: Task::Reason,
        input: Size {
            median: 2_000.0,
            p95: 9_000.0,
            min: 100,
            max: 60_000,
        },
        output: Size {
            median: 1_000.0,
            p95: 3_500.0,
            min: 50,
            max: 8_000,
        },
        internal_bp: 0,
        tools_bp: 0,
    },
    Class {
        workload: "multilingual_chat",
        share_bp: 500,
        task: Task::Translate,
        input: Size {
            median: 500.0,
            p95: 2_000.0,
            min: 20,
            max: 8_000,
        },
        output: Size {
            median: 400.0,
            p95: 1_500.0,
            min: 10,
            max: 4_000,
        },
        internal_bp: 0,
        tools_bp: 0,
    },
];

/// Relative request rate per UTC hour: a working day in Europe and the
/// Americas, quiet at night.
const HOURLY: [f64; 24] = [
    2.0, 1.5, 1.2, 1.0, 1.0, 1.2, 2.0, 3.5, 5.0, 6.0, 6.5, 6.8, 6.5, 6.8, 7.0, 6.8, 6.2, 5.5, 4.5, 4.0, 3.5, 3.0, 2.5,
    2.2,
];

/// Users to draw from.
const USERS: f64 = 400.0;

/// Writes `requests` lines of `mix` traffic, starting at `start_ms` and
/// spread over one day, to `out`.
pub fn generate<W: Write>(mix: Mix, requests: u64, seed: u64, start_ms: u64, mut out: W) -> io::Result<()> {
    let Mix::SeedMix = mix;
    let cdf = hourly_cdf();
    let mut line = String::with_capacity(256);
    for i in 0..requests {
        let mut rng = SplitMix64::new("generate", seed, i);
        // Stratified arrival quantiles keep the lines in time order without
        // holding them all: u_i is strictly increasing in i.
        let u = (i as f64 + rng.next_f64()) / requests as f64;
        let ts_ms = start_ms + (day_fraction(&cdf, u) * 86_400_000.0) as u64;
        let class = pick(&mut rng);
        let user = (USERS * rng.next_f64() * rng.next_f64()) as u32;
        let req = TrafficRequest {
            ts_ms,
            workload: class.workload.to_owned(),
            input_tokens: class.input.sample(&mut rng),
            output_tokens: class.output.sample(&mut rng),
            user: Some(format!("u{user:04}")),
            task: Some(class.task),
            tools: rng.chance_bp(class.tools_bp),
            data: rng.chance_bp(class.internal_bp).then_some(DataClass::Internal),
            ..TrafficRequest::default()
        };
        line.clear();
        line.push_str(&req.to_line());
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()
}

fn pick(rng: &mut SplitMix64) -> &'static Class {
    let r = (rng.next_u64() % 10_000) as u32;
    let mut upper = 0;
    for c in &SEED_MIX {
        upper += c.share_bp;
        if r < upper {
            return c;
        }
    }
    &SEED_MIX[0]
}

fn hourly_cdf() -> [f64; 25] {
    let total: f64 = HOURLY.iter().sum();
    let mut cdf = [0.0; 25];
    for h in 0..24 {
        cdf[h + 1] = cdf[h] + HOURLY[h] / total;
    }
    cdf
}

/// The fraction of the day at which the arrival CDF reaches `u` (piecewise
/// linear within each hour).
fn day_fraction(cdf: &[f64; 25], u: f64) -> f64 {
    let h = (0..24).find(|&h| u < cdf[h + 1]).unwrap_or(23);
    let within = ((u - cdf[h]) / (cdf[h + 1] - cdf[h])).clamp(0.0, 1.0);
    ((h as f64) + within) / 24.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::TrafficReader;

    fn lines(requests: u64, seed: u64) -> Vec<TrafficRequest> {
        let mut out = Vec::new();
        generate(Mix::SeedMix, requests, seed, DEFAULT_START_MS, &mut out).unwrap();
        TrafficReader::new(out.as_slice()).map(Result::unwrap).collect()
    }

    #[test]
    fn shares_match_the_brief_within_a_point() {
        let reqs = lines(20_000, 1);
        for class in &SEED_MIX {
            let n = reqs.iter().filter(|r| r.workload == class.workload).count();
            let share_bp = n as f64 / 2.0;
            assert!(
                (share_bp - f64::from(class.share_bp)).abs() < 100.0,
                "{}: {share_bp} bp",
                class.workload
            );
        }
    }

    #[test]
    fn arrivals_are_in_order_within_one_day() {
        let reqs = lines(5_000, 3);
        assert!(reqs.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
        assert!(reqs[0].ts_ms >= DEFAULT_START_MS);
        assert!(reqs[reqs.len() - 1].ts_ms < DEFAULT_START_MS + 86_400_000);
        // Busier in the afternoon than at night.
        let hour = |r: &TrafficRequest| (r.ts_ms - DEFAULT_START_MS) / 3_600_000;
        let night = reqs.iter().filter(|r| hour(r) == 3).count();
        let afternoon = reqs.iter().filter(|r| hour(r) == 14).count();
        assert!(afternoon > 4 * night, "{afternoon} vs {night}");
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let gen_bytes = |seed| {
            let mut out = Vec::new();
            generate(Mix::SeedMix, 500, seed, DEFAULT_START_MS, &mut out).unwrap();
            out
        };
        assert_eq!(gen_bytes(7), gen_bytes(7));
        assert_ne!(gen_bytes(7), gen_bytes(8));
    }

    #[test]
    fn sizes_are_plausible() {
        let reqs = lines(5_000, 9);
        let median = |name: &str| {
            let mut v: Vec<u64> = reqs
                .iter()
                .filter(|r| r.workload == name)
                .map(|r| r.input_tokens)
                .collect();
            v.sort_unstable();
            v[v.len() / 2]
        };
        assert!((250..500).contains(&median("simple_qa")));
        assert!((2_500..5_000).contains(&median("doc_summary")));
    }
}
