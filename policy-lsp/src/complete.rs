//! Completion: what may be written at the cursor, from the language's own
//! word tables (`policy_lang::words`, the ones its "expected …" messages
//! list) and the names the policy defines.
//!
//! The cursor's context is read from the text before it with a small scan
//! (comments and strings skipped, brackets matched), not the parser: the
//! text being typed rarely parses.

use lsp_types::{CompletionItem, CompletionItemKind};
use policy_lang::{SymbolKind, words};
use router_core::{Capability, DataClass, Quality, Strategy, Task, Tier};

use crate::workspace::PolicyDir;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    Provider,
    Model,
    Workload,
    Defaults,
    /// Inside a route expression's `[…]` or `{…}`.
    Route,
    Other,
}

/// What the text before the cursor says about where it is.
struct Context {
    block: Option<Block>,
    /// The words of the current statement before the word being typed.
    words: Vec<String>,
    /// The word being typed, up to the cursor.
    partial: String,
}

fn scan(before: &str) -> Context {
    let mut stack: Vec<Block> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut chars = before.chars().peekable();
    let flush = |word: &mut String, words: &mut Vec<String>| {
        if !word.is_empty() {
            words.push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                flush(&mut word, &mut words);
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                if block_is_statements(stack.last().copied()) {
                    words.clear();
                }
            }
            '"' => {
                flush(&mut word, &mut words);
                let mut escaped = false;
                for c in chars.by_ref() {
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') | (_, '\n') => break,
                        _ => escaped = false,
                    }
                }
                words.push("\"\"".to_string());
            }
            '{' | '[' => {
                flush(&mut word, &mut words);
                let opened = if c == '[' {
                    Block::Route
                } else {
                    match words.first().map(String::as_str) {
                        Some("provider") if stack.is_empty() => Block::Provider,
                        Some("workload") if stack.is_empty() => Block::Workload,
                        Some("defaults") if stack.is_empty() => Block::Defaults,
                        Some("model") if stack.last() == Some(&Block::Provider) => Block::Model,
                        _ if in_route(stack.last().copied(), &words) => Block::Route,
                        _ => Block::Other,
                    }
                };
                stack.push(opened);
                words.clear();
            }
            '}' | ']' => {
                flush(&mut word, &mut words);
                stack.pop();
                words.clear();
            }
            '\n' | ';' => {
                flush(&mut word, &mut words);
                if block_is_statements(stack.last().copied()) {
                    words.clear();
                }
            }
            c if c.is_whitespace() || c == ',' => flush(&mut word, &mut words),
            c => word.push(c),
        }
    }
    Context {
        block: stack.last().copied(),
        words,
        partial: word,
    }
}

/// Whether a line break ends a statement here (it does in blocks of
/// properties, not inside a route expression, which may span lines).
fn block_is_statements(b: Option<Block>) -> bool {
    !matches!(b, Some(Block::Route))
}

fn in_route(b: Option<Block>, words: &[String]) -> bool {
    b == Some(Block::Route) || words.iter().any(|w| w == "route" || w == "=")
}

fn item(label: &str, kind: CompletionItemKind, detail: &str) -> CompletionItem {
    CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail: (!detail.is_empty()).then(|| detail.to_string()),
        ..CompletionItem::default()
    }
}

fn keywords(list: &[&str], detail: &str) -> Vec<CompletionItem> {
    list.iter()
        .map(|w| item(w, CompletionItemKind::KEYWORD, detail))
        .collect()
}

fn values<T: ToString>(list: impl IntoIterator<Item = T>, detail: &str) -> Vec<CompletionItem> {
    list.into_iter()
        .map(|v| item(&v.to_string(), CompletionItemKind::ENUM_MEMBER, detail))
        .collect()
}

/// Route names and `provider/model` targets the policy defines.
fn route_names(policy: &PolicyDir) -> Vec<CompletionItem> {
    let mut out = keywords(words::ROUTE_WORDS, "route combinator");
    for (_, _, s) in policy.definitions() {
        match s.kind() {
            SymbolKind::Route => out.push(item(s.name(), CompletionItemKind::VARIABLE, "route")),
            SymbolKind::Model => {
                if let Some(p) = s.provider() {
                    out.push(item(&format!("{p}/{}", s.name()), CompletionItemKind::CLASS, "target"));
                }
            }
            _ => {}
        }
    }
    out
}

/// Everything that may be written where the text `before` ends.
pub(crate) fn complete(policy: &PolicyDir, before: &str) -> Vec<CompletionItem> {
    let cx = scan(before);
    let last = cx.words.last().map(String::as_str);
    // A value after a property's keyword.
    match last {
        Some("adapter") => {
            let mut out = values(words::PROTOCOLS.iter(), "adapter");
            out.extend(values(words::PRESETS.iter(), "OpenAI-compatible preset"));
            return out;
        }
        Some("tier") => return values([Tier::Free, Tier::Subscription, Tier::Paid], "tier"),
        Some("data") => return values(DataClass::ALL, "data class"),
        Some("quality") => return values([Quality::Low, Quality::Medium, Quality::High], "quality"),
        Some("task") => return values(Task::ALL, "task"),
        Some("supports" | "requires") => return values(Capability::ALL, "capability"),
        Some("on") => return keywords(words::TRIGGERS, "trigger"),
        Some("by") => return keywords(&["user", "request", "metadata."], "split key"),
        Some("select") => {
            let mut out = values(
                [Strategy::Cheapest, Strategy::Fastest, Strategy::First].map(Strategy::as_str),
                "strategy",
            );
            out.extend(values([Strategy::Weighted.as_str()], "strategy"));
            return out;
        }
        Some("split") => return keywords(&["by"], ""),
        Some("has") => {
            let mut out = keywords(&["tools", "images", "json_schema", "stream"], "feature");
            out.extend(keywords(&["metadata."], "metadata key"));
            return out;
        }
        Some("when" | "and" | "or" | "not") => {
            return keywords(
                &[
                    "has",
                    "not",
                    "input_tokens",
                    "max_output",
                    "task",
                    "metadata.",
                    "true",
                    "false",
                ],
                "condition",
            );
        }
        _ => {}
    }
    // `supports tools, ` goes on with more capabilities.
    if matches!(cx.words.first().map(String::as_str), Some("supports" | "requires")) {
        return values(Capability::ALL, "capability");
    }
    // A model after `provider/`.
    if let Some((provider, _)) = cx.partial.split_once('/') {
        return policy
            .definitions()
            .filter(|(_, _, s)| s.kind() == SymbolKind::Model && s.provider() == Some(provider))
            .map(|(_, _, s)| item(&format!("{provider}/{}", s.name()), CompletionItemKind::CLASS, "target"))
            .collect();
    }
    if last == Some("check") {
        return keywords(
            &["json_valid", "json_schema", "non_empty", "regex", "evaluator"],
            "check",
        );
    }
    if cx.partial.starts_with("evaluator(") {
        let mut out = Vec::new();
        out.extend(
            policy
                .definitions()
                .filter(|(_, _, s)| s.kind() == SymbolKind::Workload)
                .map(|(_, _, s)| {
                    item(
                        &format!("evaluator({})", s.name()),
                        CompletionItemKind::FUNCTION,
                        "evaluator workload",
                    )
                }),
        );
        return out;
    }
    if in_route(cx.block, &cx.words) {
        return route_names(policy);
    }
    if !cx.words.is_empty() {
        return Vec::new();
    }
    match cx.block {
        None => keywords(words::ITEMS, "item"),
        Some(Block::Provider) => keywords(words::PROVIDER_PROPS, "provider property"),
        Some(Block::Model) => keywords(words::MODEL_PROPS, "model property"),
        Some(Block::Workload) => keywords(words::WORKLOAD_PROPS, "workload property"),
        Some(Block::Defaults) => keywords(&["max_attempts"], "defaults property"),
        Some(Block::Route | Block::Other) => route_names(policy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(before: &str) -> Vec<String> {
        complete(&PolicyDir::default(), before)
            .into_iter()
            .map(|c| c.label)
            .collect()
    }

    #[test]
    fn the_context_decides_what_is_offered() {
        assert!(labels("").contains(&"provider".to_string()));
        assert!(labels("provider p {\n  ").contains(&"adapter".to_string()));
        assert!(labels("provider p {\n  adapter ").contains(&"groq".to_string()));
        assert!(labels("provider p {\n  model m {\n    ").contains(&"supports".to_string()));
        assert!(labels("provider p {\n  model m {\n    supports tools, ").contains(&"vision".to_string()));
        assert!(labels("workload w {\n  ").contains(&"route".to_string()));
        assert!(labels("workload w {\n  tier free # x\n  data ").contains(&"private".to_string()));
        assert!(labels("route r = fallback [\n  a/b,\n  ").contains(&"split".to_string()));
        assert!(labels("route r = fallback [ a/b ] on ").contains(&"rate_limited".to_string()));
        assert!(labels("provider p { adapter mock }\n").contains(&"workload".to_string()));
        assert!(labels("route r = split by ").contains(&"user".to_string()));
        assert!(labels("route r = select ").contains(&"cheapest".to_string()));
        assert!(labels("route r = match {\n  when has ").contains(&"images".to_string()));
        assert!(labels("route r = match {\n  when ").contains(&"input_tokens".to_string()));
    }
}
