"""Self-check of `sluice-sim`: every provider simulator, spoken to directly (no gateway)."""
from __future__ import annotations

import base64
import json
import struct
import threading
import time

import pytest
import requests

from sim import (
    ANTHROPIC_KEY,
    AZURE_KEY,
    COMPAT_MODEL,
    GEMINI_KEY,
    OPENAI_KEY,
    VERTEX_TOKEN,
    Simulators,
    decode_event_stream,
    sigv4_headers,
    sse_events,
)


@pytest.fixture(scope="module")
def sims():
    with Simulators(pace_ms=1) as s:
        yield s


WEATHER_TOOL_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "verbose": {"type": "boolean"},
    },
    "required": ["city", "days", "unit"],
}


def check_weather_args(args: dict) -> None:
    assert set(args) == {"city", "days", "unit"}
    assert isinstance(args["city"], str) and isinstance(args["days"], int) and args["unit"] == "celsius"


# MARK: - OpenAI


def openai_post(sims, path, body, key=OPENAI_KEY, **kw):
    headers = {"authorization": f"Bearer {key}"} if key else {}
    headers.update(kw.pop("headers", {}))
    return requests.post(sims.url("openai") + path, json=body, headers=headers, **kw)


CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is the capital of France today please"}]}


def test_openai_auth(sims):
    r = openai_post(sims, "/v1/chat/completions", CHAT, key=None)
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    r = openai_post(sims, "/v1/chat/completions", CHAT, key="sk-wrong")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert sims.last("openai")["authorized"] is False


def test_openai_chat(sims):
    r = openai_post(sims, "/v1/chat/completions", CHAT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "Sim reply to: What is the capital of France today please"
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] == 8 and usage["completion_tokens"] == 11 and usage["total_tokens"] == 19
    last = sims.last("openai")
    assert last["authorized"] is True and last["headers"]["authorization"] == "Bearer REDACTED"
    assert last["body"]["model"] == "gpt-4o-mini" and last["path"] == "/v1/chat/completions"


def test_openai_stream_with_usage(sims):
    body = dict(CHAT, stream=True, stream_options={"include_usage": True})
    r = openai_post(sims, "/v1/chat/completions", body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [data for _, data in sse_events(r.text)]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Sim reply to: What is the capital of France today please"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 11
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_openai_tools_round_trip(sims):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_TOOL_SCHEMA}}]
    r = openai_post(sims, "/v1/chat/completions", dict(CHAT, tools=tools))
    message = r.json()["choices"][0]["message"]
    assert r.json()["choices"][0]["finish_reason"] == "tool_calls"
    call = message["tool_calls"][0]
    check_weather_args(json.loads(call["function"]["arguments"]))
    follow_up = CHAT["messages"] + [message, {"role": "tool", "tool_call_id": call["id"], "content": "Sunny and 21C"}]
    r = openai_post(sims, "/v1/chat/completions", dict(CHAT, messages=follow_up, tools=tools))
    assert r.json()["choices"][0]["message"]["content"] == "The tool returned: Sunny and 21C"
    # A tool message without a preceding tool call is rejected, as OpenAI does.
    bad = CHAT["messages"] + [{"role": "tool", "tool_call_id": "nope", "content": "x"}]
    assert openai_post(sims, "/v1/chat/completions", dict(CHAT, messages=bad)).status_code == 400


def test_openai_stream_tool_call(sims):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_TOOL_SCHEMA}}]
    r = openai_post(sims, "/v1/chat/completions", dict(CHAT, tools=tools, stream=True))
    chunks = [json.loads(d) for _, d in sse_events(r.text) if d != "[DONE]"]
    calls = [c["choices"][0]["delta"].get("tool_calls") for c in chunks]
    assert calls[0][0]["function"]["name"] == "get_weather"
    arguments = "".join(tc[0]["function"]["arguments"] for tc in calls if tc)
    check_weather_args(json.loads(arguments))
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_openai_validation(sims):
    r = requests.post(
        sims.url("openai") + "/v1/chat/completions", data=b"{nope",
        headers={"authorization": f"Bearer {OPENAI_KEY}", "content-type": "application/json"},
    )
    assert r.status_code == 400 and "could not parse the JSON body" in r.json()["error"]["message"]
    r = openai_post(sims, "/v1/chat/completions", {"model": "gpt-4o"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = openai_post(sims, "/v1/chat/completions", dict(CHAT, thinking={"type": "enabled"}))
    assert r.status_code == 400 and "Unrecognized request argument supplied: thinking" in r.text
    r = openai_post(sims, "/v1/chat/completions", dict(CHAT, model="no-such-model"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    "kind,status,code",
    [("429", 429, "rate_limit_exceeded"), ("500", 500, None), ("503", 503, None),
     ("context_length", 400, "context_length_exceeded")],
)
def test_openai_injected_errors(sims, kind, status, code):
    r = openai_post(sims, "/v1/chat/completions", CHAT, headers={"x-sim-error": kind})
    assert r.status_code == status and r.json()["error"]["code"] == code


def test_openai_prompt_marker_and_midstream(sims):
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi [sim-error:context_length]"}]}
    assert openai_post(sims, "/v1/chat/completions", body).status_code == 400
    body = {"model": "gpt-4o", "stream": True,
            "messages": [{"role": "user", "content": "tell me a long story [sim-error:midstream]"}]}
    r = openai_post(sims, "/v1/chat/completions", body)
    events = [d for _, d in sse_events(r.text)]
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["type"] == "server_error"
    assert len(events) == 5  # role chunk, three tokens, the error


def test_openai_cached_tokens_for_long_prompts(sims):
    long = " ".join(["lorem"] * 400)
    r = openai_post(sims, "/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": long}]})
    usage = r.json()["usage"]
    assert usage["prompt_tokens"] == 400 and usage["prompt_tokens_details"]["cached_tokens"] == 200


def test_openai_embeddings_models_completions(sims):
    body = {"model": "text-embedding-3-small", "input": ["alpha", "beta"]}
    floats = openai_post(sims, "/v1/embeddings", body).json()
    assert [len(d["embedding"]) for d in floats["data"]] == [8, 8]
    again = openai_post(sims, "/v1/embeddings", body).json()
    assert again["data"] == floats["data"]
    b64 = openai_post(sims, "/v1/embeddings", dict(body, encoding_format="base64")).json()
    decoded = struct.unpack("<8f", base64.b64decode(b64["data"][0]["embedding"]))
    assert decoded == pytest.approx(floats["data"][0]["embedding"], rel=1e-6)
    models = requests.get(sims.url("openai") + "/v1/models", headers={"authorization": f"Bearer {OPENAI_KEY}"}).json()
    assert "gpt-4o" in [m["id"] for m in models["data"]]
    r = openai_post(sims, "/v1/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi"})
    assert r.json()["object"] == "text_completion" and "Sim reply to: Say hi" in r.json()["choices"][0]["text"]


# MARK: - Azure


def azure_url(sims, deployment="gpt4o-prod", version="2024-10-21", op="chat/completions"):
    query = f"?api-version={version}" if version else ""
    return f"{sims.url('azure')}/openai/deployments/{deployment}/{op}{query}"


def test_azure(sims):
    body = {"messages": [{"role": "user", "content": "hello azure"}]}
    r = requests.post(azure_url(sims), json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "401"
    r = requests.post(azure_url(sims, version=None), json=body, headers={"api-key": AZURE_KEY})
    assert r.status_code == 400 and "api-version" in r.json()["error"]["message"]
    r = requests.post(azure_url(sims), json=body, headers={"api-key": AZURE_KEY})
    assert r.status_code == 200
    assert r.json()["model"] == "gpt4o-prod" and r.json()["prompt_filter_results"]
    assert r.json()["choices"][0]["message"]["content"] == "Sim reply to: hello azure"
    assert sims.last("azure")["headers"]["api-key"] == "REDACTED"
    r = requests.post(azure_url(sims), json=dict(body, stream=True), headers={"api-key": AZURE_KEY})
    chunks = [json.loads(d) for _, d in sse_events(r.text) if d != "[DONE]"]
    assert chunks[0]["choices"] == [] and "prompt_filter_results" in chunks[0]
    r = requests.post(azure_url(sims), json=body, headers={"api-key": AZURE_KEY, "x-sim-error": "429"})
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    r = requests.post(azure_url(sims, op="embeddings"), json={"input": "x"}, headers={"api-key": AZURE_KEY})
    assert r.status_code == 200 and len(r.json()["data"][0]["embedding"]) == 8


# MARK: - Anthropic


def anthropic_post(sims, body, key=ANTHROPIC_KEY, version="2023-06-01", **headers):
    h = {}
    if key:
        h["x-api-key"] = key
    if version:
        h["anthropic-version"] = version
    h.update(headers)
    return requests.post(sims.url("anthropic") + "/v1/messages", json=body, headers=h)


MESSAGES = {"model": "claude-sonnet-4-5", "max_tokens": 256,
            "messages": [{"role": "user", "content": "Explain quantum computing in simple words please"}]}


def test_anthropic_auth_and_validation(sims):
    r = anthropic_post(sims, MESSAGES, key=None)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = anthropic_post(sims, MESSAGES, version=None)
    assert r.status_code == 400 and "anthropic-version" in r.json()["error"]["message"]
    r = anthropic_post(sims, {k: v for k, v in MESSAGES.items() if k != "max_tokens"})
    assert r.status_code == 400 and r.json()["error"]["message"] == "max_tokens: Field required"
    r = anthropic_post(sims, dict(MESSAGES, stream_options={"include_usage": True}))
    assert r.status_code == 400 and "Extra inputs are not permitted" in r.text
    sys_msg = dict(MESSAGES, messages=[{"role": "system", "content": "x"}] + MESSAGES["messages"])
    assert anthropic_post(sims, sys_msg).status_code == 400


def test_anthropic_message(sims):
    r = anthropic_post(sims, MESSAGES)
    assert r.status_code == 200 and r.headers["request-id"].startswith("req_")
    body = r.json()
    assert body["type"] == "message" and body["stop_reason"] == "end_turn"
    assert body["content"] == [{"type": "text", "text": "Sim reply to: Explain quantum computing in simple words please"}]
    assert body["usage"]["input_tokens"] == 7 and body["usage"]["output_tokens"] == 10
    assert sims.last("anthropic")["headers"]["x-api-key"] == "REDACTED"


def test_anthropic_stream_thinking_and_tools(sims):
    body = dict(MESSAGES, max_tokens=4096, stream=True, thinking={"type": "enabled", "budget_tokens": 1024},
                tools=[{"name": "get_weather", "input_schema": WEATHER_TOOL_SCHEMA}])
    r = anthropic_post(sims, body)
    events = [(e, json.loads(d)) for e, d in sse_events(r.text)]
    names = [e for e, _ in events]
    assert names[0] == "message_start" and names[-1] == "message_stop" and "ping" in names
    starts = [d["content_block"]["type"] for e, d in events if e == "content_block_start"]
    assert starts == ["thinking", "tool_use"]
    deltas = [d["delta"]["type"] for e, d in events if e == "content_block_delta"]
    assert {"thinking_delta", "signature_delta", "input_json_delta"} <= set(deltas)
    partial = "".join(d["delta"]["partial_json"] for e, d in events if e == "content_block_delta"
                      and d["delta"]["type"] == "input_json_delta")
    check_weather_args(json.loads(partial))
    message_delta = next(d for e, d in events if e == "message_delta")
    assert message_delta["delta"]["stop_reason"] == "tool_use" and message_delta["usage"]["output_tokens"] > 1


def test_anthropic_tool_result_and_errors(sims):
    tools = [{"name": "get_weather", "input_schema": WEATHER_TOOL_SCHEMA}]
    first = anthropic_post(sims, dict(MESSAGES, tools=tools)).json()
    tool_use = first["content"][-1]
    assert tool_use["type"] == "tool_use"
    follow = MESSAGES["messages"] + [
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "Rain, 12C"}]},
    ]
    r = anthropic_post(sims, dict(MESSAGES, tools=tools, messages=follow))
    assert r.json()["content"][0]["text"] == "The tool returned: Rain, 12C"
    # A tool_use without its tool_result is rejected, as Anthropic does.
    broken = follow[:2] + [{"role": "user", "content": "never mind"}]
    assert anthropic_post(sims, dict(MESSAGES, tools=tools, messages=broken)).status_code == 400
    r = anthropic_post(sims, MESSAGES, **{"x-sim-error": "overloaded"})
    assert r.status_code == 529 and r.json()["error"]["type"] == "overloaded_error"
    r = anthropic_post(sims, MESSAGES, **{"x-sim-error": "429"})
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
    midstream = dict(MESSAGES, stream=True, messages=[{"role": "user", "content": "go [sim-error:midstream]"}])
    events = sse_events(anthropic_post(sims, midstream).text)
    assert events[-1][0] == "error" and json.loads(events[-1][1])["error"]["type"] == "overloaded_error"


# MARK: - Bedrock


CONVERSE = {"messages": [{"role": "user", "content": [{"text": "Write a haiku about the sea now"}]}],
            "inferenceConfig": {"maxTokens": 100}}
MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"


def bedrock_post(sims, body, *, op="converse", sign=True, **sign_kw):
    url = f"{sims.url('bedrock')}/model/{requests.utils.quote(MODEL_ID, safe='')}/{op}"
    data = json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    extra = sign_kw.pop("headers", {})
    if sign:
        headers = sigv4_headers("POST", url, data, headers=headers, **sign_kw)
    headers.update(extra)
    return requests.post(url, data=data, headers=headers)


def test_bedrock_sigv4(sims):
    r = bedrock_post(sims, CONVERSE, sign=False)
    assert r.status_code == 403 and r.headers["x-amzn-errortype"] == "InvalidSignatureException"
    assert r.json()["message"].startswith("The request signature we calculated does not match")
    r = bedrock_post(sims, CONVERSE, secret_key="wrong-secret")
    assert r.status_code == 403 and r.headers["x-amzn-errortype"] == "InvalidSignatureException"
    r = bedrock_post(sims, CONVERSE, access_key="AKIDUNKNOWN")
    assert r.status_code == 403 and r.headers["x-amzn-errortype"] == "UnrecognizedClientException"
    assert sims.last("bedrock")["authorized"] is False
    r = bedrock_post(sims, CONVERSE)
    assert r.status_code == 200, r.text
    assert r.headers["x-amzn-requestid"]
    body = r.json()
    assert body["output"]["message"]["content"] == [{"text": "Sim reply to: Write a haiku about the sea now"}]
    assert body["stopReason"] == "end_turn" and body["usage"]["outputTokens"] == 10
    last = sims.last("bedrock")
    assert last["authorized"] is True and last["headers"]["authorization"] == "AWS4-HMAC-SHA256 REDACTED"
    assert last["path"] == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"


def test_bedrock_accepts_botocore_signatures(sims):
    botocore = pytest.importorskip("botocore")
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{sims.url('bedrock')}/model/{requests.utils.quote(MODEL_ID, safe='')}/converse"
    data = json.dumps(CONVERSE).encode()
    request = AWSRequest(method="POST", url=url, data=data, headers={"content-type": "application/json"})
    SigV4Auth(Credentials("AKIDSLUICESIM", "sluice-sim-secret"), "bedrock", "us-east-1").add_auth(request)
    r = requests.post(url, data=data, headers=dict(request.headers.items()))
    assert r.status_code == 200, r.text
    assert botocore.__version__


def test_bedrock_stream(sims):
    r = bedrock_post(sims, CONVERSE, op="converse-stream")
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.amazon.eventstream"
    messages = decode_event_stream(r.content)
    types = [h[":event-type"] for h, _ in messages]
    assert types[0] == "messageStart" and types[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    text = "".join(json.loads(p)["delta"]["text"] for h, p in messages if h[":event-type"] == "contentBlockDelta")
    assert text == "Sim reply to: Write a haiku about the sea now"
    metadata = json.loads(messages[-1][1])
    assert metadata["usage"]["outputTokens"] == 10 and "p" in metadata


def test_bedrock_tools_validation_and_errors(sims):
    tool_config = {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": WEATHER_TOOL_SCHEMA}}}]}
    r = bedrock_post(sims, dict(CONVERSE, toolConfig=tool_config))
    block = r.json()["output"]["message"]["content"][0]["toolUse"]
    check_weather_args(block["input"])
    assert r.json()["stopReason"] == "tool_use"
    history = CONVERSE["messages"] + [
        {"role": "assistant", "content": [{"toolUse": block}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": block["toolUseId"], "content": [{"text": "Calm"}]}}]},
    ]
    r = bedrock_post(sims, dict(CONVERSE, messages=history, toolConfig=tool_config))
    assert r.json()["output"]["message"]["content"][0]["text"] == "The tool returned: Calm"
    r = bedrock_post(sims, dict(CONVERSE, messages=history))
    assert r.status_code == 400 and r.headers["x-amzn-errortype"].startswith("ValidationException")
    assert "toolConfig field must be defined" in r.json()["message"]
    r = bedrock_post(sims, CONVERSE, headers={"x-sim-error": "429"})
    assert r.status_code == 429 and r.headers["x-amzn-errortype"].startswith("ThrottlingException")
    midstream = {"messages": [{"role": "user", "content": [{"text": "go on [sim-error:midstream]"}]}]}
    messages = decode_event_stream(bedrock_post(sims, midstream, op="converse-stream").content)
    assert messages[-1][0][":message-type"] == "exception"
    assert messages[-1][0][":exception-type"] == "modelStreamErrorException"


# MARK: - Gemini / Vertex


GENERATE = {"contents": [{"role": "user", "parts": [{"text": "Name three primary colours for me"}]}]}


def gemini_post(sims, method, body, model="gemini-2.5-flash", key=GEMINI_KEY, query="", **headers):
    h = {"x-goog-api-key": key} if key else {}
    h.update(headers)
    return requests.post(f"{sims.url('gemini')}/v1beta/models/{model}:{method}{query}", json=body, headers=h)


def test_gemini(sims):
    r = gemini_post(sims, "generateContent", GENERATE, key=None)
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
    r = gemini_post(sims, "generateContent", GENERATE, key="bad")
    assert r.status_code == 400 and r.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    r = gemini_post(sims, "generateContent", GENERATE)
    assert r.status_code == 200
    candidate = r.json()["candidates"][0]
    assert candidate["content"]["parts"][0]["text"] == "Sim reply to: Name three primary colours for me"
    assert candidate["finishReason"] == "STOP" and r.json()["usageMetadata"]["candidatesTokenCount"] == 9
    r = gemini_post(sims, "generateContent", GENERATE, key=None, query=f"?key={GEMINI_KEY}")
    assert r.status_code == 200 and sims.last("gemini")["query"]["key"] == "REDACTED"
    r = gemini_post(sims, "generateContent", dict(GENERATE, temperature=0.5))
    assert r.status_code == 400 and 'Unknown name "temperature"' in r.json()["error"]["message"]
    r = gemini_post(sims, "generateContent", GENERATE, **{"x-sim-error": "429"})
    assert r.status_code == 429 and r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_gemini_stream_and_tools(sims):
    r = gemini_post(sims, "streamGenerateContent", GENERATE, query="?alt=sse")
    assert r.status_code == 200 and "\r\n\r\n" in r.text
    chunks = [json.loads(d) for _, d in sse_events(r.text)]
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == "Sim reply to: Name three primary colours for me"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    tools = [{"functionDeclarations": [{"name": "get_weather", "parameters": WEATHER_TOOL_SCHEMA}]}]
    r = gemini_post(sims, "generateContent", dict(GENERATE, tools=tools))
    call = r.json()["candidates"][0]["content"]["parts"][0]["functionCall"]
    check_weather_args(call["args"])
    follow = GENERATE["contents"] + [
        {"role": "model", "parts": [{"functionCall": call}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "Windy"}}}]},
    ]
    r = gemini_post(sims, "generateContent", {"contents": follow, "tools": tools})
    assert r.json()["candidates"][0]["content"]["parts"][0]["text"] == "The tool returned: Windy"
    midstream = {"contents": [{"role": "user", "parts": [{"text": "more [sim-error:midstream]"}]}]}
    chunks = [json.loads(d) for _, d in sse_events(gemini_post(sims, "streamGenerateContent", midstream,
                                                               query="?alt=sse").text)]
    assert chunks[-1]["error"]["status"] == "INTERNAL"


def test_vertex_and_embeddings(sims):
    url = (f"{sims.url('gemini')}/v1/projects/proj/locations/us-central1/publishers/google/models/"
           "gemini-2.5-flash:generateContent")
    r = requests.post(url, json=GENERATE, headers={"authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
    r = requests.post(url, json=GENERATE, headers={"authorization": f"Bearer {VERTEX_TOKEN}"})
    assert r.status_code == 200 and r.json()["candidates"][0]["content"]["role"] == "model"
    body = {"requests": [{"model": "models/text-embedding-004", "content": {"parts": [{"text": t}]}}
                         for t in ("a", "b")]}
    r = gemini_post(sims, "batchEmbedContents", body, model="text-embedding-004")
    assert [len(e["values"]) for e in r.json()["embeddings"]] == [8, 8]


# MARK: - OpenAI-compatible self-hosted


def test_compat(sims):
    base = sims.url("compat")
    models = requests.get(base + "/v1/models").json()
    assert [m["id"] for m in models["data"]] == [COMPAT_MODEL]
    body = {"model": COMPAT_MODEL, "messages": [{"role": "user", "content": "hello local model"}], "top_k": 5}
    r = requests.post(base + "/v1/chat/completions", json=body)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Sim reply to: hello local model"
    r = requests.post(base + "/v1/chat/completions", json=body, headers={"authorization": "Bearer sim-local"})
    assert r.status_code == 200
    r = requests.post(base + "/v1/chat/completions", json=body, headers={"authorization": "Bearer wrong"})
    assert r.status_code == 401
    r = requests.post(base + "/v1/chat/completions", json=dict(body, model="gpt-4o"))
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFoundError"
    r = requests.post(base + "/v1/chat/completions", json=body, headers={"x-sim-error": "503"})
    assert r.status_code == 503
    metrics = requests.get(base + "/metrics").text
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:gpu_cache_usage_perc"):
        assert f'{name}{{model_name="{COMPAT_MODEL}"}}' in metrics


def gauge(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} missing")


def test_compat_metrics_follow_in_flight_requests():
    # A slow pace keeps streams open long enough to observe them.
    with Simulators(pace_ms=100) as slow:
        base = slow.url("compat")
        body = {"model": COMPAT_MODEL, "stream": True, "messages": [{"role": "user", "content": "one two three"}]}
        threads = [threading.Thread(target=lambda: requests.post(base + "/v1/chat/completions", json=body).text)
                   for _ in range(6)]
        for t in threads:
            t.start()
        deadline = time.time() + 5
        seen = (0.0, 0.0, 0.0)
        while time.time() < deadline:
            m = requests.get(base + "/metrics").text
            seen = (gauge(m, "vllm:num_requests_running"), gauge(m, "vllm:num_requests_waiting"),
                    gauge(m, "vllm:gpu_cache_usage_perc"))
            if seen[0] + seen[1] >= 6:
                break
            time.sleep(0.02)
        assert seen[0] == 4 and seen[1] == 2 and seen[2] > 0, seen
        for t in threads:
            t.join()
        m = requests.get(base + "/metrics").text
        assert gauge(m, "vllm:num_requests_running") == 0 and gauge(m, "vllm:gpu_cache_usage_perc") == 0


def test_sigterm_stops_cleanly():
    sims = Simulators().start().wait_ready()
    assert sims.stop() == 0
