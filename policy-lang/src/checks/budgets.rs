//! Budget lines no call fits in (`W0309`).
//!
//! Before each attempt the router reserves, from every budget line of the
//! workload, what the call may use: `router_core::Estimate`, its estimated
//! input tokens plus its output allowance (the request's `max_tokens`
//! capped by the workload's, else the model's `max_output`, else
//! [`DEFAULT_OUTPUT_ESTIMATE`]), and for dollar lines those tokens at the
//! target's price. A line smaller than that for every target the workload
//! reaches refuses every call that does not ask for fewer output tokens.
//! The input counts as zero here, so the warning is never a false alarm
//! about the policy itself: only a smaller `max_tokens` in the request can
//! make such a call fit.

use router_core::{DEFAULT_OUTPUT_ESTIMATE, TargetId, Tier, Usd, WorkloadId};

use super::q;
use crate::ast_to_ir::{BudgetLine, Lowered};
use crate::code::Code;
use crate::diagnostic::Diag;
use crate::errors::BudgetBelowOneCallWarning;
use crate::report::CheckReport;

/// The smallest reservation of one call over `targets`, computed as
/// `router_core`'s decision computes `Estimate`, with no input: `(tokens,
/// dollars)`; dollars are `None` when a paid target has no price (`R0209`).
/// The cheapest target in dollars may not be the one with the fewest
/// tokens: each minimum is taken on its own.
fn smallest(lowered: &Lowered, wid: WorkloadId, targets: &[TargetId]) -> Option<(u64, Option<Usd>)> {
    let policy = &lowered.policy;
    let w = policy.workload(wid);
    let mut tokens: Option<u64> = None;
    let mut usd: Option<Option<Usd>> = None;
    for t in targets {
        let target = policy.target(*t);
        let output = w.max_tokens.or(target.max_output).unwrap_or(DEFAULT_OUTPUT_ESTIMATE);
        tokens = Some(tokens.map_or(output, |n| n.min(output)));
        let cost = match (target.price, policy.provider(target.provider).tier) {
            (Some(price), _) => Some(price.cost(0, output)),
            (None, Tier::Free | Tier::Subscription) => Some(Usd::ZERO),
            (None, Tier::Paid) => None,
        };
        usd = Some(match (usd, cost) {
            (None, c) => c,
            (Some(Some(a)), Some(b)) => Some(a.min(b)),
            (Some(_), _) => None,
        });
    }
    Some((tokens?, usd.flatten()))
}

pub(super) fn check(lowered: &Lowered, wid: WorkloadId, targets: &[TargetId], report: &mut CheckReport) {
    let policy = &lowered.policy;
    let Some(info) = lowered.info.workloads.get(wid.0 as usize) else {
        return;
    };
    if info.budgets.is_empty() {
        return;
    }
    // With no input, the smallest reservation in tokens is the smallest
    // output allowance.
    let Some((tokens, usd)) = smallest(lowered, wid, targets) else {
        return;
    };
    let output = tokens;
    let w = policy.workload(wid);
    let b = &w.budget;
    for (line, text, span) in &info.budgets {
        let (fits, reserve) = match line {
            BudgetLine::TokensPerDay | BudgetLine::TokensPerMonth => {
                let limit = if *line == BudgetLine::TokensPerDay {
                    b.tokens_per_day
                } else {
                    b.tokens_per_month
                };
                (
                    limit.is_none_or(|l| l >= tokens),
                    format!("its input tokens plus {output} output tokens, at least {tokens}"),
                )
            }
            BudgetLine::UsdPerDay | BudgetLine::UsdPerMonth => {
                let limit = if *line == BudgetLine::UsdPerDay {
                    b.usd_per_day
                } else {
                    b.usd_per_month
                };
                let Some(usd) = usd else { continue };
                (
                    limit.is_none_or(|l| l >= usd),
                    format!("its input plus {output} output tokens at the cheapest price it can reach, at least {usd}"),
                )
            }
        };
        if fits {
            continue;
        }
        let allowance = match (w.max_tokens, info.max_tokens) {
            (Some(n), Some(_)) => format!("the workload's `max_tokens {n}`"),
            _ if output == DEFAULT_OUTPUT_ESTIMATE => {
                format!("{DEFAULT_OUTPUT_ESTIMATE} when neither the workload nor the model sets a limit")
            }
            _ => "the model's `max_output`".to_string(),
        };
        let mut diag = Diag::at(
            Code::W0309,
            format!("budget `{text}` of workload {} cannot cover one call", q(&w.name)),
            &lowered.info.src,
            *span,
            format!("one call reserves {reserve}"),
        );
        if let Some(max) = info.max_tokens {
            diag = diag.label(max, "the output allowance");
        }
        diag = diag.help(format!(
            "before each call the router reserves its estimated input tokens plus its output allowance, here {allowance} (less only when the request asks for fewer with `max_tokens`), and a call whose reservation is larger than the whole line is refused: only calls asking for fewer than {output} output tokens could ever run; raise the limit or lower `max_tokens`"
        ));
        report.warning(BudgetBelowOneCallWarning {
            workload: w.name.clone(),
            line: text.clone(),
            diag,
        });
    }
}
