//! The canonical layout of a `.route` file, as `routec fmt` writes it.
//!
//! Two spaces per level; one property per line; route lists one candidate
//! per line; short value lists (`supports`, `alias`, …) on one line, one
//! item per line when longer than [`MAX_WIDTH`]; a list's rules after its
//! closing bracket, or, when that line is too long, one rule per line below
//! it (and a still-too-long `on` one trigger per line); one blank line
//! between top-level items, and inside blocks a blank line where the author
//! left one. Literals keep their spelling (`5M` stays `5M`).
//!
//! Comments are not in the syntax tree (pest skips them), so the pre-scan
//! collects them with their offsets and the printer puts each back before
//! the first line that starts after it, or at the end of the line it trails.
//! A comment written inside a construct printed on one line moves above that
//! line. Trailing comments of one block that the author aligned (two or
//! more at the same column) stay aligned: at that column when every line
//! still fits before it, else one space after the longest; any other
//! trailing comment follows its line after one space. Printing is driven by
//! the tree, so the output parses to an equal tree, and printing it again
//! changes nothing.

use std::collections::HashMap;

use crate::ast::*;
use crate::prescan::{self, Comment};
use crate::source::Span;

/// Lines longer than this break their value lists one item per line.
pub(crate) const MAX_WIDTH: usize = 100;

struct Printer<'a> {
    text: &'a str,
    comments: Vec<Comment>,
    next: usize,
    out: String,
    indent: usize,
    /// Source offset where the last printed line's text ended.
    last_end: usize,
    /// No blank line may come next (start of file or of a block).
    at_start: bool,
    /// A blank line must come next (between top-level items).
    force_blank: bool,
    /// The blocks open around the current line (ids; the file is 0).
    blocks: Vec<usize>,
    /// How many blocks have been opened, for fresh ids.
    opened: usize,
    /// Every trailing comment printed, for [`align`].
    trailing: Vec<Trailing>,
}

/// A comment printed at the end of a line, as `" #…"`.
struct Trailing {
    /// Offset in the output of the space before the `#`.
    at: usize,
    /// The printed line's width before that space, in characters.
    width: usize,
    /// The comment's column in the source, in characters from 0.
    column: usize,
    /// The block the line is in.
    block: usize,
}

/// Formats one file's items, given its text (for comments and blank lines).
pub(crate) fn format_items(text: &str, items: &[Item]) -> String {
    let mut p = Printer {
        text,
        comments: prescan::comments(text),
        next: 0,
        out: String::with_capacity(text.len() + 64),
        indent: 0,
        last_end: 0,
        at_start: true,
        force_blank: false,
        blocks: vec![0],
        opened: 0,
        trailing: Vec::new(),
    };
    for (i, item) in items.iter().enumerate() {
        p.force_blank = i > 0;
        match item {
            Item::Provider(x) => p.provider(x),
            Item::Workload(x) => p.workload(x),
            Item::Route(x) => p.route_decl(x),
            Item::Defaults(x) => p.defaults(x),
            Item::Test(x) => p.test(x),
        }
    }
    p.force_blank = !items.is_empty();
    p.flush_before(usize::MAX);
    align(&p.out, &p.trailing)
}

/// Pads trailing comments to their block's aligned column: comments of one
/// block sharing a source column keep it (or move one past the widest line
/// of the group, when one no longer fits); the rest keep one space.
///
/// Idempotent: a group printed at column `c` reads back as comments at `c`,
/// all fitting, so they stay; comments that happen to land on one column
/// form a group that fits where it is.
fn align(out: &str, trailing: &[Trailing]) -> String {
    // (block, source column) → (how many, one past the widest line).
    let mut target: HashMap<(usize, usize), (usize, usize)> = HashMap::new();
    for t in trailing {
        let entry = target.entry((t.block, t.column)).or_insert((0, 0));
        entry.0 += 1;
        entry.1 = entry.1.max(t.width + 1);
    }
    let mut aligned = String::with_capacity(out.len() + 16 * trailing.len());
    let mut copied = 0;
    for t in trailing {
        let Some(&(count, widest)) = target.get(&(t.block, t.column)) else {
            continue;
        };
        let column = if count >= 2 { t.column.max(widest) } else { t.width + 1 };
        aligned.push_str(out.get(copied..t.at).unwrap_or(""));
        for _ in t.width..column {
            aligned.push(' ');
        }
        copied = t.at + 1;
    }
    aligned.push_str(out.get(copied..).unwrap_or(""));
    aligned
}

impl Printer<'_> {
    // ---------------------------------------------------------------- lines

    fn blank_line_before(&mut self, start: usize) {
        let gap = self.text.get(self.last_end.min(start)..start).unwrap_or("");
        let blank_in_source = gap.matches('\n').count() >= 2;
        if !self.at_start && (self.force_blank || blank_in_source) && !self.out.is_empty() {
            self.out.push('\n');
        }
        self.force_blank = false;
        self.at_start = false;
    }

    fn push_indent(&mut self) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
    }

    /// Prints every comment starting before `offset` on its own line.
    fn flush_before(&mut self, offset: usize) {
        while let Some(c) = self.comments.get(self.next).copied() {
            if c.start >= offset {
                break;
            }
            self.blank_line_before(c.start);
            self.push_indent();
            self.out.push_str(self.text.get(c.start..c.end).unwrap_or("#"));
            self.out.push('\n');
            self.last_end = c.end;
            self.next += 1;
        }
    }

    /// Prints one line whose text comes from source `start..end`, with the
    /// comments before it and the one trailing it.
    fn line(&mut self, start: usize, end: usize, text: &str) {
        self.flush_before(end);
        self.blank_line_before(start);
        self.push_indent();
        self.out.push_str(text);
        self.last_end = end;
        self.trailing_comment(end, &[' ', '\t', ';', ',', '[', '{']);
        self.out.push('\n');
    }

    /// Appends the comment after source offset `end`, if only `gap` characters
    /// lie between them, as `" #…"`, and records it for [`align`].
    fn trailing_comment(&mut self, end: usize, gap: &[char]) {
        let Some(c) = self.comments.get(self.next).copied() else {
            return;
        };
        let between = self.text.get(end..c.start).unwrap_or("\n");
        if !between.chars().all(|ch| gap.contains(&ch)) {
            return;
        }
        let line_start = self.out.rfind('\n').map_or(0, |i| i + 1);
        let source_line = self
            .text
            .get(..c.start)
            .and_then(|t| t.rfind('\n'))
            .map_or(0, |i| i + 1);
        self.trailing.push(Trailing {
            at: self.out.len(),
            width: self.out.get(line_start..).map_or(0, |l| l.chars().count()),
            column: self.text.get(source_line..c.start).map_or(0, |l| l.chars().count()),
            block: self.blocks.last().copied().unwrap_or(0),
        });
        self.out.push(' ');
        self.out.push_str(self.text.get(c.start..c.end).unwrap_or("#"));
        self.last_end = c.end;
        self.next += 1;
    }

    /// Whether a comment not yet printed lies between the two offsets
    /// (inside a block that would otherwise print as `{}`).
    fn comment_between(&self, start: usize, end: usize) -> bool {
        self.comments[self.next.min(self.comments.len())..]
            .iter()
            .take_while(|c| c.start < end)
            .any(|c| c.start >= start)
    }

    /// A line that opens a block: what follows may not start with a blank.
    fn open(&mut self, start: usize, end: usize, text: &str) {
        self.line(start, end, text);
        self.indent += 1;
        self.opened += 1;
        self.blocks.push(self.opened);
        self.at_start = true;
    }

    /// Closes a block at source `close`: comments before it stay inside.
    fn close(&mut self, close: Span, end: usize, text: &str) {
        // Comments before the end of the closing line (between `]` and the
        // rules after it, say) stay inside the block, so printing twice
        // puts them in the same place.
        self.flush_before(end.max(close.start));
        self.indent = self.indent.saturating_sub(1);
        if self.blocks.len() > 1 {
            self.blocks.pop();
        }
        self.at_start = true; // no blank line before a closing bracket
        self.line(close.start, end.max(close.end), text);
    }

    /// A property with a value list: on one line when it fits, else one
    /// item per line under the keyword.
    fn list_line(&mut self, start: usize, end: usize, head: &str, items: &[String], sep: &str) {
        let one = format!("{head} {}", items.join(sep));
        if self.indent * 2 + one.chars().count() <= MAX_WIDTH || items.len() < 2 {
            self.line(start, end, &one);
            return;
        }
        self.flush_before(end);
        self.blank_line_before(start);
        self.push_indent();
        self.out.push_str(head);
        self.out.push('\n');
        let last = items.len() - 1;
        for (i, item) in items.iter().enumerate() {
            self.push_indent();
            self.out.push_str("  ");
            self.out.push_str(item);
            if i < last {
                self.out.push_str(sep.trim_end());
            }
            if i < last {
                self.out.push('\n');
            }
        }
        // The last item's line takes any trailing comment.
        self.last_end = end;
        self.trailing_comment(end, &[' ', '\t', ';', ',']);
        self.out.push('\n');
    }

    // ---------------------------------------------------------------- items

    fn provider(&mut self, p: &ProviderDecl) {
        self.open(p.span.start, p.name.span.end, &format!("provider {} {{", p.name.name));
        for prop in &p.props {
            let (s, e) = (prop.span.start, prop.span.end);
            match &prop.kind {
                ProviderProp::Adapter(a) => self.line(s, e, &format!("adapter {}", a.name)),
                ProviderProp::BaseUrl(u) => self.line(s, e, &format!("base_url {}", u.text)),
                ProviderProp::Command(args) => {
                    let items: Vec<String> = args.iter().map(|a| a.text.clone()).collect();
                    self.list_line(s, e, "command", &items, " ");
                }
                ProviderProp::Key(KeySpec::Env(v)) => self.line(s, e, &format!("key env({})", v.text)),
                ProviderProp::Key(KeySpec::Literal(v)) => self.line(s, e, &format!("key {}", v.text)),
                ProviderProp::Tier(t) => self.line(s, e, &format!("tier {}", t.text)),
                ProviderProp::Jurisdiction(j) => self.line(s, e, &format!("jurisdiction {}", j.name)),
                ProviderProp::Data(d) => self.line(s, e, &format!("data {}", d.text)),
                ProviderProp::TrainsOnInputs(b) => self.line(s, e, &format!("trains_on_inputs {}", b.text)),
                ProviderProp::StoresInputs(b) => self.line(s, e, &format!("stores_inputs {}", b.text)),
                ProviderProp::NoStore(h) => {
                    self.line(s, e, &format!("no_store header {} = {}", h.name.text, h.value.text))
                }
                ProviderProp::Header(h) => self.line(s, e, &format!("header {} = {}", h.name.text, h.value.text)),
                ProviderProp::Limits(list) => {
                    let items: Vec<String> = list.iter().map(|(k, n)| format!("{} {}", k.text, n.text)).collect();
                    self.list_line(s, e, "limits", &items, ", ");
                }
                ProviderProp::Timeout(d) => self.line(s, e, &format!("timeout {}", d.text)),
                ProviderProp::Simulate(items) => {
                    let items = sim_items(items);
                    self.list_line(s, e, "simulate", &items, ", ");
                }
                ProviderProp::Model(m) => self.model(m),
                ProviderProp::Failure(f) => self.failure(s, e, f),
            }
        }
        self.close(Span::new(p.span.end.saturating_sub(1), p.span.end), p.span.end, "}");
    }

    fn model(&mut self, m: &ModelDecl) {
        self.flush_before(m.span.start);
        let close = Span::new(m.span.end.saturating_sub(1), m.span.end);
        let has_comment = self.comment_between(m.name.span.end, close.start);
        if m.props.is_empty() && !has_comment {
            self.line(m.span.start, m.span.end, &format!("model {} {{}}", m.name.name));
            return;
        }
        self.open(m.span.start, m.name.span.end, &format!("model {} {{", m.name.name));
        for prop in &m.props {
            let (s, e) = (prop.span.start, prop.span.end);
            match &prop.kind {
                ModelProp::Id(v) => self.line(s, e, &format!("id {}", v.text)),
                ModelProp::Version(v) => self.line(s, e, &format!("version {}", v.text)),
                ModelProp::Price(PriceAst::Free) => self.line(s, e, "price free"),
                ModelProp::Price(PriceAst::PerMillion { input, output }) => {
                    self.line(s, e, &format!("price {}/M in, {}/M out", input.text, output.text))
                }
                ModelProp::Context(n) => self.line(s, e, &format!("context {}", n.text)),
                ModelProp::MaxOutput(n) => self.line(s, e, &format!("max_output {}", n.text)),
                ModelProp::Supports(caps) => {
                    let items: Vec<String> = caps.iter().map(|c| c.text.clone()).collect();
                    self.list_line(s, e, "supports", &items, ", ");
                }
                ModelProp::Simulate(items) => {
                    let items = sim_items(items);
                    self.list_line(s, e, "simulate", &items, ", ");
                }
            }
        }
        self.close(close, m.span.end, "}");
    }

    fn workload(&mut self, w: &WorkloadDecl) {
        self.open(w.span.start, w.name.span.end, &format!("workload {} {{", w.name.name));
        for prop in &w.props {
            let (s, e) = (prop.span.start, prop.span.end);
            match &prop.kind {
                WorkloadProp::Task(t) => self.line(s, e, &format!("task {}", t.name)),
                WorkloadProp::Quality(x) => self.line(s, e, &format!("quality {}", x.text)),
                WorkloadProp::Data(d) => self.line(s, e, &format!("data {}", d.text)),
                WorkloadProp::MaxTokens(n) => self.line(s, e, &format!("max_tokens {}", n.text)),
                WorkloadProp::Latency(d) => self.line(s, e, &format!("latency {}", d.text)),
                WorkloadProp::MaxCost(m) => self.line(s, e, &format!("max_cost {} per call", m.text)),
                WorkloadProp::Requires(caps) => {
                    let items: Vec<String> = caps.iter().map(|c| c.text.clone()).collect();
                    self.list_line(s, e, "requires", &items, ", ");
                }
                WorkloadProp::Budget { limits, alert } => {
                    let mut items: Vec<String> = limits
                        .iter()
                        .map(|l| {
                            let period = match l.period.value {
                                Period::Day => "day",
                                Period::Month => "month",
                            };
                            match &l.amount {
                                Amount::Tokens(n) => format!("{} tokens/{period}", n.text),
                                Amount::Usd(m) => format!("{}/{period}", m.text),
                            }
                        })
                        .collect();
                    if let (Some(a), Some(last)) = (alert, items.last_mut()) {
                        last.push_str(&format!(" alert {}", a.text));
                    }
                    self.list_line(s, e, "budget", &items, ", ");
                }
                WorkloadProp::MaxAttempts(n) => self.line(s, e, &format!("max_attempts {}", n.text)),
                WorkloadProp::Idempotent(None) => self.line(s, e, "idempotent"),
                WorkloadProp::Idempotent(Some(d)) => self.line(s, e, &format!("idempotent {}", d.text)),
                WorkloadProp::StreamRecovery(r) => self.line(s, e, &format!("stream_recovery {}", r.text)),
                WorkloadProp::Cache(d) => self.line(s, e, &format!("cache {}", d.text)),
                WorkloadProp::Jurisdiction(names) => {
                    let items: Vec<String> = names.iter().map(|n| n.name.clone()).collect();
                    self.list_line(s, e, "jurisdiction", &items, ", ");
                }
                WorkloadProp::Alias(names) => {
                    let items: Vec<String> = names.iter().map(|n| n.text.clone()).collect();
                    self.list_line(s, e, "alias", &items, ", ");
                }
                WorkloadProp::Route(expr) => self.expr("route ", s, expr),
            }
        }
        self.close(Span::new(w.span.end.saturating_sub(1), w.span.end), w.span.end, "}");
    }

    /// A failure setting of a provider or of `defaults`, on its own line.
    fn failure(&mut self, s: usize, e: usize, f: &FailureProp) {
        match f {
            FailureProp::Timeouts(items) => self.list_line(s, e, "timeouts", &stage_items(items), ", "),
            FailureProp::BreakerOff(_) => self.line(s, e, "breaker off"),
            FailureProp::Breaker(items) => {
                let items: Vec<String> = items
                    .iter()
                    .map(|i| match i {
                        BreakerItem::Failures(n) => format!("failures {}", n.text),
                        BreakerItem::Eject(d) => format!("eject {}", d.text),
                        BreakerItem::MaxEject(d) => format!("max_eject {}", d.text),
                    })
                    .collect();
                self.list_line(s, e, "breaker", &items, ", ");
            }
            FailureProp::RetryAfterWait(d) => self.line(s, e, &format!("retry_after_wait {}", d.text)),
            FailureProp::Cooldown(c) => self.line(s, e, &format!("cooldown {}", c.text)),
        }
    }

    fn route_decl(&mut self, r: &RouteDecl) {
        self.expr(&format!("route {} = ", r.name.name), r.span.start, &r.expr);
    }

    fn defaults(&mut self, d: &DefaultsDecl) {
        self.open(d.span.start, d.span.start, "defaults {");
        for prop in &d.props {
            match &prop.kind {
                DefaultsProp::MaxAttempts(n) => {
                    self.line(prop.span.start, prop.span.end, &format!("max_attempts {}", n.text));
                }
                DefaultsProp::Failure(f) => self.failure(prop.span.start, prop.span.end, f),
            }
        }
        self.close(Span::new(d.span.end.saturating_sub(1), d.span.end), d.span.end, "}");
    }

    fn test(&mut self, t: &TestDecl) {
        self.open(t.span.start, t.name.span.end, &format!("test {} {{", t.name.text));
        for prop in &t.props {
            let (s, e) = (prop.span.start, prop.span.end);
            match &prop.kind {
                TestProp::Workload(w) => self.line(s, e, &format!("workload {}", w.name)),
                TestProp::Request(facts) => {
                    let items: Vec<String> = facts
                        .iter()
                        .map(|f| match &f.value {
                            Some(v) => format!("{} {}", f.key.name, v.text),
                            None => f.key.name.clone(),
                        })
                        .collect();
                    self.list_line(s, e, "request", &items, ", ");
                }
                TestProp::State(items) => {
                    let items: Vec<String> = items.iter().map(state_text).collect();
                    self.list_line(s, e, "state", &items, ", ");
                }
                TestProp::Expect(ExpectAst::Plan(targets)) => {
                    let names: Vec<String> = targets.iter().map(TargetAst::text).collect();
                    let one = format!("expect plan [{}]", names.join(", "));
                    if self.indent * 2 + one.chars().count() <= MAX_WIDTH || targets.is_empty() {
                        self.line(s, e, &one);
                    } else {
                        let first = targets.first().map_or(s, |t| t.span.start);
                        self.open(s, first, "expect plan [");
                        for t in targets {
                            self.line(t.span.start, t.span.end, &t.text());
                        }
                        self.close(Span::new(e.saturating_sub(1), e), e, "]");
                    }
                }
                TestProp::Expect(ExpectAst::Never(reach)) => {
                    let items: Vec<String> = reach
                        .iter()
                        .map(|r| match r {
                            ReachAst::Target(t) => t.text(),
                            ReachAst::Provider(p) => p.name.clone(),
                        })
                        .collect();
                    self.list_line(s, e, "expect never", &items, ", ");
                }
                TestProp::Expect(x) => {
                    let text = match x {
                        ExpectAst::First(t) => format!("expect first {}", t.text()),
                        ExpectAst::Refused(None) => "expect refused".to_string(),
                        ExpectAst::Refused(Some(c)) => format!("expect refused {}", c.name),
                        ExpectAst::Cost { strict, max } => format!("expect cost {} {}", strict.text, max.text),
                        ExpectAst::Snapshot => "expect snapshot".to_string(),
                        ExpectAst::Plan(_) | ExpectAst::Never(_) => String::new(),
                    };
                    self.line(s, e, &text);
                }
            }
        }
        self.close(Span::new(t.span.end.saturating_sub(1), t.span.end), t.span.end, "}");
    }

    // ---------------------------------------------------------------- routes

    /// Prints `e` with `prefix` before its first line, which starts at
    /// source offset `start`.
    fn expr(&mut self, prefix: &str, start: usize, e: &Expr) {
        match &e.kind {
            ExprKind::Target { provider, model } => {
                self.line(start, e.span.end, &format!("{prefix}{}/{}", provider.name, model.name))
            }
            ExprKind::Ref(name) => self.line(start, e.span.end, &format!("{prefix}{}", name.name)),
            ExprKind::Fallback {
                free_first,
                items,
                rules,
            } => {
                let kw = if *free_first { "free_first" } else { "fallback" };
                let arms: Vec<(Option<(String, usize)>, &Expr)> = items.iter().map(|x| (None, x)).collect();
                self.block(&format!("{prefix}{kw}"), start, e, ('[', ']'), &arms, ("", rules));
            }
            ExprKind::Split { key, arms } => {
                let arms: Vec<(Option<(String, usize)>, &Expr)> = weighted(arms);
                self.block(
                    &format!("{prefix}split by {}", key.text),
                    start,
                    e,
                    ('{', '}'),
                    &arms,
                    ("", &[]),
                );
            }
            ExprKind::Select { strategy, arms, rules } => {
                let (brackets, list) = if arms.iter().any(|a| a.weight.is_some()) {
                    (('{', '}'), weighted(arms))
                } else {
                    (('[', ']'), arms.iter().map(|a| (None, &a.expr)).collect())
                };
                self.block(
                    &format!("{prefix}select {}", strategy.text),
                    start,
                    e,
                    brackets,
                    &list,
                    ("", rules),
                );
            }
            ExprKind::Escalate { items, check, rules } => {
                let arms: Vec<(Option<(String, usize)>, &Expr)> = items.iter().map(|x| (None, x)).collect();
                let check = format!(" check {}", check_text(&check.value));
                self.block(
                    &format!("{prefix}escalate"),
                    start,
                    e,
                    ('[', ']'),
                    &arms,
                    (&check, rules),
                );
            }
            ExprKind::Match { arms } => {
                let head = format!("{prefix}match");
                let has_comment = self.comment_between(e.head.end, e.close.start);
                if arms.is_empty() && !has_comment {
                    self.line(start, e.span.end, &format!("{head} {{}}"));
                    return;
                }
                self.open(start, e.head.end, &format!("{head} {{"));
                for arm in arms {
                    let arm_prefix = match &arm.cond {
                        Some(c) => format!("when {} => ", cond_text(c)),
                        None => "else => ".to_string(),
                    };
                    self.expr(&arm_prefix, arm.head.start, &arm.expr);
                }
                self.close(e.close, e.span.end, "}");
            }
        }
    }

    /// A combinator: `head [` or `head {`, one candidate per line, then the
    /// closing bracket followed by `check` (` check …` or nothing) and the
    /// rules.
    fn block(
        &mut self,
        head: &str,
        start: usize,
        e: &Expr,
        (open, close): (char, char),
        arms: &[(Option<(String, usize)>, &Expr)],
        (check, rules): (&str, &[RuleItem]),
    ) {
        let has_comment = self.comment_between(e.head.end, e.close.start);
        if arms.is_empty() && !has_comment {
            let text = with_rules(self.indent, &format!("{head} {open}{close}{check}"), rules);
            self.line(start, e.span.end, &text);
            return;
        }
        self.open(start, e.head.end, &format!("{head} {open}"));
        for (weight, arm) in arms {
            match weight {
                Some((w, at)) => self.expr(&format!("{w}: "), *at, arm),
                None => self.expr("", arm.span.start, arm),
            }
        }
        // The closing line is one level out.
        let text = with_rules(self.indent.saturating_sub(1), &format!("{close}{check}"), rules);
        self.close(e.close, e.span.end, &text);
    }
}

fn weighted(arms: &[Arm]) -> Vec<(Option<(String, usize)>, &Expr)> {
    arms.iter()
        .map(|a| (a.weight.as_ref().map(|w| (w.text.clone(), w.span.start)), &a.expr))
        .collect()
}

fn sim_items(items: &[SimItem]) -> Vec<String> {
    items
        .iter()
        .map(|i| match i {
            SimItem::Latency { p50, p95: None } => format!("latency {}", p50.text),
            SimItem::Latency { p50, p95: Some(p) } => format!("latency {} p95 {}", p50.text, p.text),
            SimItem::Errors(p) => format!("errors {}", p.text),
            SimItem::RateLimits(p) => format!("rate_limits {}", p.text),
            SimItem::StreamBreaks(p) => format!("stream_breaks {}", p.text),
        })
        .collect()
}

/// One rule as written: `on 429, timeout(15s)`, `retry 2`, `allow_repeat`.
fn rule_text(rule: &RuleItem) -> String {
    match rule {
        RuleItem::On(triggers) => format!("on {}", triggers_text(triggers).join(", ")),
        RuleItem::Retry(n) => format!("retry {}", n.text),
        RuleItem::RetryClasses(classes, _) => {
            let items: Vec<String> = classes.iter().map(|(c, n)| format!("{} {}", c.text, n.text)).collect();
            format!("retry {}", items.join(", "))
        }
        RuleItem::Timeouts(items, _) => format!("timeouts {}", stage_items(items).join(", ")),
        RuleItem::AllowRepeat(_) => "allow_repeat".to_string(),
    }
}

fn stage_items(items: &[(Lit<Stage>, Lit<std::time::Duration>)]) -> Vec<String> {
    items.iter().map(|(st, d)| format!("{} {}", st.text, d.text)).collect()
}

fn triggers_text(triggers: &[TriggerAst]) -> Vec<String> {
    triggers
        .iter()
        .map(|t| match &t.timeout {
            Some(d) => format!("{}({})", t.trigger.text, d.text),
            None => t.trigger.text.clone(),
        })
        .collect()
}

/// `first` (a list's closing bracket, with its `check`) followed by the
/// rules, for a line at `level`: on that line when it fits in
/// [`MAX_WIDTH`]; else one rule per line, a level deeper, and an `on` that
/// still does not fit one trigger per line below it.
fn with_rules(level: usize, first: &str, rules: &[RuleItem]) -> String {
    let parts: Vec<String> = rules.iter().map(rule_text).collect();
    let mut one = first.to_string();
    for part in &parts {
        one.push(' ');
        one.push_str(part);
    }
    if parts.is_empty() || level * 2 + one.chars().count() <= MAX_WIDTH {
        return one;
    }
    let pad = "  ".repeat(level + 1);
    let mut out = first.to_string();
    for (rule, part) in rules.iter().zip(&parts) {
        out.push('\n');
        out.push_str(&pad);
        match rule {
            RuleItem::On(triggers) if triggers.len() > 1 && pad.len() + part.chars().count() > MAX_WIDTH => {
                out.push_str("on");
                let items = triggers_text(triggers);
                let last = items.len() - 1;
                for (i, item) in items.iter().enumerate() {
                    out.push('\n');
                    out.push_str(&pad);
                    out.push_str("  ");
                    out.push_str(item);
                    if i < last {
                        out.push(',');
                    }
                }
            }
            _ => out.push_str(part),
        }
    }
    out
}

fn check_text(c: &CheckAst) -> String {
    match c {
        CheckAst::JsonValid => "json_valid".to_string(),
        CheckAst::JsonSchema => "json_schema".to_string(),
        CheckAst::NonEmpty => "non_empty".to_string(),
        CheckAst::Regex(s) => format!("regex({})", s.text),
        CheckAst::Evaluator(w) => format!("evaluator({})", w.name),
    }
}

/// A condition as written, spacing normalised; parentheses stay where the
/// author put them, so the tree is unchanged.
pub(crate) fn cond_text(c: &Cond) -> String {
    match &c.kind {
        CondKind::Or(parts) => parts.iter().map(cond_text).collect::<Vec<_>>().join(" or "),
        CondKind::And(parts) => parts.iter().map(cond_text).collect::<Vec<_>>().join(" and "),
        CondKind::Not { times, inner } => format!("{}{}", "not ".repeat(*times as usize), cond_text(inner)),
        CondKind::Paren(inner) => format!("({})", cond_text(inner)),
        CondKind::True => "true".to_string(),
        CondKind::False => "false".to_string(),
        CondKind::Has(f) => format!("has {}", f.text),
        CondKind::HasMetadata(k) => format!("has {}", k.text),
        CondKind::Compare { fact, op, value } => format!("{} {} {}", fact.text, op.text, value.text),
        CondKind::Metadata { key, op, value } => format!("{} {} {}", key.text, op.text, value.text),
        CondKind::Task { op, task } => format!("task {} {}", op.text, task.name),
    }
}

/// One item of a test's `state` line, as written in canonical form.
fn state_text(s: &StateAst) -> String {
    let out_for =
        |d: &Option<Lit<std::time::Duration>>| d.as_ref().map(|d| format!(" for {}", d.text)).unwrap_or_default();
    match s {
        StateAst::Ejected(t, d) => format!("ejected {}{}", t.text(), out_for(d)),
        StateAst::Cooling(p, d) => format!("cooling {}{}", p.name, out_for(d)),
        StateAst::Unavailable(p) => format!("unavailable {}", p.name),
        StateAst::P95(t, d) => format!("p95 {} {}", t.text(), d.text),
        StateAst::BudgetLeft(Amount::Tokens(n)) => format!("budget_left {} tokens", n.text),
        StateAst::BudgetLeft(Amount::Usd(m)) => format!("budget_left {}", m.text),
        StateAst::Halted(_) => "halted".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::SourceFile;

    fn fmt(text: &str) -> String {
        let once = match crate::format(&SourceFile::new("t.route", text)) {
            Ok(out) => out,
            Err(report) => panic!("{report}"),
        };
        let twice = crate::format(&SourceFile::new("t.route", once.as_str())).ok();
        assert_eq!(twice.as_deref(), Some(once.as_str()), "not idempotent");
        once
    }

    #[test]
    fn aligned_trailing_comments_stay_aligned_within_their_block() {
        // The model's comments are aligned with each other, at a column of
        // their own; the provider's two aligned ones keep theirs though
        // the indentation changes; the lone one gets one space.
        let text = "provider p {\n    adapter mock          # a\n  tier free               # b\n  data public   # lone\n  model m {\n    id \"x\"      # c\n    price free  # d\n  }\n}\n";
        let want = "provider p {\n  adapter mock            # a\n  tier free               # b\n  data public # lone\n  model m {\n    id \"x\"      # c\n    price free  # d\n  }\n}\n";
        assert_eq!(fmt(text), want);
    }

    #[test]
    fn an_aligned_group_moves_past_its_widest_line() {
        let text = "workload w {\n  data public # a\n  max_tokens 2000 # b\n  route p/m\n}\n";
        // Two comments at different columns: not a group.
        assert_eq!(fmt(text), text);
        // Aligned at column 15 without indentation; indented, `task
        // summarise` no longer fits before it, so both move one past it.
        let text = "workload w {\ndata public    # a\ntask summarise # b\nroute p/m\n}\n";
        assert_eq!(
            fmt(text),
            "workload w {\n  data public    # a\n  task summarise # b\n  route p/m\n}\n"
        );
    }

    #[test]
    fn long_rules_go_one_per_line_and_long_trigger_lists_one_per_line() {
        let triggers = "rate_limited, overloaded, server_error, connection_error, context_length, timeout(15s)";
        let text = format!("route r = fallback [ p/m ] on {triggers} retry 2\n");
        // It fits at the top level.
        assert_eq!(
            fmt(&text),
            format!("route r = fallback [\n  p/m\n] on {triggers} retry 2\n")
        );
        // Three levels in, it does not: rules below the bracket.
        let text = format!("route r = fallback [ fallback [ fallback [ p/m ] on {triggers} retry 2 ] ]\n");
        let want = format!(
            "route r = fallback [\n  fallback [\n    fallback [\n      p/m\n    ]\n      on {triggers}\n      retry 2\n  ]\n]\n"
        );
        assert_eq!(fmt(&text), want);
        // Deeper still, the `on` list itself wraps.
        let deep = format!(
            "route r = {}p/m ] on {triggers}, 429, 503 allow_repeat {}\n",
            "fallback [ ".repeat(9),
            "] ".repeat(8)
        );
        let out = fmt(&deep);
        assert!(
            out.contains("\n                  on\n                    rate_limited,\n"),
            "{out}"
        );
        assert!(
            out.contains("                    503\n                  allow_repeat\n"),
            "{out}"
        );
        assert!(out.lines().all(|l| l.chars().count() <= super::MAX_WIDTH), "{out}");
    }
}
