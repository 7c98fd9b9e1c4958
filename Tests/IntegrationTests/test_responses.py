"""`POST /v1/responses` with the official `openai` SDK through the real Envoy 1.40 and the shipped default
gateway: plain, streamed (typed events) and a function-tool round trip against every chat model of the
default config. OpenAI and Azure answer in the Responses API themselves (passthrough, usage read from the
Responses object or the stream's `response.completed`); Anthropic, Bedrock and Gemini/Vertex are reached
through the chat hub. Also: usage is metered (access log, GenAI token metrics), `previous_response_id` is
refused where the gateway would have to keep state, and errors come in OpenAI's shape."""
import json
import time

import openai
import pytest

from default_gateway import DEMO_KEY, DefaultGateway

MODELS = [
    "gpt-4o-mini",  # OpenAI (passthrough)
    "azure-gpt-4o-mini",  # Azure OpenAI v1 API (passthrough)
    "claude-sonnet-4-6",  # Anthropic (through the chat hub)
    "bedrock-claude-haiku",  # Bedrock Converse (through the chat hub, SigV4)
    "gemini-2.5-flash",  # Gemini API (through the chat hub)
    "vertex-gemini-2.5-flash",  # Vertex AI (through the chat hub)
    "sim-llama-3-8b",  # OpenAI-compatible self-hosted (passthrough)
    "llama-3.1-8b-instruct",  # vLLM pool (passthrough)
    "gpt-4o-mini-failover",  # aggregate: OpenAI then Azure
]
PASSTHROUGH = {"gpt-4o-mini", "azure-gpt-4o-mini", "sim-llama-3-8b", "llama-3.1-8b-instruct", "gpt-4o-mini-failover"}
TRANSLATED = [m for m in MODELS if m not in PASSTHROUGH]
# Models with a price in the default config (self-hosted ones and the failover aggregate have none).
PRICED = {"gpt-4o-mini", "azure-gpt-4o-mini", "claude-sonnet-4-6", "bedrock-claude-haiku", "gemini-2.5-flash",
          "vertex-gemini-2.5-flash"}
# vLLM answers a request with tools only when started with a tool-call parser (the simulator is not), as
# for chat completions (test_sdk.py leaves it out of its tool tests too).
TOOL_MODELS = [m for m in MODELS if m != "llama-3.1-8b-instruct"]

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"],
    },
}


from sdk_fixtures import gateway, oai  # noqa: F401 (fixtures)


@pytest.mark.parametrize("model", MODELS)
def test_responses_create(oai, model):
    r = oai.responses.create(model=model, input="Say hello to the gateway", instructions="Be brief.", max_output_tokens=64)
    assert r.object == "response" and r.status == "completed", r
    assert r.id.startswith("resp_")
    assert "hello" in r.output_text.lower(), r.output_text
    assert [item.type for item in r.output] == ["message"]
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


@pytest.mark.parametrize("model", MODELS)
def test_responses_stream_typed_events(oai, model):
    events = list(oai.responses.create(model=model, input="Stream a greeting please", max_output_tokens=64, stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed", types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "response.output_item.added" in types and "response.output_item.done" in types
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text and "greeting" in text.lower(), text
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == text
    completed = events[-1].response
    assert completed.status == "completed" and completed.output_text == text
    assert completed.usage.input_tokens > 0 and completed.usage.output_tokens > 0


@pytest.mark.parametrize("model", TOOL_MODELS)
def test_responses_function_tool_round_trip(oai, model):
    question = {"role": "user", "content": "What is the weather in Oslo?"}
    r = oai.responses.create(model=model, input=[question], tools=[WEATHER_TOOL], max_output_tokens=64)
    calls = [item for item in r.output if item.type == "function_call"]
    assert len(calls) == 1, r.output
    call = calls[0]
    assert call.name == "get_weather" and isinstance(json.loads(call.arguments)["city"], str)
    # The SDK's own items go back as input, followed by the tool's output.
    follow_up = [question, *[item.model_dump(exclude_none=True) for item in r.output],
                 {"type": "function_call_output", "call_id": call.call_id, "output": json.dumps({"temp_c": 21})}]
    r2 = oai.responses.create(model=model, input=follow_up, tools=[WEATHER_TOOL], max_output_tokens=64)
    assert not [item for item in r2.output if item.type == "function_call"], r2.output
    assert "temp_c" in r2.output_text or "21" in r2.output_text, r2.output_text


@pytest.mark.parametrize("model", TOOL_MODELS)
def test_responses_streamed_function_call(oai, model):
    events = list(oai.responses.create(
        model=model, input="Weather in Oslo?", tools=[WEATHER_TOOL], max_output_tokens=64, stream=True))
    types = [e.type for e in events]
    assert "response.function_call_arguments.delta" in types, types
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == arguments and isinstance(json.loads(arguments)["city"], str)
    completed = events[-1]
    assert completed.type == "response.completed"
    [call] = [item for item in completed.response.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.arguments == arguments


# Backends whose chat translation turns `reasoning` into thinking the simulators answer with. For Anthropic
# the effort alone becomes `output_config.effort`, which asks for no thinking: the requested summary turns
# extended thinking on (the Responses translation's `thinking`).
@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "bedrock-claude-haiku", "gemini-2.5-flash", "vertex-gemini-2.5-flash"])
def test_responses_reasoning_summaries(oai, model):
    request = {"model": model, "input": "Why is the sky blue?", "reasoning": {"effort": "low", "summary": "auto"},
               "max_output_tokens": 2048}
    r = oai.responses.create(**request)
    assert [item.type for item in r.output] == ["reasoning", "message"]
    summary = r.output[0].summary[0].text
    assert "sky" in summary
    events = list(oai.responses.create(**request, stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    done = next(e for e in events if e.type == "response.reasoning_summary_text.done")
    assert deltas == done.text == summary
    assert [item.type for item in events[-1].response.output] == ["reasoning", "message"]


def test_claude_reasoning_summaries_leave_out_what_thinking_refuses(oai):
    # Anthropic refuses temperature with thinking, and thinking with a forced tool: the first request still
    # gets its summary (temperature left out), the second its forced call (no thinking, no summary).
    r = oai.responses.create(model="claude-sonnet-4-6", input="Why is the sky blue?", temperature=0.2,
                             reasoning={"effort": "high", "summary": "detailed"}, max_output_tokens=4096)
    assert [item.type for item in r.output] == ["reasoning", "message"]
    r = oai.responses.create(model="claude-sonnet-4-6", input="Weather in Paris?", tools=[WEATHER_TOOL],
                             tool_choice="required", reasoning={"summary": "auto"})
    assert [item.type for item in r.output] == ["function_call"]
    with pytest.raises(openai.BadRequestError) as refused:
        oai.responses.create(model="claude-sonnet-4-6", input="x", reasoning={"summary": "verbose"})
    assert refused.value.body["param"] == "reasoning.summary"


WEATHER_FORMAT = {
    "type": "json_schema", "name": "weather", "strict": True,
    "schema": {"type": "object", "properties": {"city": {"type": "string"}, "temp_c": {"type": "integer"}},
               "required": ["city", "temp_c"], "additionalProperties": False},
}


# Structured output (`text.format`) where the simulators honour it: OpenAI and Azure themselves (passthrough),
# and Bedrock, whose translation forces a tool whose input is the answer.
@pytest.mark.parametrize("model", ["gpt-4o-mini", "azure-gpt-4o-mini", "bedrock-claude-haiku"])
def test_responses_structured_output(oai, model):
    r = oai.responses.create(model=model, input="Weather in Oslo as JSON", text={"format": WEATHER_FORMAT},
                             max_output_tokens=256)
    answer = json.loads(r.output_text)
    assert isinstance(answer["city"], str) and isinstance(answer["temp_c"], int)
    assert r.text.format.type == "json_schema"


def prometheus_value(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def priced_log_line(gateway, model):
    """An access-log line of `model` with a cost (the log is flushed about once a second, so lines are
    not matched to requests: any priced line of the model will do)."""
    deadline = time.time() + 5
    while time.time() < deadline:
        for line in gateway.envoy.logs().splitlines():
            fields = dict(p.split("=", 1) for p in line.split() if "=" in p and not p.startswith('"'))
            if fields.get("model") == model and fields.get("cost_usd", "-") not in ("-", "0"):
                return fields
        time.sleep(0.05)
    raise AssertionError(f"no priced access-log line for {model}")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_responses_usage_is_metered_as_the_client_was_told(oai, gateway, model, stream):
    """The GenAI token counters move by exactly the usage the client read (from the Responses object, or
    from `response.completed`); priced models get a cost in the access log."""
    name = "envoy_sluice_gen_ai_client_tokens_total"
    gateway.envoy.flushed_stats()  # earlier requests' counts reach Envoy first (flushed every 100 ms)
    before = gateway.envoy.prometheus()
    prompt = f"meter this {'streamed' if stream else 'plain'} answer"
    if stream:
        told = list(oai.responses.create(model=model, input=prompt, max_output_tokens=32, stream=True))[-1].response.usage
    else:
        told = oai.responses.create(model=model, input=prompt, max_output_tokens=32).usage
    deadline = time.time() + 5
    while True:
        after = gateway.envoy.prometheus()
        got = tuple(
            prometheus_value(after, name, gen_ai_request_model=model, gen_ai_token_type=kind, gen_ai_operation_name="chat")
            - prometheus_value(before, name, gen_ai_request_model=model, gen_ai_token_type=kind, gen_ai_operation_name="chat")
            for kind in ("input", "output"))
        if got == (told.input_tokens, told.output_tokens) or time.time() > deadline:
            break
        time.sleep(0.1)
    assert got == (told.input_tokens, told.output_tokens)
    if model in PRICED:
        assert float(priced_log_line(gateway, model)["cost_usd"]) > 0


@pytest.mark.parametrize("model", TRANSLATED)
@pytest.mark.parametrize("stream", [False, True])
def test_previous_response_id_is_refused_on_a_translated_backend(oai, model, stream):
    with pytest.raises(openai.BadRequestError) as info:
        oai.responses.create(model=model, input="and then?", previous_response_id="resp_abc", stream=stream)
    assert info.value.body["param"] == "previous_response_id"
    assert info.value.body["code"] == "unsupported_parameter"
    assert "previous_response_id" in info.value.body["message"]


def test_previous_response_id_passes_through_to_openai(oai):
    first = oai.responses.create(model="gpt-4o-mini", input="remember me", max_output_tokens=32)
    second = oai.responses.create(model="gpt-4o-mini", input="and then?", previous_response_id=first.id, max_output_tokens=32)
    assert second.status == "completed" and second.previous_response_id == first.id
    # OpenAI's own refusal of an id it does not know reaches the client as OpenAI sent it.
    with pytest.raises(openai.BadRequestError) as info:
        oai.responses.create(model="gpt-4o-mini", input="x", previous_response_id="resp_unknown")
    assert info.value.body["code"] == "previous_response_not_found"


# The vLLM replicas inject no faults (as for chat); the failover model would answer from Azure.
@pytest.mark.parametrize("model", [m for m in MODELS if m not in ("gpt-4o-mini-failover", "llama-3.1-8b-instruct")])
def test_responses_provider_errors_in_openai_shape(oai, model):
    with pytest.raises(openai.RateLimitError) as info:
        oai.responses.create(model=model, input="hi [sim-error:429]", max_output_tokens=32)
    assert info.value.status_code == 429
    assert isinstance(info.value.body, dict) and "message" in info.value.body


def test_responses_gateway_errors_in_openai_shape(oai, gateway):
    with pytest.raises(openai.NotFoundError) as info:
        oai.responses.create(model="no-such-model", input="x")
    assert info.value.body["code"] == "model_not_found"
    bad = openai.OpenAI(base_url=oai.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.responses.create(model="gpt-4o-mini", input="x")
    assert info.value.body["code"] == "invalid_api_key"
    # A built-in tool runs inside OpenAI: a translated backend refuses it by name.
    with pytest.raises(openai.BadRequestError) as info:
        oai.responses.create(model="claude-sonnet-4-6", input="x", tools=[{"type": "web_search"}])
    assert "web_search" in info.value.body["message"]


@pytest.fixture(scope="module")
def openai_down():
    from test_sdk import kill_first_fallback_member

    with DefaultGateway(adjust_bootstrap=kill_first_fallback_member) as gw:
        yield gw


@pytest.mark.parametrize("stream", [False, True])
def test_failover_responses_answer_from_azure_when_openai_is_down(openai_down, stream):
    """The retry lands on Azure's v1 API with the deployment written into `model`."""
    client = openai.OpenAI(base_url=f"{openai_down.base}/v1", api_key=DEMO_KEY, max_retries=0, timeout=30)
    if stream:
        events = list(client.responses.create(model="gpt-4o-mini-failover", input="Hello", max_output_tokens=16, stream=True))
        assert events[-1].type == "response.completed"
        response = events[-1].response
    else:
        response = client.responses.create(model="gpt-4o-mini-failover", input="Hello", max_output_tokens=16)
    assert response.output_text and response.model == "gpt-4o-mini-deployment"
    stats = openai_down.envoy.stats()
    assert any(name.endswith(".upstream_rq_retry") and value >= 1 for name, value in stats.items()
               if name.startswith("cluster.fallback-"))
