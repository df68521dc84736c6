//! Route expressions, rules and `when` conditions.

use super::*;

impl Builder<'_> {
    pub(super) fn expr(&mut self, p: Pair<'_, Rule>) -> R<Expr> {
        let span = self.span(&p);
        let rule = p.as_rule();
        if rule == Rule::route_ref {
            let mut k = self.kids(p);
            let name = self.name(k.expect(Rule::name)?);
            return Ok(Expr {
                kind: ExprKind::Ref(name),
                span,
                head: span,
                close: Span::new(span.end, span.end),
            });
        }
        if rule == Rule::target {
            let mut k = self.kids(p);
            let provider = self.name(k.expect(Rule::name)?);
            let model = self.name(k.expect(Rule::model_name)?);
            return Ok(Expr {
                kind: ExprKind::Target { provider, model },
                span,
                head: span,
                close: Span::new(span.end, span.end),
            });
        }
        // The match block's own `}`; lists and weighted blocks set theirs below.
        let mut close = Span::new(span.end.saturating_sub(1), span.end);
        let mut k = self.kids(p);
        let kw = k.next()?;
        let mut head = self.span(&kw);
        let kind = match rule {
            Rule::fallback | Rule::free_first => {
                let list = k.expect(Rule::list)?;
                close = Self::closer(self.span(&list));
                let items = self.list(list)?;
                let rules = self.rules(k.expect(Rule::rules)?)?;
                ExprKind::Fallback {
                    free_first: rule == Rule::free_first,
                    items,
                    rules,
                }
            }
            Rule::split => {
                k.expect(Rule::kw_by)?;
                let key_pair = k.expect(Rule::split_key)?;
                head = head.to(self.span(&key_pair));
                let key = self.split_key(key_pair)?;
                let block = k.expect(Rule::weighted)?;
                close = Self::closer(self.span(&block));
                let arms = self.weighted(block, true)?;
                ExprKind::Split { key, arms }
            }
            Rule::select => {
                let s = k.next()?;
                head = head.to(self.span(&s));
                let (strategy, arms) = match s.as_rule() {
                    Rule::strategy => {
                        let strategy = self.word(s, |w| match w {
                            "cheapest" => Some(Strategy::Cheapest),
                            "fastest" => Some(Strategy::Fastest),
                            "first" => Some(Strategy::First),
                            _ => None,
                        })?;
                        let list = k.expect(Rule::list)?;
                        close = Self::closer(self.span(&list));
                        let items = self.list(list)?;
                        let arms = items.into_iter().map(|expr| Arm { weight: None, expr }).collect();
                        (strategy, arms)
                    }
                    Rule::k_weighted => {
                        let strategy = Lit {
                            value: Strategy::Weighted,
                            text: s.as_str().to_string(),
                            span: self.span(&s),
                        };
                        let block = k.expect(Rule::weighted)?;
                        close = Self::closer(self.span(&block));
                        (strategy, self.weighted(block, false)?)
                    }
                    _ => return self.internal(&s),
                };
                let rules = self.rules(k.expect(Rule::rules)?)?;
                ExprKind::Select { strategy, arms, rules }
            }
            Rule::escalate => {
                let list = k.expect(Rule::list)?;
                close = Self::closer(self.span(&list));
                let items = self.list(list)?;
                k.expect(Rule::kw_check)?;
                let check = self.quality_check(k.expect(Rule::quality_check)?)?;
                let rules = self.rules(k.expect(Rule::rules)?)?;
                ExprKind::Escalate { items, check, rules }
            }
            Rule::match_expr => {
                let mut arms = Vec::new();
                for arm in k.rest() {
                    let arm_rule = arm.as_rule();
                    let mut ak = self.kids(arm);
                    let kw = ak.next()?;
                    let mut arm_head = self.span(&kw);
                    let cond = if arm_rule == Rule::when_arm {
                        let c = ak.expect(Rule::cond)?;
                        arm_head = arm_head.to(self.span(&c));
                        Some(self.cond(c)?)
                    } else {
                        None
                    };
                    let expr = self.expr(ak.next()?)?;
                    arms.push(MatchArm {
                        cond,
                        expr,
                        head: arm_head,
                    });
                }
                ExprKind::Match { arms }
            }
            _ => return self.internal(&kw),
        };
        Ok(Expr {
            kind,
            span,
            head,
            close,
        })
    }

    /// The last character of a bracketed span: its closing bracket.
    pub(super) fn closer(span: Span) -> Span {
        Span::new(span.end.saturating_sub(1), span.end)
    }

    pub(super) fn list(&mut self, p: Pair<'_, Rule>) -> R<Vec<Expr>> {
        let k = self.kids(p);
        let mut out = Vec::new();
        for e in k.rest() {
            out.push(self.expr(e)?);
        }
        Ok(out)
    }

    /// The arms of a `split` (`percent`: weights are whole percentages) or
    /// a `select weighted` (relative whole weights).
    pub(super) fn weighted(&mut self, p: Pair<'_, Rule>, percent: bool) -> R<Vec<Arm>> {
        let k = self.kids(p);
        let mut out = Vec::new();
        for arm in k.rest() {
            let mut ak = self.kids(arm);
            let weight = self.weight(ak.expect(Rule::number)?, percent);
            let expr = self.expr(ak.next()?)?;
            out.push(Arm {
                weight: Some(weight),
                expr,
            });
        }
        Ok(out)
    }

    pub(super) fn split_key(&mut self, p: Pair<'_, Rule>) -> R<Lit<SplitKeyAst>> {
        let span = self.span(&p);
        let text = p.as_str().to_string();
        let mut k = self.kids(p);
        let inner = k.next()?;
        let value = match inner.as_rule() {
            Rule::k_user => SplitKeyAst::User,
            Rule::k_request => SplitKeyAst::Request,
            Rule::metadata_key => SplitKeyAst::Metadata(self.metadata_key(inner)?.value),
            _ => return self.internal(&inner),
        };
        Ok(Lit { value, text, span })
    }

    pub(super) fn metadata_key(&mut self, p: Pair<'_, Rule>) -> R<Lit<String>> {
        let span = self.span(&p);
        let text = p.as_str().to_string();
        let mut k = self.kids(p);
        k.expect(Rule::k_metadata)?;
        let name = k.expect(Rule::meta_name)?;
        Ok(Lit {
            value: name.as_str().to_string(),
            text,
            span,
        })
    }

    pub(super) fn rules(&mut self, p: Pair<'_, Rule>) -> R<Vec<RuleItem>> {
        let k = self.kids(p);
        let mut out = Vec::new();
        for r in k.rest() {
            match r.as_rule() {
                Rule::kw_allow_repeat => out.push(RuleItem::AllowRepeat(self.span(&r))),
                Rule::retry_rule => {
                    let whole = self.span(&r);
                    let mut rk = self.kids(r);
                    rk.expect(Rule::kw_retry)?;
                    match rk.opt(Rule::number) {
                        Some(n) => out.push(RuleItem::Retry(self.count(n))),
                        None => {
                            let mut classes = Vec::new();
                            for c in rk.rest() {
                                let mut ck = self.kids(c);
                                let class = self.word(ck.expect(Rule::retry_class)?, |s| match s {
                                    "rate_limited" => Some(Trigger::RateLimited),
                                    "overloaded" => Some(Trigger::Overloaded),
                                    "server_error" => Some(Trigger::ServerError),
                                    "timeout" => Some(Trigger::Timeout),
                                    "connection_error" => Some(Trigger::ConnectionError),
                                    _ => None,
                                })?;
                                classes.push((class, self.count(ck.expect(Rule::number)?)));
                            }
                            out.push(RuleItem::RetryClasses(classes, whole));
                        }
                    }
                }
                Rule::chain_timeouts => {
                    let whole = self.span(&r);
                    let mut rk = self.kids(r);
                    rk.expect(Rule::k_timeouts)?;
                    let items = self.stage_timeouts(rk)?;
                    out.push(RuleItem::Timeouts(items, whole));
                }
                Rule::on_rule => {
                    let mut rk = self.kids(r);
                    rk.expect(Rule::kw_on)?;
                    let mut triggers = Vec::new();
                    for t in rk.rest() {
                        triggers.push(self.trigger(t)?);
                    }
                    out.push(RuleItem::On(triggers));
                }
                _ => return self.internal(&r),
            }
        }
        Ok(out)
    }

    pub(super) fn trigger(&mut self, p: Pair<'_, Rule>) -> R<TriggerAst> {
        let mut k = self.kids(p);
        let t = k.next()?;
        let span = self.span(&t);
        let text = t.as_str().to_string();
        match t.as_rule() {
            Rule::t_timeout => {
                let mut tk = self.kids(t);
                let kw = tk.expect(Rule::k_timeout)?;
                let timeout = tk.opt(Rule::duration).map(|d| self.duration(d));
                Ok(TriggerAst {
                    trigger: Lit {
                        value: Trigger::Timeout,
                        text: kw.as_str().to_string(),
                        span,
                    },
                    timeout,
                })
            }
            Rule::t_word | Rule::t_status => {
                let value = match text.as_str() {
                    "rate_limited" | "429" => Trigger::RateLimited,
                    "overloaded" | "503" | "529" => Trigger::Overloaded,
                    "server_error" => Trigger::ServerError,
                    "connection_error" => Trigger::ConnectionError,
                    "context_length" => Trigger::ContextLength,
                    _ => return self.internal(&t),
                };
                Ok(TriggerAst {
                    trigger: Lit { value, text, span },
                    timeout: None,
                })
            }
            _ => self.internal(&t),
        }
    }

    pub(super) fn quality_check(&mut self, p: Pair<'_, Rule>) -> R<Lit<CheckAst>> {
        let span = self.span(&p);
        let text = p.as_str().to_string();
        let mut k = self.kids(p);
        let c = k.next()?;
        let value = match c.as_rule() {
            Rule::q_word => match c.as_str() {
                "json_valid" => CheckAst::JsonValid,
                "json_schema" => CheckAst::JsonSchema,
                "non_empty" => CheckAst::NonEmpty,
                _ => return self.internal(&c),
            },
            Rule::q_regex => {
                let mut ck = self.kids(c);
                ck.expect(Rule::k_regex)?;
                CheckAst::Regex(self.string(ck.expect(Rule::string)?)?)
            }
            Rule::q_evaluator => {
                let mut ck = self.kids(c);
                ck.expect(Rule::k_evaluator)?;
                CheckAst::Evaluator(self.name(ck.expect(Rule::name)?))
            }
            _ => return self.internal(&c),
        };
        Ok(Lit { value, text, span })
    }

    // ---------------------------------------------------------------- conditions

    pub(super) fn cond(&mut self, p: Pair<'_, Rule>) -> R<Cond> {
        let span = self.span(&p);
        let rule = p.as_rule();
        match rule {
            Rule::cond | Rule::cond_and => {
                let sep = if rule == Rule::cond { Rule::kw_or } else { Rule::kw_and };
                let mut parts = Vec::new();
                for c in self.kids(p).rest() {
                    if c.as_rule() != sep {
                        parts.push(self.cond(c)?);
                    }
                }
                if parts.len() == 1 {
                    return parts.pop().ok_or(Internal {
                        span,
                        what: "empty condition".to_string(),
                    });
                }
                let kind = if rule == Rule::cond {
                    CondKind::Or(parts)
                } else {
                    CondKind::And(parts)
                };
                Ok(Cond { kind, span })
            }
            Rule::cond_not => {
                let mut times = 0u32;
                let mut atom = None;
                for c in self.kids(p).rest() {
                    if c.as_rule() == Rule::kw_not {
                        times = times.saturating_add(1);
                    } else {
                        atom = Some(c);
                    }
                }
                let atom = atom.ok_or(Internal {
                    span,
                    what: "`not` without a condition".to_string(),
                })?;
                let inner = self.cond(atom)?;
                if times == 0 {
                    Ok(inner)
                } else {
                    Ok(Cond {
                        kind: CondKind::Not {
                            times,
                            inner: Box::new(inner),
                        },
                        span,
                    })
                }
            }
            Rule::paren_cond => {
                let mut k = self.kids(p);
                let inner = self.cond(k.expect(Rule::cond)?)?;
                Ok(Cond {
                    kind: CondKind::Paren(Box::new(inner)),
                    span,
                })
            }
            Rule::kw_true => Ok(Cond {
                kind: CondKind::True,
                span,
            }),
            Rule::kw_false => Ok(Cond {
                kind: CondKind::False,
                span,
            }),
            Rule::has_cond => {
                let mut k = self.kids(p);
                k.expect(Rule::kw_has)?;
                let what = k.next()?;
                let kind = match what.as_rule() {
                    Rule::feature => CondKind::Has(self.word(what, |w| match w {
                        "tools" => Some(Feature::Tools),
                        "images" => Some(Feature::Images),
                        "json_schema" => Some(Feature::JsonSchema),
                        "stream" => Some(Feature::Stream),
                        _ => None,
                    })?),
                    Rule::metadata_key => CondKind::HasMetadata(self.metadata_key(what)?),
                    _ => return self.internal(&what),
                };
                Ok(Cond { kind, span })
            }
            Rule::compare => {
                let mut k = self.kids(p);
                let fact = self.word(k.expect(Rule::numeric_fact)?, |w| match w {
                    "input_tokens" => Some(NumericFact::InputTokens),
                    "max_output" => Some(NumericFact::MaxOutputTokens),
                    _ => None,
                })?;
                let op = self.cmp_op(k.expect(Rule::cmp_op)?)?;
                let value = self.count(k.expect(Rule::number)?);
                Ok(Cond {
                    kind: CondKind::Compare { fact, op, value },
                    span,
                })
            }
            Rule::meta_cmp => {
                let mut k = self.kids(p);
                let key = self.metadata_key(k.expect(Rule::metadata_key)?)?;
                let op = self.cmp_op(k.expect(Rule::eq_op)?)?;
                let value = self.string(k.expect(Rule::string)?)?;
                Ok(Cond {
                    kind: CondKind::Metadata { key, op, value },
                    span,
                })
            }
            Rule::task_cmp => {
                let mut k = self.kids(p);
                k.expect(Rule::k_task)?;
                let op = self.cmp_op(k.expect(Rule::eq_op)?)?;
                let task = self.name(k.expect(Rule::name)?);
                Ok(Cond {
                    kind: CondKind::Task { op, task },
                    span,
                })
            }
            _ => self.internal(&p),
        }
    }

    pub(super) fn cmp_op(&mut self, p: Pair<'_, Rule>) -> R<Lit<CmpOp>> {
        self.word(p, |w| match w {
            "<" => Some(CmpOp::Lt),
            "<=" => Some(CmpOp::Le),
            ">" => Some(CmpOp::Gt),
            ">=" => Some(CmpOp::Ge),
            "==" => Some(CmpOp::Eq),
            "!=" => Some(CmpOp::Ne),
            _ => None,
        })
    }
}
