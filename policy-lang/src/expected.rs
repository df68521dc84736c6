//! Turns pest's "expected one of these rules" into the policy's words:
//! `expected a workload property (`task`, `quality`, …) or `}`` rather than
//! `expected w_task, w_quality, …`.
//!
//! Every grammar rule maps to one [`Expect`] group; groups are phrased in a
//! fixed order so the same mistake always reads the same.

use std::collections::BTreeSet;

use crate::text_to_ast::Rule;

/// What the parser would have accepted, grouped for phrasing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Expect {
    Item,
    ProviderProp,
    ModelProp,
    WorkloadProp,
    DefaultsProp,
    TestProp,
    Route,
    Rules,
    Trigger,
    WhenElse,
    Cond,
    AndOr,
    CmpOp,
    EqOp,
    Feature,
    Arm,
    SplitKey,
    Strategy,
    Check,
    CheckKw,
    Tier,
    DataClass,
    YesNo,
    Quality,
    RecoveryMode,
    Capability,
    Period,
    Budget,
    Limit,
    Sim,
    P95,
    Price,
    PerM,
    In,
    Out,
    Per,
    Call,
    Tokens,
    Alert,
    Env,
    Header,
    HeaderKv,
    By,
    Name,
    ModelName,
    Str,
    Number,
    Money,
    Percent,
    Duration,
    Failure,
    Stage,
    ChainStage,
    BreakerItem,
    CooldownScope,
    RetryClass,
    Punct(&'static str),
    End,
}

/// The properties a `provider` block takes.
pub const PROVIDER_PROPS: &[&str] = &[
    "adapter",
    "base_url",
    "command",
    "key",
    "tier",
    "jurisdiction",
    "data",
    "trains_on_inputs",
    "stores_inputs",
    "no_store",
    "header",
    "limits",
    "timeout",
    "timeouts",
    "breaker",
    "retry_after_wait",
    "cooldown",
    "simulate",
    "model",
];
/// The properties a `model` block takes.
pub const MODEL_PROPS: &[&str] = &[
    "id",
    "version",
    "price",
    "context",
    "max_output",
    "supports",
    "simulate",
];
/// The properties a `workload` block takes.
pub const WORKLOAD_PROPS: &[&str] = &[
    "task",
    "quality",
    "data",
    "max_tokens",
    "latency",
    "max_cost",
    "requires",
    "budget",
    "max_attempts",
    "idempotent",
    "stream_recovery",
    "cache",
    "alias",
    "route",
    "jurisdiction",
];
pub(crate) const TEST_PROPS: &[&str] = &["workload", "request", "state", "expect"];
/// The keywords that start a route expression.
pub const ROUTE_WORDS: &[&str] = &["fallback", "free_first", "split", "select", "match", "escalate"];
/// The triggers an `on` rule names.
pub const TRIGGERS: &[&str] = &[
    "rate_limited",
    "overloaded",
    "server_error",
    "timeout",
    "connection_error",
    "context_length",
    "429",
    "503",
    "529",
];

fn group(rule: Rule) -> Option<Expect> {
    use Expect as E;
    use Rule as R;
    Some(match rule {
        R::item_only
        | R::kw_provider
        | R::kw_workload
        | R::kw_defaults
        | R::route_decl
        | R::provider
        | R::workload
        | R::defaults => E::Item,
        R::kw_route => E::Item,
        R::p_adapter
        | R::p_base_url
        | R::p_command
        | R::p_key
        | R::p_tier
        | R::p_jurisdiction
        | R::p_data
        | R::p_trains
        | R::p_stores
        | R::p_no_store
        | R::p_header
        | R::p_limits
        | R::p_timeout
        | R::model
        | R::k_adapter
        | R::k_base_url
        | R::k_command
        | R::k_key
        | R::k_tier
        | R::k_jurisdiction
        | R::k_trains_on_inputs
        | R::k_stores_inputs
        | R::k_no_store
        | R::k_limits
        | R::k_model => E::ProviderProp,
        R::m_id
        | R::m_version
        | R::m_price
        | R::m_context
        | R::m_max_output
        | R::m_supports
        | R::k_id
        | R::k_version
        | R::k_price
        | R::k_context
        | R::k_max_output
        | R::k_supports => E::ModelProp,
        R::w_task
        | R::w_quality
        | R::w_data
        | R::w_max_tokens
        | R::w_latency
        | R::w_max_cost
        | R::w_requires
        | R::w_budget
        | R::w_max_attempts
        | R::w_idempotent
        | R::w_stream_recovery
        | R::w_cache
        | R::w_alias
        | R::w_route
        | R::w_jurisdiction
        | R::k_task
        | R::k_quality
        | R::k_max_tokens
        | R::k_max_cost
        | R::k_requires
        | R::k_budget
        | R::k_idempotent
        | R::k_stream_recovery
        | R::k_cache
        | R::k_alias => E::WorkloadProp,
        R::d_max_attempts | R::k_max_attempts => E::DefaultsProp,
        R::f_timeouts
        | R::f_breaker
        | R::f_retry_after_wait
        | R::f_cooldown
        | R::k_timeouts
        | R::k_breaker
        | R::k_retry_after_wait
        | R::k_cooldown => E::Failure,
        R::stage_timeout | R::stage => E::Stage,
        R::chain_stage_timeout | R::chain_stage => E::ChainStage,
        R::breaker_off
        | R::breaker_item
        | R::b_failures
        | R::b_eject
        | R::b_max_eject
        | R::k_failures
        | R::k_eject
        | R::k_max_eject => E::BreakerItem,
        R::cooldown_scope => E::CooldownScope,
        R::retry_count | R::retry_class => E::RetryClass,
        R::t_workload | R::t_request | R::t_state | R::t_expect | R::k_state | R::k_expect => E::TestProp,
        R::fallback
        | R::free_first
        | R::split
        | R::select
        | R::match_expr
        | R::escalate
        | R::target
        | R::route_ref
        | R::kw_fallback
        | R::kw_free_first
        | R::kw_split
        | R::kw_select
        | R::kw_match
        | R::kw_escalate => E::Route,
        R::chain_timeouts => E::Rules,
        R::rules | R::on_rule | R::retry_rule | R::kw_on | R::kw_retry | R::kw_allow_repeat => E::Rules,
        R::trigger | R::t_word | R::t_status | R::t_timeout => E::Trigger,
        R::when_arm | R::else_arm | R::kw_when | R::kw_else => E::WhenElse,
        R::cond
        | R::cond_and
        | R::cond_not
        | R::paren_cond
        | R::kw_true
        | R::kw_false
        | R::has_cond
        | R::compare
        | R::meta_cmp
        | R::task_cmp
        | R::kw_not
        | R::kw_has
        | R::numeric_fact => E::Cond,
        R::kw_and | R::kw_or => E::AndOr,
        R::cmp_op => E::CmpOp,
        R::eq_op => E::EqOp,
        R::feature => E::Feature,
        R::arm => E::Arm,
        R::split_key | R::k_user | R::k_request | R::metadata_key | R::k_metadata | R::meta_name => E::SplitKey,
        R::strategy | R::k_weighted => E::Strategy,
        R::quality_check | R::q_word | R::q_regex | R::q_evaluator | R::k_regex | R::k_evaluator => E::Check,
        R::kw_check => E::CheckKw,
        R::tier => E::Tier,
        R::data_class | R::k_data => E::DataClass,
        R::yes_no => E::YesNo,
        R::quality => E::Quality,
        R::recovery_mode => E::RecoveryMode,
        R::capability => E::Capability,
        R::period => E::Period,
        R::budget_limit => E::Budget,
        R::limit | R::k_rpm | R::k_tpm | R::k_concurrency => E::Limit,
        R::sim_item
        | R::sim_latency
        | R::sim_errors
        | R::sim_rate_limits
        | R::sim_stream_breaks
        | R::k_errors
        | R::k_rate_limits
        | R::k_stream_breaks
        | R::p_simulate
        | R::k_simulate
        | R::k_latency => E::Sim,
        R::k_p95 => E::P95,
        R::price_free | R::price_in | R::price_out => E::Price,
        R::per_mtok => E::PerM,
        R::k_in => E::In,
        R::k_out => E::Out,
        R::k_per => E::Per,
        R::k_call => E::Call,
        R::k_tokens => E::Tokens,
        R::k_alert => E::Alert,
        R::key_env | R::k_env => E::Env,
        R::k_header => E::Header,
        R::header_kv => E::HeaderKv,
        R::kw_by => E::By,
        R::name | R::adapter_name | R::task_name => E::Name,
        R::model_name => E::ModelName,
        R::string | R::string_inner => E::Str,
        R::number => E::Number,
        R::money => E::Money,
        R::percent => E::Percent,
        R::duration => E::Duration,
        R::open_brace => E::Punct("`{`"),
        R::close_brace => E::Punct("`}`"),
        R::open_bracket => E::Punct("`[`"),
        R::close_bracket => E::Punct("`]`"),
        R::open_paren => E::Punct("`(`"),
        R::close_paren => E::Punct("`)`"),
        R::equals => E::Punct("`=`"),
        R::arrow => E::Punct("`=>`"),
        R::colon => E::Punct("`:`"),
        R::slash => E::Punct("`/`"),
        R::k_timeout => E::Trigger,
        R::EOI => E::End,
        _ => return None,
    })
}

fn quoted(words: &[&str]) -> String {
    words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", ")
}

/// One-phrase description of a group.
fn phrase(e: Expect) -> String {
    use Expect as E;
    match e {
        E::Item => "`provider`, `workload`, `route` or `defaults`".to_string(),
        E::ProviderProp => format!("a provider property ({})", quoted(PROVIDER_PROPS)),
        E::ModelProp => format!("a model property ({})", quoted(MODEL_PROPS)),
        E::WorkloadProp => format!("a workload property ({})", quoted(WORKLOAD_PROPS)),
        E::DefaultsProp => "`max_attempts`".to_string(),
        E::Failure => "a failure setting (`timeouts`, `breaker`, `retry_after_wait`, `cooldown`)".to_string(),
        E::Stage => "a timeout (`connect 5s`, `first_token 30s`, `idle 30s`, `total 2m`)".to_string(),
        E::ChainStage => {
            "a chain's timeout (`first_token 10s`, `idle 30s`, `total 1m`; `connect` is set per provider)".to_string()
        }
        E::BreakerItem => "a breaker setting (`off`, `failures N`, `eject 5s`, `max_eject 20s`)".to_string(),
        E::CooldownScope => "`per_model` or `per_provider`".to_string(),
        E::RetryClass => "a failure class with its count (`server_error 2`)".to_string(),
        E::TestProp => format!("a test line ({})", quoted(TEST_PROPS)),
        E::Route => format!(
            "a route: a `provider/model` target, a route name, or one of {}",
            quoted(ROUTE_WORDS)
        ),
        E::Rules => "a rule (`on`, `retry`, `timeouts`, `allow_repeat`)".to_string(),
        E::Trigger => format!("a trigger ({})", quoted(TRIGGERS)),
        E::WhenElse => "`when` or `else`".to_string(),
        E::Cond => "a condition (`input_tokens > 8000`, `has tools`, `metadata.team == \"growth\"`, `task == code`, \
                    `not …`, `( … )`)"
            .to_string(),
        E::AndOr => "`and`, `or`".to_string(),
        E::CmpOp => "a comparison (`<`, `<=`, `>`, `>=`, `==`, `!=`)".to_string(),
        E::EqOp => "`==` or `!=`".to_string(),
        E::Feature => "a feature (`tools`, `images`, `json_schema`, `stream`, `metadata.NAME`)".to_string(),
        E::Arm => "a weighted arm (`80: ROUTE`)".to_string(),
        E::SplitKey => "a split key (`user`, `request`, `metadata.NAME`)".to_string(),
        E::Strategy => "a strategy (`cheapest`, `fastest`, `first`, `weighted`)".to_string(),
        E::Check => {
            "a check (`json_valid`, `json_schema`, `non_empty`, `regex(\"…\")`, `evaluator(WORKLOAD)`)".to_string()
        }
        E::CheckKw => "`check`".to_string(),
        E::Tier => "a tier (`free`, `subscription`, `paid`)".to_string(),
        E::DataClass => "a data class (`public`, `internal`, `private`)".to_string(),
        E::YesNo => "`yes` or `no`".to_string(),
        E::Quality => "a quality (`low`, `medium`, `high`)".to_string(),
        E::RecoveryMode => "a stream recovery mode (`off`, `buffer`, `continue`)".to_string(),
        E::Capability => "a capability (`tools`, `json_schema`, `vision`, `stream`, `prefill`)".to_string(),
        E::Period => "`day` or `month`".to_string(),
        E::Budget => "a budget limit (`5M tokens/day`, `$200/month`)".to_string(),
        E::Limit => "a limit (`rpm N`, `tpm N`, `concurrency N`)".to_string(),
        E::Sim => "a simulated behaviour (`latency`, `errors`, `rate_limits`, `stream_breaks`)".to_string(),
        E::P95 => "`p95`".to_string(),
        E::Price => "a price (`free` or `$IN/M in, $OUT/M out`)".to_string(),
        E::PerM => "`/M` (prices are per million tokens)".to_string(),
        E::In => "`in`".to_string(),
        E::Out => "`out`".to_string(),
        E::Per => "`per call`".to_string(),
        E::Call => "`call`".to_string(),
        E::Tokens => "`tokens`".to_string(),
        E::Alert => "`alert`".to_string(),
        E::Env => "`env(\"NAME\")`".to_string(),
        E::Header => "`header`".to_string(),
        E::HeaderKv => "a header (`\"NAME\" = \"VALUE\"`)".to_string(),
        E::By => "`by`".to_string(),
        E::Name => "a name".to_string(),
        E::ModelName => "a model name".to_string(),
        E::Str => "a string in double quotes".to_string(),
        E::Number => "a number".to_string(),
        E::Money => "a dollar amount (`$0.50`)".to_string(),
        E::Percent => "a percentage (`80%`)".to_string(),
        E::Duration => "a duration (`250ms`, `30s`, `5m`, `1h`)".to_string(),
        E::Punct(p) => p.to_string(),
        E::End => "the end of the item".to_string(),
    }
}

/// Keywords a misspelling of which deserves a "did you mean".
pub(crate) fn keywords_of(groups: &BTreeSet<Expect>) -> Vec<&'static str> {
    let mut out = Vec::new();
    for g in groups {
        match g {
            Expect::ProviderProp => out.extend_from_slice(PROVIDER_PROPS),
            Expect::ModelProp => out.extend_from_slice(MODEL_PROPS),
            Expect::WorkloadProp => out.extend_from_slice(WORKLOAD_PROPS),
            Expect::Route => out.extend_from_slice(ROUTE_WORDS),
            Expect::Item => out.extend_from_slice(&["provider", "workload", "route", "defaults"]),
            Expect::Trigger => out.extend_from_slice(TRIGGERS),
            Expect::Rules => out.extend_from_slice(&["on", "retry", "allow_repeat"]),
            Expect::Tier => out.extend_from_slice(&["free", "subscription", "paid"]),
            Expect::DataClass => out.extend_from_slice(&["public", "internal", "private"]),
            Expect::Quality => out.extend_from_slice(&["low", "medium", "high"]),
            Expect::RecoveryMode => out.extend_from_slice(&["off", "buffer"]),
            Expect::Capability => out.extend_from_slice(&["tools", "json_schema", "vision", "stream"]),
            Expect::Strategy => out.extend_from_slice(&["cheapest", "fastest", "first", "weighted"]),
            Expect::Check => out.extend_from_slice(&["json_valid", "json_schema", "non_empty", "regex", "evaluator"]),
            Expect::SplitKey => out.extend_from_slice(&["user", "request", "metadata"]),
            Expect::Feature => out.extend_from_slice(&["tools", "images", "json_schema", "stream"]),
            Expect::Sim => out.extend_from_slice(&["latency", "errors", "rate_limits"]),
            Expect::Limit => out.extend_from_slice(&["rpm", "tpm", "concurrency"]),
            Expect::DefaultsProp => out.push("max_attempts"),
            Expect::TestProp => out.extend_from_slice(TEST_PROPS),
            Expect::YesNo => out.extend_from_slice(&["yes", "no"]),
            Expect::Period => out.extend_from_slice(&["day", "month"]),
            _ => {}
        }
    }
    out
}

/// Whether a property of some block could start where these rules were
/// expected: then what was found there is the mistake, not the property
/// before it.
pub(crate) fn expects_property(rules: &[Rule]) -> bool {
    rules.iter().copied().filter_map(group).any(|g| {
        matches!(
            g,
            Expect::ProviderProp | Expect::ModelProp | Expect::WorkloadProp | Expect::DefaultsProp | Expect::TestProp
        )
    })
}

/// The groups expected, deduplicated, in phrasing order.
pub(crate) fn groups(rules: &[Rule]) -> BTreeSet<Expect> {
    let mut set: BTreeSet<Expect> = rules.iter().copied().filter_map(group).collect();
    // Keywords shared between contexts (`data`, `route`, `latency`,
    // `timeout`, `max_attempts`, `simulate`) map to one group each; inside a
    // block, the block's property list already names them.
    let drop: &[Expect] = if set.contains(&Expect::WorkloadProp) {
        &[
            // `jurisdiction` is also a provider property.
            Expect::ProviderProp,
            Expect::Item,
            Expect::DefaultsProp,
            Expect::DataClass,
            Expect::Sim,
            Expect::Name,
        ]
    } else if set.contains(&Expect::ProviderProp) {
        &[
            Expect::DataClass,
            Expect::Sim,
            Expect::Trigger,
            Expect::Header,
            Expect::Name,
        ]
    } else if set.contains(&Expect::TestProp) {
        // `workload` and `request` also start an item and a split key.
        &[Expect::Item, Expect::Name, Expect::SplitKey]
    } else if set.contains(&Expect::ModelProp) {
        &[Expect::Sim]
    } else if set.contains(&Expect::Route) {
        // A route name is one of the route forms already listed.
        &[Expect::Name]
    } else {
        &[]
    };
    for d in drop {
        set.remove(d);
    }
    set
}

/// "a, b or c" from the groups.
pub(crate) fn phrase_all(groups: &BTreeSet<Expect>) -> Vec<String> {
    groups.iter().map(|g| phrase(*g)).collect()
}

/// Joins phrases as "a, b or c".
pub(crate) fn join_or(parts: &[String]) -> String {
    match parts {
        [] => "something else".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use miette::Diagnostic;

    use super::{MODEL_PROPS, PROVIDER_PROPS, WORKLOAD_PROPS};
    use crate::{SourceFile, parse};

    /// The errors of `text`, each as its message and where its primary
    /// label starts.
    fn errors(text: &str) -> Vec<(String, Option<usize>)> {
        let report = parse(&[SourceFile::new("t.route", text)]).unwrap_err();
        report
            .errors()
            .iter()
            .map(|e| {
                let primary = e.labels().into_iter().flatten().find(|l| l.primary());
                (e.to_string(), primary.map(|l| l.offset()))
            })
            .collect()
    }

    /// `provider_prop_start` and `workload_prop_start` in the grammar repeat
    /// the property keywords of their blocks; a keyword missing there would
    /// be read as a value again. The lists here are the ones the messages use.
    #[test]
    fn a_bare_value_refuses_every_property_keyword_of_its_block() {
        for (block, prop, words) in [
            ("provider p", "adapter", PROVIDER_PROPS),
            ("workload w", "task", WORKLOAD_PROPS),
        ] {
            for word in words {
                let text = format!("{block} {{\n  {prop}\n  {word}\n}}\n");
                let expected = format!("`{prop}` needs a value: expected a name, found `{word}`");
                let errors = errors(&text);
                assert!(
                    errors.iter().any(|(m, _)| *m == expected),
                    "`{prop}` followed by `{word}`: {errors:?}"
                );
            }
        }
    }

    /// Every property with a required value, left without it before the
    /// block's `}` or before the next property (on the next line, as
    /// written), is reported on its own keyword as needing a value, whatever
    /// the value's kind: a name, a number, a string, a word from a list.
    #[test]
    fn a_property_left_without_its_value_is_reported_on_its_keyword() {
        // Each block, as the text before and after the property, and a
        // property to follow it (the second if the first is the one tested).
        let blocks: [(&[&str], [&str; 2], [&str; 2]); 4] = [
            (PROVIDER_PROPS, ["provider p {\n", "}\n"], ["tier paid", "data public"]),
            (
                MODEL_PROPS,
                ["provider p {\n  model m {\n", "  }\n}\n"],
                ["context 1k", "id \"x\""],
            ),
            (
                WORKLOAD_PROPS,
                ["workload w {\n", "}\n"],
                ["quality low", "data public"],
            ),
            (
                &["max_attempts"],
                ["defaults {\n", "}\n"],
                ["max_attempts 2", "max_attempts 2"],
            ),
        ];
        for (props, [open, close], next) in blocks {
            // `idempotent` alone is complete: its duration is optional.
            for prop in props.iter().filter(|p| **p != "idempotent") {
                let next = if next[0].starts_with(&format!("{prop} ")) {
                    next[1]
                } else {
                    next[0]
                };
                for after in ["", next] {
                    let text = format!("{open}  {prop}\n  {after}\n{close}");
                    let at = text.find(&format!("  {prop}\n")).unwrap() + 2;
                    let errors = errors(&text);
                    let (message, offset) = &errors[0];
                    assert!(
                        message.starts_with(&format!("`{prop}` needs a value: expected ")) && *offset == Some(at),
                        "`{prop}` then `{after}`: {errors:?}"
                    );
                }
            }
        }
    }
}
