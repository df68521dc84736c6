//! Workload blocks, their aliases and the `defaults` block.

use super::*;

impl Lowerer<'_> {
    pub(super) fn workload(&mut self, w: &WorkloadDecl) -> (Workload, WorkloadInfo) {
        let mut seen = HashMap::new();
        let mut info = WorkloadInfo {
            name: w.name.span,
            ..WorkloadInfo::default()
        };
        let mut wl = Workload {
            name: w.name.name.clone(),
            aliases: Vec::new(),
            task: None,
            quality: None,
            data: DataClass::Private,
            max_tokens: None,
            latency_budget: None,
            max_cost_per_call: None,
            jurisdictions: Vec::new(),
            requires: Capabilities::NONE,
            budget: Budget::default(),
            max_attempts: None,
            idempotency_window: None,
            stream_recovery: router_core::StreamRecovery::Off,
            route: NodeId(0),
            origin: self.src.origin(w.span),
        };
        let mut route = None;
        let mut seen_limits = HashMap::new();
        for prop in &w.props {
            let repeatable = matches!(prop.kind, WorkloadProp::Budget { .. });
            if !repeatable && self.once(&mut seen, prop.kind.keyword(), prop.key) {
                continue;
            }
            match &prop.kind {
                WorkloadProp::Task(t) => match Task::from_keyword(&t.name) {
                    Some(task) => wl.task = Some(task),
                    None => {
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
                    }
                },
                WorkloadProp::Quality(x) => wl.quality = Some(x.value),
                WorkloadProp::Data(d) => {
                    wl.data = d.value;
                    info.data = Some(prop.span);
                }
                WorkloadProp::MaxTokens(n) => {
                    wl.max_tokens = Some(n.value);
                    info.max_tokens = Some(prop.span);
                }
                WorkloadProp::Latency(d) => wl.latency_budget = Some(d.value),
                WorkloadProp::MaxCost(m) => {
                    wl.max_cost_per_call = Some(Usd::from_nanos(m.value));
                    info.cost_limit.get_or_insert(prop.span);
                    info.max_cost = Some(prop.span);
                }
                WorkloadProp::Requires(caps) => {
                    wl.requires = caps.iter().map(|c| c.value).collect();
                    info.requires = Some(prop.span);
                }
                WorkloadProp::Budget { limits, alert } => {
                    for limit in limits {
                        let (kw, period) = match (&limit.amount, limit.period.value) {
                            (Amount::Tokens(_), Period::Day) => ("tokens/day", Period::Day),
                            (Amount::Tokens(_), Period::Month) => ("tokens/month", Period::Month),
                            (Amount::Usd(_), Period::Day) => ("$/day", Period::Day),
                            (Amount::Usd(_), Period::Month) => ("$/month", Period::Month),
                        };
                        if self.once(&mut seen_limits, kw, limit.span) {
                            continue;
                        }
                        let (line, text) = match (&limit.amount, period) {
                            (Amount::Tokens(n), Period::Day) => {
                                (BudgetLine::TokensPerDay, format!("{} tokens/day", n.text))
                            }
                            (Amount::Tokens(n), Period::Month) => {
                                (BudgetLine::TokensPerMonth, format!("{} tokens/month", n.text))
                            }
                            (Amount::Usd(m), Period::Day) => (BudgetLine::UsdPerDay, format!("{}/day", m.text)),
                            (Amount::Usd(m), Period::Month) => (BudgetLine::UsdPerMonth, format!("{}/month", m.text)),
                        };
                        info.budgets.push((line, text, limit.span));
                        match (&limit.amount, period) {
                            (Amount::Tokens(n), Period::Day) => wl.budget.tokens_per_day = Some(n.value),
                            (Amount::Tokens(n), Period::Month) => wl.budget.tokens_per_month = Some(n.value),
                            (Amount::Usd(m), Period::Day) => {
                                wl.budget.usd_per_day = Some(Usd::from_nanos(m.value));
                                info.cost_limit = Some(limit.span);
                            }
                            (Amount::Usd(m), Period::Month) => {
                                wl.budget.usd_per_month = Some(Usd::from_nanos(m.value));
                                info.cost_limit = Some(limit.span);
                            }
                        }
                    }
                    if let Some(a) = alert {
                        if self.once(&mut seen_limits, "alert", a.span) {
                            continue;
                        }
                        if a.value == 0 || a.value % 100 != 0 {
                            self.out_of_range(
                                a.span,
                                &a.text,
                                format!(
                                    "alert threshold `{}` must be a whole percentage from 1% to 100%",
                                    a.text
                                ),
                                "write a whole percentage, like `alert 80%`",
                            );
                        } else {
                            wl.budget.alert_percent = u8::try_from(a.value / 100).ok();
                        }
                    }
                }
                WorkloadProp::MaxAttempts(n) => {
                    wl.max_attempts = Some(self.small(n, "`max_attempts`"));
                    info.max_attempts = Some(prop.span);
                }
                WorkloadProp::Idempotent(d) => {
                    wl.idempotency_window = Some(d.as_ref().map_or(Duration::from_secs(600), |d| d.value))
                }
                WorkloadProp::StreamRecovery(r) => {
                    wl.stream_recovery = r.value;
                    info.stream_recovery = Some(prop.span);
                }
                // Kept beside the workloads, not in them (see `Policy::with_response_cache`).
                WorkloadProp::Cache(_) => {}
                WorkloadProp::Alias(list) => wl.aliases = list.iter().map(|s| s.value.clone()).collect(),
                WorkloadProp::Jurisdiction(list) => {
                    info.jurisdiction = Some(prop.span);
                    wl.jurisdictions = list.iter().map(|n| n.name.clone()).collect();
                }
                WorkloadProp::Route(e) => route = Some(e),
            }
        }
        wl.route = match route {
            Some(e) => {
                info.route = Some(e.head);
                let owner = format!("workload:{}", w.name.name);
                self.lower_expr(e, &owner, "")
            }
            None => {
                self.missing(
                    "route",
                    format!("workload {}", q(&w.name.name)),
                    w.name.span,
                    "say where its calls go, e.g. `route anthropic/claude-haiku-4.5` or `route NAME` for a named route"
                        .to_string(),
                );
                self.add(None, w.name.span, NodeKind::Unresolved)
            }
        };
        (wl, info)
    }

    pub(super) fn aliases(&mut self, decls: &[&WorkloadDecl], workloads: &[Workload]) {
        let mut seen: HashMap<String, (Span, String)> = HashMap::new();
        for w in decls {
            seen.insert(
                w.name.name.clone(),
                (w.name.span, format!("workload {}", q(&w.name.name))),
            );
        }
        for (decl, wl) in decls.iter().zip(workloads) {
            for prop in &decl.props {
                let WorkloadProp::Alias(list) = &prop.kind else {
                    continue;
                };
                for s in list {
                    if let Some((first, what)) = seen.get(&s.value) {
                        let diag = Diag::at(
                            Code::R0102,
                            format!("alias {} of workload {} is already {what}", q(&s.value), q(&wl.name)),
                            self.src,
                            s.span,
                            "alias given here",
                        )
                        .label(*first, "already used here")
                        .help("a name may mean one workload only; pick another alias");
                        self.report.error(DuplicateNameError {
                            kind: "alias",
                            name: s.value.clone(),
                            diag,
                        });
                    } else {
                        seen.insert(
                            s.value.clone(),
                            (s.span, format!("an alias of workload {}", q(&wl.name))),
                        );
                    }
                }
            }
        }
    }

    pub(super) fn defaults(&mut self, decls: &[&DefaultsDecl]) -> Defaults {
        let mut defaults = Defaults::default();
        let mut seen = HashMap::new();
        for d in decls {
            for prop in &d.props {
                if self.once(&mut seen, prop.kind.keyword(), prop.key) {
                    continue;
                }
                match &prop.kind {
                    DefaultsProp::MaxAttempts(n) => defaults.max_attempts = self.small(n, "`max_attempts`"),
                    DefaultsProp::Failure(f) => {
                        let mut total = defaults.failure.timeouts.total;
                        self.failure_prop(f, &mut defaults.failure, &mut total);
                        defaults.failure.timeouts.total = total;
                    }
                }
            }
        }
        defaults
    }
}
