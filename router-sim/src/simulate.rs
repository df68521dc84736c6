//! The replay: each traffic line runs through the real decision engine and
//! the runtime's state machines on a virtual clock.
//!
//! Per request, at its timestamp `t`:
//!
//! 1. health outcomes whose attempts ended by `t` are applied to the
//!    [`HealthBook`] (breakers, 429 cool-downs), which then fills the
//!    engine's snapshot; so does the [`LatencyBook`] (rolling p95, refreshed
//!    every ten virtual seconds and only for policies that `select fastest`)
//!    and the workload's budget lines in the [`BudgetBook`];
//! 2. the engine decides ([`Decider::decide_into`]), exactly as the runtime
//!    would with that state;
//! 3. a budgeted workload reserves the plan's estimate before dispatch;
//! 4. the plan's attempts are walked: each is admitted by the provider's
//!    `limits rpm`/`tpm` ([`LimitBook`]) and the health book (a provider at a
//!    limit, or an ejected or cooling target, is skipped, as the runtime
//!    would; concurrency limits are not modelled, since requests replay one
//!    after another), checked
//!    independently for its data class ([`crate::pii`]), and sampled with the
//!    providers crate's [`providers::SimProfile::sample`]. Its latency moves
//!    the call's clock; a latency past the attempt's timeout (the plan's, else
//!    60 s, capped by what is left of the workload's deadline) is a timeout.
//!    What follows a failure — a retry on the same target after a backoff or
//!    a short `Retry-After`, the next attempt, or the end of the call — is
//!    decided by [`CallMachine`], the attempt machine the runtime drives too,
//!    with the runtime's defaults ([`FailureRules`]); retries are granted by
//!    the [`RetryBudget`] on the virtual clock.
//!    An answer under an `escalate` check passes with the check's simulated
//!    pass rate ([`crate::CheckPassRates`]) and is paid for either way; when every
//!    answer fails the check, the call fails;
//! 5. the actual spend is committed to the budget (or the reservation
//!    released when nothing was billed).
//!
//! Requests are replayed one after another: a request's attempts all run
//! before the next line is read, but their health outcomes take effect at
//! the virtual time each attempt ended, through a queue. What is not
//! modelled: provider rate limits from `limits` (429s are random, at the
//! profile's rate), concurrency, streaming, the cost of `evaluator` checks,
//! and idempotent replays (each line is its own call).

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use providers::{ErrorClass, SimOutcome, SimResult, SimScript};
use router_core::{
    Attempt, Decider, Decision, Facts, NodeKind, Policy, Refusal, StateSnapshot, Strategy, TargetId, Usd, WorkloadId,
    WorkloadState,
};
use router_state::{
    Action, AttemptOutcome, BudgetBook, CallMachine, CommitRequest, DEFAULT_RESERVATION_TTL, Ending as MachineEnding,
    Failure, FailureRules, HealthBook, LatencyBook, LimitBook, Millis, ReservationId, ReserveOutcome, ReserveRequest,
    RetryBudget, Spend, TimeoutKind, budget_lines,
};

use crate::baseline::{Baseline, BaselineError, choose_baseline};
use crate::options::{Progress, SimError, SimOptions};
use crate::pii;
use crate::report::{self, SimReport};
use crate::rng::SplitMix64;
use crate::stats::{CostSeries, Ending, TargetStats, WorkloadStats};
use crate::traffic::{TrafficReader, TrafficRequest};

/// How often (virtual time) the latency book's p95s are copied into the
/// engine's snapshot: merging the rolling histograms per request would cost
/// more than the rest of the replay.
const LATENCY_REFRESH_MS: u64 = 10_000;

/// Progress is reported every this many requests.
const PROGRESS_EVERY: u64 = 4_096;

/// Distinct unknown workload names kept for the report.
const MAX_UNKNOWN_NAMES: usize = 32;

/// How one replayed request went, for callers stepping a [`Simulator`]
/// themselves (`routec diff --traffic`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepOutcome {
    /// The plan's first target; `None` when the call was refused or its
    /// workload is unknown.
    pub first_target: Option<TargetId>,
    /// What the call cost.
    pub cost: Usd,
    /// Whether an answer was delivered.
    pub served: bool,
    /// Attempts dispatched, retries included.
    pub dispatched: u32,
    /// Virtual time from the request to the end of its last attempt.
    pub elapsed: Duration,
}

/// An attempt's outcome waiting for the virtual clock to reach its end.
#[derive(Debug)]
struct HealthEvent {
    at: u64,
    seq: u64,
    target: TargetId,
    outcome: AttemptOutcome,
}

impl PartialEq for HealthEvent {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for HealthEvent {}
impl PartialOrd for HealthEvent {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HealthEvent {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Everything one call accumulated while its plan was walked.
#[derive(Debug, Default)]
struct CallResult {
    ending: Option<Ending>,
    end_ms: u64,
    billed: Spend,
    fell_back: bool,
    escalated: bool,
    retries: u64,
    dispatched: u32,
}

/// A replay in progress: feed it requests in time order with
/// [`Simulator::step`], then take the report with [`Simulator::finish`].
#[derive(Debug)]
pub struct Simulator<'p> {
    policy: &'p Policy,
    options: SimOptions,
    decider: Decider<'p>,
    decision: Option<Decision>,
    snapshot: StateSnapshot,
    health: HealthBook,
    limits: LimitBook,
    latency: LatencyBook,
    latency_filled_at: Option<u64>,
    uses_fastest: bool,
    retry: RetryBudget,
    /// Timeouts, backoff and Retry-After waits: the runtime's defaults.
    rules: FailureRules,
    /// Outcomes to play instead of sampling the profiles.
    script: Option<Arc<SimScript>>,
    budgets: BudgetBook,
    events: BinaryHeap<Reverse<HealthEvent>>,
    event_seq: u64,
    profiles: Vec<(providers::SimProfile, bool)>,
    target_salt: Vec<u64>,
    baseline: Baseline,
    workloads: Vec<WorkloadStats>,
    targets: Vec<TargetStats>,
    series: CostSeries,
    unknown: BTreeMap<String, u64>,
    unknown_total: u64,
    reordered: u64,
    dispatches: u64,
    index: u64,
    clock: u64,
    first_ms: Option<u64>,
}

impl<'p> Simulator<'p> {
    /// A fresh replay of `policy`: every target healthy, every budget unspent.
    pub fn new(policy: &'p Policy, options: SimOptions) -> Result<Self, BaselineError> {
        let baseline = choose_baseline(policy, options.baseline.as_deref())?;
        let uses_fastest = policy.routes.ids().any(|id| {
            matches!(
                policy.node(id).kind,
                NodeKind::Select {
                    strategy: Strategy::Fastest,
                    ..
                }
            )
        });
        let target_salt = (0..policy.targets.len())
            .map(|i| xxhash_rust::xxh3::xxh3_64(policy.target_label(TargetId(i as u32)).as_bytes()))
            .collect();
        Ok(Simulator {
            policy,
            decider: Decider::new(policy),
            decision: None,
            snapshot: StateSnapshot::for_policy(policy, 0),
            health: HealthBook::new(policy, options.health),
            limits: LimitBook::new(policy),
            latency: LatencyBook::new(policy.targets.len()),
            latency_filled_at: None,
            uses_fastest,
            retry: RetryBudget::default(),
            rules: FailureRules::default(),
            script: None,
            budgets: BudgetBook::new(),
            events: BinaryHeap::new(),
            event_seq: 0,
            profiles: crate::profile::profiles(policy),
            target_salt,
            baseline,
            workloads: (0..policy.workloads.len()).map(|_| WorkloadStats::new()).collect(),
            targets: (0..policy.targets.len()).map(|_| TargetStats::new()).collect(),
            series: CostSeries::new(policy.providers.len()),
            unknown: BTreeMap::new(),
            unknown_total: 0,
            reordered: 0,
            dispatches: 0,
            index: 0,
            clock: 0,
            first_ms: None,
            options,
        })
    }

    /// Runs attempts with `rules` instead of the runtime's defaults (a
    /// router built with other timeouts or backoffs).
    #[must_use]
    pub fn failure_rules(mut self, rules: FailureRules) -> Self {
        self.rules = rules;
        self
    }

    /// Plays `script`'s outcomes, in dispatch order, instead of sampling
    /// each target's profile: a recorded incident, or the same outcomes a
    /// router over scripted providers sees (the differential test).
    #[must_use]
    pub fn scripted(mut self, script: Arc<SimScript>) -> Self {
        self.script = Some(script);
        self
    }

    /// The policy being replayed.
    pub fn policy(&self) -> &'p Policy {
        self.policy
    }

    /// Replays one request. Requests should come in time order; one earlier
    /// than the request before it is replayed at that request's time (and
    /// counted as reordered in the report).
    pub fn step(&mut self, req: &TrafficRequest) -> StepOutcome {
        let index = self.index;
        self.index += 1;
        let now = if self.first_ms.is_none() {
            self.first_ms = Some(req.ts_ms);
            self.series.start(req.ts_ms);
            req.ts_ms
        } else if req.ts_ms < self.clock {
            self.reordered += 1;
            self.clock
        } else {
            req.ts_ms
        };
        self.clock = now;
        let none = StepOutcome {
            first_target: None,
            cost: Usd::ZERO,
            served: false,
            dispatched: 0,
            elapsed: Duration::ZERO,
        };
        let Some(wid) = self.policy.workload_id(&req.workload) else {
            self.unknown_total += 1;
            if self.unknown.len() < MAX_UNKNOWN_NAMES || self.unknown.contains_key(&req.workload) {
                *self.unknown.entry(req.workload.clone()).or_default() += 1;
            }
            return none;
        };
        let workload = self.policy.workload(wid);
        let class = pii::effective_class(workload, req.data);
        let w = wid.0 as usize;
        let output_cap = min_opt(req.max_output, workload.max_tokens);
        let baseline_output = output_cap.map_or(req.output_tokens, |c| req.output_tokens.min(c));
        // The baseline prices the same work: only calls this policy served.
        let baseline_cost = self.baseline.price.cost(req.input_tokens, baseline_output);
        {
            let stats = &mut self.workloads[w];
            stats.requests += 1;
            if class > workload.data {
                stats.raised_class += 1;
            }
        }
        let mut rng = SplitMix64::new("replay", self.options.seed, index);

        self.apply_events(now);
        self.fill_snapshot(wid, now);
        let facts = Facts {
            workload: wid,
            input_tokens: req.input_tokens,
            max_output_tokens: req.max_output,
            features: req.features(),
            task: req.task,
            metadata: &req.metadata,
            user: req.user.as_deref(),
            data: req.data,
            request_seed: rng.next_u64(),
        };
        let decision = match self.decision.take() {
            Some(mut d) => {
                self.decider.decide_into(&facts, &self.snapshot, &mut d);
                d
            }
            None => self.decider.decide(&facts, &self.snapshot),
        };
        self.retry.deposit(Millis(now));
        let outcome = match decision.outcome() {
            Err(refusal) => {
                let ending = match refusal {
                    Refusal::BudgetExhausted { .. } => Ending::BudgetHalted,
                    Refusal::DataClass { .. } | Refusal::Unhealthy { .. } | Refusal::NoEligibleTarget => {
                        Ending::Refused
                    }
                };
                self.end_without_call(w, ending, now);
                none
            }
            Ok(plan) => {
                let attempts = plan.attempts();
                let first_target = attempts.first().map(|a| a.target);
                match self.reserve(wid, plan.reserve(), now) {
                    Err(()) => {
                        self.end_without_call(w, Ending::BudgetHalted, now);
                        StepOutcome { first_target, ..none }
                    }
                    Ok(reservation) => {
                        let call = self.run_attempts(index, wid, req, attempts, now, &mut rng);
                        self.settle(wid, reservation, &call, now);
                        let stats = &mut self.workloads[w];
                        let ending = call.ending.unwrap_or(Ending::Failed);
                        stats.end(ending);
                        stats.fallbacks += u64::from(call.fell_back);
                        stats.escalations += u64::from(call.escalated);
                        stats.retries += call.retries;
                        stats.latency.record(call.end_ms.saturating_sub(now));
                        if ending == Ending::Served {
                            stats.baseline_cost += baseline_cost;
                        }
                        StepOutcome {
                            first_target,
                            cost: call.billed.usd,
                            served: ending == Ending::Served,
                            dispatched: call.dispatched,
                            elapsed: Duration::from_millis(call.end_ms.saturating_sub(now)),
                        }
                    }
                }
            }
        };
        self.decision = Some(decision);
        outcome
    }

    /// The report of everything replayed so far.
    pub fn finish(mut self) -> SimReport {
        self.apply_events(u64::MAX);
        report::build(report::Parts {
            policy: self.policy,
            seed: self.options.seed,
            check_pass: self.options.check_pass,
            baseline: &self.baseline,
            profiles: &self.profiles,
            workloads: &self.workloads,
            targets: &self.targets,
            series: &self.series,
            unknown: &self.unknown,
            unknown_total: self.unknown_total,
            reordered: self.reordered,
            dispatches: self.dispatches,
            first_ms: self.first_ms,
            last_ms: self.clock,
        })
    }

    fn end_without_call(&mut self, w: usize, ending: Ending, now: u64) {
        let stats = &mut self.workloads[w];
        stats.end(ending);
        if ending == Ending::BudgetHalted && stats.first_halt_ms.is_none() {
            stats.first_halt_ms = Some(now);
        }
    }

    /// Applies health outcomes of attempts that ended by `now`.
    fn apply_events(&mut self, now: u64) {
        while let Some(Reverse(ev)) = self.events.peek() {
            if ev.at > now {
                break;
            }
            if let Some(Reverse(ev)) = self.events.pop() {
                self.health.record(ev.target, ev.outcome, Millis(ev.at));
            }
        }
    }

    fn fill_snapshot(&mut self, wid: WorkloadId, now: u64) {
        self.snapshot.now_ms = now;
        self.health.fill_snapshot(&mut self.snapshot, Millis(now));
        if self.uses_fastest && self.latency_filled_at.is_none_or(|at| now >= at + LATENCY_REFRESH_MS) {
            self.latency.fill_snapshot(&mut self.snapshot, Millis(now));
            self.latency_filled_at = Some(now);
        }
        let budget = self.policy.workload(wid).budget;
        if budget.is_limited() {
            let state = self.budget_state(wid, now);
            *self.snapshot.workload_mut(wid) = state;
        }
    }

    /// The budget part of the snapshot, computed as the runtime's ledger
    /// computes it.
    fn budget_state(&mut self, wid: WorkloadId, now: u64) -> WorkloadState {
        let workload = self.policy.workload(wid);
        self.budgets
            .workload_status(&workload.name, &workload.budget, Millis(now))
            .to_state()
    }

    /// Reserves the plan's estimate for a budgeted workload: `Ok(None)` for
    /// unbudgeted ones, `Err` when the budget refuses.
    fn reserve(
        &mut self,
        wid: WorkloadId,
        estimate: router_core::Estimate,
        now: u64,
    ) -> Result<Option<ReservationId>, ()> {
        let workload = self.policy.workload(wid);
        if !workload.budget.is_limited() {
            return Ok(None);
        }
        let spend = Spend {
            tokens: estimate.tokens,
            usd: estimate.usd.unwrap_or(Usd::ZERO),
        };
        let req = ReserveRequest::new(
            &workload.name,
            &workload.budget,
            spend,
            Millis(now),
            DEFAULT_RESERVATION_TTL,
        );
        match self.budgets.reserve(&req) {
            ReserveOutcome::Granted(id) => Ok(Some(id)),
            ReserveOutcome::Refused(_) => Err(()),
        }
    }

    /// Commits what the call actually used (in the periods it reserved in),
    /// or releases the reservation when nothing was billed.
    fn settle(&mut self, wid: WorkloadId, reservation: Option<ReservationId>, call: &CallResult, now: u64) {
        let Some(id) = reservation else { return };
        let workload = self.policy.workload(wid);
        if call.billed.tokens == 0 {
            self.budgets.release(&workload.name, id);
            return;
        }
        let commit = CommitRequest {
            workload: workload.name.clone(),
            id,
            lines: budget_lines(&workload.budget, call.billed, Millis(now)),
            now: Millis(call.end_ms),
        };
        let out = self.budgets.commit(&commit);
        if !out.halted.is_empty() {
            let stats = &mut self.workloads[wid.0 as usize];
            stats.first_halt_ms.get_or_insert(call.end_ms);
        }
    }

    /// Walks a plan's attempts from `start` as the attempt machine directs
    /// (the same [`CallMachine`] the runtime drives); see the module docs.
    fn run_attempts(
        &mut self,
        index: u64,
        wid: WorkloadId,
        req: &TrafficRequest,
        attempts: &[Attempt],
        start: u64,
        rng: &mut SplitMix64,
    ) -> CallResult {
        let policy = self.policy;
        let workload = policy.workload(wid);
        let class = pii::effective_class(workload, req.data);
        let call_cap = min_opt(req.max_output, workload.max_tokens);
        let mut call = CallResult {
            end_ms: start,
            ..CallResult::default()
        };
        let mut t = start;
        let mut seq = 0u64;
        let mut machine = CallMachine::new(
            policy,
            attempts,
            self.rules,
            Millis(t),
            workload.latency_budget,
            // The jitter's seed comes from the request, not the shared
            // stream, so the other draws are the same with or without retries.
            router_state::splitmix64(self.options.seed ^ index),
        );
        let mut action = machine.start(Millis(t));
        let mut prev: Option<usize> = None;
        loop {
            let (i, timeout) = match action {
                Action::Finish(MachineEnding::Answered { .. }) => {
                    call.ending = Some(Ending::Served);
                    break;
                }
                Action::Finish(_) => {
                    if call.ending.is_none() || call.ending == Some(Ending::Served) {
                        call.ending = Some(Ending::Failed);
                    }
                    break;
                }
                Action::Wait { until, .. } => {
                    t = until.0;
                    call.retries += 1;
                    action = machine.resume(Millis(t));
                    continue;
                }
                Action::Dispatch { index, timeout, .. } => (index, timeout),
            };
            let Some(a) = attempts.get(i) else {
                break;
            };
            if prev.is_some_and(|p| i > p) {
                call.fell_back = true;
            }
            prev = Some(i);
            let tix = a.target.0 as usize;
            self.apply_events(t);
            // The runtime's order: a provider at its `limits` is skipped
            // before the health book is asked, and the limit is handed
            // back when the health book then says no.
            let provider = policy.target(a.target).provider;
            if self.limits.admit(provider, a.estimate.tokens, Millis(t)).is_err() {
                if let Some(s) = self.targets.get_mut(tix) {
                    s.skipped_limit += 1;
                }
                call.ending = Some(Ending::Failed);
                action = machine.not_sent(Millis(t));
                continue;
            }
            match self.health.admit(a.target, Millis(t)) {
                router_state::Admission::Allowed | router_state::Admission::Probe => {}
                router_state::Admission::Ejected { .. } | router_state::Admission::CoolingDown { .. } => {
                    self.limits.refund(provider, a.estimate.tokens, Millis(t));
                    if let Some(s) = self.targets.get_mut(tix) {
                        s.skipped_unhealthy += 1;
                    }
                    call.ending = Some(Ending::Failed);
                    action = machine.not_sent(Millis(t));
                    continue;
                }
            }
            // The independent check: the IR's classes, not the engine's word.
            if !pii::dispatch_allowed(policy, a.target, class) {
                self.workloads[wid.0 as usize].pii_violations += 1;
            }
            self.dispatches += 1;
            call.dispatched += 1;
            machine.sent();
            let Some((profile, _)) = self.profiles.get(tix) else {
                break;
            };
            let target = policy.target(a.target);
            let cap = min_opt(call_cap, target.max_output);
            let output = cap.map_or(req.output_tokens, |c| req.output_tokens.min(c));
            let sample = match &self.script {
                Some(script) => script.next().unwrap_or(SimOutcome {
                    latency: Duration::ZERO,
                    result: SimResult::Err {
                        class: ErrorClass::ServerError,
                        retry_after: None,
                    },
                }),
                None => profile.sample(
                    self.options.seed ^ self.target_salt[tix],
                    index.wrapping_mul(64).wrapping_add(seq),
                    req.input_tokens,
                    output.max(1),
                ),
            };
            // A scripted answer says how long it is; a sampled one takes
            // the traffic line's length.
            let output = match (&self.script, sample.result) {
                (Some(_), SimResult::Ok { output_tokens }) => {
                    cap.map_or(output_tokens, |c| output_tokens.min(c)).max(1)
                }
                _ => output,
            };
            // `stream_breaks`: a streamed answer (not one checked whole)
            // cut off halfway. Drawn only for sampled streamed answers, so
            // other simulations replay exactly as before.
            let cut = self.script.is_none()
                && req.stream
                && a.check.is_none()
                && matches!(sample.result, SimResult::Ok { .. })
                && profile.stream_breaks(
                    self.options.seed ^ self.target_salt[tix],
                    index.wrapping_mul(64).wrapping_add(seq),
                );
            seq += 1;
            let timeout = ms(timeout);
            let latency = ms(sample.latency);
            let (failure, elapsed) = if latency > timeout {
                (Some(Failure::Timeout(TimeoutKind::Total)), timeout)
            } else if cut {
                // What the runtime sees of a cut stream: a connection error.
                (Some(Failure::Connection), latency / 2)
            } else {
                (failure_of(sample.result), latency)
            };
            // With `stream_recovery off` the caller already has the first
            // half: the call ends with an error, nothing falls back. With
            // `buffer` the cut is an ordinary failure the machine acts on.
            let cut_off = cut && workload.stream_recovery == router_core::StreamRecovery::Off;
            let cut_continue = cut && workload.stream_recovery == router_core::StreamRecovery::Continue;
            let outcome = failure.map_or(AttemptOutcome::Success, Failure::outcome);
            t += elapsed;
            call.end_ms = t;
            self.push_event(t, a.target, outcome);
            if self.uses_fastest {
                self.latency.record_attempt(
                    a.target,
                    Millis(t),
                    outcome,
                    Duration::from_millis(elapsed),
                    Some(Duration::from_millis(timeout)),
                );
            }
            let stats = &mut self.targets[tix];
            stats.dispatches += 1;
            stats.latency.record(elapsed);
            match failure {
                None => {
                    let cost = target.price.map_or(Usd::ZERO, |p| p.cost(req.input_tokens, output));
                    stats.answered += 1;
                    stats.input_tokens += req.input_tokens;
                    stats.output_tokens += output;
                    stats.cost += cost;
                    let wstats = &mut self.workloads[wid.0 as usize];
                    wstats.input_tokens += req.input_tokens;
                    wstats.output_tokens += output;
                    wstats.cost += cost;
                    self.series.add(t, target.provider.0 as usize, cost);
                    call.billed.tokens += req.input_tokens + output;
                    call.billed.usd += cost;
                    let passes = a
                        .quality_check(policy)
                        .is_none_or(|check| rng.chance_bp(self.options.check_pass.rate(check)));
                    if passes {
                        action = machine.answered();
                    } else {
                        self.targets[tix].check_failed += 1;
                        call.escalated = true;
                        call.ending = Some(Ending::Failed);
                        action = machine.escalate(Millis(t));
                    }
                }
                Some(f) => {
                    match outcome {
                        AttemptOutcome::RateLimited { .. } => stats.rate_limited += 1,
                        AttemptOutcome::Timeout => stats.timeouts += 1,
                        _ => stats.errors += 1,
                    }
                    call.ending = Some(Ending::Failed);
                    if cut_off {
                        action = Action::Finish(MachineEnding::Stopped { index: i });
                        continue;
                    }
                    if cut_continue {
                        // The half already sent is not billed here (the
                        // runtime commits an estimate of it): a
                        // simplification, stated so nobody relies on it.
                        let continued =
                            self.continue_stream(attempts, i, wid, class, req, index, &mut seq, &mut t, &mut call);
                        action = Action::Finish(if continued {
                            call.ending = Some(Ending::Served);
                            MachineEnding::Answered { index: i }
                        } else {
                            MachineEnding::Stopped { index: i }
                        });
                        if continued {
                            break;
                        }
                        continue;
                    }
                    let retry = &mut self.retry;
                    let by_deadline = matches!(action, Action::Dispatch { by_deadline: true, .. })
                        && matches!(f, Failure::Timeout(_));
                    action = machine
                        .failed(Millis(t), f, by_deadline, || retry.withdraw(Millis(t)))
                        .action;
                }
            }
        }
        call
    }

    /// `stream_recovery continue` after the stream of attempt `broken` was
    /// cut: the candidates the runtime would ask (the same rule,
    /// [`router_state::continuation_candidates`]), in turn, each through
    /// limits and health, until one answers. The continuation is half the
    /// answer's output. Whether one continued.
    #[expect(
        clippy::too_many_arguments,
        reason = "the call's running state, as `run_attempts` holds it"
    )]
    fn continue_stream(
        &mut self,
        attempts: &[Attempt],
        broken: usize,
        wid: WorkloadId,
        class: router_core::DataClass,
        req: &TrafficRequest,
        index: u64,
        seq: &mut u64,
        t: &mut u64,
        call: &mut CallResult,
    ) -> bool {
        let policy = self.policy;
        let candidates: Vec<Attempt> = router_state::continuation_candidates(policy, attempts, broken, class)
            .copied()
            .collect();
        for a in candidates {
            let tix = a.target.0 as usize;
            let provider = policy.target(a.target).provider;
            self.apply_events(*t);
            if self.limits.admit(provider, a.estimate.tokens, Millis(*t)).is_err() {
                continue;
            }
            match self.health.admit(a.target, Millis(*t)) {
                router_state::Admission::Allowed | router_state::Admission::Probe => {}
                router_state::Admission::Ejected { .. } | router_state::Admission::CoolingDown { .. } => {
                    self.limits.refund(provider, a.estimate.tokens, Millis(*t));
                    continue;
                }
            }
            let Some((profile, _)) = self.profiles.get(tix) else {
                continue;
            };
            let output = (req.output_tokens / 2).max(1);
            let sample = profile.sample(
                self.options.seed ^ self.target_salt[tix],
                index.wrapping_mul(64).wrapping_add(*seq),
                req.input_tokens,
                output,
            );
            *seq += 1;
            self.dispatches += 1;
            call.dispatched += 1;
            let timeout = a
                .first_token
                .unwrap_or(self.rules.default_first_token)
                .min(a.timeout.unwrap_or(self.rules.default_attempt_timeout));
            let (failure, elapsed) = if sample.latency > timeout {
                (Some(Failure::Timeout(TimeoutKind::FirstToken)), ms(timeout))
            } else {
                (failure_of(sample.result), ms(sample.latency))
            };
            let outcome = failure.map_or(AttemptOutcome::Success, Failure::outcome);
            *t += elapsed;
            call.end_ms = *t;
            self.push_event(*t, a.target, outcome);
            let target = policy.target(a.target);
            let stats = &mut self.targets[tix];
            stats.dispatches += 1;
            stats.latency.record(elapsed);
            if failure.is_some() {
                stats.errors += 1;
                continue;
            }
            let cost = target.price.map_or(Usd::ZERO, |p| p.cost(req.input_tokens, output));
            stats.answered += 1;
            stats.input_tokens += req.input_tokens;
            stats.output_tokens += output;
            stats.cost += cost;
            let wstats = &mut self.workloads[wid.0 as usize];
            wstats.input_tokens += req.input_tokens;
            wstats.output_tokens += output;
            wstats.cost += cost;
            call.billed.tokens += req.input_tokens + output;
            call.billed.usd += cost;
            self.series.add(*t, target.provider.0 as usize, cost);
            return true;
        }
        false
    }

    fn push_event(&mut self, at: u64, target: TargetId, outcome: AttemptOutcome) {
        self.event_seq += 1;
        self.events.push(Reverse(HealthEvent {
            at,
            seq: self.event_seq,
            target,
            outcome,
        }));
    }
}

/// Replays every line of `traffic` through `policy` and reports.
///
/// `progress` is called every few thousand requests and once at the end.
///
/// ```
/// use router_sim::{SimOptions, simulate};
///
/// let policy = policy_lang::compile(&[policy_lang::SourceFile::new("p.route", r#"
///     provider cheap { adapter mock; tier paid; data public
///       model m { price $1/M in, $2/M out; simulate latency 300ms p95 600ms } }
///     provider big { adapter mock; tier paid; data public
///       model m { price $10/M in, $30/M out } }
///     workload qa { data public; route fallback [cheap/m, big/m] }
/// "#)]).unwrap().into_policy();
/// let traffic = r#"{"ts":"2026-11-01T09:00:00Z","workload":"qa","input_tokens":1000,"output_tokens":500}"#;
/// let report = simulate(&policy, traffic.as_bytes(), SimOptions::default(), &mut |_| {}).unwrap();
/// assert_eq!(report.requests, 1);
/// assert_eq!(report.pii_violations, 0);
/// assert!(report.savings_ratio > 0.9);
/// ```
pub fn simulate<R: BufRead>(
    policy: &Policy,
    traffic: R,
    options: SimOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<SimReport, SimError> {
    let mut sim = Simulator::new(policy, options)?;
    let mut reader = TrafficReader::new(traffic);
    let mut n = 0u64;
    while let Some(req) = reader.next_request() {
        sim.step(&req?);
        n += 1;
        if n.is_multiple_of(PROGRESS_EVERY) {
            progress(Progress {
                requests: n,
                bytes: reader.bytes_read(),
            });
        }
    }
    progress(Progress {
        requests: n,
        bytes: reader.bytes_read(),
    });
    Ok(sim.finish())
}

/// The machine's reading of a sampled outcome (`None`: an answer).
fn failure_of(result: SimResult) -> Option<Failure> {
    match result {
        SimResult::Ok { .. } => None,
        SimResult::Err { class, retry_after } => Some(match class {
            ErrorClass::RateLimited => Failure::RateLimited { retry_after },
            ErrorClass::Overloaded => Failure::Overloaded { retry_after },
            ErrorClass::ServerError => Failure::ServerError,
            ErrorClass::MalformedResponse => Failure::MalformedResponse,
            ErrorClass::ResponseTooLarge => Failure::ResponseTooLarge,
            ErrorClass::Timeout(_) => Failure::Timeout(TimeoutKind::Total),
            ErrorClass::Connection => Failure::Connection,
            ErrorClass::ContextLengthExceeded => Failure::ContextLength,
            ErrorClass::Auth => Failure::Auth,
            ErrorClass::BadRequest => Failure::BadRequest,
            ErrorClass::ContentPolicy => Failure::ContentPolicy,
        }),
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
#[path = "simulate_tests.rs"]
mod tests;
