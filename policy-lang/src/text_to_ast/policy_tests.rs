//! `test "name" { … }` blocks: a call, its state and what is expected.

use super::*;

impl Builder<'_> {
    pub(super) fn test_decl(&mut self, p: Pair<'_, Rule>) -> R<TestDecl> {
        let span = self.span(&p);
        let mut k = self.kids(p);
        k.expect(Rule::kw_test)?;
        let name = self.string(k.expect(Rule::string)?)?;
        let mut props = Vec::new();
        for prop in k.rest() {
            let whole = self.span(&prop);
            let rule = prop.as_rule();
            let mut pk = self.kids(prop);
            let key = pk.next()?;
            let kind = match rule {
                Rule::t_workload => TestProp::Workload(self.name(pk.expect(Rule::name)?)),
                Rule::t_request => {
                    let mut facts = Vec::new();
                    for f in pk.rest() {
                        facts.push(self.fact(f)?);
                    }
                    TestProp::Request(facts)
                }
                Rule::t_state => {
                    let mut items = Vec::new();
                    for s in pk.rest() {
                        items.push(self.state_item(s)?);
                    }
                    TestProp::State(items)
                }
                Rule::t_expect => TestProp::Expect(self.expectation(pk.next()?)?),
                _ => return self.internal(&key),
            };
            props.push(self.prop(kind, &key, whole));
        }
        Ok(TestDecl { name, props, span })
    }

    fn fact(&mut self, p: Pair<'_, Rule>) -> R<FactAst> {
        let mut k = self.kids(p);
        let key = self.name(k.expect(Rule::fact_key)?);
        let value = match k.opt(Rule::fact_value) {
            None => None,
            Some(v) => {
                let inner = self.kids(v).next()?;
                let span = self.span(&inner);
                let text = inner.as_str().to_string();
                let value = match inner.as_rule() {
                    Rule::string => self.string(inner)?.value,
                    Rule::number => self.count(inner).value.to_string(),
                    Rule::fact_word => text.clone(),
                    _ => return self.internal(&inner),
                };
                Some(Lit { value, text, span })
            }
        };
        Ok(FactAst { key, value })
    }

    fn test_target(&mut self, p: Pair<'_, Rule>) -> R<TargetAst> {
        let span = self.span(&p);
        let mut k = self.kids(p);
        let provider = self.name(k.expect(Rule::name)?);
        let model = self.name(k.expect(Rule::model_name)?);
        Ok(TargetAst { provider, model, span })
    }

    fn state_item(&mut self, p: Pair<'_, Rule>) -> R<StateAst> {
        let rule = p.as_rule();
        let span = self.span(&p);
        let mut k = self.kids(p);
        k.next()?;
        Ok(match rule {
            Rule::s_ejected => {
                let t = self.test_target(k.expect(Rule::target)?)?;
                let d = match k.opt(Rule::k_for) {
                    Some(_) => Some(self.duration(k.expect(Rule::duration)?)),
                    None => None,
                };
                StateAst::Ejected(t, d)
            }
            Rule::s_cooling => {
                let name = self.name(k.expect(Rule::name)?);
                let d = match k.opt(Rule::k_for) {
                    Some(_) => Some(self.duration(k.expect(Rule::duration)?)),
                    None => None,
                };
                StateAst::Cooling(name, d)
            }
            Rule::s_unavailable => StateAst::Unavailable(self.name(k.expect(Rule::name)?)),
            Rule::s_p95 => {
                let t = self.test_target(k.expect(Rule::target)?)?;
                StateAst::P95(t, self.duration(k.expect(Rule::duration)?))
            }
            Rule::s_budget_left => {
                let first = k.next()?;
                match first.as_rule() {
                    Rule::money => StateAst::BudgetLeft(Amount::Usd(self.money(first))),
                    Rule::number => {
                        let n = self.count(first);
                        k.expect(Rule::k_tokens)?;
                        StateAst::BudgetLeft(Amount::Tokens(n))
                    }
                    _ => return self.internal(&first),
                }
            }
            Rule::s_halted => StateAst::Halted(span),
            _ => {
                return Err(Internal {
                    span,
                    what: "state".to_string(),
                });
            }
        })
    }

    fn expectation(&mut self, p: Pair<'_, Rule>) -> R<ExpectAst> {
        let rule = p.as_rule();
        let mut k = self.kids(p);
        k.next()?;
        Ok(match rule {
            Rule::e_first => ExpectAst::First(self.test_target(k.expect(Rule::target)?)?),
            Rule::e_plan => {
                let mut targets = Vec::new();
                for t in k.rest() {
                    targets.push(self.test_target(t)?);
                }
                ExpectAst::Plan(targets)
            }
            Rule::e_never => {
                let mut out = Vec::new();
                for r in k.rest() {
                    let inner = self.kids(r).next()?;
                    out.push(match inner.as_rule() {
                        Rule::target => ReachAst::Target(self.test_target(inner)?),
                        Rule::name => ReachAst::Provider(self.name(inner)),
                        _ => return self.internal(&inner),
                    });
                }
                ExpectAst::Never(out)
            }
            Rule::e_refused => ExpectAst::Refused(k.opt(Rule::name).map(|n| self.name(n))),
            Rule::e_cost => {
                let op = k.expect(Rule::cost_op)?;
                let strict = Lit {
                    value: op.as_str() == "<",
                    text: op.as_str().to_string(),
                    span: self.span(&op),
                };
                let max = self.money(k.expect(Rule::money)?);
                ExpectAst::Cost { strict, max }
            }
            Rule::e_snapshot => ExpectAst::Snapshot,
            _ => {
                let span = k.span;
                return Err(Internal {
                    span,
                    what: "expect".to_string(),
                });
            }
        })
    }
}
