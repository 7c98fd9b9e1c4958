"""Claude served by the clouds, through the real Envoy 1.40 and the shipped default gateway, with the official
`openai` and `anthropic` SDKs: `vertex-claude-sonnet-4-5` (schema vertex_anthropic: Vertex AI `:rawPredict` /
`:streamRawPredict`, bearer token) and `bedrock-invoke-claude-haiku` (schema bedrock_anthropic: Bedrock
InvokeModel, SigV4, event-stream chunks of base64 Anthropic events). The simulators check what each cloud
checks: the bearer token or the SigV4 signature, the model in the path and not in the body, the cloud's own
`anthropic_version`, and (Bedrock) no `stream` in the body.

OpenAI clients go through the Anthropic translator (chat and the Responses API); Anthropic clients' bodies are
edited and their answers and events are Anthropic's own. Plain, streamed, tool calls, errors in the client's
shape, token counts, and usage and cost metered like every other backend's. Then a hostile upstream in the
clouds' place: garbled Bedrock chunks and Vertex errors of every shape end in one error in the client's shape."""
import base64
import json
import time
import urllib.error
import urllib.request

import anthropic
import openai
import pytest

from harness import Envoy, free_port, gateway_bootstrap, header_route, static_cluster
from hostile_upstream import (
    HostileUpstream, bedrock_event, event_stream_frame, full_response, http_request, streamed_response,
)
from sdk_fixtures import claude, gateway, oai  # noqa: F401 (fixtures)
from sim import VERTEX_TOKEN, sigv4_headers

VERTEX = "vertex-claude-sonnet-4-5"
BEDROCK = "bedrock-invoke-claude-haiku"
MODELS = [VERTEX, BEDROCK]
# USD per million tokens, as envoy-module/sluice.yaml prices them.
PRICES = {VERTEX: (3.0, 15.0), BEDROCK: (0.8, 4.0)}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ANTHROPIC_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": WEATHER_TOOL["function"]["parameters"],
}


def log_lines(gateway, model: str, marker: str) -> list:
    """The access-log lines of `model` whose path contains `marker` (the path logged is the one sent upstream),
    once earlier requests' lines are written (Envoy flushes its log every 50 ms here)."""
    time.sleep(0.2)
    return [l for l in gateway.envoy.logs().splitlines() if f"model={model} " in l and marker in l]


def access_log_line(gateway, model: str, marker: str, before: int) -> dict:
    """The fields of the first such line after the `before` there were, waiting for it to be written."""
    deadline = time.time() + 5
    while time.time() < deadline:
        lines = log_lines(gateway, model, marker)
        if len(lines) > before:
            return dict(part.split("=", 1) for part in lines[before].split() if "=" in part and not part.startswith('"'))
        time.sleep(0.05)
    raise AssertionError(f"no new access log line for {model} with {marker}")


# MARK: - OpenAI clients


def test_both_models_are_listed(oai):
    ids = {m.id: m for m in oai.models.list()}
    assert ids[VERTEX].owned_by == "google-vertex" and ids[BEDROCK].owned_by == "aws-bedrock"


@pytest.mark.parametrize("model", MODELS)
def test_openai_chat(oai, gateway, model):
    marker = ':rawPredict"' if model == VERTEX else '/invoke"'
    before = len(log_lines(gateway, model, marker))
    r = oai.chat.completions.create(
        model=model, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello from the clouds"}],
        max_tokens=64)
    assert r.object == "chat.completion" and r.model == model
    assert "Hello from the clouds" in r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    # Metered and priced like any backend: the access log has the tokens the client was told, and their cost.
    fields = access_log_line(gateway, model, marker, before)
    assert int(float(fields["tokens_in"])) == r.usage.prompt_tokens and int(float(fields["tokens_out"])) == r.usage.completion_tokens
    price_in, price_out = PRICES[model]
    expected = (r.usage.prompt_tokens * price_in + r.usage.completion_tokens * price_out) / 1e6
    assert abs(float(fields["cost_usd"]) - expected) < 1e-6, fields
    assert fields["backend"] == ("vertex-claude" if model == VERTEX else "bedrock-claude")


@pytest.mark.parametrize("model", MODELS)
def test_openai_chat_stream(oai, gateway, model):
    marker = ':streamRawPredict"' if model == VERTEX else '/invoke-with-response-stream"'
    before = len(log_lines(gateway, model, marker))
    stream = oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Stream some cloudy words"}], max_tokens=64, stream=True,
        stream_options={"include_usage": True})
    text, finish, usage = "", None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert "Stream some cloudy words" in text
    assert finish == "stop"
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    fields = access_log_line(gateway, model, marker, before)
    assert int(float(fields["tokens_in"])) == usage.prompt_tokens and int(float(fields["tokens_out"])) == usage.completion_tokens
    assert float(fields["cost_usd"]) > 0


@pytest.mark.parametrize("model", MODELS)
def test_openai_tool_round_trip(oai, model):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = oai.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL], max_tokens=64)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and isinstance(json.loads(call.function.arguments)["city"], str)
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21})},
    ]
    r2 = oai.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL], max_tokens=64)
    assert r2.choices[0].finish_reason == "stop" and "21" in r2.choices[0].message.content


@pytest.mark.parametrize("model", MODELS)
def test_openai_streamed_tool_call(oai, model):
    stream = oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=[WEATHER_TOOL], stream=True,
        max_tokens=64)
    name, arguments, finish = "", "", None
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                name += call.function.name or ""
                arguments += call.function.arguments or ""
            finish = choice.finish_reason or finish
    assert name == "get_weather" and finish == "tool_calls"
    assert isinstance(json.loads(arguments)["city"], str)


@pytest.mark.parametrize("model", MODELS)
def test_openai_errors_in_openai_shape(oai, model):
    # Vertex answers its quota errors in Google's shape, Bedrock in its own: both reach the client as OpenAI's.
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi [sim-error:429]"}], max_tokens=16)
    assert info.value.status_code == 429
    assert info.value.body["type"] == "rate_limit_error" and info.value.body["message"]
    with pytest.raises(openai.InternalServerError) as info:
        oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi [sim-error:500]"}], max_tokens=16)
    assert info.value.status_code == 500 and info.value.body["type"] == "api_error"


@pytest.mark.parametrize("model", MODELS)
def test_openai_midstream_error_ends_the_stream_in_openai_shape(oai, model):
    stream = oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "a longer answer please [sim-error:midstream]"}], max_tokens=64,
        stream=True)
    with pytest.raises(openai.APIError) as info:
        for _ in stream:
            pass
    assert "overload" in str(info.value).lower() or "stream" in str(info.value).lower()


# MARK: - OpenAI clients, Responses API (through the chat hub)


@pytest.mark.parametrize("model", MODELS)
def test_responses_plain_and_streamed(oai, model):
    r = oai.responses.create(model=model, instructions="Be brief.", input="Responses from the clouds", max_output_tokens=64)
    assert r.status == "completed" and "Responses from the clouds" in r.output_text
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    types, text, completed = [], "", None
    with oai.responses.stream(model=model, input="Streamed responses from the clouds", max_output_tokens=64) as stream:
        for event in stream:
            types.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
            if event.type == "response.completed":
                completed = event.response
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "Streamed responses from the clouds" in text
    assert completed is not None and completed.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_responses_function_tool_round_trip(oai, model):
    tool = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
            "parameters": WEATHER_TOOL["function"]["parameters"]}
    first = oai.responses.create(model=model, input="What is the weather in Lima?", tools=[tool], max_output_tokens=64)
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and isinstance(json.loads(call.arguments)["city"], str)
    second = oai.responses.create(
        model=model, tools=[tool], max_output_tokens=64,
        input=[{"role": "user", "content": "What is the weather in Lima?"},
               *[item.model_dump(exclude_none=True) for item in first.output],
               {"type": "function_call_output", "call_id": call.call_id, "output": "cloudy, 18C"}])
    assert "18C" in second.output_text


# MARK: - Anthropic clients


@pytest.mark.parametrize("model", MODELS)
def test_anthropic_messages(claude, gateway, model):
    marker = ':rawPredict"' if model == VERTEX else '/invoke"'
    before = len(log_lines(gateway, model, marker))
    r = claude.messages.create(model=model, max_tokens=64, system="Be brief.",
                               messages=[{"role": "user", "content": "Hello anthropic through the clouds"}])
    assert r.type == "message" and r.role == "assistant"
    # Passed through as the cloud answered: Anthropic's own message, its id and model from the cloud.
    assert r.id.startswith("msg_vrtx_" if model == VERTEX else "msg_bdrk_")
    assert r.model == ("claude-sonnet-4-5@20250929" if model == VERTEX else "anthropic.claude-3-5-haiku-20241022-v1:0")
    assert "Hello anthropic through the clouds" in "".join(b.text for b in r.content if b.type == "text")
    assert r.stop_reason == "end_turn" and r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    fields = access_log_line(gateway, model, marker, before)
    assert int(float(fields["tokens_in"])) == r.usage.input_tokens and int(float(fields["tokens_out"])) == r.usage.output_tokens
    price_in, price_out = PRICES[model]
    expected = (r.usage.input_tokens * price_in + r.usage.output_tokens * price_out) / 1e6
    assert abs(float(fields["cost_usd"]) - expected) < 1e-6, fields


@pytest.mark.parametrize("model", MODELS)
def test_anthropic_stream(claude, gateway, model):
    marker = ':streamRawPredict"' if model == VERTEX else '/invoke-with-response-stream"'
    before = len(log_lines(gateway, model, marker))
    with claude.messages.stream(model=model, max_tokens=64,
                                messages=[{"role": "user", "content": "Stream anthropic from the clouds"}]) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and "message_stop" in events
    assert "Stream anthropic from the clouds" in "".join(b.text for b in final.content if b.type == "text")
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    fields = access_log_line(gateway, model, marker, before)
    assert int(float(fields["tokens_out"])) == final.usage.output_tokens and float(fields["cost_usd"]) > 0


def test_bedrock_stream_reaches_anthropic_clients_as_sse(gateway):
    """Bedrock streams AWS event-stream bytes; an Anthropic client must get `text/event-stream`."""
    body = json.dumps({"model": BEDROCK, "max_tokens": 32, "stream": True,
                       "messages": [{"role": "user", "content": "raw bytes please"}]}).encode()
    request = urllib.request.Request(f"{gateway.base}/v1/messages", data=body, headers={
        "x-api-key": "sk-sluice-demo", "content-type": "application/json", "anthropic-version": "2023-06-01"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    assert text.startswith("event: message_start\ndata: {")
    # The events are Bedrock's own: its last one carries its invocation metrics.
    last = text.rstrip("\n").rsplit("\n\n", 1)[1]
    assert last.startswith("event: message_stop\ndata: ") and "amazon-bedrock-invocationMetrics" in last


@pytest.mark.parametrize("model", MODELS)
def test_anthropic_tools(claude, model):
    messages = [{"role": "user", "content": "Weather in Rome?"}]
    r = claude.messages.create(model=model, max_tokens=64, tools=[ANTHROPIC_TOOL], messages=messages)
    assert r.stop_reason == "tool_use"
    use = next(block for block in r.content if block.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input["city"], str)
    messages += [
        {"role": "assistant", "content": [block.model_dump() for block in r.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 24C"}]},
    ]
    r2 = claude.messages.create(model=model, max_tokens=64, tools=[ANTHROPIC_TOOL], messages=messages)
    assert "sunny" in "".join(block.text for block in r2.content if block.type == "text")


@pytest.mark.parametrize("model", MODELS)
def test_anthropic_streamed_tool_use(claude, model):
    with claude.messages.stream(model=model, max_tokens=64, tools=[ANTHROPIC_TOOL],
                                messages=[{"role": "user", "content": "Weather in Kyoto?"}]) as stream:
        final = stream.get_final_message()
    use = next(block for block in final.content if block.type == "tool_use")
    assert final.stop_reason == "tool_use" and use.name == "get_weather" and isinstance(use.input["city"], str)


@pytest.mark.parametrize("model", MODELS)
def test_anthropic_errors_in_anthropic_shape(claude, model):
    # Neither cloud's own error shape reaches an Anthropic client: Google's (Vertex quota) and Bedrock's are re-shaped.
    with pytest.raises(anthropic.RateLimitError) as info:
        claude.messages.create(model=model, max_tokens=16, messages=[{"role": "user", "content": "x [sim-error:429]"}])
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "rate_limit_error"
    assert info.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(model=model, max_tokens=16, messages=[{"role": "user", "content": "x [sim-error:context_length]"}])
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "invalid_request_error"
    assert "too long" in info.value.body["error"]["message"]


@pytest.mark.parametrize("model", MODELS)
def test_anthropic_midstream_error(claude, model):
    with pytest.raises(anthropic.APIStatusError) as info:
        with claude.messages.stream(model=model, max_tokens=64, messages=[
                {"role": "user", "content": "a longer answer please [sim-error:midstream]"}]) as stream:
            for _ in stream:
                pass
    assert info.value.body["type"] == "error"
    assert info.value.body["error"]["type"] in ("overloaded_error", "api_error", "invalid_request_error")


# MARK: - Betas: the `anthropic-beta` header, which Bedrock InvokeModel takes as the body's `anthropic_beta`

BETAS = ["token-efficient-tools-2025-02-19", "interleaved-thinking-2025-05-14"]


def test_betas_reach_bedrock_in_the_body(claude):
    """The Anthropic SDK sends `betas` as the `anthropic-beta` header; the Bedrock simulator echoes the
    `anthropic_beta` array it found in the body (and refuses one that is not an array of strings)."""
    raw = claude.beta.messages.with_raw_response.create(
        model=BEDROCK, max_tokens=32, betas=BETAS, messages=[{"role": "user", "content": "betas please"}])
    assert raw.headers["x-sim-anthropic-beta"] == ",".join(BETAS)
    message = raw.parse()
    assert message.type == "message" and message.usage.output_tokens > 0
    # Spaces and empty entries do not matter.
    raw = claude.messages.with_raw_response.create(
        model=BEDROCK, max_tokens=32, messages=[{"role": "user", "content": "more betas"}],
        extra_headers={"anthropic-beta": f"{BETAS[0]} ,, {BETAS[1]}"})
    assert raw.headers["x-sim-anthropic-beta"] == ",".join(BETAS)
    # Without the header the body has none.
    raw = claude.messages.with_raw_response.create(
        model=BEDROCK, max_tokens=32, messages=[{"role": "user", "content": "no betas"}])
    assert "x-sim-anthropic-beta" not in raw.headers


def test_betas_of_streams_and_openai_clients_reach_bedrock(claude, oai):
    with claude.beta.messages.stream(model=BEDROCK, max_tokens=32, betas=BETAS[:1],
                                     messages=[{"role": "user", "content": "stream with a beta"}]) as stream:
        assert stream.response.headers["x-sim-anthropic-beta"] == BETAS[0]
        assert "stream with a beta" in "".join(stream.text_stream)
    raw = oai.chat.completions.with_raw_response.create(
        model=BEDROCK, max_tokens=32, messages=[{"role": "user", "content": "openai with betas"}],
        extra_headers={"anthropic-beta": ",".join(BETAS)})
    assert raw.headers["x-sim-anthropic-beta"] == ",".join(BETAS)
    assert raw.parse().choices[0].message.content


@pytest.mark.parametrize("value", ["has space", "a;b", 'x"y', ",".join(f"beta-{i}" for i in range(33)), "b" * 129])
def test_a_bad_beta_header_is_a_400_in_the_clients_shape(claude, oai, value):
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(model=BEDROCK, max_tokens=16, messages=[{"role": "user", "content": "hi"}],
                               extra_headers={"anthropic-beta": value})
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "invalid_request_error"
    assert "anthropic-beta" in info.value.body["error"]["message"]
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model=BEDROCK, max_tokens=16, messages=[{"role": "user", "content": "hi"}],
                                    extra_headers={"anthropic-beta": value})
    assert info.value.body["code"] == "invalid_anthropic_beta" and info.value.body["param"] == "anthropic-beta"


def test_vertex_gets_the_beta_header_as_it_is(claude):
    """Vertex takes `anthropic-beta` as a header: it is neither read nor refused, and the body has no betas."""
    message = claude.beta.messages.create(model=VERTEX, max_tokens=16, betas=BETAS,
                                          messages=[{"role": "user", "content": "vertex betas"}])
    assert message.type == "message"


# MARK: - Token counting


@pytest.mark.parametrize("model", MODELS)
def test_token_counts_equal_what_the_answer_charges(oai, claude, model):
    request = {"model": model, "system": "Be terse.",
               "messages": [{"role": "user", "content": "Count the words of this message for me please"}]}
    counted = claude.messages.count_tokens(**request)
    answered = claude.messages.create(**request, max_tokens=32)
    assert counted.input_tokens == answered.usage.input_tokens > 0
    responses_request = {"model": model, "instructions": "Answer in one line.",
                         "input": [{"role": "user", "content": "How many words does this question have, roughly?"}]}
    counted = oai.responses.input_tokens.count(**responses_request)
    assert counted.object == "response.input_tokens"
    answered = oai.responses.create(**responses_request, max_output_tokens=32)
    assert counted.input_tokens == answered.usage.input_tokens > 0


# MARK: - The simulators check what the clouds check


def post(url: str, body: dict, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_vertex_sim_checks_the_token_and_the_body(gateway):
    url = (f"{gateway.sims.url('gemini')}/v1/projects/p/locations/us-east5/publishers/anthropic/models/"
           "claude-sonnet-4-5@20250929:rawPredict")
    body = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    auth = {"authorization": f"Bearer {VERTEX_TOKEN}"}
    status, answer = post(url, body, {})
    assert status == 401 and answer["error"]["status"] == "UNAUTHENTICATED"
    status, answer = post(url, body, {"authorization": "Bearer wrong"})
    assert status == 401
    status, answer = post(url, body, auth)
    assert status == 200 and answer["type"] == "message" and answer["model"] == "claude-sonnet-4-5@20250929"
    status, answer = post(url, {**body, "model": "claude"}, auth)
    assert status == 400 and "model" in answer["error"]["message"]
    status, answer = post(url, {**body, "anthropic_version": "2023-06-01"}, auth)
    assert status == 400 and "vertex-2023-10-16" in answer["error"]["message"]
    status, answer = post(url, {**body, "stream": True}, auth)
    assert status == 400 and "streamRawPredict" in answer["error"]["message"]


def test_bedrock_sim_checks_the_signature_and_the_body(gateway):
    url = f"{gateway.sims.url('bedrock')}/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke"
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}

    def signed(payload: dict) -> tuple[int, dict]:
        data = json.dumps(payload).encode()
        headers = sigv4_headers("POST", url, data, headers={"content-type": "application/json"})
        request = urllib.request.Request(url, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    status, answer = post(url, body, {})
    assert status == 403 and "message" in answer
    status, answer = signed(body)
    assert status == 200 and answer["type"] == "message" and answer["usage"]["output_tokens"] > 0
    for extra in ({"model": "x"}, {"stream": True}, {"anthropic_version": "vertex-2023-10-16"},
                  {"anthropic_beta": "a"}, {"anthropic_beta": ["a", 1]}, {"anthropic_beta": {"a": 1}}):
        status, answer = signed({**body, **extra})
        assert status == 400 and "Malformed input request" in answer["message"], extra
    status, answer = signed({**body, "anthropic_beta": ["a", "b"]})
    assert status == 200 and answer["type"] == "message"


# MARK: - Hostile clouds: garbled Bedrock chunks and odd Vertex errors through the real Envoy

HOSTILE_KEY = "sk-sluice-hostile-clouds"
TINY_KEY = "sk-sluice-tiny-"  # + route: 200 tokens a minute
HOSTILE_BACKENDS = {
    # route: (model, upstream filter config)
    "bedrock-claude": ("hostile-bedrock-claude", {
        "backend": "bedrock-claude", "schema": "bedrock_anthropic",
        "aws": {"region": "us-east-1", "access_key_id": {"value": "AKIDHOSTILE"}, "secret_access_key": {"value": "s"}}}),
    "vertex-claude": ("hostile-vertex-claude", {
        "backend": "vertex-claude", "schema": "vertex_anthropic", "credential": {"value": "token"},
        "gcp": {"project": "p", "location": "us-east5"}}),
}


@pytest.fixture(scope="module")
def hostile():
    upstream = HostileUpstream(max_stall=10.0).start()
    config = {
        "api_keys": [{"name": "hostile", "key": HOSTILE_KEY},
                     *[{"name": f"tiny-{route}", "key": TINY_KEY + route, "limits": {"tokens_per_minute": 200}}
                       for route in HOSTILE_BACKENDS]],
        "default_output_tokens_estimate": 0,
        "models": [{"id": model, "route": route} for route, (model, _) in HOSTILE_BACKENDS.items()],
        "prices": {model: {"input": 1.0, "output": 2.0} for model, _ in HOSTILE_BACKENDS.values()},
    }
    port = free_port()
    bootstrap = gateway_bootstrap(
        gateway_port=port, admin_port=free_port(), upstream_port=upstream.port, filter_config=config,
        routes=[header_route(route, route, timeout="5s", idle_timeout="1s") for route in HOSTILE_BACKENDS],
        clusters=[static_cluster(route, upstream.port, filter) for route, (_, filter) in HOSTILE_BACKENDS.items()])
    envoy = Envoy(bootstrap, concurrency=2)
    envoy.start().wait_ready()
    try:
        yield envoy, upstream, port
    finally:
        envoy.stop()
        upstream.stop()


def chunk(event: dict | bytes) -> bytes:
    """One InvokeModel stream chunk carrying `event` (JSON, base64 in `{"bytes"}`), as Bedrock frames it."""
    raw = event if isinstance(event, bytes) else json.dumps(event, separators=(",", ":")).encode()
    return bedrock_event("chunk", {"bytes": base64.b64encode(raw).decode()})


START = {"type": "message_start", "message": {"id": "msg_h", "type": "message", "role": "assistant", "model": "claude",
                                              "content": [], "stop_reason": None, "stop_sequence": None,
                                              "usage": {"input_tokens": 11, "output_tokens": 1}}}
BLOCK = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
DELTA = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}
GOOD_END = [{"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 3}},
            {"type": "message_stop"}]
EXCEPTION = event_stream_frame([(":exception-type", "throttlingException"), (":content-type", "application/json"),
                                (":message-type", "exception")], b'{"message":"Too many tokens, slow down"}')
GARBLED = {
    "bad-base64": bedrock_event("chunk", {"bytes": "!!! not base64 !!!"}),
    "base64-of-garbage": bedrock_event("chunk", {"bytes": base64.b64encode(b"\x00\xff{garbage").decode()}),
    "chunk-without-bytes": bedrock_event("chunk", {"p": "abc"}),
    "chunk-not-json": bedrock_event("chunk", b"not json at all"),
    "truncated-frame": chunk(DELTA)[:-7],
    "corrupt-crc": chunk(DELTA)[:-1] + bytes([chunk(DELTA)[-1] ^ 0xFF]),
    "lying-length": chunk(DELTA)[:3] + b"\x7f" + chunk(DELTA)[4:],
    "exception": EXCEPTION,
    "cut-before-message-stop": b"",
}


def ask_hostile(port: int, model: str, client: str, stream: bool, key: str = HOSTILE_KEY):
    if client == "anthropic":
        body = {"model": model, "max_tokens": 32, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
        return http_request(port, "/v1/messages", json.dumps(body).encode(), {
            "x-api-key": key, "content-type": "application/json", "anthropic-version": "2023-06-01"})
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    return http_request(port, "/v1/chat/completions", json.dumps(body).encode(), {
        "authorization": f"Bearer {key}", "content-type": "application/json"})


def sse_errors(body: bytes, client: str) -> list:
    """The error payloads of an SSE body (Anthropic `event: error`, or OpenAI `data: {"error": ...}`)."""
    errors = []
    for block in body.decode("utf-8", "replace").split("\n\n"):
        lines = block.strip().splitlines()
        data = "".join(line[6:] for line in lines if line.startswith("data: "))
        if not data or data == "[DONE]":
            continue
        payload = json.loads(data)
        if (client == "anthropic" and payload.get("type") == "error") or (client == "openai" and "error" in payload):
            errors.append(payload["error"])
    return errors


@pytest.mark.parametrize("client", ["openai", "anthropic"])
@pytest.mark.parametrize("case", list(GARBLED))
def test_garbled_bedrock_stream_ends_with_one_error_in_the_clients_shape(hostile, client, case):
    envoy, upstream, port = hostile
    pieces = [chunk(START), chunk(BLOCK), chunk(DELTA)] + ([GARBLED[case]] if GARBLED[case] else []) + [chunk(e) for e in GOOD_END]
    if case in ("truncated-frame", "cut-before-message-stop"):
        pieces = pieces[:4] if case == "truncated-frame" else pieces[:3]
    upstream.respond(streamed_response(pieces, content_type="application/vnd.amazon.eventstream"))
    response = ask_hostile(port, "hostile-bedrock-claude", client, True)
    assert envoy.process.poll() is None, envoy.logs()[-3000:]
    assert response.status == 200 and response.content_type.startswith("text/event-stream"), response.body[:300]
    errors = sse_errors(response.body, client)
    assert len(errors) == 1, response.body[-800:]
    text = response.body.decode()
    if client == "anthropic":
        assert text.startswith("event: message_start\n") and text.rstrip().splitlines()[-2] == "event: error"
        if case == "exception":
            assert errors[0]["type"] == "rate_limit_error" and "slow down" in errors[0]["message"]
    else:
        assert text.rstrip().endswith("data: [DONE]") and '"content":"Hi"' in text
        if case == "exception":
            assert "slow down" in errors[0]["message"]
    # Nothing was poisoned: the next request on the same Envoy works.
    upstream.respond(streamed_response([chunk(START), chunk(BLOCK), chunk(DELTA)] + [chunk(e) for e in GOOD_END],
                                       content_type="application/vnd.amazon.eventstream"))
    after = ask_hostile(port, "hostile-bedrock-claude", client, True)
    assert after.status == 200 and not sse_errors(after.body, client), after.body[-400:]


@pytest.mark.parametrize("client", ["openai", "anthropic"])
@pytest.mark.parametrize("case,status,body,content_type", [
    ("google-shape", 403, b'{"error":{"code":403,"message":"Permission denied on resource project p.","status":"PERMISSION_DENIED"}}', "application/json"),
    ("anthropic-shape", 529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', "application/json"),
    ("html-page", 502, b"<html><body>502 Bad Gateway</body></html>", "text/html"),
    ("empty", 503, b"", "text/plain"),
])
def test_vertex_errors_reach_clients_in_their_shape(hostile, client, case, status, body, content_type):
    envoy, upstream, port = hostile
    upstream.respond(full_response(body, status=status, content_type=content_type))
    response = ask_hostile(port, "hostile-vertex-claude", client, False)
    assert envoy.process.poll() is None
    assert response.status == status, response.body[:300]
    payload = response.json()
    if client == "anthropic":
        assert payload["type"] == "error" and payload["error"]["message"]
        expected = {"google-shape": "permission_error", "anthropic-shape": "overloaded_error"}.get(case)
        if expected:
            assert payload["error"]["type"] == expected
    else:
        assert payload["error"]["message"] and payload["error"]["type"]
    request = upstream.requests[-1]
    assert request["path"] == "/v1/projects/p/locations/us-east5/publishers/anthropic/models/hostile-vertex-claude:rawPredict"
    sent = json.loads(request["body"])
    assert "model" not in sent and sent["anthropic_version"] == "vertex-2023-10-16"


@pytest.mark.parametrize("route,model", [("bedrock-claude", "hostile-bedrock-claude"), ("vertex-claude", "hostile-vertex-claude")])
def test_quotas_charge_what_the_cloud_reports(hostile, route, model):
    """A key of 200 tokens a minute: the first answer reports 300 tokens and is charged them, so the next
    request is refused (429 in the client's shape) before it reaches the cloud."""
    envoy, upstream, port = hostile
    message = {"id": "msg_q", "type": "message", "role": "assistant", "model": "claude", "stop_reason": "end_turn",
               "stop_sequence": None, "content": [{"type": "text", "text": "ok"}],
               "usage": {"input_tokens": 150, "output_tokens": 150}}
    upstream.respond(full_response(json.dumps(message).encode()))
    first = ask_hostile(port, model, "openai", False, key=TINY_KEY + route)
    assert first.status == 200, first.body[:300]
    assert first.json()["usage"]["total_tokens"] == 300
    sent = len(upstream.requests)
    second = ask_hostile(port, model, "anthropic", False, key=TINY_KEY + route)
    assert second.status == 429, second.body[:300]
    assert second.json()["type"] == "error" and second.json()["error"]["type"] == "rate_limit_error"
    assert len(upstream.requests) == sent


def test_bedrock_receives_betas_in_the_body_and_not_as_a_header(hostile):
    """What Bedrock gets, byte for byte: `anthropic_beta` in the signed body, no `anthropic-beta` header."""
    envoy, upstream, port = hostile
    message = {"id": "msg_b", "type": "message", "role": "assistant", "model": "claude", "stop_reason": "end_turn",
               "stop_sequence": None, "content": [{"type": "text", "text": "ok"}],
               "usage": {"input_tokens": 3, "output_tokens": 1}}
    upstream.respond(full_response(json.dumps(message).encode()))
    body = {"model": "hostile-bedrock-claude", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    response = http_request(port, "/v1/messages", json.dumps(body).encode(), {
        "x-api-key": HOSTILE_KEY, "content-type": "application/json", "anthropic-version": "2023-06-01",
        "anthropic-beta": "a-1, b-2"})
    assert response.status == 200, response.body[:300]
    request = upstream.requests[-1]
    assert "anthropic-beta" not in request["headers"]
    sent = json.loads(request["body"])
    assert sent["anthropic_beta"] == ["a-1", "b-2"] and sent["anthropic_version"] == "bedrock-2023-05-31"
    assert "authorization" in request["headers"] and "x-amz-date" in request["headers"]
    # The header on two lines (as HTTP allows for a list): both lines' betas, in order.
    upstream.respond(full_response(json.dumps(message).encode()))
    response = http_request(port, "/v1/messages", json.dumps(body).encode(), [
        ("x-api-key", HOSTILE_KEY), ("content-type", "application/json"), ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "a-1"), ("anthropic-beta", "b-2, c-3")])
    assert response.status == 200, response.body[:300]
    sent = json.loads(upstream.requests[-1]["body"])
    assert sent["anthropic_beta"] == ["a-1", "b-2", "c-3"]
    assert "anthropic-beta" not in upstream.requests[-1]["headers"]
