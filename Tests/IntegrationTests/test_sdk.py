"""The official `openai` and `anthropic` Python SDKs against the shipped default gateway: every
backend schema, non-streaming, streaming, tools and errors, through the real Envoy 1.40."""
import json

import anthropic
import openai
import pytest

from default_gateway import DEMO_KEY, DefaultGateway
from harness import free_port

CHAT_MODELS = [
    "gpt-4o-mini",  # OpenAI
    "azure-gpt-4o-mini",  # Azure OpenAI
    "claude-sonnet-4-6",  # Anthropic
    "bedrock-claude-haiku",  # Bedrock Converse (SigV4)
    "gemini-2.5-flash",  # Gemini API
    "vertex-gemini-2.5-flash",  # Vertex AI
    "sim-llama-3-8b",  # OpenAI-compatible self-hosted
    "gpt-4o-mini-failover",  # aggregate: OpenAI then Azure
]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


from sdk_fixtures import claude, gateway, oai  # noqa: F401 (fixtures)


def test_models_list_via_sdk(oai):
    ids = [m.id for m in oai.models.list()]
    for model in CHAT_MODELS:
        assert model in ids


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_openai_sdk_chat(oai, model):
    r = oai.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there gateway"}],
        max_tokens=64,
    )
    assert r.object == "chat.completion"
    assert r.model  # translated backends report the requested model; OpenAI-shaped ones their own name
    assert r.choices[0].message.role == "assistant"
    assert "Hello there gateway" in r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_openai_sdk_stream_with_usage(oai, model):
    stream = oai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Stream me some words please"}],
        max_tokens=64,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert "Stream me some words please" in text
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


@pytest.mark.parametrize("model", ["gpt-4o-mini", "azure-gpt-4o-mini", "sim-llama-3-8b", "claude-sonnet-4-6"])
def test_openai_sdk_stream_without_usage_gets_no_usage_chunk(oai, gateway, model):
    # The gateway asks OpenAI-shaped backends for usage (to meter) and drops that chunk again
    # for a client that did not ask; the tokens still reach the access log.
    stream = oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": f"no usage please {model}"}], max_tokens=32, stream=True
    )
    chunks = list(stream)
    assert chunks and all(chunk.usage is None for chunk in chunks)
    line = wait_for_access_log(gateway, model)
    assert "tokens_in=" in line and "tokens_out=-" not in line and "tokens_out=0" not in line, line


def wait_for_access_log(gateway, model):
    import time

    deadline = time.time() + 5
    while time.time() < deadline:
        lines = [l for l in gateway.envoy.logs().splitlines() if f"model={model} " in l and "POST" in l]
        if lines:
            return lines[-1]
        time.sleep(0.05)
    raise AssertionError(f"no access log line for {model}")


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_token_usage_reaches_the_access_log(oai, gateway, model):
    oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "count my tokens"}], max_tokens=16)
    line = wait_for_access_log(gateway, model)
    fields = dict(part.split("=", 1) for part in line.split() if "=" in part and not part.startswith('"'))
    assert int(float(fields["tokens_in"])) > 0 and int(float(fields["tokens_out"])) > 0, line
    assert fields["backend"] != "-", line


def prometheus_value(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet-4-6", "bedrock-claude-haiku", "gemini-2.5-flash"])
def test_genai_token_metrics_equal_what_clients_were_told(oai, gateway, model):
    import time

    name = "envoy_sluice_gen_ai_client_tokens_total"
    gateway.envoy.flushed_stats()  # earlier tests' counts reach Envoy first (flushed every 100 ms)
    before = gateway.envoy.prometheus()
    told_in = told_out = 0
    for i in range(3):
        r = oai.chat.completions.create(model=model, messages=[{"role": "user", "content": f"metric run {i} " * (i + 1)}], max_tokens=32)
        told_in += r.usage.prompt_tokens
        told_out += r.usage.completion_tokens
    deadline = time.time() + 5
    while True:
        after = gateway.envoy.prometheus()
        got_in = prometheus_value(after, name, gen_ai_request_model=model, gen_ai_token_type="input") - prometheus_value(before, name, gen_ai_request_model=model, gen_ai_token_type="input")
        got_out = prometheus_value(after, name, gen_ai_request_model=model, gen_ai_token_type="output") - prometheus_value(before, name, gen_ai_request_model=model, gen_ai_token_type="output")
        if (got_in, got_out) == (told_in, told_out) or time.time() > deadline:
            break
        time.sleep(0.1)
    assert (got_in, got_out) == (told_in, told_out)
    assert 'gen_ai_operation_name="chat"' in after and 'consumer="demo"' in after
    assert "envoy_sluice_gen_ai_server_request_duration_ms_bucket" in after


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_openai_sdk_tools_round_trip(oai, model):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = oai.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL], max_tokens=64)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert isinstance(args.get("city"), str)
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21})},
    ]
    r2 = oai.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL], max_tokens=64)
    assert "temp_c" in r2.choices[0].message.content


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_openai_sdk_streamed_tool_call(oai, model):
    stream = oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=[WEATHER_TOOL], stream=True,
        max_tokens=64,
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                name += call.function.name or ""
                arguments += call.function.arguments or ""
            finish = choice.finish_reason or finish
    assert name == "get_weather"
    assert isinstance(json.loads(arguments)["city"], str)
    assert finish == "tool_calls"


@pytest.mark.parametrize("model", [m for m in CHAT_MODELS if m != "gpt-4o-mini-failover"])
def test_openai_sdk_rate_limit_error(oai, model):
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi [sim-error:429]"}], max_tokens=16)
    assert info.value.status_code == 429


def test_openai_sdk_gateway_errors(oai):
    with pytest.raises(openai.NotFoundError) as info:
        oai.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["code"] == "model_not_found"
    bad = openai.OpenAI(base_url=oai.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])


@pytest.mark.parametrize("model", ["text-embedding-3-small", "gemini-embedding-001"])
def test_openai_sdk_embeddings(oai, model):
    r = oai.embeddings.create(model=model, input=["first text", "second text"])
    assert len(r.data) == 2
    assert all(len(d.embedding) > 0 for d in r.data)
    assert r.data[1].index == 1


# MARK: - Anthropic SDK clients


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_anthropic_sdk_messages(claude, model):
    r = claude.messages.create(
        model=model, max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "Hello from anthropic sdk"}]
    )
    assert r.type == "message" and r.role == "assistant"
    text = "".join(block.text for block in r.content if block.type == "text")
    assert "Hello from anthropic sdk" in text
    assert r.stop_reason == "end_turn"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_anthropic_sdk_stream(claude, model):
    with claude.messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "Stream for the anthropic sdk"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "Stream for the anthropic sdk" in text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_anthropic_sdk_tools(claude, model):
    tool = {
        "name": "get_weather",
        "description": "Current weather for a city",
        "input_schema": WEATHER_TOOL["function"]["parameters"],
    }
    messages = [{"role": "user", "content": "Weather in Rome?"}]
    r = claude.messages.create(model=model, max_tokens=64, tools=[tool], messages=messages)
    assert r.stop_reason == "tool_use"
    use = next(block for block in r.content if block.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input["city"], str)
    messages += [
        {"role": "assistant", "content": [block.model_dump() for block in r.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 24C"}]},
    ]
    r2 = claude.messages.create(model=model, max_tokens=64, tools=[tool], messages=messages)
    assert "sunny" in "".join(block.text for block in r2.content if block.type == "text")


@pytest.mark.parametrize("model", [m for m in CHAT_MODELS if m != "gpt-4o-mini-failover"])
def test_anthropic_sdk_errors(claude, model):
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(model=model, max_tokens=16, messages=[{"role": "user", "content": "x [sim-error:429]"}])


def test_anthropic_sdk_gateway_auth_error(gateway):
    bad = anthropic.Anthropic(base_url=gateway.base, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "x"}])


# MARK: - The failover model when its first backend is down


def kill_first_fallback_member(bootstrap: dict) -> None:
    """Points the first member of every aggregate (fallback) cluster at a closed port, so each
    failover request's first attempt fails to connect and Envoy retries on the next priority."""
    clusters = bootstrap["static_resources"]["clusters"]
    by_name = {cluster["name"]: cluster for cluster in clusters}
    for cluster in clusters:
        if cluster.get("cluster_type", {}).get("name") == "envoy.clusters.aggregate":
            first = by_name[cluster["cluster_type"]["typed_config"]["clusters"][0]]
            for locality in first["load_assignment"]["endpoints"]:
                for host in locality["lb_endpoints"]:
                    host["endpoint"]["address"]["socket_address"]["port_value"] = free_port()


@pytest.fixture(scope="module")
def openai_down():
    with DefaultGateway(adjust_bootstrap=kill_first_fallback_member) as gw:
        yield gw


@pytest.mark.parametrize("stream", [False, True])
def test_failover_model_answers_from_azure_when_openai_is_down(openai_down, stream):
    client = openai.OpenAI(base_url=f"{openai_down.base}/v1", api_key=DEMO_KEY, max_retries=0, timeout=30)
    messages = [{"role": "user", "content": "Hello"}]
    if stream:
        chunks = list(client.chat.completions.create(
            model="gpt-4o-mini-failover", max_tokens=8, messages=messages, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = client.chat.completions.create(
            model="gpt-4o-mini-failover", max_tokens=8, messages=messages).choices[0].message.content
    assert text
    stats = openai_down.envoy.stats()
    assert any(name.endswith(".upstream_rq_retry") and value >= 1 for name, value in stats.items()
               if name.startswith("cluster.fallback-"))
