use super::*;

fn compile(text: &str) -> Policy {
    match policy_lang::compile(&[policy_lang::SourceFile::new("test.route", text)]) {
        Ok(c) => c.into_policy(),
        Err(report) => panic!("{:?}", report.codes()),
    }
}

fn reach_of(text: &str, workload: &str) -> Reach {
    let p = compile(text);
    let w = p.workload_named(workload).unwrap().clone();
    reach(&p, &w)
}

#[test]
fn worst_case_counts_retries_within_the_attempt_bound() {
    let r = reach_of(
        r#"
        provider a { adapter mock; tier paid; data public
          model big { price $10/M in, $10/M out }
          model small { price $1/M in, $1/M out } }
        workload w { data public; max_tokens 1000; max_attempts 3
          route fallback [a/big, a/small] retry 1 allow_repeat }
    "#,
        "w",
    );
    // big twice (1 + 1 retry) = 2 × $0.02, then small once = $0.002.
    assert_eq!(r.worst_case, Some(Usd::from_nanos(42_000_000)));
    assert_eq!(r.bound, 3);
}

#[test]
fn an_unpriced_paid_target_makes_the_worst_case_unknown() {
    let r = reach_of(
        r#"
        provider a { adapter mock; tier paid; data public; model m { } }
        workload w { data public; route a/m }
    "#,
        "w",
    );
    assert_eq!(r.worst_case, None);
}

#[test]
fn exposure_lists_every_class_a_request_may_carry_and_whether_inputs_are_kept() {
    let r = reach_of(
        r#"
        provider keeps { adapter mock; tier paid; data internal; jurisdiction eu
          stores_inputs yes; no_store header "X-No-Store" = "1"; model m { price free } }
        provider open { adapter mock; tier paid; data public; trains_on_inputs yes; model m { price free } }
        workload w { data public; route fallback [open/m, keeps/m] }
    "#,
        "w",
    );
    let got: Vec<(DataClass, &str, bool)> = r
        .exposure
        .iter()
        .map(|e| (e.class, e.provider.as_str(), e.keeps_inputs))
        .collect();
    // `open` takes public data only: no exposure. `keeps` sends a no-store
    // header, so it does not keep inputs; private data cannot reach it.
    assert_eq!(got, [(DataClass::Internal, "keeps", false)]);
    assert_eq!(r.targets.len(), 2);
}

#[test]
fn every_split_arm_and_match_branch_is_reachable() {
    let r = reach_of(
        r#"
        provider a { adapter mock; tier paid; data private
          model x { price free }
          model y { price free }
          model z { price free } }
        workload w {
          data private
          route split by user {
            90: match { when input_tokens > 8000 => a/x else => a/y }
            10: a/z
          }
        }
    "#,
        "w",
    );
    assert_eq!(r.targets.iter().collect::<Vec<_>>(), ["a/x", "a/y", "a/z"]);
}
