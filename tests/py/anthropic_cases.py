"""The official `anthropic` Python SDK against `routec serve`.

Run by tests/gateway_anthropic_sdk.rs, which starts the gateway and the fake providers
(OpenAI-format ones: an Anthropic client answered by any target) and scripts
them so each case below meets the behaviour it expects:

    python anthropic_cases.py BASE_URL KEY

Prints one JSON line per case: {"case": ..., "ok": true|false, ...}.
Exits 0 when every case passed, 1 otherwise.
"""

import json
import sys
import traceback

import anthropic
from anthropic import Anthropic

WEATHER_TOOL = {
    "name": "get_current_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


def non_streaming(client):
    raw = client.messages.with_raw_response.create(
        model="chat",
        max_tokens=200,
        system="be brief",
        messages=[{"role": "user", "content": "Say hi"}],
    )
    m = raw.parse()
    assert m.type == "message" and m.role == "assistant", m
    assert m.content[0].type == "text", m.content
    assert m.content[0].text == "Hello! How can I assist you today?", m.content
    assert m.stop_reason == "end_turn", m.stop_reason
    assert m.usage.input_tokens == 19 and m.usage.output_tokens == 10, m.usage
    assert raw.headers["x-routec-target"] == "primary/m1", dict(raw.headers)
    assert m.id == "msg_" + raw.headers["x-routec-decision-id"], m.id
    return {"target": raw.headers["x-routec-target"]}


def streaming(client):
    with client.messages.stream(
        model="gpt-4o-mini",  # an alias of `chat`
        max_tokens=200,
        messages=[{"role": "user", "content": "Say hi"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text, "no text streamed"
    assert final.content[0].text == text, (final.content, text)
    assert final.stop_reason == "end_turn", final.stop_reason
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0, final.usage
    return {"text": text}


def tools(client):
    m = client.messages.create(
        model="chat",
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "What is the weather in Boston?"}],
    )
    assert m.stop_reason == "tool_use", m
    use = next(b for b in m.content if b.type == "tool_use")
    assert use.name == "get_current_weather", use
    assert use.input == {"location": "Boston, MA"}, use.input
    # The result goes back as the SDK sends it; the model answers in text.
    follow = client.messages.create(
        model="chat",
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "What is the weather in Boston?"},
            {"role": "assistant", "content": m.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "22C, sunny"}]},
        ],
    )
    assert follow.content[0].text, follow
    return {"tool": use.name, "input": use.input}


def streamed_tool_use(client):
    with client.messages.stream(
        model="chat",
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "What is the weather in Boston?"}],
    ) as stream:
        final = stream.get_final_message()
    use = next(b for b in final.content if b.type == "tool_use")
    assert final.stop_reason == "tool_use", final
    assert isinstance(use.input, dict) and use.input, use.input
    return {"tool": use.name, "input": use.input}


def unknown_model(client):
    try:
        client.messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    except anthropic.NotFoundError as e:
        assert e.status_code == 404
        assert e.body["error"]["type"] == "not_found_error", e.body
        assert e.body["error"]["code"] == "unknown_workload", e.body
        return {"code": e.body["error"]["code"]}
    raise AssertionError("no error for an unknown model")


def invalid_key(base_url):
    bad = Anthropic(base_url=base_url, api_key="sk-wrong-key", max_retries=0)
    try:
        bad.messages.create(model="chat", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    except anthropic.AuthenticationError as e:
        assert e.status_code == 401
        assert e.body["error"]["type"] == "authentication_error", e.body
        assert "sk-wrong-key" not in json.dumps(e.body), e.body
        return {"type": e.body["error"]["type"]}
    raise AssertionError("no error for an invalid key")


def outage_fallback(client):
    raw = client.messages.with_raw_response.create(
        model="chat", max_tokens=200, messages=[{"role": "user", "content": "Say hi"}]
    )
    m = raw.parse()
    assert m.content[0].text, m
    assert raw.headers["x-routec-target"] == "secondary/m2", dict(raw.headers)
    assert raw.headers["x-routec-attempts"] == "2", dict(raw.headers)
    return {"target": raw.headers["x-routec-target"], "attempts": raw.headers["x-routec-attempts"]}


def count_tokens(client):
    # Claude Code and other SDK tools ask before sending; nothing goes upstream.
    short = client.messages.count_tokens(model="chat", messages=[{"role": "user", "content": "Say hi"}])
    longer = client.messages.count_tokens(
        model="chat",
        system="You are terse.",
        messages=[{"role": "user", "content": "Say hi " * 200}],
    )
    assert short.input_tokens > 0, short
    assert longer.input_tokens > short.input_tokens + 150, (short, longer)
    try:
        client.messages.count_tokens(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    except anthropic.NotFoundError as e:
        assert e.body["error"]["code"] == "unknown_workload", e.body
    else:
        raise AssertionError("no error for an unknown model")
    return {"short": short.input_tokens, "longer": longer.input_tokens}


def models_list(client):
    page = client.models.list()
    ids = [m.id for m in page.data]
    assert "chat" in ids and "gpt-4o-mini" in ids, ids  # a workload and its alias
    assert all(m.type == "model" for m in page.data), page.data
    return {"models": ids}


def main():
    base_url, key = sys.argv[1], sys.argv[2]
    client = Anthropic(base_url=base_url, api_key=key, max_retries=0, timeout=30)
    # The order matters: tests/gateway_anthropic_sdk.rs scripts the fakes for it.
    cases = [
        ("non_streaming", lambda: non_streaming(client)),
        ("streaming", lambda: streaming(client)),
        ("tools", lambda: tools(client)),
        ("streamed_tool_use", lambda: streamed_tool_use(client)),
        ("unknown_model", lambda: unknown_model(client)),
        ("invalid_key", lambda: invalid_key(base_url)),
        ("outage_fallback", lambda: outage_fallback(client)),
        ("count_tokens", lambda: count_tokens(client)),
        ("models_list", lambda: models_list(client)),
    ]
    failed = 0
    for name, run in cases:
        try:
            detail = run()
            print(json.dumps({"case": name, "ok": True, "detail": detail}), flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported, then the next case runs
            failed += 1
            print(
                json.dumps({"case": name, "ok": False, "error": repr(e), "trace": traceback.format_exc()}),
                flush=True,
            )
    print(json.dumps({"anthropic_version": anthropic.__version__}), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
