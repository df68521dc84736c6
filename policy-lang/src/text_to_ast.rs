//! Text to syntax tree: the pre-scan splits each file into items, pest parses
//! each item, and a walk over pest's pairs builds the [`Ast`]. After a syntax
//! error inside a block, `recover` blanks the broken property out and parses
//! the item again, so each broken property is reported.
//!
//! The walk never unwraps: [`Kids`] hands out a parent's children by rule and
//! returns an internal-error diagnostic when the tree is not shaped as the
//! grammar promises. Literal problems (a bad number, an unknown escape) are
//! collected and the walk goes on, so one item can report several.

use std::sync::Arc;
use std::time::Duration;

use pest::Parser as _;
use pest::iterators::Pair;
use router_core::{Capability, CmpOp, DataClass, Feature, NumericFact, Quality, Strategy, Tier, Trigger};

use crate::ast::*;
use crate::code::Code;
use crate::diagnostic::Diag;
use crate::errors::{
    BadLiteralError, FileTooLargeError, NestingTooDeepError, ParseError, SyntaxError, UnclosedError,
    UnexpectedCloserError, UnknownEscapeError,
};
use crate::expected;
use crate::literal;
use crate::prescan::{self, DelimError, ItemScan, MAX_DEPTH};
use crate::report::CheckReport;
use crate::source::{MAX_FILE_BYTES, SourceFile, SourceMap, Span};

mod policy_tests;
mod recover;
mod routes;
mod syntax_errors;

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
pub(crate) struct PolicyParser;

/// Parses every file of a policy. All files are parsed even when one fails,
/// so the report has every syntax error.
pub(crate) fn parse_files(files: &[SourceFile]) -> Result<Ast, CheckReport> {
    let src = Arc::new(SourceMap::new(files));
    let mut report = CheckReport::new();
    let mut out = Vec::with_capacity(files.len());
    let mut strings = Vec::new();
    let mut names = Vec::new();
    for i in 0..src.len() {
        let Some((base, file)) = src.file(i) else {
            continue;
        };
        let mut b = Builder {
            src: &src,
            base,
            errors: Vec::new(),
            strings: Vec::new(),
            names: Vec::new(),
        };
        let items = b.file(file);
        for e in b.errors {
            report.parse_error(e);
        }
        strings.extend(b.strings);
        names.extend(b.names);
        out.push(items);
    }
    if report.passed() {
        Ok(Ast {
            src,
            files: out,
            strings,
            names,
        })
    } else {
        report.sort();
        Err(report)
    }
}

/// A walk over one file.
struct Builder<'s> {
    src: &'s Arc<SourceMap>,
    /// The file's base offset in the policy's offset space.
    base: usize,
    errors: Vec<ParseError>,
    strings: Vec<Str>,
    names: Vec<Ident>,
}

/// The tree was not shaped as the grammar promises: a bug, reported as a
/// diagnostic rather than a panic.
struct Internal {
    span: Span,
    what: String,
}

type R<T> = Result<T, Internal>;

fn is_punct(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::open_brace
            | Rule::close_brace
            | Rule::open_bracket
            | Rule::close_bracket
            | Rule::open_paren
            | Rule::close_paren
            | Rule::equals
            | Rule::arrow
            | Rule::colon
            | Rule::slash
            | Rule::EOI
    )
}

/// A parent's children, punctuation skipped, handed out by rule.
struct Kids<'i> {
    pairs: std::iter::Peekable<std::vec::IntoIter<Pair<'i, Rule>>>,
    parent: Rule,
    span: Span,
}

impl<'i> Kids<'i> {
    fn next(&mut self) -> R<Pair<'i, Rule>> {
        self.pairs.next().ok_or_else(|| Internal {
            span: self.span,
            what: format!("`{:?}` ended early", self.parent),
        })
    }

    fn expect(&mut self, rule: Rule) -> R<Pair<'i, Rule>> {
        let p = self.next()?;
        if p.as_rule() == rule {
            Ok(p)
        } else {
            Err(Internal {
                span: self.span,
                what: format!(
                    "`{:?}` held `{:?}` where `{:?}` belongs",
                    self.parent,
                    p.as_rule(),
                    rule
                ),
            })
        }
    }

    fn peek(&mut self) -> Option<Rule> {
        self.pairs.peek().map(Pair::as_rule)
    }

    fn opt(&mut self, rule: Rule) -> Option<Pair<'i, Rule>> {
        if self.peek() == Some(rule) {
            self.pairs.next()
        } else {
            None
        }
    }

    fn rest(self) -> impl Iterator<Item = Pair<'i, Rule>> {
        self.pairs
    }
}

impl<'s> Builder<'s> {
    /// A pair's span, ending at its last token: pest counts whitespace and
    /// comments skipped by a failed repetition as part of the rule, and the
    /// formatter and labels want the text only.
    fn span(&self, p: &Pair<'_, Rule>) -> Span {
        let s = p.as_span();
        Span::new(self.base + s.start(), self.base + Self::token_end(p))
    }

    fn token_end(p: &Pair<'_, Rule>) -> usize {
        // Fast path: nothing skipped can end the span when it ends in a
        // non-blank byte and holds no comment.
        let text = p.as_str();
        if text.as_bytes().last().is_some_and(|b| !b.is_ascii_whitespace()) && !text.contains('#') {
            return p.as_span().end();
        }
        // Compound-atomic rules end with a literal (`"`) and skip nothing.
        if matches!(p.as_rule(), Rule::string | Rule::target | Rule::metadata_key) {
            return p.as_span().end();
        }
        // Iterative descent to the last leaf; depth is bounded by the
        // pre-scan's nesting limit anyway.
        // Empty children (an absent `rules`) sit after the skipped text, so
        // only children that hold text count.
        let mut current = p.clone();
        loop {
            let span = current.as_span();
            if span.start() == span.end() {
                return span.start();
            }
            if matches!(current.as_rule(), Rule::string | Rule::target | Rule::metadata_key) {
                return span.end();
            }
            match current
                .clone()
                .into_inner()
                .filter(|c| c.as_span().end() > c.as_span().start())
                .last()
            {
                Some(last) => current = last,
                None => return span.end(),
            }
        }
    }

    fn kids<'i>(&self, p: Pair<'i, Rule>) -> Kids<'i> {
        let span = self.span(&p);
        let parent = p.as_rule();
        let pairs: Vec<_> = p.into_inner().filter(|k| !is_punct(k.as_rule())).collect();
        Kids {
            pairs: pairs.into_iter().peekable(),
            parent,
            span,
        }
    }

    fn internal<T>(&self, p: &Pair<'_, Rule>) -> R<T> {
        Err(Internal {
            span: self.span(p),
            what: format!("unexpected `{:?}`", p.as_rule()),
        })
    }

    fn bad_literal(&mut self, span: Span, literal: &str, problem: String, help: &str) {
        let diag = Diag::at(Code::R0009, problem, self.src, span, "").help(help);
        self.errors.push(
            BadLiteralError {
                literal: literal.to_string(),
                diag,
            }
            .into(),
        );
    }

    // ---------------------------------------------------------------- files

    fn file(&mut self, file: &SourceFile) -> Vec<Item> {
        let text = file.text();
        if text.len() > MAX_FILE_BYTES {
            let size = text.len() as u64;
            let diag = Diag::bare(
                Code::R0003,
                format!(
                    "file `{}` is {} bytes, over the {} MiB limit",
                    file.name(),
                    size,
                    MAX_FILE_BYTES / (1024 * 1024)
                ),
            )
            .help("a policy is a few kilobytes of text; split it into several files or check that this is the file you meant");
            self.errors.push(
                FileTooLargeError {
                    file: file.name().to_string(),
                    size,
                    diag,
                }
                .into(),
            );
            return Vec::new();
        }
        let mut items = Vec::new();
        for scan in prescan::scan(text) {
            if !scan.errors.is_empty() {
                self.delimiter_errors(text, &scan);
                continue;
            }
            let Some(chunk) = scan.chunk else { continue };
            let Some(chunk_text) = text.get(chunk.start..chunk.end) else {
                continue;
            };
            let file_base = self.base;
            self.base = file_base + chunk.start;
            match PolicyParser::parse(Rule::item_only, chunk_text) {
                Ok(mut pairs) => {
                    let item = pairs
                        .next()
                        .map(|p| self.kids(p))
                        .ok_or(Internal {
                            span: Span::new(self.base, self.base + chunk_text.len()),
                            what: "no item".to_string(),
                        })
                        .and_then(|mut k| k.next())
                        .and_then(|p| self.item(p));
                    match item {
                        Ok(item) => items.push(item),
                        Err(e) => self.internal_error(e),
                    }
                }
                Err(e) => {
                    self.base = file_base;
                    if let Some(item) = self.item_errors(text, chunk, e, &scan) {
                        items.push(item);
                    }
                }
            }
            self.base = file_base;
        }
        items
    }

    // ---------------------------------------------------------------- items

    fn item(&mut self, p: Pair<'_, Rule>) -> R<Item> {
        match p.as_rule() {
            Rule::provider => self.provider(p).map(Item::Provider),
            Rule::workload => self.workload(p).map(Item::Workload),
            Rule::route_decl => self.route_decl(p).map(Item::Route),
            Rule::defaults => self.defaults(p).map(Item::Defaults),
            Rule::test_decl => self.test_decl(p).map(Item::Test),
            _ => self.internal(&p),
        }
    }

    fn name(&mut self, p: Pair<'_, Rule>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    fn def_name(&mut self, p: Pair<'_, Rule>) -> Ident {
        let id = self.name(p);
        self.names.push(id.clone());
        id
    }

    fn prop<T>(&self, kind: T, key: &Pair<'_, Rule>, whole: Span) -> Prop<T> {
        Prop {
            kind,
            key: self.span(key),
            span: whole,
        }
    }

    fn provider(&mut self, p: Pair<'_, Rule>) -> R<ProviderDecl> {
        let span = self.span(&p);
        let mut k = self.kids(p);
        k.expect(Rule::kw_provider)?;
        let name = self.def_name(k.expect(Rule::name)?);
        let mut props = Vec::new();
        for prop in k.rest() {
            props.push(self.provider_prop(prop)?);
        }
        Ok(ProviderDecl { name, props, span })
    }

    fn provider_prop(&mut self, p: Pair<'_, Rule>) -> R<Prop<ProviderProp>> {
        let whole = self.span(&p);
        let rule = p.as_rule();
        if rule == Rule::model {
            let key = p.clone().into_inner().next().map(|k| self.span(&k)).unwrap_or(whole);
            let model = self.model(p)?;
            return Ok(Prop {
                kind: ProviderProp::Model(model),
                key,
                span: whole,
            });
        }
        let mut k = self.kids(p);
        let key = k.next()?;
        let kind = match rule {
            Rule::p_adapter => ProviderProp::Adapter(self.name(k.expect(Rule::adapter_name)?)),
            Rule::p_base_url => ProviderProp::BaseUrl(self.string(k.expect(Rule::string)?)?),
            Rule::p_command => {
                let mut args = Vec::new();
                for s in k.rest() {
                    args.push(self.string(s)?);
                }
                ProviderProp::Command(args)
            }
            Rule::p_key => {
                let v = k.next()?;
                match v.as_rule() {
                    Rule::key_env => {
                        let mut e = self.kids(v);
                        e.expect(Rule::k_env)?;
                        ProviderProp::Key(KeySpec::Env(self.string(e.expect(Rule::string)?)?))
                    }
                    Rule::string => ProviderProp::Key(KeySpec::Literal(self.string(v)?)),
                    _ => return self.internal(&v),
                }
            }
            Rule::p_tier => ProviderProp::Tier(self.word(k.expect(Rule::tier)?, |s| match s {
                "free" => Some(Tier::Free),
                "subscription" => Some(Tier::Subscription),
                "paid" => Some(Tier::Paid),
                _ => None,
            })?),
            Rule::p_jurisdiction => ProviderProp::Jurisdiction(self.name(k.expect(Rule::name)?)),
            Rule::p_data => ProviderProp::Data(self.data_class(k.expect(Rule::data_class)?)?),
            Rule::p_trains => ProviderProp::TrainsOnInputs(self.yes_no(k.expect(Rule::yes_no)?)?),
            Rule::p_stores => ProviderProp::StoresInputs(self.yes_no(k.expect(Rule::yes_no)?)?),
            Rule::p_no_store => {
                k.expect(Rule::k_header)?;
                ProviderProp::NoStore(self.header_kv(k.expect(Rule::header_kv)?)?)
            }
            Rule::p_header => ProviderProp::Header(self.header_kv(k.expect(Rule::header_kv)?)?),
            Rule::p_limits => {
                let mut limits = Vec::new();
                for l in k.rest() {
                    let mut lk = self.kids(l);
                    let which = lk.next()?;
                    let kind = match which.as_rule() {
                        Rule::k_rpm => LimitKind::Rpm,
                        Rule::k_tpm => LimitKind::Tpm,
                        Rule::k_concurrency => LimitKind::Concurrency,
                        _ => return self.internal(&which),
                    };
                    let kind = Lit {
                        value: kind,
                        text: which.as_str().to_string(),
                        span: self.span(&which),
                    };
                    limits.push((kind, self.count(lk.expect(Rule::number)?)));
                }
                ProviderProp::Limits(limits)
            }
            Rule::p_timeout => ProviderProp::Timeout(self.duration(k.expect(Rule::duration)?)),
            Rule::p_simulate => ProviderProp::Simulate(self.simulate(k)?),
            Rule::f_timeouts | Rule::f_breaker | Rule::f_retry_after_wait | Rule::f_cooldown => {
                ProviderProp::Failure(self.failure_prop(key.as_rule(), k)?)
            }
            _ => return self.internal(&key),
        };
        Ok(self.prop(kind, &key, whole))
    }

    fn simulate(&mut self, k: Kids<'_>) -> R<Vec<SimItem>> {
        let mut items = Vec::new();
        for item in k.rest() {
            let mut ik = self.kids(item);
            let inner = ik.next()?;
            let rule = inner.as_rule();
            let mut k2 = self.kids(inner);
            k2.next()?;
            items.push(match rule {
                Rule::sim_latency => {
                    let p50 = self.duration(k2.expect(Rule::duration)?);
                    let p95 = match k2.opt(Rule::k_p95) {
                        Some(_) => Some(self.duration(k2.expect(Rule::duration)?)),
                        None => None,
                    };
                    SimItem::Latency { p50, p95 }
                }
                Rule::sim_errors => SimItem::Errors(self.percent(k2.expect(Rule::percent)?)),
                Rule::sim_rate_limits => SimItem::RateLimits(self.percent(k2.expect(Rule::percent)?)),
                Rule::sim_stream_breaks => SimItem::StreamBreaks(self.percent(k2.expect(Rule::percent)?)),
                _ => {
                    return Err(Internal {
                        span: Span::new(self.base, self.base),
                        what: "simulate".to_string(),
                    });
                }
            });
        }
        Ok(items)
    }

    fn model(&mut self, p: Pair<'_, Rule>) -> R<ModelDecl> {
        let span = self.span(&p);
        let mut k = self.kids(p);
        k.expect(Rule::k_model)?;
        let name = self.def_name(k.expect(Rule::model_name)?);
        let mut props = Vec::new();
        for prop in k.rest() {
            let whole = self.span(&prop);
            let rule = prop.as_rule();
            let mut pk = self.kids(prop);
            let key = pk.next()?;
            let kind = match rule {
                Rule::m_id => ModelProp::Id(self.string(pk.expect(Rule::string)?)?),
                Rule::m_version => ModelProp::Version(self.string(pk.expect(Rule::string)?)?),
                Rule::m_price => {
                    let v = pk.next()?;
                    match v.as_rule() {
                        Rule::price_free => ModelProp::Price(PriceAst::Free),
                        Rule::price_in => {
                            let input = self.money(self.kids(v).expect(Rule::money)?);
                            let out = pk.expect(Rule::price_out)?;
                            let output = self.money(self.kids(out).expect(Rule::money)?);
                            ModelProp::Price(PriceAst::PerMillion { input, output })
                        }
                        _ => return self.internal(&v),
                    }
                }
                Rule::m_context => ModelProp::Context(self.count(pk.expect(Rule::number)?)),
                Rule::m_max_output => ModelProp::MaxOutput(self.count(pk.expect(Rule::number)?)),
                Rule::m_supports => ModelProp::Supports(self.capabilities(pk)?),
                Rule::p_simulate => ModelProp::Simulate(self.simulate(pk)?),
                _ => return self.internal(&key),
            };
            props.push(self.prop(kind, &key, whole));
        }
        Ok(ModelDecl { name, props, span })
    }

    fn workload(&mut self, p: Pair<'_, Rule>) -> R<WorkloadDecl> {
        let span = self.span(&p);
        let mut k = self.kids(p);
        k.expect(Rule::kw_workload)?;
        let name = self.def_name(k.expect(Rule::name)?);
        let mut props = Vec::new();
        for prop in k.rest() {
            let whole = self.span(&prop);
            let rule = prop.as_rule();
            let mut pk = self.kids(prop);
            let key = pk.next()?;
            let kind = match rule {
                Rule::w_task => WorkloadProp::Task(self.name(pk.expect(Rule::task_name)?)),
                Rule::w_quality => WorkloadProp::Quality(self.word(pk.expect(Rule::quality)?, |s| match s {
                    "low" => Some(Quality::Low),
                    "medium" => Some(Quality::Medium),
                    "high" => Some(Quality::High),
                    _ => None,
                })?),
                Rule::w_data => WorkloadProp::Data(self.data_class(pk.expect(Rule::data_class)?)?),
                Rule::w_max_tokens => WorkloadProp::MaxTokens(self.count(pk.expect(Rule::number)?)),
                Rule::w_latency => WorkloadProp::Latency(self.duration(pk.expect(Rule::duration)?)),
                Rule::w_max_cost => WorkloadProp::MaxCost(self.money(pk.expect(Rule::money)?)),
                Rule::w_requires => WorkloadProp::Requires(self.capabilities(pk)?),
                Rule::w_budget => {
                    let mut limits = Vec::new();
                    let mut alert = None;
                    while let Some(rule) = pk.peek() {
                        match rule {
                            Rule::budget_limit => {
                                let l = pk.next()?;
                                limits.push(self.budget_limit(l)?);
                            }
                            Rule::k_alert => {
                                pk.next()?;
                                alert = Some(self.percent(pk.expect(Rule::percent)?));
                            }
                            _ => {
                                let other = pk.next()?;
                                return self.internal(&other);
                            }
                        }
                    }
                    WorkloadProp::Budget { limits, alert }
                }
                Rule::w_max_attempts => WorkloadProp::MaxAttempts(self.count(pk.expect(Rule::number)?)),
                Rule::w_cache => WorkloadProp::Cache(self.duration(pk.expect(Rule::duration)?)),
                Rule::w_idempotent => WorkloadProp::Idempotent(pk.opt(Rule::duration).map(|d| self.duration(d))),
                Rule::w_stream_recovery => {
                    WorkloadProp::StreamRecovery(self.word(pk.expect(Rule::recovery_mode)?, |s| match s {
                        "off" => Some(router_core::StreamRecovery::Off),
                        "buffer" => Some(router_core::StreamRecovery::Buffer),
                        "continue" => Some(router_core::StreamRecovery::Continue),
                        _ => None,
                    })?)
                }
                Rule::w_alias => {
                    let mut names = Vec::new();
                    for s in pk.rest() {
                        names.push(self.string(s)?);
                    }
                    WorkloadProp::Alias(names)
                }
                Rule::w_route => WorkloadProp::Route(self.expr(pk.next()?)?),
                Rule::w_jurisdiction => {
                    let mut names = Vec::new();
                    for n in pk.rest() {
                        names.push(self.name(n));
                    }
                    WorkloadProp::Jurisdiction(names)
                }
                _ => return self.internal(&key),
            };
            props.push(self.prop(kind, &key, whole));
        }
        Ok(WorkloadDecl { name, props, span })
    }

    fn budget_limit(&mut self, p: Pair<'_, Rule>) -> R<BudgetLimit> {
        let span = self.span(&p);
        let mut k = self.kids(p);
        let first = k.next()?;
        let amount = match first.as_rule() {
            Rule::money => Amount::Usd(self.money(first)),
            Rule::number => {
                let n = self.count(first);
                k.expect(Rule::k_tokens)?;
                Amount::Tokens(n)
            }
            _ => return self.internal(&first),
        };
        let period = self.word(k.expect(Rule::period)?, |s| match s {
            "day" => Some(Period::Day),
            "month" => Some(Period::Month),
            _ => None,
        })?;
        Ok(BudgetLimit { amount, period, span })
    }

    fn route_decl(&mut self, p: Pair<'_, Rule>) -> R<RouteDecl> {
        let span = self.span(&p);
        let mut k = self.kids(p);
        k.expect(Rule::kw_route)?;
        let name = self.def_name(k.expect(Rule::name)?);
        let expr = self.expr(k.next()?)?;
        Ok(RouteDecl { name, expr, span })
    }

    fn defaults(&mut self, p: Pair<'_, Rule>) -> R<DefaultsDecl> {
        let span = self.span(&p);
        let mut k = self.kids(p);
        k.expect(Rule::kw_defaults)?;
        let mut props = Vec::new();
        for prop in k.rest() {
            let whole = self.span(&prop);
            let mut pk = self.kids(prop);
            let key = pk.next()?;
            let kind = match key.as_rule() {
                Rule::k_max_attempts => DefaultsProp::MaxAttempts(self.count(pk.expect(Rule::number)?)),
                rule => DefaultsProp::Failure(self.failure_prop(rule, pk)?),
            };
            props.push(self.prop(kind, &key, whole));
        }
        Ok(DefaultsDecl { props, span })
    }

    /// A failure setting, after its keyword (`key_rule`).
    fn failure_prop(&mut self, key_rule: Rule, mut k: Kids<'_>) -> R<FailureProp> {
        Ok(match key_rule {
            Rule::k_timeouts => FailureProp::Timeouts(self.stage_timeouts(k)?),
            Rule::k_breaker => match k.opt(Rule::breaker_off) {
                Some(off) => FailureProp::BreakerOff(self.span(&off)),
                None => {
                    let mut items = Vec::new();
                    for item in k.rest() {
                        let mut ik = self.kids(item);
                        let inner = ik.next()?;
                        let rule = inner.as_rule();
                        let mut k2 = self.kids(inner);
                        k2.next()?;
                        items.push(match rule {
                            Rule::b_failures => BreakerItem::Failures(self.count(k2.expect(Rule::number)?)),
                            Rule::b_eject => BreakerItem::Eject(self.duration(k2.expect(Rule::duration)?)),
                            Rule::b_max_eject => BreakerItem::MaxEject(self.duration(k2.expect(Rule::duration)?)),
                            _ => {
                                return Err(Internal {
                                    span: Span::new(self.base, self.base),
                                    what: "breaker".to_string(),
                                });
                            }
                        });
                    }
                    FailureProp::Breaker(items)
                }
            },
            Rule::k_retry_after_wait => FailureProp::RetryAfterWait(self.duration(k.expect(Rule::duration)?)),
            Rule::k_cooldown => FailureProp::Cooldown(self.word(k.expect(Rule::cooldown_scope)?, |s| match s {
                "per_model" => Some(router_core::CooldownScope::PerModel),
                "per_provider" => Some(router_core::CooldownScope::PerProvider),
                _ => None,
            })?),
            _ => {
                return Err(Internal {
                    span: Span::new(self.base, self.base),
                    what: "failure setting".to_string(),
                });
            }
        })
    }

    /// The `stage duration` items of a `timeouts` clause.
    pub(super) fn stage_timeouts(&mut self, k: Kids<'_>) -> R<Vec<(Lit<Stage>, Lit<Duration>)>> {
        let mut out = Vec::new();
        for item in k.rest() {
            let mut ik = self.kids(item);
            let word = ik.next()?;
            let stage = self.word(word, |s| match s {
                "connect" => Some(Stage::Connect),
                "first_token" => Some(Stage::FirstToken),
                "idle" => Some(Stage::Idle),
                "total" => Some(Stage::Total),
                _ => None,
            })?;
            out.push((stage, self.duration(ik.expect(Rule::duration)?)));
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- literals

    fn word<T>(&mut self, p: Pair<'_, Rule>, f: impl Fn(&str) -> Option<T>) -> R<Lit<T>> {
        match f(p.as_str()) {
            Some(value) => Ok(Lit {
                value,
                text: p.as_str().to_string(),
                span: self.span(&p),
            }),
            None => self.internal(&p),
        }
    }

    fn data_class(&mut self, p: Pair<'_, Rule>) -> R<Lit<DataClass>> {
        self.word(p, |s| match s {
            "public" => Some(DataClass::Public),
            "internal" => Some(DataClass::Internal),
            "private" => Some(DataClass::Private),
            _ => None,
        })
    }

    fn yes_no(&mut self, p: Pair<'_, Rule>) -> R<Lit<bool>> {
        self.word(p, |s| match s {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        })
    }

    fn capabilities(&mut self, k: Kids<'_>) -> R<Vec<Lit<Capability>>> {
        let mut out = Vec::new();
        for c in k.rest() {
            out.push(self.word(c, |s| Capability::ALL.into_iter().find(|c| c.as_str() == s))?);
        }
        Ok(out)
    }

    fn header_kv(&mut self, p: Pair<'_, Rule>) -> R<HeaderKv> {
        let mut k = self.kids(p);
        let name = self.string(k.expect(Rule::string)?)?;
        let value = self.string(k.expect(Rule::string)?)?;
        Ok(HeaderKv { name, value })
    }

    fn string(&mut self, p: Pair<'_, Rule>) -> R<Str> {
        let span = self.span(&p);
        let text = p.as_str().to_string();
        let raw = text.get(1..text.len().saturating_sub(1)).unwrap_or("");
        let value = match literal::unescape(raw) {
            Ok(v) => v,
            Err((offset, escape)) => {
                let start = span.start + 1 + offset;
                let diag = Diag::at(
                    Code::R0007,
                    format!("unknown escape `{escape}` in a string"),
                    self.src,
                    Span::new(start, start + escape.len()),
                    "not an escape",
                )
                .help("the escapes are `\\\\`, `\\\"`, `\\n`, `\\r`, `\\t` and `\\u{…}` with 1 to 6 hex digits; write a backslash as `\\\\`");
                self.errors.push(UnknownEscapeError { escape, diag }.into());
                String::new()
            }
        };
        let s = Lit { value, text, span };
        self.strings.push(s.clone());
        Ok(s)
    }

    fn count(&mut self, p: Pair<'_, Rule>) -> Lit<u64> {
        let span = self.span(&p);
        let text = p.as_str().to_string();
        let value = literal::count(&text).unwrap_or_else(|problem| {
            self.bad_literal(
                span,
                &text,
                problem,
                "write a whole number, optionally with `_` between digits or a `k`, `M` or `B` suffix",
            );
            0
        });
        Lit { value, text, span }
    }

    /// An arm's weight: a whole number, said in the words of where it is
    /// written (a fraction such as `0.5` is not rounded).
    fn weight(&mut self, p: Pair<'_, Rule>, percent: bool) -> Lit<u64> {
        let span = self.span(&p);
        let text = p.as_str().to_string();
        let value = literal::count(&text).unwrap_or_else(|problem| {
            let (fraction, help) = if percent {
                (
                    format!("split weight `{text}` is not a whole percentage"),
                    "split weights are whole percentages of calls that sum to 100, like `50: a, 50: b` or `99: a, 1: b`",
                )
            } else {
                (
                    format!("`select weighted` weight `{text}` is not a whole number"),
                    "weights are whole numbers, relative to each other: `3: a, 1: b` sends three calls to `a` for each one to `b`",
                )
            };
            let problem = if text.contains('.') { fraction } else { problem };
            self.bad_literal(span, &text, problem, help);
            0
        });
        Lit { value, text, span }
    }

    fn money(&mut self, p: Pair<'_, Rule>) -> Lit<u64> {
        let span = self.span(&p);
        let text = p.as_str().to_string();
        let value = literal::money(&text).unwrap_or_else(|problem| {
            self.bad_literal(
                span,
                &text,
                problem,
                "write dollars with at most nine decimals, like `$0.000125`",
            );
            0
        });
        Lit { value, text, span }
    }

    fn percent(&mut self, p: Pair<'_, Rule>) -> Lit<u32> {
        let span = self.span(&p);
        let text = p.as_str().to_string();
        let value = literal::percent(&text).unwrap_or_else(|problem| {
            self.bad_literal(
                span,
                &text,
                problem,
                "write a percentage from 0% to 100% with at most two decimals",
            );
            0
        });
        Lit { value, text, span }
    }

    fn duration(&mut self, p: Pair<'_, Rule>) -> Lit<Duration> {
        let span = self.span(&p);
        let text = p.as_str().to_string();
        let value = literal::duration(&text).unwrap_or_else(|problem| {
            self.bad_literal(
                span,
                &text,
                problem,
                "write a positive whole number of milliseconds or more, like `250ms`, `30s`, `5m` or `1h`",
            );
            Duration::from_millis(1)
        });
        Lit { value, text, span }
    }
}
