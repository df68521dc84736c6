//! Quality gates: the checks an `escalate` runs on an answer before
//! accepting it.
//!
//! Why: the cheap model is right most of the time; checking its answer is
//! cheaper than always asking the strong one. A rejected answer was still
//! paid for, so the runtime commits its cost before escalating.
//!
//! - `json_valid`: the text parses as JSON.
//! - `json_schema`: the text parses and validates against the request's
//!   `response_format` schema (the `jsonschema` crate, drafts 4 to 2020-12,
//!   no remote `$ref`s); a request without a schema is checked as `json_valid`.
//! - `non_empty`: some non-blank text, or a tool call.
//! - `regex("…")`: the text matches (compiled once, when the router is built).
//! - `evaluator(W)`: a nested call of workload `W` judges the answer
//!   (see [`evaluator_request`]); it passes if W's answer starts with
//!   "pass", case-insensitive. An evaluator that fails counts as a failed
//!   check: an answer nobody could vouch for is not accepted.

use std::collections::HashMap;

use providers::{ChatRequest, ChatResponse, Message, ResponseFormat, Role};
use router_core::{NodeId, NodeKind, Policy, QualityCheck};
use serde_json::Value;

/// Compiled `regex("…")` checks by their escalate node.
pub(crate) type Regexes = HashMap<NodeId, Result<regex::Regex, String>>;

/// Compiles every `regex` check of the policy once. A pattern that does
/// not compile fails every answer it checks, with the compile error as
/// the reason (the policy checker should have caught it).
pub(crate) fn compile_regexes(policy: &Policy) -> Regexes {
    let mut out = HashMap::new();
    for i in 0..policy.routes.len() {
        let id = NodeId(i as u32);
        if let Some(node) = policy.routes.get(id)
            && let NodeKind::Escalate {
                check: QualityCheck::Regex(pattern),
                ..
            } = &node.kind
        {
            out.insert(id, regex::Regex::new(pattern).map_err(|e| e.to_string()));
        }
    }
    out
}

/// The check's name as the policy writes it.
pub(crate) fn check_name(check: &QualityCheck) -> &'static str {
    match check {
        QualityCheck::JsonValid => "json_valid",
        QualityCheck::JsonSchema => "json_schema",
        QualityCheck::NonEmpty => "non_empty",
        QualityCheck::Regex(_) => "regex",
        QualityCheck::Evaluator(_) => "evaluator",
    }
}

/// Runs a local check (every check but `evaluator`, which needs a call:
/// `None`). `Err` holds why the answer failed.
pub(crate) fn check_local(
    check: &QualityCheck,
    node: NodeId,
    regexes: &Regexes,
    request: &ChatRequest,
    answer: &ChatResponse,
) -> Option<Result<(), String>> {
    let text = answer.content.as_str();
    Some(match check {
        QualityCheck::JsonValid => parse_json(text).map(drop),
        QualityCheck::JsonSchema => parse_json(text).and_then(|value| match &request.response_format {
            Some(ResponseFormat::JsonSchema { schema, .. }) => validate(schema, &value),
            Some(ResponseFormat::Text | ResponseFormat::JsonObject) | None => Ok(()),
        }),
        QualityCheck::NonEmpty => {
            if text.trim().is_empty() && answer.tool_calls.is_empty() {
                Err("the answer is blank".to_owned())
            } else {
                Ok(())
            }
        }
        QualityCheck::Regex(pattern) => match regexes.get(&node) {
            Some(Ok(re)) if re.is_match(text) => Ok(()),
            Some(Ok(_)) => Err(format!("the answer does not match `{pattern}`")),
            Some(Err(e)) => Err(format!("the pattern does not compile: {e}")),
            None => Err("the pattern was not compiled".to_owned()),
        },
        QualityCheck::Evaluator(_) => return None,
    })
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text.trim()).map_err(|e| format!("the answer is not JSON: {e}"))
}

fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    let validator =
        jsonschema::validator_for(schema).map_err(|e| format!("the request's schema is not a valid schema: {e}"))?;
    validator
        .validate(value)
        .map_err(|e| format!("the answer does not match the request's schema: {e}"))
}

/// The request sent to an evaluator workload: the question (the original
/// conversation's last user message) and the answer, asking for a verdict
/// that starts with "pass" or "fail".
pub(crate) fn evaluator_request(original: &ChatRequest, answer: &ChatResponse) -> ChatRequest {
    let question = original
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(Message::joined_text)
        .unwrap_or_default();
    let prompt = format!(
        "Judge whether the answer below is acceptable for the question.\n\
         Reply with one word first: `pass` if it is, `fail` if it is not, then a short reason.\n\n\
         Question:\n{question}\n\nAnswer:\n{}",
        answer.content
    );
    ChatRequest {
        messages: vec![
            Message::text(Role::System, "You are a strict reviewer of answers."),
            Message::text(Role::User, prompt),
        ],
        max_tokens: Some(64),
        ..ChatRequest::default()
    }
}

/// Whether an evaluator's answer is a pass.
pub(crate) fn evaluator_passed(verdict: &ChatResponse) -> bool {
    verdict
        .content
        .trim_start()
        .get(..4)
        .is_some_and(|w| w.eq_ignore_ascii_case("pass"))
}

#[cfg(test)]
mod tests {
    use providers::{FinishReason, ToolCall, Usage};

    use super::*;

    fn answer(text: &str) -> ChatResponse {
        ChatResponse {
            id: None,
            model: "m".into(),
            content: text.into(),
            tool_calls: Vec::new(),
            finish_reason: FinishReason::Stop,
            usage: Usage::default(),
        }
    }

    fn local(check: &QualityCheck, request: &ChatRequest, text: &str) -> Result<(), String> {
        let mut regexes = Regexes::new();
        if let QualityCheck::Regex(p) = check {
            regexes.insert(NodeId(0), regex::Regex::new(p).map_err(|e| e.to_string()));
        }
        check_local(check, NodeId(0), &regexes, request, &answer(text)).unwrap()
    }

    #[test]
    fn json_checks_parse_and_validate_against_the_request_s_schema() {
        let plain = ChatRequest::user("q");
        assert!(local(&QualityCheck::JsonValid, &plain, " {\"a\": 1} ").is_ok());
        assert!(local(&QualityCheck::JsonValid, &plain, "sure! {\"a\": 1}").is_err());
        let mut with_schema = plain.clone();
        with_schema.response_format = Some(ResponseFormat::JsonSchema {
            name: "s".into(),
            schema: serde_json::json!({
                "type": "object",
                "properties": {"a": {"type": "integer"}},
                "required": ["a"],
            }),
            strict: true,
        });
        assert!(local(&QualityCheck::JsonSchema, &with_schema, r#"{"a": 1}"#).is_ok());
        let err = local(&QualityCheck::JsonSchema, &with_schema, r#"{"a": "one"}"#).unwrap_err();
        assert!(
            err.starts_with("the answer does not match the request's schema"),
            "{err}"
        );
        assert!(local(&QualityCheck::JsonSchema, &with_schema, r#"{"b": 1}"#).is_err());
        assert!(
            local(&QualityCheck::JsonSchema, &plain, r#"{"b": 1}"#).is_ok(),
            "no schema: json_valid"
        );
    }

    #[test]
    fn non_empty_and_regex() {
        let req = ChatRequest::user("q");
        assert!(local(&QualityCheck::NonEmpty, &req, "  \n").is_err());
        assert!(local(&QualityCheck::NonEmpty, &req, "x").is_ok());
        let mut tool_only = answer("");
        tool_only.tool_calls.push(ToolCall {
            id: "c".into(),
            name: "f".into(),
            arguments: "{}".into(),
        });
        let ok = check_local(&QualityCheck::NonEmpty, NodeId(0), &Regexes::new(), &req, &tool_only);
        assert_eq!(ok, Some(Ok(())));
        let re = QualityCheck::Regex("^[A-Z]{3}-\\d+$".into());
        assert!(local(&re, &req, "ABC-12").is_ok());
        assert_eq!(
            local(&re, &req, "abc").unwrap_err(),
            "the answer does not match `^[A-Z]{3}-\\d+$`"
        );
    }

    #[test]
    fn evaluators_pass_on_a_leading_pass() {
        assert!(evaluator_passed(&answer("PASS - fine")));
        assert!(evaluator_passed(&answer("  pass")));
        assert!(!evaluator_passed(&answer("fail: wrong")));
        assert!(!evaluator_passed(&answer("pas")));
        let req = evaluator_request(&ChatRequest::user("what is 2+2?"), &answer("4"));
        let prompt = req.messages[1].joined_text();
        assert!(
            prompt.contains("what is 2+2?") && prompt.ends_with("Answer:\n4"),
            "{prompt}"
        );
    }
}
