"""The official `openai` Python SDK against `routec serve`.

Run by tests/openai_sdk.rs, which starts the gateway and the fake providers
and scripts them so each case below meets the behaviour it expects:

    python sdk_cases.py BASE_URL KEY

Prints one JSON line per case: {"case": ..., "ok": true|false, ...}.
Exits 0 when every case passed, 1 otherwise.
"""

import json
import sys
import traceback

import openai
from openai import OpenAI


def non_streaming(client):
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "Say hi"}]
    )
    r = raw.parse()
    assert r.choices[0].message.content == "Hello! How can I assist you today?", r
    assert r.choices[0].finish_reason == "stop", r
    assert r.usage.prompt_tokens == 19 and r.usage.completion_tokens == 10, r.usage
    assert raw.headers["x-routec-target"] == "primary/m1", dict(raw.headers)
    assert raw.headers["x-routec-attempts"] == "1"
    assert r.id == "chatcmpl-" + raw.headers["x-routec-decision-id"], r.id
    return {"target": raw.headers["x-routec-target"]}


def streaming(client):
    stream = client.chat.completions.create(
        model="gpt-4o-mini",  # an alias of `chat`
        messages=[{"role": "user", "content": "Say hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage, chunks = "", None, None, 0
    for chunk in stream:
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text, "no text streamed"
    assert finish == "stop", finish
    assert usage is not None and usage.total_tokens > 0, usage
    return {"text": text, "chunks": chunks}


def tools(client):
    r = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
            }
        ],
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    call = choice.message.tool_calls[0]
    json.loads(call.function.arguments)
    return {"tool": call.function.name, "arguments": call.function.arguments}


def json_mode(client):
    r = client.chat.completions.create(
        model="chat",
        messages=[{"role": "user", "content": "Give me a JSON object"}],
        response_format={"type": "json_object"},
    )
    value = json.loads(r.choices[0].message.content)
    assert isinstance(value, dict), value
    return {"keys": sorted(value)}


def unknown_model(client):
    try:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    except openai.NotFoundError as e:
        assert e.status_code == 404
        assert e.body["code"] == "unknown_workload", e.body
        return {"code": e.body["code"]}
    raise AssertionError("no error for an unknown model")


def invalid_key(client, base_url):
    bad = OpenAI(base_url=base_url, api_key="sk-wrong-key", max_retries=0)
    try:
        bad.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    except openai.AuthenticationError as e:
        assert e.status_code == 401
        assert e.body["code"] == "invalid_api_key", e.body
        return {"code": e.body["code"]}
    raise AssertionError("no error for an invalid key")


def outage_fallback(client):
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "Say hi"}]
    )
    r = raw.parse()
    assert r.choices[0].message.content, r
    assert raw.headers["x-routec-target"] == "secondary/m2", dict(raw.headers)
    assert raw.headers["x-routec-attempts"] == "2", dict(raw.headers)
    return {"target": raw.headers["x-routec-target"], "attempts": raw.headers["x-routec-attempts"]}


def embeddings(client):
    # The SDK asks for base64 by default and decodes it to floats itself.
    raw = client.embeddings.with_raw_response.create(model="vectors", input=["hello world", "abc"])
    r = raw.parse()
    assert [d.index for d in r.data] == [0, 1], r
    # The fake upstream's vector: byte length, word count, 0.5, -0.25.
    assert r.data[0].embedding == [11.0, 2.0, 0.5, -0.25], r.data[0].embedding
    assert r.data[1].embedding[:2] == [3.0, 1.0], r.data[1].embedding
    assert r.usage.prompt_tokens == 3, r.usage
    assert raw.headers["x-routec-target"] == "embedder/e1", dict(raw.headers)
    return {"target": raw.headers["x-routec-target"], "dims": len(r.data[0].embedding)}


def main():
    base_url, key = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=30)
    # The order matters: tests/openai_sdk.rs scripts the fakes for it.
    cases = [
        ("non_streaming", lambda: non_streaming(client)),
        ("streaming", lambda: streaming(client)),
        ("tools", lambda: tools(client)),
        ("json_mode", lambda: json_mode(client)),
        ("unknown_model", lambda: unknown_model(client)),
        ("invalid_key", lambda: invalid_key(client, base_url)),
        ("outage_fallback", lambda: outage_fallback(client)),
        ("embeddings", lambda: embeddings(client)),
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
    print(json.dumps({"openai_version": openai.__version__}), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
