//! `routec explain`: decide one call offline and show the plan and the trace.
//!
//! The facts come from `--request` (a facts JSON, or an OpenAI chat
//! completions request reduced to facts by the router's own code) and
//! `--set key=value`, applied in that order; the state from `--state`. The
//! decision is the engine's own, so what this prints is what the runtime
//! would do with the same inputs.

use std::path::{Path, PathBuf};

use miette::{GraphicalReportHandler, GraphicalTheme};
use providers::openai_wire::{ChatCompletionRequest, request_from_wire};
use router_core::{Decider, Policy, Report, RequestFacts, StateFile, StateSnapshot, render_text};
use router_runtime::Call;
use serde_json::Value;

use crate::exit;

/// Arguments of `routec explain`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Facts keys for --set: input_tokens, max_output, tools, images, json_schema, stream, task, \
                        user, data, request_seed, metadata.NAME.\n\
                        --request takes a facts JSON ({\"input_tokens\": 1200, \"user\": \"alice\", \"tools\": true}) \
                        or an OpenAI chat-completions request, reduced to facts exactly as the gateway and router \
                        do (input tokens by the router's estimator).\n\
                        Exit status: 0 with a plan, 1 when the call would be refused, 2 on usage or I/O errors \
                        or a policy that does not compile."
)]
pub struct Args {
    /// The policy: a `.route` file or a directory of them
    pub policy: PathBuf,
    /// The workload the call is tagged with (name or alias)
    #[arg(long, short)]
    pub workload: String,
    /// Request facts as JSON, or an OpenAI chat-completions request
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    /// Set one fact, e.g. `user=alice`, `input_tokens=1200`, `metadata.team=growth` (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Runtime state (time, health, latency, budgets) as JSON keyed by names
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// How `explain` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Readable text.
    Human,
    /// The engine's report as JSON.
    Json,
}

/// `--format json`: the facts used, then the engine's report.
#[derive(serde::Serialize)]
struct JsonOutput<'a> {
    facts: &'a RequestFacts,
    /// Input tokens were estimated from an OpenAI request, by the router's
    /// own estimator.
    input_tokens_estimated: bool,
    #[serde(flatten)]
    report: Report,
    /// Any call of the workload, whatever its facts: what `routec check
    /// --bounds` gives for it.
    worst_case: Value,
}

/// Where the facts came from, for the note printed above the plan.
enum FactsSource {
    None,
    Facts,
    OpenAi,
}

/// Runs the command and returns its exit code.
pub fn run(args: Args) -> u8 {
    let Some(policy) = load_policy(&args.policy) else {
        return exit::USAGE;
    };
    match explain(&policy, &args) {
        Ok((text, refused)) => {
            print!("{text}");
            if refused { exit::FAILED } else { exit::OK }
        }
        Err(message) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

/// Loads and compiles a policy through `policy-lang`. When it cannot be
/// read or does not compile, prints the diagnostics the way `routec check`
/// does and returns `None`: there is nothing to explain or draw.
pub(crate) fn load_policy(path: &Path) -> Option<Policy> {
    let compiled = policy_lang::load(&[path]).and_then(|files| policy_lang::compile(&files));
    match compiled {
        Ok(compiled) => Some(compiled.into_policy()),
        Err(report) => {
            let handler = GraphicalReportHandler::new_themed(GraphicalTheme::default()).with_links(false);
            for d in report.diagnostics() {
                let mut out = String::new();
                if handler.render_report(&mut out, d).is_ok() {
                    eprintln!("{out}");
                } else {
                    eprintln!("{d}");
                }
            }
            eprintln!(
                "error: `{}` does not compile ({} error(s)); `routec check` shows the same",
                path.display(),
                report.errors().len()
            );
            None
        }
    }
}

/// The output for `args` against an already loaded policy, and whether the
/// call was refused. Errors are one-line messages.
fn explain(policy: &Policy, args: &Args) -> Result<(String, bool), String> {
    let Some(workload) = policy.workload_id(&args.workload) else {
        let known: Vec<&str> = policy.workloads.iter().map(|w| w.name.as_str()).collect();
        return Err(format!(
            "the policy has no workload `{}`; it has: {}",
            args.workload,
            known.join(", ")
        ));
    };
    let (mut facts, source) = match &args.request {
        Some(path) => read_request(path)?,
        None => (RequestFacts::default(), FactsSource::None),
    };
    for pair in &args.set {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("`--set {pair}` is not of the form key=value"))?;
        facts.set(key.trim(), value.trim()).map_err(|e| e.to_string())?;
    }
    let state = match &args.state {
        Some(path) => read_state(path, policy)?,
        None => StateSnapshot::for_policy(policy, 0),
    };
    let decision = Decider::new(policy).decide(&facts.facts(workload), &state);
    let refused = decision.refusal().is_some();
    let text = match args.format {
        Format::Json => {
            let out = JsonOutput {
                facts: &facts,
                input_tokens_estimated: matches!(source, FactsSource::OpenAi),
                report: Report::new(policy, &decision),
                worst_case: super::check::worst_case_json(&router_core::worst_case(
                    policy,
                    decision.explain().workload,
                )),
            };
            let mut s = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
            s.push('\n');
            s
        }
        Format::Human => {
            let facts_json = serde_json::to_string(&facts).map_err(|e| e.to_string())?;
            let mut s = format!("facts: {facts_json}\n");
            match source {
                FactsSource::OpenAi => s.push_str(
                    "note: facts derived from an OpenAI request as the router derives them (input tokens estimated)\n",
                ),
                FactsSource::Facts | FactsSource::None => {}
            }
            s.push_str(&render_text(policy, &decision));
            // Any call of the workload, whatever its facts: the bound
            // `routec check --bounds` prints.
            let bound = router_core::worst_case(policy, decision.explain().workload);
            s.push_str(&format!(
                "\nworst case of any call of this workload: {}\n",
                super::check::worst_case_text(&bound)
            ));
            s
        }
    };
    Ok((text, refused))
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("`{}` is not JSON: {e}", path.display()))
}

fn read_state(path: &Path, policy: &Policy) -> Result<StateSnapshot, String> {
    let file: StateFile = serde_json::from_value(read_json(path)?).map_err(|e| format!("`{}`: {e}", path.display()))?;
    file.resolve(policy).map_err(|e| format!("`{}`: {e}", path.display()))
}

/// A facts JSON, or an OpenAI chat-completions request (recognised by its
/// `messages` array) reduced to facts.
fn read_request(path: &Path) -> Result<(RequestFacts, FactsSource), String> {
    let value = read_json(path)?;
    if value.get("messages").is_some_and(Value::is_array) {
        let facts = facts_from_openai(value)
            .map_err(|e| format!("`{}` is not an OpenAI chat-completions request: {e}", path.display()))?;
        return Ok((facts, FactsSource::OpenAi));
    }
    let facts = serde_json::from_value(value).map_err(|e| format!("`{}`: {e}", path.display()))?;
    Ok((facts, FactsSource::Facts))
}

/// Facts from an OpenAI chat-completions request body, exactly as the
/// gateway and the router derive them: the body is read into the
/// normalised request as the gateway reads it, then
/// [`router_runtime::Call::request_facts`] gives the router's own facts
/// (input tokens from `providers::estimate_tokens`, max output, tools,
/// images, JSON schema, `stream`, `user`, `metadata`).
fn facts_from_openai(mut body: Value) -> Result<RequestFacts, String> {
    // `--workload` names the workload, so a `model` is not needed here.
    if let Value::Object(fields) = &mut body {
        fields.entry("model").or_insert_with(|| Value::String(String::new()));
    }
    let wire: ChatCompletionRequest = serde_json::from_value(body).map_err(|e| e.to_string())?;
    let (_, request) = request_from_wire(wire).map_err(|e| e.to_string())?;
    let call = Call {
        request,
        ..Call::default()
    };
    Ok(call.request_facts())
}

#[cfg(test)]
mod tests {
    use providers::{ChatRequest, ContentPart, Message, ResponseFormat, Role, Tool};

    use super::*;

    #[test]
    fn openai_requests_reduce_to_the_router_s_own_facts() {
        let text = "Summarise the quarterly report, keeping every figure that matters to finance.";
        let body = serde_json::json!({
            "messages": [
                {"role": "system", "content": "Summarise."},
                {"role": "user", "content": [
                    {"type": "text", "text": text},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                ]}
            ],
            "max_tokens": 300,
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
            "stream": true,
            "user": "alice",
            "metadata": {"team": "growth"}
        });
        let f = facts_from_openai(body).unwrap();
        assert_eq!(f.max_output, Some(300));
        assert!(f.tools && f.images && f.json_schema && f.stream);
        assert_eq!(f.user.as_deref(), Some("alice"));
        assert_eq!(f.metadata.get("team").map(String::as_str), Some("growth"));

        // The same request built by hand, as the gateway hands it to the
        // router: the router's token estimate, not a character count.
        let mut user = Message::text(Role::User, text);
        user.content.push(ContentPart::Image {
            url: "data:image/png;base64,AAAA".into(),
            detail: None,
        });
        let request = ChatRequest {
            messages: vec![Message::text(Role::System, "Summarise."), user],
            tools: vec![Tool {
                name: "f".into(),
                description: None,
                parameters: serde_json::json!({"type": "object", "properties": {}}),
            }],
            response_format: Some(ResponseFormat::JsonSchema {
                name: "x".into(),
                schema: serde_json::json!({}),
                strict: false,
            }),
            ..ChatRequest::default()
        };
        let router = Call::new("w", request).request_facts();
        assert_eq!(f.input_tokens, router.input_tokens);
        let chars = (text.len() + "Summarise.".len()) as u64;
        assert_ne!(f.input_tokens, chars.div_ceil(4), "not the old 4-characters guess");
    }

    #[test]
    fn requests_the_gateway_would_refuse_are_errors() {
        let bad_role = serde_json::json!({"messages": [{"role": "narrator", "content": "hi"}]});
        let err = facts_from_openai(bad_role).unwrap_err();
        assert!(err.contains("narrator"), "{err}");
        let bad_metadata = serde_json::json!({"messages": [], "metadata": {"n": 3}});
        assert!(facts_from_openai(bad_metadata).is_err());
    }
}
