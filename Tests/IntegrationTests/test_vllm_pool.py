"""The vLLM-like pool of `sluice-sim` (`--vllm-ports`): OpenAI-compatible answers timed by the engine
model (prefix cache, batching, LoRA slots), its `/metrics` page moving with load, and the default
gateway's `llama-3.1-8b-instruct` served by the 4-replica `vllm_pool` cluster through the real Envoy."""
from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from default_gateway import DEMO_KEY, DefaultGateway
from sim import VLLM_ADAPTERS, VLLM_MODEL, Simulators, sse_events

SYSTEM = " ".join(f"Rule {i}: answer briefly and cite the handbook section {i}." for i in range(120))


def metric(text: str, name: str, **labels) -> float:
    """The value of the first sample of `name` whose labels include `labels`."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} missing")


def lora_info(text: str) -> dict:
    for line in text.splitlines():
        if line.startswith("vllm:lora_requests_info{"):
            labels = line[line.index("{") + 1 : line.rindex("}")]
            return dict(part.split("=", 1) for part in labels.replace('"', "").split(",") if "=" in part) | {
                "value": float(line.rsplit(" ", 1)[1])
            }
    raise AssertionError("vllm:lora_requests_info missing")


def chat(base: str, question: str, **extra) -> requests.Response:
    body = {"model": VLLM_MODEL, "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]}
    body.update(extra)
    return requests.post(base + "/v1/chat/completions", json=body, timeout=30)


@pytest.fixture(scope="module")
def sims():
    with Simulators(pace_ms=1) as s:
        yield s


def test_models_list_the_base_model_and_its_adapters(sims):
    models = requests.get(sims.url("vllm-0") + "/v1/models").json()["data"]
    assert [m["id"] for m in models] == [VLLM_MODEL, *VLLM_ADAPTERS]
    assert all(m["parent"] == VLLM_MODEL for m in models[1:]) and models[0]["parent"] is None
    r = requests.post(sims.url("vllm-0") + "/v1/chat/completions",
                      json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFoundError"


def test_a_repeated_prefix_is_cached_on_the_replica_that_saw_it(sims):
    base = sims.url("vllm-1")
    first = chat(base, "first question")
    assert first.status_code == 200, first.text
    assert first.headers["x-sluice-sim-replica"] == "1"
    usage = first.json()["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    # Tokens are bytes/4 of the prompt rendered with the chat template.
    assert usage["prompt_tokens"] >= len(SYSTEM) // 4
    second = chat(base, "a different second question")
    cached = second.json()["usage"]["prompt_tokens_details"]["cached_tokens"]
    # Every full 256-byte block of the shared system prompt (64 tokens each) is a hit.
    assert cached >= (len(SYSTEM) // 256 - 1) * 64 and cached % 64 == 0
    # Another replica has its own cache.
    other = chat(sims.url("vllm-2"), "a different second question")
    assert other.json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    page = requests.get(base + "/metrics").text
    assert metric(page, "vllm:prefix_cache_hits_total") == cached
    assert metric(page, "vllm:prefix_cache_queries_total") == usage["prompt_tokens"] + second.json()["usage"]["prompt_tokens"]


def test_streaming_with_usage_and_ignore_eos(sims):
    r = chat(sims.url("vllm-0"), "stream please", stream=True, stream_options={"include_usage": True},
             max_tokens=12, ignore_eos=True)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [data for _, data in sse_events(r.text)]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text.startswith("Sim reply to: stream please")
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 12
    completion = requests.post(sims.url("vllm-0") + "/v1/completions",
                               json={"model": VLLM_MODEL, "prompt": "Once upon a time", "max_tokens": 3})
    assert completion.status_code == 200
    assert completion.json()["choices"][0]["finish_reason"] == "length"
    assert completion.json()["usage"]["completion_tokens"] == 3


def test_metrics_fault_for_stale_scrapes(sims):
    base = sims.url("vllm-3")
    assert requests.post(base + "/__sim/metrics-fault?status=503").status_code == 200
    assert requests.get(base + "/metrics").status_code == 503
    assert requests.post(base + "/__sim/metrics-fault?status=0&delay_ms=300").status_code == 200
    started = time.time()
    assert requests.get(base + "/metrics").status_code == 200 and time.time() - started >= 0.3
    assert requests.post(base + "/__sim/metrics-fault").status_code == 200
    assert requests.post(base + "/__sim/metrics-fault?status=99").status_code == 400
    assert "vllm:num_requests_running" in requests.get(base + "/metrics", timeout=1).text
    # Serving goes on while the page is faulty.
    assert chat(base, "still serving").status_code == 200


def test_a_prompt_past_the_context_is_refused():
    with Simulators(vllm_pool=1, extra_args=["--vllm-max-model-len", "1024"]) as small:
        r = chat(small.url("vllm-0"), "x", max_tokens=10)
        assert r.status_code == 400 and "maximum context length is 1024 tokens" in r.json()["error"]["message"]


def test_metrics_follow_queueing_and_lora_slots():
    # One running slot, one adapter slot and slow steps keep requests queued long enough to see.
    args = ["--vllm-max-num-seqs", "1", "--vllm-max-loras", "1", "--vllm-step-us", "20000",
            "--vllm-legacy-cache-metric"]
    with Simulators(vllm_pool=1, extra_args=args) as slow:
        base = slow.url("vllm-0")
        models = ["sql-lora", "chat-lora", VLLM_MODEL]
        threads = [
            threading.Thread(target=lambda m=m: chat(base, f"question for {m}", model=m, max_tokens=8,
                                                     ignore_eos=True).raise_for_status())
            for m in models
        ]
        for t in threads:
            t.start()
            time.sleep(0.05)
        page = requests.get(base + "/metrics").text
        running = metric(page, "vllm:num_requests_running")
        waiting = metric(page, "vllm:num_requests_waiting")
        info = lora_info(page)
        assert (running, waiting) == (1, 2), page
        assert metric(page, "vllm:kv_cache_usage_perc") > 0
        assert metric(page, "vllm:gpu_cache_usage_perc") == metric(page, "vllm:kv_cache_usage_perc")
        assert info["max_lora"] == "1" and info["running_lora_adapters"] == "sql-lora"
        assert info["waiting_lora_adapters"] == "chat-lora"
        assert abs(info["value"] - time.time()) < 60
        for t in threads:
            t.join()
        page = requests.get(base + "/metrics").text
        assert metric(page, "vllm:num_requests_running") == 0 and metric(page, "vllm:num_requests_waiting") == 0
        assert metric(page, "vllm:kv_cache_usage_perc") == 0
        assert metric(page, "vllm:request_success_total", finished_reason="length") == 3
        assert metric(page, "vllm:time_to_first_token_seconds_count") == 3
        # The third request queued behind two 8-token generations of 20+ ms steps.
        assert metric(page, "vllm:request_queue_time_seconds_sum") > 0.2


def test_the_default_gateway_serves_the_pool_round_robin():
    with DefaultGateway() as gw:
        headers = {"authorization": f"Bearer {DEMO_KEY}"}
        seen = []
        for i in range(8):
            r = requests.post(gw.base + "/v1/chat/completions", headers=headers, timeout=30, json={
                "model": VLLM_MODEL, "messages": [{"role": "user", "content": f"hello pool {i}"}]})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["model"] == VLLM_MODEL
            assert body["choices"][0]["message"]["content"] == f"Sim reply to: hello pool {i}"
            assert body["usage"]["prompt_tokens"] > 0
            seen.append(r.headers.get("x-sluice-sim-replica"))
        # Every replica answered (Envoy's round robin over the 4-endpoint cluster), counted by
        # each replica's own metrics as well as by the header.
        answered = {i: metric(requests.get(gw.sims.url(f"vllm-{i}") + "/metrics").text,
                              "vllm:request_success_total", finished_reason="stop") for i in range(4)}
        assert all(count >= 1 for count in answered.values()), (answered, seen)
        assert sum(answered.values()) == 8
        listed = requests.get(gw.base + "/v1/models", headers=headers).json()["data"]
        assert VLLM_MODEL in [m["id"] for m in listed]
        r = requests.post(gw.base + "/v1/chat/completions", headers=headers, timeout=30, json={
            "model": VLLM_MODEL, "stream": True, "messages": [{"role": "user", "content": "stream through envoy"}]})
        assert r.status_code == 200 and r.text.rstrip().endswith("data: [DONE]")
