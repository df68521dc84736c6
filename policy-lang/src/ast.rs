//! The syntax tree: the policy as written, every piece with its span.
//!
//! Equality ignores spans and the spelling of literals (`5M` equals
//! `5_000_000`, `"\x41"`-style escapes equal their value), so two trees
//! compare by meaning-as-written: the formatter's round-trip property is
//! `parse(format(x)) == parse(x)`.
//!
//! Properties stay in a list, in source order, rather than in a struct: the
//! formatter keeps the author's order, and lowering reports a property given
//! twice with both places.

use std::sync::Arc;
use std::time::Duration;

use router_core::{Capability, CmpOp, DataClass, Feature, NumericFact, Quality, Strategy, Tier, Trigger};

use crate::source::{SourceMap, Span};

/// A parsed policy: the syntax trees of all its files.
///
/// Compare two with `==` to compare what they say, ignoring layout,
/// comments and literal spelling. Built by [`parse`](crate::parse); turned
/// into IR by [`lower`](crate::lower).
#[derive(Clone, Debug)]
pub struct Ast {
    pub(crate) src: Arc<SourceMap>,
    pub(crate) files: Vec<Vec<Item>>,
    /// Every string literal, for the secret scan.
    pub(crate) strings: Vec<Str>,
    /// Every name written at a definition, for the mixed-script check.
    pub(crate) names: Vec<Ident>,
}

impl PartialEq for Ast {
    fn eq(&self, other: &Ast) -> bool {
        self.files == other.files
    }
}

impl Ast {
    /// Number of top-level items (providers, workloads, routes, defaults).
    pub fn item_count(&self) -> usize {
        self.files.iter().map(Vec::len).sum()
    }

    pub(crate) fn items(&self) -> impl Iterator<Item = &Item> {
        self.files.iter().flatten()
    }
}

/// A name with where it is written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Ident {
    pub(crate) name: String,
    pub(crate) span: Span,
}

/// A literal value, its spelling and span; equality compares values only.
#[derive(Clone, Debug)]
pub(crate) struct Lit<T> {
    pub(crate) value: T,
    pub(crate) text: String,
    pub(crate) span: Span,
}

impl<T: PartialEq> PartialEq for Lit<T> {
    fn eq(&self, other: &Lit<T>) -> bool {
        self.value == other.value
    }
}

/// A string literal: its value and its spelling with quotes and escapes.
pub(crate) type Str = Lit<String>;

/// One property of a block: what it says, the span of its keyword (for
/// "given twice" labels) and of the whole property.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Prop<T> {
    pub(crate) kind: T,
    pub(crate) key: Span,
    pub(crate) span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Item {
    Provider(ProviderDecl),
    Workload(WorkloadDecl),
    Route(RouteDecl),
    Defaults(DefaultsDecl),
    Test(TestDecl),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ProviderDecl {
    pub(crate) name: Ident,
    pub(crate) props: Vec<Prop<ProviderProp>>,
    pub(crate) span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum KeySpec {
    Env(Str),
    Literal(Str),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HeaderKv {
    pub(crate) name: Str,
    pub(crate) value: Str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LimitKind {
    Rpm,
    Tpm,
    Concurrency,
}

impl LimitKind {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            LimitKind::Rpm => "rpm",
            LimitKind::Tpm => "tpm",
            LimitKind::Concurrency => "concurrency",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SimItem {
    Latency {
        p50: Lit<Duration>,
        p95: Option<Lit<Duration>>,
    },
    /// Basis points.
    Errors(Lit<u32>),
    /// Basis points.
    RateLimits(Lit<u32>),
    /// Basis points.
    StreamBreaks(Lit<u32>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ProviderProp {
    Adapter(Ident),
    BaseUrl(Str),
    Command(Vec<Str>),
    Key(KeySpec),
    Tier(Lit<Tier>),
    Jurisdiction(Ident),
    Data(Lit<DataClass>),
    TrainsOnInputs(Lit<bool>),
    StoresInputs(Lit<bool>),
    NoStore(HeaderKv),
    Header(HeaderKv),
    Limits(Vec<(Lit<LimitKind>, Lit<u64>)>),
    Timeout(Lit<Duration>),
    Simulate(Vec<SimItem>),
    Model(ModelDecl),
    Failure(FailureProp),
}

impl ProviderProp {
    /// The property's keyword, as in "`tier` is given twice".
    pub(crate) const fn keyword(&self) -> &'static str {
        match self {
            ProviderProp::Adapter(_) => "adapter",
            ProviderProp::BaseUrl(_) => "base_url",
            ProviderProp::Command(_) => "command",
            ProviderProp::Key(_) => "key",
            ProviderProp::Tier(_) => "tier",
            ProviderProp::Jurisdiction(_) => "jurisdiction",
            ProviderProp::Data(_) => "data",
            ProviderProp::TrainsOnInputs(_) => "trains_on_inputs",
            ProviderProp::StoresInputs(_) => "stores_inputs",
            ProviderProp::NoStore(_) => "no_store header",
            ProviderProp::Header(_) => "header",
            ProviderProp::Limits(_) => "limits",
            ProviderProp::Timeout(_) => "timeout",
            ProviderProp::Simulate(_) => "simulate",
            ProviderProp::Model(_) => "model",
            ProviderProp::Failure(f) => f.keyword(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ModelDecl {
    pub(crate) name: Ident,
    pub(crate) props: Vec<Prop<ModelProp>>,
    pub(crate) span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum PriceAst {
    Free,
    PerMillion { input: Lit<u64>, output: Lit<u64> },
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ModelProp {
    Id(Str),
    Version(Str),
    Price(PriceAst),
    Context(Lit<u64>),
    MaxOutput(Lit<u64>),
    Supports(Vec<Lit<Capability>>),
    Simulate(Vec<SimItem>),
}

impl ModelProp {
    pub(crate) const fn keyword(&self) -> &'static str {
        match self {
            ModelProp::Id(_) => "id",
            ModelProp::Version(_) => "version",
            ModelProp::Price(_) => "price",
            ModelProp::Context(_) => "context",
            ModelProp::MaxOutput(_) => "max_output",
            ModelProp::Supports(_) => "supports",
            ModelProp::Simulate(_) => "simulate",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WorkloadDecl {
    pub(crate) name: Ident,
    pub(crate) props: Vec<Prop<WorkloadProp>>,
    pub(crate) span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Period {
    Day,
    Month,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Amount {
    Tokens(Lit<u64>),
    /// Nano-dollars.
    Usd(Lit<u64>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BudgetLimit {
    pub(crate) amount: Amount,
    pub(crate) period: Lit<Period>,
    pub(crate) span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum WorkloadProp {
    Task(Ident),
    Quality(Lit<Quality>),
    Data(Lit<DataClass>),
    MaxTokens(Lit<u64>),
    Latency(Lit<Duration>),
    /// Nano-dollars per call.
    MaxCost(Lit<u64>),
    Requires(Vec<Lit<Capability>>),
    Budget {
        limits: Vec<BudgetLimit>,
        /// Basis points.
        alert: Option<Lit<u32>>,
    },
    MaxAttempts(Lit<u64>),
    Idempotent(Option<Lit<Duration>>),
    StreamRecovery(Lit<router_core::StreamRecovery>),
    /// `cache D`: answer identical requests from the gateway's response cache for `D`.
    Cache(Lit<Duration>),
    Alias(Vec<Str>),
    Route(Expr),
    Jurisdiction(Vec<Ident>),
}

impl WorkloadProp {
    pub(crate) const fn keyword(&self) -> &'static str {
        match self {
            WorkloadProp::Task(_) => "task",
            WorkloadProp::Quality(_) => "quality",
            WorkloadProp::Data(_) => "data",
            WorkloadProp::MaxTokens(_) => "max_tokens",
            WorkloadProp::Latency(_) => "latency",
            WorkloadProp::MaxCost(_) => "max_cost",
            WorkloadProp::Requires(_) => "requires",
            WorkloadProp::Budget { .. } => "budget",
            WorkloadProp::MaxAttempts(_) => "max_attempts",
            WorkloadProp::Idempotent(_) => "idempotent",
            WorkloadProp::StreamRecovery(_) => "stream_recovery",
            WorkloadProp::Cache(_) => "cache",
            WorkloadProp::Alias(_) => "alias",
            WorkloadProp::Route(_) => "route",
            WorkloadProp::Jurisdiction(_) => "jurisdiction",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RouteDecl {
    pub(crate) name: Ident,
    pub(crate) expr: Expr,
    pub(crate) span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DefaultsDecl {
    pub(crate) props: Vec<Prop<DefaultsProp>>,
    pub(crate) span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum DefaultsProp {
    MaxAttempts(Lit<u64>),
    Failure(FailureProp),
}

impl DefaultsProp {
    pub(crate) const fn keyword(&self) -> &'static str {
        match self {
            DefaultsProp::MaxAttempts(_) => "max_attempts",
            DefaultsProp::Failure(f) => f.keyword(),
        }
    }
}

/// Which of an attempt's timeouts a `timeouts` item sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    Connect,
    FirstToken,
    Idle,
    Total,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum BreakerItem {
    Failures(Lit<u64>),
    Eject(Lit<Duration>),
    MaxEject(Lit<Duration>),
}

/// A failure setting of a provider or of `defaults`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FailureProp {
    Timeouts(Vec<(Lit<Stage>, Lit<Duration>)>),
    /// `breaker off` (the span of `off`) or its settings.
    BreakerOff(Span),
    Breaker(Vec<BreakerItem>),
    RetryAfterWait(Lit<Duration>),
    Cooldown(Lit<router_core::CooldownScope>),
}

impl FailureProp {
    pub(crate) const fn keyword(&self) -> &'static str {
        match self {
            FailureProp::Timeouts(_) => "timeouts",
            FailureProp::BreakerOff(_) | FailureProp::Breaker(_) => "breaker",
            FailureProp::RetryAfterWait(_) => "retry_after_wait",
            FailureProp::Cooldown(_) => "cooldown",
        }
    }
}

/// A route expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Expr {
    pub(crate) kind: ExprKind,
    /// The whole expression.
    pub(crate) span: Span,
    /// Its head: the keyword (`fallback`), or the whole target or name.
    pub(crate) head: Span,
    /// The bracket closing its list or block (empty for targets and names);
    /// the formatter puts comments written before it back inside.
    pub(crate) close: Span,
}

/// A weighted or plain member of a combinator's list.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Arm {
    pub(crate) weight: Option<Lit<u64>>,
    pub(crate) expr: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SplitKeyAst {
    User,
    Request,
    Metadata(String),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RuleItem {
    On(Vec<TriggerAst>),
    Retry(Lit<u64>),
    /// `retry server_error 2, timeout 1`; the span is the whole clause.
    RetryClasses(Vec<(Lit<Trigger>, Lit<u64>)>, Span),
    /// `timeouts first_token 5s, …`; the span is the whole clause.
    Timeouts(Vec<(Lit<Stage>, Lit<Duration>)>, Span),
    AllowRepeat(Span),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TriggerAst {
    pub(crate) trigger: Lit<Trigger>,
    pub(crate) timeout: Option<Lit<Duration>>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CheckAst {
    JsonValid,
    JsonSchema,
    NonEmpty,
    Regex(Str),
    Evaluator(Ident),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MatchArm {
    /// `None` for `else`.
    pub(crate) cond: Option<Cond>,
    pub(crate) expr: Expr,
    /// From `when`/`else` to the end of the condition.
    pub(crate) head: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ExprKind {
    Target {
        provider: Ident,
        model: Ident,
    },
    Ref(Ident),
    Fallback {
        free_first: bool,
        items: Vec<Expr>,
        rules: Vec<RuleItem>,
    },
    Split {
        key: Lit<SplitKeyAst>,
        arms: Vec<Arm>,
    },
    Select {
        strategy: Lit<Strategy>,
        arms: Vec<Arm>,
        rules: Vec<RuleItem>,
    },
    Match {
        arms: Vec<MatchArm>,
    },
    Escalate {
        items: Vec<Expr>,
        check: Lit<CheckAst>,
        rules: Vec<RuleItem>,
    },
}

/// A `when` condition.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Cond {
    pub(crate) kind: CondKind,
    pub(crate) span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CondKind {
    Or(Vec<Cond>),
    And(Vec<Cond>),
    /// `not` written `times` times in a row (kept flat so a long run of
    /// `not`s cannot nest the tree deeply).
    Not {
        times: u32,
        inner: Box<Cond>,
    },
    Paren(Box<Cond>),
    True,
    False,
    Has(Lit<Feature>),
    HasMetadata(Lit<String>),
    Compare {
        fact: Lit<NumericFact>,
        op: Lit<CmpOp>,
        value: Lit<u64>,
    },
    Metadata {
        key: Lit<String>,
        op: Lit<CmpOp>,
        value: Str,
    },
    Task {
        op: Lit<CmpOp>,
        task: Ident,
    },
}

/// `test "name" { … }`: one call of a workload and what its decision must be.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TestDecl {
    pub(crate) name: Str,
    pub(crate) props: Vec<Prop<TestProp>>,
    pub(crate) span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TestProp {
    Workload(Ident),
    Request(Vec<FactAst>),
    State(Vec<StateAst>),
    Expect(ExpectAst),
}

/// `key value` (or a bare `key`, meaning `true`) in a test's `request` line.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FactAst {
    pub(crate) key: Ident,
    /// The value (a string's unescaped text, a number's value in digits,
    /// a word) and its spelling.
    pub(crate) value: Option<Lit<String>>,
}

/// A `provider/model` written in a test.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TargetAst {
    pub(crate) provider: Ident,
    pub(crate) model: Ident,
    pub(crate) span: Span,
}

impl TargetAst {
    pub(crate) fn text(&self) -> String {
        format!("{}/{}", self.provider.name, self.model.name)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StateAst {
    Ejected(TargetAst, Option<Lit<Duration>>),
    Cooling(Ident, Option<Lit<Duration>>),
    Unavailable(Ident),
    P95(TargetAst, Lit<Duration>),
    BudgetLeft(Amount),
    Halted(Span),
}

/// A provider, or one of its models, a test says is never reached.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ReachAst {
    Target(TargetAst),
    Provider(Ident),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ExpectAst {
    First(TargetAst),
    Plan(Vec<TargetAst>),
    Never(Vec<ReachAst>),
    Refused(Option<Ident>),
    Cost {
        /// `<` rather than `<=`.
        strict: Lit<bool>,
        /// Nano-dollars.
        max: Lit<u64>,
    },
    Snapshot,
}
