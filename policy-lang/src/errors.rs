//! The public error and warning types: one enum per operation ([`LoadError`]
//! for reading files, [`ParseError`] for text to tree, [`CheckError`] and
//! [`CheckWarning`] for the checks), each variant wrapping one struct whose
//! fields are private and read through accessors.
//!
//! Every type renders through miette with its [`Code`](crate::Code), a
//! one-line message in the policy's words, labelled spans and help.

use crate::diagnostic::{diagnostic_enum, diagnostic_struct};

// ------------------------------------------------------------------ loading

diagnostic_struct!(
    /// A path that could not be read (`R0001`).
    UnreadablePathError { path: String, reason: String }
);

impl UnreadablePathError {
    /// The path as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What the operating system said.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

diagnostic_struct!(
    /// A file that is not valid UTF-8 (`R0002`).
    NotUtf8Error { file: String, offset: usize }
);

impl NotUtf8Error {
    /// The file's name.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The byte offset of the first invalid byte.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

diagnostic_struct!(
    /// A file larger than [`MAX_FILE_BYTES`](crate::MAX_FILE_BYTES) (`R0003`).
    FileTooLargeError { file: String, size: u64 }
);

impl FileTooLargeError {
    /// The file's name.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

diagnostic_struct!(
    /// A directory holding no `.route` files (`R0004`).
    NoPolicyFilesError { dir: String }
);

impl NoPolicyFilesError {
    /// The directory as given.
    pub fn dir(&self) -> &str {
        &self.dir
    }
}

diagnostic_enum!(
    /// Why a policy could not be read from disk.
    LoadError {
        /// The path could not be read.
        Unreadable(UnreadablePathError),
        /// A file is not UTF-8.
        NotUtf8(NotUtf8Error),
        /// A file is over the size limit.
        TooLarge(FileTooLargeError),
        /// A directory has no `.route` files.
        NoPolicyFiles(NoPolicyFilesError),
    }
);

// ------------------------------------------------------------------ parsing

diagnostic_struct!(
    /// Text that does not follow the grammar (`R0005`).
    SyntaxError { expected: Vec<String>, found: String }
);

impl SyntaxError {
    /// What would have been accepted, in words.
    pub fn expected(&self) -> &[String] {
        &self.expected
    }

    /// What was there instead.
    pub fn found(&self) -> &str {
        &self.found
    }
}

diagnostic_struct!(
    /// A block, list, parenthesis or string never closed (`R0006`).
    UnclosedError { delimiter: char, what: String }
);

impl UnclosedError {
    /// The closing character that is missing.
    pub fn delimiter(&self) -> char {
        self.delimiter
    }

    /// What was left open, in words (``workload `audit_report` ``).
    pub fn what(&self) -> &str {
        &self.what
    }
}

diagnostic_struct!(
    /// A string escape that is not one of `\\ \" \n \r \t \u{…}` (`R0007`).
    UnknownEscapeError { escape: String }
);

impl UnknownEscapeError {
    /// The escape as written.
    pub fn escape(&self) -> &str {
        &self.escape
    }
}

diagnostic_struct!(
    /// Brackets nested deeper than the limit (`R0008`).
    NestingTooDeepError { limit: usize }
);

impl NestingTooDeepError {
    /// The deepest nesting allowed.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

diagnostic_struct!(
    /// A literal that is malformed or out of range (`R0009`).
    BadLiteralError { literal: String }
);

impl BadLiteralError {
    /// The literal as written.
    pub fn literal(&self) -> &str {
        &self.literal
    }
}

diagnostic_struct!(
    /// A closing bracket with nothing open, or closing the wrong thing (`R0010`).
    UnexpectedCloserError { delimiter: char }
);

impl UnexpectedCloserError {
    /// The closing character found.
    pub fn delimiter(&self) -> char {
        self.delimiter
    }
}

diagnostic_enum!(
    /// Why policy text could not be turned into a syntax tree.
    ParseError {
        /// The file is over the size limit.
        TooLarge(FileTooLargeError),
        /// The text does not follow the grammar.
        Syntax(SyntaxError),
        /// Something was left open.
        Unclosed(UnclosedError),
        /// An unknown string escape.
        UnknownEscape(UnknownEscapeError),
        /// Nesting too deep.
        NestingTooDeep(NestingTooDeepError),
        /// A malformed or out-of-range literal.
        BadLiteral(BadLiteralError),
        /// A stray or mismatched closing bracket.
        UnexpectedCloser(UnexpectedCloserError),
    }
);

// ------------------------------------------------------------------ names and properties

diagnostic_struct!(
    /// A reference to something not defined (`R0101`).
    UnknownNameError { kind: &'static str, name: String, suggestion: Option<String> }
);

impl UnknownNameError {
    /// What kind of thing was meant: `route`, `provider`, `model`, `workload`.
    pub fn kind(&self) -> &str {
        self.kind
    }

    /// The name as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The closest defined name, if one is close.
    pub fn suggestion(&self) -> Option<&str> {
        self.suggestion.as_deref()
    }
}

diagnostic_struct!(
    /// A name defined twice (`R0102`).
    DuplicateNameError { kind: &'static str, name: String }
);

impl DuplicateNameError {
    /// What kind of thing: `provider`, `workload`, `route`, `model`, `alias`.
    pub fn kind(&self) -> &str {
        self.kind
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

diagnostic_struct!(
    /// An adapter that is neither a protocol nor a known preset (`R0103`).
    UnknownAdapterError { adapter: String, suggestion: Option<String> }
);

impl UnknownAdapterError {
    /// The adapter as written.
    pub fn adapter(&self) -> &str {
        &self.adapter
    }

    /// The closest known adapter, if one is close.
    pub fn suggestion(&self) -> Option<&str> {
        self.suggestion.as_deref()
    }
}

diagnostic_struct!(
    /// A task that is not one of the known tasks (`R0104`).
    UnknownTaskError { task: String, suggestion: Option<String> }
);

impl UnknownTaskError {
    /// The task as written.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// The closest known task, if one is close.
    pub fn suggestion(&self) -> Option<&str> {
        self.suggestion.as_deref()
    }
}

diagnostic_struct!(
    /// A property given twice in one block (`R0105`).
    DuplicatePropertyError { property: String }
);

impl DuplicatePropertyError {
    /// The property.
    pub fn property(&self) -> &str {
        &self.property
    }
}

diagnostic_struct!(
    /// A model that `supports embeddings` on an adapter whose wire format
    /// has no embeddings endpoint (`R0108`).
    NoEmbeddingsEndpointError { model: String, adapter: String }
);

impl NoEmbeddingsEndpointError {
    /// The model, as `provider/model`.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The adapter.
    pub fn adapter(&self) -> &str {
        &self.adapter
    }
}

diagnostic_struct!(
    /// A required property missing from a block (`R0106`).
    MissingPropertyError { property: String, block: String }
);

impl MissingPropertyError {
    /// The property.
    pub fn property(&self) -> &str {
        &self.property
    }

    /// The block lacking it, in words (``provider `zai` ``).
    pub fn block(&self) -> &str {
        &self.block
    }
}

diagnostic_struct!(
    /// A `regex("…")` check whose pattern the `regex` crate rejects (`R0107`):
    /// the runtime compiles it with the same crate, so it could never pass.
    InvalidRegexError { pattern: String, reason: String }
);

impl InvalidRegexError {
    /// The pattern, escapes resolved.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Why the `regex` crate rejects it, in its words.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

// ------------------------------------------------------------------ soundness

diagnostic_struct!(
    /// Routes that reach themselves (`R0201`).
    RouteCycleError { cycle: Vec<String> }
);

impl RouteCycleError {
    /// The routes of the cycle in order; the first is repeated at the end.
    pub fn cycle(&self) -> &[String] {
        &self.cycle
    }
}

diagnostic_struct!(
    /// A workload that can reach a provider below its data class (`R0202`).
    PiiViolationError { workload: String, provider: String, path: Vec<String> }
);

impl PiiViolationError {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// The provider it can reach.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The path from the workload to the target, one step per element.
    pub fn path(&self) -> &[String] {
        &self.path
    }
}

diagnostic_struct!(
    /// A workload whose `escalate` check is judged by an evaluator workload
    /// of a lower data class (`R0202`): the evaluator reads the answers.
    EvaluatorBelowClassError { workload: String, evaluator: String }
);

impl EvaluatorBelowClassError {
    /// The workload whose answers are judged.
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// The evaluator workload.
    pub fn evaluator(&self) -> &str {
        &self.evaluator
    }
}

diagnostic_struct!(
    /// A workload none of whose targets it may use (`R0203`).
    NoEligibleTargetError { workload: String }
);

impl NoEligibleTargetError {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }
}

diagnostic_struct!(
    /// Split weights that do not add up to 100 (`R0204`).
    SplitWeightsError { total: u64 }
);

impl SplitWeightsError {
    /// What they add up to.
    pub fn total(&self) -> u64 {
        self.total
    }
}

diagnostic_struct!(
    /// A `match` with no `else` arm (`R0205`).
    MatchWithoutElseError {}
);

diagnostic_struct!(
    /// A `match` arm that earlier arms always take first (`R0206`).
    UnreachableArmError { arm: usize }
);

impl UnreachableArmError {
    /// The arm's position, from 1.
    pub fn arm(&self) -> usize {
        self.arm
    }
}

diagnostic_struct!(
    /// A workload requiring a capability that a reachable model lacks (`R0207`).
    CapabilityMismatchError { workload: String, target: String, missing: Vec<String>, path: Vec<String> }
);

impl CapabilityMismatchError {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// The target lacking the capabilities, as `provider/model`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The capabilities it lacks.
    pub fn missing(&self) -> &[String] {
        &self.missing
    }

    /// The path from the workload to the target.
    pub fn path(&self) -> &[String] {
        &self.path
    }
}

diagnostic_struct!(
    /// A workload's `max_tokens` above a reachable model's limit (`R0208`).
    MaxTokensError { workload: String, target: String, max_tokens: u64, limit: u64 }
);

impl MaxTokensError {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// The target, as `provider/model`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The workload's `max_tokens`.
    pub fn max_tokens(&self) -> u64 {
        self.max_tokens
    }

    /// The model's limit it exceeds.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

diagnostic_struct!(
    /// A dollar-limited workload that can reach a paid model with no price (`R0209`).
    UnpricedModelError { workload: String, target: String }
);

impl UnpricedModelError {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// The target, as `provider/model`.
    pub fn target(&self) -> &str {
        &self.target
    }
}

diagnostic_struct!(
    /// A secret (an API key) written into the policy (`R0210`). The secret
    /// itself is never kept, so the error can be logged.
    LiteralSecretError {}
);

diagnostic_struct!(
    /// A provider that trains on inputs but is cleared for more than public data (`R0211`).
    TrainsOnInputsError { provider: String }
);

impl TrainsOnInputsError {
    /// The provider.
    pub fn provider(&self) -> &str {
        &self.provider
    }
}

diagnostic_struct!(
    /// A provider that stores inputs, is cleared above public data and sends
    /// no no-store header (`R0212`).
    StoresInputsError { provider: String }
);

impl StoresInputsError {
    /// The provider.
    pub fn provider(&self) -> &str {
        &self.provider
    }
}

diagnostic_struct!(
    /// Workloads whose `escalate … check evaluator(W)` checks lead back to
    /// themselves (`R0213`): judging one answer would never end.
    EvaluatorCycleError { cycle: Vec<String> }
);

impl EvaluatorCycleError {
    /// The workloads of the cycle in order, each judged by the next; the
    /// first is repeated at the end.
    pub fn cycle(&self) -> &[String] {
        &self.cycle
    }
}

diagnostic_struct!(
    /// A workload whose route goes deeper, through named routes, than the
    /// router follows (`R0214`).
    RouteTooDeepError { workload: String, depth: u64 }
);

impl RouteTooDeepError {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// The most steps from the workload's route down to a target.
    pub fn depth(&self) -> u64 {
        self.depth
    }
}

diagnostic_struct!(
    /// A workload that can reach a provider outside the jurisdictions its
    /// data may be processed in (`R0220`).
    ResidencyViolationError { workload: String, provider: String, path: Vec<String> }
);

impl ResidencyViolationError {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// The provider it can reach.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The path from the workload to the target, one step per element.
    pub fn path(&self) -> &[String] {
        &self.path
    }
}

diagnostic_struct!(
    /// A workload whose route has more steps than the router walks per call
    /// (`R0215`).
    RouteTooLargeError { workload: String, steps: u64 }
);

impl RouteTooLargeError {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// The steps one walk of its route takes (saturating).
    pub fn steps(&self) -> u64 {
        self.steps
    }
}

diagnostic_enum!(
    /// A problem that makes a policy unusable. `routec check` exits 1 on any.
    CheckError {
        /// The policy could not be read.
        Load(LoadError),
        /// The policy text does not parse.
        Parse(ParseError),
        /// An undefined name.
        UnknownName(UnknownNameError),
        /// A name defined twice.
        DuplicateName(DuplicateNameError),
        /// An unknown adapter.
        UnknownAdapter(UnknownAdapterError),
        /// An unknown task.
        UnknownTask(UnknownTaskError),
        /// A property given twice.
        DuplicateProperty(DuplicatePropertyError),
        /// A required property missing.
        MissingProperty(MissingPropertyError),
        /// A `regex` check pattern that does not compile.
        InvalidRegex(InvalidRegexError),
        /// `supports embeddings` on an adapter with no embeddings endpoint.
        NoEmbeddingsEndpoint(NoEmbeddingsEndpointError),
        /// A route cycle.
        RouteCycle(RouteCycleError),
        /// A data-class (PII) violation.
        PiiViolation(PiiViolationError),
        /// Answers judged by an evaluator of a lower data class.
        EvaluatorBelowClass(EvaluatorBelowClassError),
        /// A workload with no eligible target.
        NoEligibleTarget(NoEligibleTargetError),
        /// Split weights not adding up to 100.
        SplitWeights(SplitWeightsError),
        /// A `match` without `else`.
        MatchWithoutElse(MatchWithoutElseError),
        /// An unreachable `match` arm.
        UnreachableArm(UnreachableArmError),
        /// A capability mismatch.
        CapabilityMismatch(CapabilityMismatchError),
        /// `max_tokens` over a model's limit.
        MaxTokens(MaxTokensError),
        /// An unpriced paid model under a dollar limit.
        UnpricedModel(UnpricedModelError),
        /// A literal secret.
        LiteralSecret(LiteralSecretError),
        /// A provider training on inputs above public data.
        TrainsOnInputs(TrainsOnInputsError),
        /// A provider storing inputs above public data.
        StoresInputs(StoresInputsError),
        /// Workloads judging their own answers through evaluators.
        EvaluatorCycle(EvaluatorCycleError),
        /// A route deeper than the router follows.
        RouteTooDeep(RouteTooDeepError),
        /// A route with more steps than the router walks.
        RouteTooLarge(RouteTooLargeError),
        /// A provider outside the workload's jurisdictions.
        Residency(ResidencyViolationError),
    }
);

// ------------------------------------------------------------------ warnings

diagnostic_struct!(
    /// A provider no workload can reach (`W0301`).
    UnusedProviderWarning { provider: String }
);

impl UnusedProviderWarning {
    /// The provider.
    pub fn provider(&self) -> &str {
        &self.provider
    }
}

diagnostic_struct!(
    /// A named route no workload can reach (`W0302`).
    UnusedRouteWarning { route: String }
);

impl UnusedRouteWarning {
    /// The route.
    pub fn route(&self) -> &str {
        &self.route
    }
}

diagnostic_struct!(
    /// A model no workload can reach, at a provider that is used (`W0303`).
    UnusedModelWarning { target: String }
);

impl UnusedModelWarning {
    /// The model, as `provider/model`.
    pub fn target(&self) -> &str {
        &self.target
    }
}

diagnostic_struct!(
    /// Two consecutive candidates of a chain at the same provider (`W0304`).
    RepeatedProviderWarning { provider: String }
);

impl RepeatedProviderWarning {
    /// The provider.
    pub fn provider(&self) -> &str {
        &self.provider
    }
}

diagnostic_struct!(
    /// A target that is never tried (`W0305`).
    UnreachableTargetWarning { target: String }
);

impl UnreachableTargetWarning {
    /// The target, as `provider/model`.
    pub fn target(&self) -> &str {
        &self.target
    }
}

diagnostic_struct!(
    /// A name mixing letters of several scripts (`W0306`).
    MixedScriptsWarning { name: String, scripts: Vec<String> }
);

impl MixedScriptsWarning {
    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scripts it mixes.
    pub fn scripts(&self) -> &[String] {
        &self.scripts
    }
}

diagnostic_struct!(
    /// A policy with no workloads (`W0307`).
    NoWorkloadsWarning {}
);

diagnostic_struct!(
    /// A workload whose route reaches both chat models and embedding
    /// models (`W0313`): each call can use only one kind.
    MixedModelKindsWarning { workload: String }
);

impl MixedModelKindsWarning {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }
}

diagnostic_struct!(
    /// A dollar budget line smaller than one worst-case call (`W0312`).
    WorstCaseOverBudgetWarning { workload: String, line: String }
);

impl WorstCaseOverBudgetWarning {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// The budget line as written, like `$1/day`.
    pub fn line(&self) -> &str {
        &self.line
    }
}

diagnostic_struct!(
    /// A workload whose worst case per call exceeds its `max_cost` (`W0311`).
    WorstCaseOverMaxCostWarning { workload: String }
);

impl WorstCaseOverMaxCostWarning {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }
}

diagnostic_struct!(
    /// `stream_recovery continue` on a workload none of whose targets
    /// accepts a prefill (`W0310`).
    ContinueWithoutPrefillWarning { workload: String }
);

impl ContinueWithoutPrefillWarning {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }
}

diagnostic_struct!(
    /// A `free_first` none of whose candidates is free (`W0308`).
    NoFreeTargetWarning { lowest: String }
);

impl NoFreeTargetWarning {
    /// The cheapest tier its candidates reach: `subscription` or `paid`.
    pub fn lowest_tier(&self) -> &str {
        &self.lowest
    }
}

diagnostic_struct!(
    /// A budget line smaller than the reservation of one call (`W0309`).
    BudgetBelowOneCallWarning { workload: String, line: String }
);

impl BudgetBelowOneCallWarning {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// The budget line as written, like `30 tokens/day`.
    pub fn line(&self) -> &str {
        &self.line
    }
}

diagnostic_enum!(
    /// A problem that does not stop a policy from working. `routec check`
    /// exits 1 on these only with `--deny-warnings`.
    CheckWarning {
        /// An unused provider.
        UnusedProvider(UnusedProviderWarning),
        /// An unused route.
        UnusedRoute(UnusedRouteWarning),
        /// An unused model.
        UnusedModel(UnusedModelWarning),
        /// Back-to-back attempts on one provider.
        RepeatedProvider(RepeatedProviderWarning),
        /// A target never tried.
        UnreachableTarget(UnreachableTargetWarning),
        /// A mixed-script name.
        MixedScripts(MixedScriptsWarning),
        /// No workloads.
        NoWorkloads(NoWorkloadsWarning),
        /// A `free_first` with nothing free.
        NoFreeTarget(NoFreeTargetWarning),
        /// A budget line no call fits in.
        BudgetBelowOneCall(BudgetBelowOneCallWarning),
        /// `stream_recovery continue` with no target that accepts a prefill.
        ContinueWithoutPrefill(ContinueWithoutPrefillWarning),
        /// A worst case per call above the workload's `max_cost`.
        WorstCaseOverMaxCost(WorstCaseOverMaxCostWarning),
        /// A dollar budget line smaller than one worst-case call.
        WorstCaseOverBudget(WorstCaseOverBudgetWarning),
        /// A workload reaching both chat and embedding models.
        MixedModelKinds(MixedModelKindsWarning),
    }
);
