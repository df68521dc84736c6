//! Every prefix of every example policy (cut every few bytes, as a buffer
//! looks while it is typed) goes through the server in one session, with
//! hover, definition, completion, outline, formatting, code actions and
//! lenses asked at several places in each. The session must end cleanly,
//! every request must be answered, and none with an internal error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Cursor;

use serde_json::{Value, json};

fn frame(out: &mut Vec<u8>, v: Value) {
    let body = v.to_string();
    out.extend(format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes());
    out.extend(body.into_bytes());
}

fn responses(mut bytes: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let header = std::str::from_utf8(&bytes[..at]).unwrap();
        let len: usize = header.trim_start_matches("Content-Length: ").parse().unwrap();
        let body = &bytes[at + 4..at + 4 + len];
        out.push(serde_json::from_slice(body).unwrap());
        bytes = &bytes[at + 4 + len..];
    }
    out
}

#[test]
fn every_prefix_of_the_examples_is_answered_without_a_crash() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/policies");
    let mut examples: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    examples.sort();
    let tmp = tempfile::tempdir().unwrap();
    let uri = format!("file://{}/buffer.route", tmp.path().display());

    let mut input = Vec::new();
    frame(
        &mut input,
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"processId": null, "rootUri": null, "capabilities": {}}}),
    );
    frame(
        &mut input,
        json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
    );
    frame(
        &mut input,
        json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "route", "version": 0, "text": ""}}}),
    );
    let mut id = 1;
    let mut version = 1;
    let mut cuts = 0;
    for path in examples.iter().filter(|p| p.extension().is_some_and(|e| e == "route")) {
        let text = std::fs::read_to_string(path).unwrap();
        let step = (text.len() / 40).max(1);
        let mut cut = 0;
        while cut <= text.len() {
            let prefix: String = text
                .char_indices()
                .take_while(|(i, _)| *i < cut)
                .map(|(_, c)| c)
                .collect();
            version += 1;
            cuts += 1;
            frame(
                &mut input,
                json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                "textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": prefix}]}}),
            );
            let lines = prefix.lines().count() as u32;
            for (line, character) in [(0, 0), (lines / 2, 4), (lines.saturating_sub(1), 200), (lines + 3, 0)] {
                let at = json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}});
                for method in [
                    "textDocument/hover",
                    "textDocument/definition",
                    "textDocument/completion",
                    "textDocument/prepareRename",
                ] {
                    frame(
                        &mut input,
                        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": at}),
                    );
                    id += 1;
                }
            }
            let doc = json!({"textDocument": {"uri": uri}});
            frame(
                &mut input,
                json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/documentSymbol", "params": doc}),
            );
            frame(
                &mut input,
                json!({"jsonrpc": "2.0", "id": id + 1, "method": "textDocument/codeLens", "params": doc}),
            );
            frame(
                &mut input,
                json!({"jsonrpc": "2.0", "id": id + 2, "method": "textDocument/codeAction", "params": {
                "textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": lines, "character": 0}},
                "context": {"diagnostics": []}}}),
            );
            frame(
                &mut input,
                json!({"jsonrpc": "2.0", "id": id + 3, "method": "textDocument/formatting", "params": {
                "textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}}),
            );
            id += 4;
            cut += step;
        }
    }
    frame(&mut input, json!({"jsonrpc": "2.0", "id": id, "method": "shutdown"}));
    frame(&mut input, json!({"jsonrpc": "2.0", "method": "exit"}));

    let mut output = Vec::new();
    policy_lsp::serve(&mut Cursor::new(input), &mut output).expect("a clean shutdown");
    let messages = responses(&output);
    let answered = messages.iter().filter(|m| m.get("id").is_some()).count();
    assert_eq!(answered, id as usize + 1, "every request answered");
    for m in &messages {
        if let Some(e) = m.get("error") {
            // Formatting a buffer that does not parse is refused; nothing
            // else may fail.
            assert!(e["message"].as_str().unwrap().contains("does not parse"), "{m}");
        }
    }
    assert!(cuts > 300, "only {cuts} prefixes");
}
