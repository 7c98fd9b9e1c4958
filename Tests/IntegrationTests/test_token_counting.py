"""Token counting through the real Envoy 1.40 and the shipped default gateway, with the official SDKs:
`client.responses.input_tokens.count` (`POST /v1/responses/input_tokens`) and Anthropic's
`client.messages.count_tokens` (`POST /v1/messages/count_tokens`), mapped to each provider's counting endpoint
(OpenAI and Azure pass through; Anthropic count_tokens, Bedrock CountTokens, Gemini/Vertex countTokens through
the chat hub). The simulators count the same words a call is charged for, so a count must equal the
`input_tokens` of the same conversation's answer. A count is free: no tokens, no cost, no quota."""
import time

import anthropic
import openai
import pytest


# The vLLM replicas have no counting endpoint (real vLLM has /tokenize instead): left out.
COUNT_MODELS = ["gpt-4o-mini", "azure-gpt-4o-mini", "claude-sonnet-4-6", "bedrock-claude-haiku", "gemini-2.5-flash",
                "vertex-gemini-2.5-flash", "sim-llama-3-8b"]
# Anthropic clients' counts reach every backend with a counting endpoint for them (not OpenAI's).
ANTHROPIC_COUNT_MODELS = ["claude-sonnet-4-6", "bedrock-claude-haiku", "gemini-2.5-flash", "vertex-gemini-2.5-flash"]


from sdk_fixtures import claude, gateway, oai  # noqa: F401 (fixtures)


@pytest.mark.parametrize("model", COUNT_MODELS)
def test_responses_input_tokens_count_what_the_answer_charges(oai, model):
    request = {"model": model, "instructions": "Answer in one line.",
               "input": [{"role": "user", "content": "How many words does this question have, roughly?"}]}
    counted = oai.responses.input_tokens.count(**request)
    assert counted.object == "response.input_tokens"
    answered = oai.responses.create(**request, max_output_tokens=32)
    assert counted.input_tokens == answered.usage.input_tokens > 0


@pytest.mark.parametrize("model", ANTHROPIC_COUNT_MODELS)
def test_anthropic_count_tokens_count_what_the_answer_charges(claude, model):
    request = {"model": model, "system": "Be terse.",
               "messages": [{"role": "user", "content": "Count the words of this message for me please"}]}
    counted = claude.messages.count_tokens(**request)
    answered = claude.messages.create(**request, max_tokens=32)
    assert counted.input_tokens == answered.usage.input_tokens > 0


def test_anthropic_count_tokens_on_an_openai_backend_is_refused_in_anthropic_shape(claude):
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.count_tokens(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["type"] == "error"
    assert "messages_count_tokens" in info.value.body["error"]["message"]


def test_a_count_of_a_request_the_backend_cannot_take_is_refused(oai):
    # previous_response_id needs OpenAI's stored state: refused for a translated backend, as for create.
    with pytest.raises(openai.BadRequestError) as info:
        oai.responses.input_tokens.count(model="claude-sonnet-4-6", input="x", previous_response_id="resp_1")
    assert info.value.body["param"] == "previous_response_id"


def count_log_lines(gateway, model):
    """The access-log lines of `model`'s counts: the logged path is the one sent upstream, which names the
    provider's counting endpoint."""
    paths = ("/responses/input_tokens", "/messages/count_tokens", ":countTokens", "/count-tokens")
    return [l for l in gateway.envoy.logs().splitlines()
            if f"model={model} " in l and any(p + '"' in l for p in paths) and " 200 " in l]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-sonnet-4-6", "gemini-2.5-flash"])
def test_counts_are_free(oai, gateway, model):
    """No tokens, no cost in the access log; the key's request quota is not charged."""
    before_lines = len(count_log_lines(gateway, model))
    first = oai.responses.with_raw_response.create(model=model, input="quota probe", max_output_tokens=16)
    for _ in range(20):
        counted = oai.responses.input_tokens.with_raw_response.count(model=model, input="count me " * 50)
        # A count's answer carries the key's rate-limit headers, as every answer does.
        assert int(counted.headers["x-ratelimit-remaining-requests"]) > 0
    second = oai.responses.with_raw_response.create(model=model, input="quota probe", max_output_tokens=16)
    # Each answer's headers show the key's requests left after admitting it: one more request between the two.
    # Twenty charged counts would show as ~20 (the bucket refills 10 a second, so it cannot hide them).
    used = int(first.headers["x-ratelimit-remaining-requests"]) - int(second.headers["x-ratelimit-remaining-requests"])
    assert used <= 1, used
    deadline = time.time() + 5
    while len(count_log_lines(gateway, model)) < before_lines + 20 and time.time() < deadline:
        time.sleep(0.05)
    lines = count_log_lines(gateway, model)
    assert len(lines) >= before_lines + 20
    for line in lines:
        fields = dict(p.split("=", 1) for p in line.split() if "=" in p and not p.startswith('"'))
        assert fields["tokens_in"] in ("0", "-") and fields["tokens_out"] in ("0", "-"), fields
        assert fields["cost_usd"] in ("-", "0", "0.000000"), fields
