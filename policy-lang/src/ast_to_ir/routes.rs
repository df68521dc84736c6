//! Route expressions: references, targets and combinators become graph
//! nodes; splits get their salt, `free_first` its order, `match` its
//! reachability check.

use super::*;

impl Lowerer<'_> {
    /// Lowers `e` as a new node (or, for a reference, returns the named node).
    pub(super) fn lower_expr(&mut self, e: &Expr, owner: &str, path: &str) -> NodeId {
        if let ExprKind::Ref(name) = &e.kind {
            return self.reference(name);
        }
        let node = self.add(None, e.head, NodeKind::Unresolved);
        self.lower_into(node, e, &format!("{owner}{path}"));
        node
    }

    /// Lowers `e` into the existing node `node`; `salt` is the node's place.
    pub(super) fn lower_into(&mut self, node: NodeId, e: &Expr, salt: &str) {
        let kind = match &e.kind {
            ExprKind::Ref(name) => {
                let child = self.reference(name);
                self.edges.insert((node, child), name.span);
                NodeKind::Fallback {
                    children: vec![child],
                    free_first: false,
                    rules: ChainRules::default(),
                }
            }
            ExprKind::Target { provider, model } => match self.target(provider, model) {
                Some(target) => NodeKind::Target { target },
                None => NodeKind::Unresolved,
            },
            ExprKind::Fallback {
                free_first,
                items,
                rules,
            } => {
                let children = self.children(node, items.iter(), salt);
                if *free_first {
                    self.free_first.push(node);
                }
                NodeKind::Fallback {
                    children,
                    free_first: *free_first,
                    rules: self.rules(rules),
                }
            }
            ExprKind::Split { key, arms } => {
                let total: u64 = arms.iter().filter_map(|a| a.weight.as_ref()).map(|w| w.value).sum();
                if total != 100 {
                    self.split_weights(e, arms, total);
                }
                let children = self.children(node, arms.iter().map(|a| &a.expr), salt);
                let weights = arms.iter().map(|a| weight(a.weight.as_ref()));
                NodeKind::Split {
                    key: match &key.value {
                        SplitKeyAst::User => SplitKey::User,
                        SplitKeyAst::Request => SplitKey::Request,
                        SplitKeyAst::Metadata(k) => SplitKey::Metadata(k.clone()),
                    },
                    salt: salt.to_string(),
                    arms: weights.zip(children).collect(),
                }
            }
            ExprKind::Select { strategy, arms, rules } => {
                let children = self.children(node, arms.iter().map(|a| &a.expr), salt);
                let weights = arms.iter().map(|a| a.weight.as_ref().map_or(1, |w| weight(Some(w))));
                NodeKind::Select {
                    strategy: strategy.value,
                    children: weights.zip(children).collect(),
                    rules: self.rules(rules),
                }
            }
            ExprKind::Escalate { items, check, rules } => {
                let children = self.children(node, items.iter(), salt);
                if let CheckAst::Evaluator(w) = &check.value {
                    self.evaluators.insert(node, w.span);
                }
                NodeKind::Escalate {
                    children,
                    check: self.quality_check(check),
                    rules: self.rules(rules),
                }
            }
            ExprKind::Match { arms } => {
                let mut lowered = Vec::new();
                let mut otherwise = None;
                let exprs: Vec<&Expr> = arms.iter().map(|a| &a.expr).collect();
                let children = self.children(node, exprs.into_iter(), salt);
                let mut conds: Vec<Option<Condition>> = Vec::new();
                for (arm, child) in arms.iter().zip(children) {
                    match &arm.cond {
                        Some(c) => {
                            let c = self.condition(c);
                            conds.push(Some(c.clone()));
                            // Arms after an `else` are never taken (reported
                            // below) and do not belong in the IR.
                            if otherwise.is_none() {
                                lowered.push((c, child));
                            }
                        }
                        None => {
                            conds.push(None);
                            otherwise.get_or_insert(child);
                        }
                    }
                }
                self.unreachable_arms(arms, &conds);
                if otherwise.is_none() {
                    let diag = Diag::at(Code::R0205, "`match` has no `else` arm", self.src, e.head, "no `else`")
                        .help("add `else => ROUTE` as the last arm, for calls no `when` matches");
                    self.report.error(MatchWithoutElseError { diag });
                }
                NodeKind::Match {
                    arms: lowered,
                    otherwise,
                }
            }
        };
        self.set(node, kind);
    }

    pub(super) fn children<'e>(
        &mut self,
        parent: NodeId,
        items: impl Iterator<Item = &'e Expr>,
        salt: &str,
    ) -> Vec<NodeId> {
        let mut out = Vec::new();
        for (i, item) in items.enumerate() {
            let child = self.lower_expr(item, salt, &format!("/{i}"));
            let span = match &item.kind {
                ExprKind::Ref(name) => name.span,
                _ => item.head,
            };
            self.edges.entry((parent, child)).or_insert(span);
            out.push(child);
        }
        out
    }

    pub(super) fn reference(&mut self, name: &Ident) -> NodeId {
        if let Some(node) = self.routes.get(&name.name) {
            return *node;
        }
        let suggestion = names::did_you_mean(&name.name, self.routes.keys().map(String::as_str));
        let alike = suggestion.as_deref().and_then(|s| names::look_alike(&name.name, s));
        let mut diag = Diag::at(
            Code::R0101,
            format!("unknown route {}", q(&name.name)),
            self.src,
            name.span,
            suggestion_label(&suggestion, alike.as_deref(), "no route has this name"),
        );
        diag = if alike.is_some() {
            diag.help(names::LOOK_ALIKE_HELP)
        } else if self.provider_ids.contains_key(&name.name) {
            diag.help(format!(
                "{} is a provider; a target is written `{}/MODEL`",
                q(&name.name),
                name.name
            ))
        } else {
            diag.help("define it with `route NAME = …`, or write a target as `provider/model`")
        };
        self.report.error(UnknownNameError {
            kind: "route",
            name: name.name.clone(),
            suggestion,
            diag,
        });
        self.add(None, name.span, NodeKind::Unresolved)
    }

    pub(super) fn target(&mut self, provider: &Ident, model: &Ident) -> Option<TargetId> {
        let Some(pid) = self.provider_ids.get(&provider.name).copied() else {
            let suggestion = names::did_you_mean(&provider.name, self.provider_ids.keys().map(String::as_str));
            let alike = suggestion.as_deref().and_then(|s| names::look_alike(&provider.name, s));
            let diag = Diag::at(
                Code::R0101,
                format!("unknown provider {}", q(&provider.name)),
                self.src,
                provider.span,
                suggestion_label(&suggestion, alike.as_deref(), "no provider has this name"),
            )
            .help(match alike {
                Some(_) => names::LOOK_ALIKE_HELP,
                None => "define it with `provider NAME { … }`",
            });
            self.report.error(UnknownNameError {
                kind: "provider",
                name: provider.name.clone(),
                suggestion,
                diag,
            });
            return None;
        };
        let p = self.providers.get(pid.0 as usize)?;
        let found = p
            .targets
            .iter()
            .copied()
            .find(|t| self.targets.get(t.0 as usize).is_some_and(|t| t.model == model.name));
        if found.is_none() {
            let models: Vec<&str> = p
                .targets
                .iter()
                .filter_map(|t| self.targets.get(t.0 as usize))
                .map(|t| t.model.as_str())
                .collect();
            let suggestion = names::did_you_mean(&model.name, models.iter().copied());
            let alike = suggestion.as_deref().and_then(|s| names::look_alike(&model.name, s));
            let help = if alike.is_some() {
                names::LOOK_ALIKE_HELP.to_string()
            } else if models.is_empty() {
                format!(
                    "provider {} declares no models; add `model {} {{ … }}` to it",
                    q(&p.name),
                    model.name
                )
            } else {
                format!(
                    "provider {} offers {}",
                    q(&p.name),
                    models.iter().map(|m| q(m)).collect::<Vec<_>>().join(", ")
                )
            };
            let diag = Diag::at(
                Code::R0101,
                format!("provider {} has no model {}", q(&provider.name), q(&model.name)),
                self.src,
                model.span,
                suggestion_label(&suggestion, alike.as_deref(), "no such model"),
            )
            .help(help);
            self.report.error(UnknownNameError {
                kind: "model",
                name: model.name.clone(),
                suggestion,
                diag,
            });
        }
        found
    }

    pub(super) fn split_weights(&mut self, e: &Expr, arms: &[Arm], total: u64) {
        let mut diag = Diag::at(
            Code::R0204,
            format!("split weights add up to {total}, not 100"),
            self.src,
            e.head,
            format!("weights total {total}"),
        );
        for a in arms {
            if let Some(w) = &a.weight {
                diag = diag.label(w.span, format!("{}", w.value));
            }
        }
        diag = diag.help("weights are percentages of calls: make them sum to exactly 100");
        self.report.error(SplitWeightsError { total, diag });
    }

    pub(super) fn rules(&mut self, items: &[RuleItem]) -> ChainRules {
        let mut rules = ChainRules::default();
        let mut seen = HashMap::new();
        for item in items {
            match item {
                RuleItem::On(triggers) => {
                    if let Some(t) = triggers.first()
                        && self.once(&mut seen, "on", t.trigger.span)
                    {
                        continue;
                    }
                    let mut set = Triggers::NONE;
                    for t in triggers {
                        set.insert(t.trigger.value);
                        if let Some(d) = &t.timeout {
                            rules.attempt_timeout = Some(d.value);
                        }
                    }
                    rules.triggers = set;
                }
                RuleItem::Retry(n) => {
                    if self.once(&mut seen, "retry", n.span) {
                        continue;
                    }
                    match u8::try_from(n.value) {
                        Ok(r) if r <= 10 => rules.retries = r,
                        _ => self.out_of_range(
                            n.span,
                            &n.text,
                            format!("`retry {}` is too many retries", n.text),
                            "retry a target at most 10 times before moving on",
                        ),
                    }
                }
                RuleItem::RetryClasses(classes, span) => {
                    if self.once(&mut seen, "retry", *span) {
                        continue;
                    }
                    let mut seen_class = HashMap::new();
                    for (class, n) in classes {
                        if self.once(&mut seen_class, class.value.as_str(), class.span) {
                            continue;
                        }
                        match u8::try_from(n.value) {
                            Ok(r) if r <= 10 => rules.retry_on.set(class.value, r),
                            _ => self.out_of_range(
                                n.span,
                                &n.text,
                                format!("`retry {} {}` is too many retries", class.text, n.text),
                                "retry a target at most 10 times before moving on",
                            ),
                        }
                    }
                }
                RuleItem::Timeouts(items, span) => {
                    if self.once(&mut seen, "timeouts", *span) {
                        continue;
                    }
                    let mut set = router_core::AttemptTimeouts {
                        total: rules.attempt_timeout,
                        ..router_core::AttemptTimeouts::default()
                    };
                    self.stage_timeouts(items, &mut set);
                    rules.attempt_timeout = set.total;
                    set.total = None;
                    rules.timeouts = set;
                }
                RuleItem::AllowRepeat(span) => {
                    if !self.once(&mut seen, "allow_repeat", *span) {
                        rules.allow_repeat = true;
                    }
                }
            }
        }
        rules
    }

    pub(super) fn quality_check(&mut self, c: &Lit<CheckAst>) -> QualityCheck {
        match &c.value {
            CheckAst::JsonValid => QualityCheck::JsonValid,
            CheckAst::JsonSchema => QualityCheck::JsonSchema,
            CheckAst::NonEmpty => QualityCheck::NonEmpty,
            CheckAst::Regex(s) => {
                self.regex(s);
                QualityCheck::Regex(s.value.clone())
            }
            CheckAst::Evaluator(w) => match self.workload_ids.get(&w.name) {
                Some(id) => QualityCheck::Evaluator(*id),
                None => {
                    let suggestion = names::did_you_mean(&w.name, self.workload_ids.keys().map(String::as_str));
                    let alike = suggestion.as_deref().and_then(|s| names::look_alike(&w.name, s));
                    let diag = Diag::at(
                            Code::R0101,
                            format!("unknown workload {}", q(&w.name)),
                            self.src,
                            w.span,
                            suggestion_label(&suggestion, alike.as_deref(), "no workload has this name"),
                        )
                        .help(match alike {
                            Some(_) => names::LOOK_ALIKE_HELP,
                            None => "an evaluator is another workload that judges the answer; define it with `workload NAME { … }`",
                        });
                    self.report.error(UnknownNameError {
                        kind: "workload",
                        name: w.name.clone(),
                        suggestion,
                        diag,
                    });
                    QualityCheck::NonEmpty
                }
            },
        }
    }

    /// Compiles a `regex("…")` pattern as the runtime will, with the
    /// `regex` crate and its default limits, so a pattern that could never
    /// match anything is an error now rather than a failed check per call.
    fn regex(&mut self, s: &Str) {
        let Err(e) = regex::Regex::new(&s.value) else {
            return;
        };
        let reason = regex_reason(&e);
        let shown: String = s.value.chars().take(40).collect();
        let ellipsis = if shown.len() < s.value.len() { "…" } else { "" };
        let diag = Diag::at(
            Code::R0107,
            format!("`regex` check pattern `{shown}{ellipsis}` does not compile"),
            self.src,
            s.span,
            "not a valid regex",
        )
        .help(format!(
            "the `regex` crate, which the runtime compiles checks with, says: {reason}"
        ));
        self.report.error(InvalidRegexError {
            pattern: s.value.clone(),
            reason,
            diag,
        });
    }

    pub(super) fn unreachable_arms(&mut self, arms: &[MatchArm], conds: &[Option<Condition>]) {
        let refs: Vec<Option<&Condition>> = conds.iter().map(Option::as_ref).collect();
        for (i, cause) in matches::unreachable(&refs) {
            let Some(arm) = arms.get(i) else { continue };
            let (label, help, other) = match cause {
                Cause::Never => (
                    "this condition is never true".to_string(),
                    "no request satisfies it; fix the condition or remove the arm".to_string(),
                    None,
                ),
                Cause::Arm(j) => (
                    "never taken".to_string(),
                    "arms are tried in order and the first that holds wins: move this arm above the one that takes its calls, or remove it".to_string(),
                    arms.get(j),
                ),
                Cause::Arms => (
                    "never taken".to_string(),
                    "the arms above take every call this one would; move it up or remove it".to_string(),
                    None,
                ),
            };
            let mut diag = Diag::at(
                Code::R0206,
                format!("`match` arm {} can never be taken", i + 1),
                self.src,
                arm.head,
                label,
            )
            .help(help);
            if let Some(other) = other {
                let what = if other.cond.is_some() {
                    "this arm takes every call it would"
                } else {
                    "`else` takes every call after it"
                };
                diag = diag.label(other.head, what);
            }
            self.report.error(UnreachableArmError { arm: i + 1, diag });
        }
    }

    pub(super) fn condition(&mut self, c: &Cond) -> Condition {
        lower_cond(c, &mut |t: &Ident| self.task_name(t))
    }

    pub(super) fn task_name(&mut self, t: &Ident) -> Task {
        Task::from_keyword(&t.name).unwrap_or_else(|| {
            let suggestion = names::did_you_mean(&t.name, Task::ALL.iter().map(|t| t.as_str()));
            let diag = Diag::at(
                Code::R0104,
                format!("unknown task {}", q(&t.name)),
                self.src,
                t.span,
                match &suggestion {
                    Some(s) => format!("did you mean {}?", q(s)),
                    None => "not a task".to_string(),
                },
            )
            .help(format!(
                "tasks are {}",
                Task::ALL.iter().map(|t| q(t.as_str())).collect::<Vec<_>>().join(", ")
            ));
            self.report.error(UnknownTaskError {
                task: t.name.clone(),
                suggestion,
                diag,
            });
            Task::Chat
        })
    }

    /// Sorts each `free_first` node's children by the lowest tier they reach.
    pub(super) fn sort_free_first(&mut self) {
        let tiers = self.lowest_tiers();
        for node in self.free_first.clone() {
            let Some(NodeKind::Fallback { children, .. }) = self.graph.get(node).map(|n| n.kind.clone()) else {
                continue;
            };
            let mut keyed: Vec<(Option<Tier>, NodeId)> =
                children.iter().map(|c| (tiers.get(c).copied().flatten(), *c)).collect();
            self.no_free_target(node, &keyed);
            // Unresolved children (no tier) go last; `sort_by_key` is stable.
            keyed.sort_by_key(|(t, _)| t.map_or(3, |t| t as u8));
            if let Some(RouteNode {
                kind: NodeKind::Fallback { children, .. },
                ..
            }) = self.graph.get_mut(node)
            {
                *children = keyed.into_iter().map(|(_, c)| c).collect();
            }
        }
    }

    /// `W0308`: a `free_first` none of whose candidates reaches a free
    /// target orders nothing free first. Not judged when a candidate reaches
    /// no target at all (an unresolved name, already an error).
    fn no_free_target(&mut self, node: NodeId, keyed: &[(Option<Tier>, NodeId)]) {
        let Some(tiers) = keyed.iter().map(|(t, _)| *t).collect::<Option<Vec<Tier>>>() else {
            return;
        };
        let Some(lowest) = tiers.iter().copied().min() else {
            return;
        };
        if lowest == Tier::Free {
            return;
        }
        let head = self.heads.get(node.0 as usize).copied().unwrap_or_default();
        let diag = Diag::at(
            Code::W0308,
            "`free_first` has no free target",
            self.src,
            head,
            format!("the cheapest tier here is `{}`", lowest.as_str()),
        )
        .help(
            "`free_first` tries free targets first, then subscription, then paid; with no provider of `tier free` below it, it is a `fallback` in tier order: write `fallback` if that is what you mean, or add a free target",
        );
        self.report.warning(NoFreeTargetWarning {
            lowest: lowest.as_str().to_string(),
            diag,
        });
    }

    /// The lowest tier each node below a `free_first` reaches (`None`: no
    /// target, or only through a cycle, which the cycle check reports).
    /// Bottom-up over an iterative post-order, so a chain of named routes
    /// of any length is fine.
    pub(super) fn lowest_tiers(&self) -> HashMap<NodeId, Option<Tier>> {
        let children = |n: NodeId| self.graph.get(n).map(|n| n.kind.children()).unwrap_or_default();
        let roots: Vec<NodeId> = self.free_first.iter().flat_map(|n| children(*n)).collect();
        let mut tiers: HashMap<NodeId, Option<Tier>> = HashMap::new();
        for node in walk::postorder(roots, children) {
            let Some(kind) = self.graph.get(node).map(|n| &n.kind) else {
                continue;
            };
            let tier = match kind {
                NodeKind::Target { target } => self
                    .targets
                    .get(target.0 as usize)
                    .and_then(|t| self.providers.get(t.provider.0 as usize))
                    .map(|p| p.tier),
                other => other
                    .children()
                    .iter()
                    .filter_map(|c| tiers.get(c).copied().flatten())
                    .min(),
            };
            tiers.insert(node, tier);
        }
        tiers
    }
}

/// The label of an unknown name: how it differs from a look-alike that is
/// defined, else "did you mean", else `none`.
fn suggestion_label(suggestion: &Option<String>, alike: Option<&str>, none: &str) -> String {
    match (alike, suggestion) {
        (Some(alike), _) => alike.to_string(),
        (None, Some(s)) => format!("did you mean {}?", q(s)),
        (None, None) => none.to_string(),
    }
}

/// The `regex` crate's reason, on one line: its syntax errors repeat the
/// pattern with carets and end in `error: REASON`.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    let line = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .or_else(|| text.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("not a valid pattern")
        .trim();
    let line = line.strip_suffix('.').unwrap_or(line);
    let mut chars = line.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "not a valid pattern".to_string(),
    }
}

fn weight(w: Option<&Lit<u64>>) -> u32 {
    w.map_or(0, |w| u32::try_from(w.value).unwrap_or(u32::MAX))
}

/// Lowers a condition; `task` resolves task names (reporting unknown ones).
fn lower_cond(c: &Cond, task: &mut dyn FnMut(&Ident) -> Task) -> Condition {
    match &c.kind {
        CondKind::Or(parts) => Condition::Any(parts.iter().map(|p| lower_cond(p, task)).collect()),
        CondKind::And(parts) => Condition::All(parts.iter().map(|p| lower_cond(p, task)).collect()),
        CondKind::Not { times, inner } => {
            let inner = lower_cond(inner, task);
            if times % 2 == 0 {
                inner
            } else {
                Condition::Not(Box::new(inner))
            }
        }
        CondKind::Paren(inner) => lower_cond(inner, task),
        CondKind::True => Condition::All(Vec::new()),
        CondKind::False => Condition::Any(Vec::new()),
        CondKind::Has(f) => Condition::Has(f.value),
        CondKind::HasMetadata(k) => Condition::HasMetadata(k.value.clone()),
        CondKind::Compare { fact, op, value } => Condition::Compare {
            fact: fact.value,
            op: op.value,
            value: value.value,
        },
        CondKind::Metadata { key, op, value } => Condition::Metadata {
            key: key.value.clone(),
            op: op.value,
            value: value.value.clone(),
        },
        CondKind::Task { op, task: t } => {
            let is = Condition::TaskIs(task(t));
            if op.value == CmpOp::Ne {
                Condition::Not(Box::new(is))
            } else {
                is
            }
        }
    }
}
