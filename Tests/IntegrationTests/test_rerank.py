"""Rerank through the real Envoy 1.40 and the shipped default gateway: `POST /v1/rerank` (Jina's and vLLM's
shape, OpenAI's errors) and `POST /cohere/v2/rerank` (Cohere's v2 shape and errors), each to a Cohere backend
(`rerank-v3.5`, the Cohere simulator's `/v2/rerank`) and to a vLLM-style server (`bge-reranker-v2-m3`, the
self-hosted simulator's `/v1/rerank`), with plain HTTP (the `cohere` SDK pulls in `tokenizers` and `fastavro`,
so it is not used). The simulators score a document by the share of the query's words it contains, so every
ranking and score here is predicted from the texts alone."""
import json
import re
import time

import pytest
import requests

from default_gateway import DEMO_KEY
from harness import Envoy, free_port, gateway_bootstrap, header_route, static_cluster
from hostile_upstream import HostileUpstream, Script
from sdk_fixtures import gateway  # noqa: F401 (fixture)
from sim import COHERE_KEY, COMPAT_RERANK_MODEL, Simulators

COHERE_MODEL = "rerank-v3.5"
VLLM_MODEL = "bge-reranker-v2-m3"
HEADERS = {"Authorization": f"Bearer {DEMO_KEY}"}

QUERY = "capital city of France"
DOCUMENTS = [
    "Berlin is the capital of Germany",
    "Paris is the capital city of France",
    "France borders Spain",
    "Bananas are yellow",
]


def words(text):
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def expected_ranking(query, documents):
    """The simulators' ranking: (index, score) best first, ties in document order."""
    wanted = words(query)
    scored = [(i, round(len(wanted & words(d)) / len(wanted) * 10_000) / 10_000) for i, d in enumerate(documents)]
    return sorted(scored, key=lambda item: (-item[1], item[0]))


def vllm_tokens(query, documents):
    """The vLLM simulator's usage: the query once per document, and each document (whitespace words)."""
    count = lambda text: max(1, len(text.split()))
    return sum(count(query) + count(d) for d in documents)


def post(gateway, path, body, headers=HEADERS):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(f"{gateway.base}{path}", data=data, headers={**headers, "content-type": "application/json"},
                         timeout=30)


def log_fields(gateway, model, path_part, count=1):
    """Access-log fields of `model`'s lines whose logged (upstream) path contains `path_part`; waits for
    `count` of them (the log is flushed about every 50 ms)."""
    deadline = time.time() + 5
    while True:
        lines = [l for l in gateway.envoy.logs().splitlines() if f"model={model} " in l and path_part in l]
        if len(lines) >= count or time.time() > deadline:
            return [dict(p.split("=", 1) for p in l.split() if "=" in p and not p.startswith('"')) for l in lines]
        time.sleep(0.05)


# MARK: - /v1/rerank


@pytest.mark.parametrize("model", [VLLM_MODEL, COHERE_MODEL])
def test_v1_rerank_ranks_and_echoes_documents(gateway, model):
    answer = post(gateway, "/v1/rerank", {"model": model, "query": QUERY, "documents": DOCUMENTS})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = expected_ranking(QUERY, DOCUMENTS)
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == expected
    # Documents come back by default (as vLLM and Jina answer), from the request, whatever the backend.
    assert [r["document"]["text"] for r in body["results"]] == [DOCUMENTS[i] for i, _ in expected]
    assert body["model"] == model and body["id"]
    tokens = vllm_tokens(QUERY, DOCUMENTS) if model == VLLM_MODEL else 0  # Cohere reports search units, not tokens
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


@pytest.mark.parametrize("model", [VLLM_MODEL, COHERE_MODEL])
def test_v1_rerank_honours_top_n_and_return_documents(gateway, model):
    documents = [{"text": d} for d in DOCUMENTS]  # Jina's object form
    answer = post(gateway, "/v1/rerank",
                  {"model": model, "query": QUERY, "documents": documents, "top_n": 2, "return_documents": False})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [(r["index"], r["relevance_score"]) for r in results] == expected_ranking(QUERY, DOCUMENTS)[:2]
    assert all("document" not in r for r in results)


def test_v1_rerank_to_cohere_goes_to_v2_rerank_and_costs_search_units(gateway):
    before = len(log_fields(gateway, COHERE_MODEL, '/v2/rerank"', count=0))
    answer = post(gateway, "/v1/rerank", {"model": COHERE_MODEL, "query": QUERY, "documents": DOCUMENTS})
    assert answer.status_code == 200, answer.text
    lines = log_fields(gateway, COHERE_MODEL, '/v2/rerank"', count=before + 1)
    assert len(lines) > before
    # One search unit (one query over up to 100 documents) at $0.002.
    assert float(lines[-1]["cost_usd"]) == pytest.approx(0.002)
    assert lines[-1]["backend"] == "cohere"


def test_v1_rerank_tokens_reach_the_access_log_and_genai_metrics(gateway):
    name = "envoy_sluice_gen_ai_client_tokens_total"
    labels = (f'gen_ai_operation_name="rerank"', f'gen_ai_request_model="{VLLM_MODEL}"', 'gen_ai_token_type="input"')

    def counted(text):
        return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                   if l.startswith(name + "{") and all(label in l for label in labels))

    gateway.envoy.flushed_stats()
    before = counted(gateway.envoy.prometheus())
    documents = ["one two three", "four five"]
    answer = post(gateway, "/v1/rerank", {"model": VLLM_MODEL, "query": "two four", "documents": documents})
    assert answer.status_code == 200, answer.text
    told = answer.json()["usage"]["total_tokens"]
    assert told == vllm_tokens("two four", documents)
    deadline = time.time() + 5
    while counted(gateway.envoy.prometheus()) - before != told and time.time() < deadline:
        time.sleep(0.1)
    assert counted(gateway.envoy.prometheus()) - before == told
    lines = log_fields(gateway, VLLM_MODEL, '/v1/rerank"')
    assert str(told) in [l["tokens_in"] for l in lines]


# MARK: - /cohere/v2/rerank


def test_cohere_rerank_to_cohere(gateway):
    answer = post(gateway, "/cohere/v2/rerank", {"model": COHERE_MODEL, "query": QUERY, "documents": DOCUMENTS,
                                                 "top_n": 3, "max_tokens_per_doc": 512})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == expected_ranking(QUERY, DOCUMENTS)[:3]
    assert all(set(r) == {"index", "relevance_score"} for r in body["results"])
    assert body["meta"]["billed_units"] == {"search_units": 1}
    assert body["meta"]["api_version"]["version"] == "2"
    assert body["id"].startswith("cohere-sim-rerank-")


def test_cohere_rerank_search_units_and_cost_grow_with_documents(gateway):
    documents = [f"document number {i} about France" for i in range(150)]
    before = len(log_fields(gateway, COHERE_MODEL, '/v2/rerank"', count=0))
    answer = post(gateway, "/cohere/v2/rerank", {"model": COHERE_MODEL, "query": "France", "documents": documents})
    assert answer.status_code == 200, answer.text
    assert answer.json()["meta"]["billed_units"] == {"search_units": 2}
    # An earlier test's line may still be unflushed when `before` is counted, so the first new line
    # need not be this request's: wait until this request's cost shows (or the deadline passes).
    deadline = time.time() + 5
    while True:
        lines = log_fields(gateway, COHERE_MODEL, '/v2/rerank"', count=before + 1)
        if any(float(l["cost_usd"]) == pytest.approx(0.004) for l in lines[before:]) or time.time() > deadline:
            break
        time.sleep(0.05)
    assert any(float(l["cost_usd"]) == pytest.approx(0.004) for l in lines[before:]), lines[before:]


def test_cohere_rerank_to_a_vllm_server(gateway):
    answer = post(gateway, "/cohere/v2/rerank", {"model": VLLM_MODEL, "query": QUERY, "documents": DOCUMENTS, "top_n": 2})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == expected_ranking(QUERY, DOCUMENTS)[:2]
    assert all(set(r) == {"index", "relevance_score"} for r in body["results"])
    # A self-hosted server bills no search units: none are made up; its tokens are reported.
    assert body["meta"]["billed_units"] == {}
    assert body["meta"]["tokens"]["input_tokens"] == vllm_tokens(QUERY, DOCUMENTS)


# MARK: - Errors in the client's shape


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "azure-gpt-4o-mini", "bedrock-claude-haiku", "gemini-2.5-flash"])
def test_rerank_on_a_backend_without_rerank_is_refused(gateway, model):
    openai_shaped = post(gateway, "/v1/rerank", {"model": model, "query": "q", "documents": ["d"]})
    assert openai_shaped.status_code == 400
    error = openai_shaped.json()["error"]
    assert error["code"] == "unsupported_endpoint" and "rerank endpoint is not available" in error["message"]
    cohere_shaped = post(gateway, "/cohere/v2/rerank", {"model": model, "query": "q", "documents": ["d"]})
    assert cohere_shaped.status_code == 400
    body = cohere_shaped.json()
    assert set(body) == {"message"} and "not available" in body["message"]


def test_chat_on_the_cohere_backend_is_refused(gateway):
    answer = post(gateway, "/v1/chat/completions", {"model": COHERE_MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "unsupported_endpoint"


def test_upstream_errors_reach_the_client_in_its_shape(gateway):
    # The self-hosted server's generative model has no rerank: vLLM answers 400.
    openai_shaped = post(gateway, "/v1/rerank", {"model": "sim-llama-3-8b", "query": "q", "documents": ["d"]})
    assert openai_shaped.status_code == 400
    assert "does not support Rerank" in openai_shaped.json()["error"]["message"]
    cohere_shaped = post(gateway, "/cohere/v2/rerank", {"model": "sim-llama-3-8b", "query": "q", "documents": ["d"]})
    assert cohere_shaped.status_code == 400
    assert set(cohere_shaped.json()) == {"message"} and "does not support Rerank" in cohere_shaped.json()["message"]
    # Cohere's own 429, faithful in status, in each client's shape.
    limited = {"model": COHERE_MODEL, "query": "q [sim-error:429]", "documents": ["d"]}
    cohere_limited = post(gateway, "/cohere/v2/rerank", limited)
    assert cohere_limited.status_code == 429 and "per minute" in cohere_limited.json()["message"]
    openai_limited = post(gateway, "/v1/rerank", limited)
    assert openai_limited.status_code == 429
    assert openai_limited.json()["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("body, param", [
    (b'{"model": "rerank-v3.5", "query": ', None),
    ({"model": COHERE_MODEL, "documents": ["d"]}, "query"),
    ({"model": COHERE_MODEL, "query": "   ", "documents": ["d"]}, "query"),
    ({"model": COHERE_MODEL, "query": "q", "documents": []}, "documents"),
    ({"model": COHERE_MODEL, "query": "q", "documents": [42]}, "documents[0]"),
    ({"model": COHERE_MODEL, "query": "q", "documents": ["d"], "top_n": -1}, "top_n"),
    ({"model": COHERE_MODEL, "query": "q", "documents": ["d"], "rank_fields": ["x"]}, "rank_fields"),
    ({"query": "q", "documents": ["d"]}, "model"),
])
def test_bad_bodies_are_400_in_the_client_shape(gateway, body, param):
    openai_shaped = post(gateway, "/v1/rerank", body)
    assert openai_shaped.status_code == 400, openai_shaped.text
    if param is not None:
        assert openai_shaped.json()["error"]["param"] == param
    cohere_shaped = post(gateway, "/cohere/v2/rerank", body)
    assert cohere_shaped.status_code == 400, cohere_shaped.text
    assert set(cohere_shaped.json()) == {"message"}


def test_each_shape_refuses_the_other_shapes_fields(gateway):
    # Cohere's v2 has no return_documents; /v1/rerank has no max_tokens_per_doc.
    cohere_shaped = post(gateway, "/cohere/v2/rerank",
                         {"model": COHERE_MODEL, "query": "q", "documents": ["d"], "return_documents": True})
    assert cohere_shaped.status_code == 400 and "return_documents" in cohere_shaped.json()["message"]
    openai_shaped = post(gateway, "/v1/rerank",
                         {"model": COHERE_MODEL, "query": "q", "documents": ["d"], "max_tokens_per_doc": 5})
    assert openai_shaped.status_code == 400 and openai_shaped.json()["error"]["param"] == "max_tokens_per_doc"


def test_a_cohere_client_without_a_key_gets_cohere_shaped_401(gateway):
    answer = post(gateway, "/cohere/v2/rerank", {"model": COHERE_MODEL, "query": "q", "documents": ["d"]}, headers={})
    assert answer.status_code == 401
    assert set(answer.json()) == {"message"}


# MARK: - A hostile rerank server


HOSTILE_ANSWERS = {
    "index out of range": {"results": [{"index": 9, "relevance_score": 0.5}], "usage": {"total_tokens": 5}},
    "negative index": {"results": [{"index": -1, "relevance_score": 0.5}]},
    "fractional index": {"results": [{"index": 0.5, "relevance_score": 0.5}]},
    "repeated index": {"results": [{"index": 0, "relevance_score": 0.5}, {"index": 0, "relevance_score": 0.4}]},
    "huge score": {"results": [{"index": 0, "relevance_score": 1e300}]},
    "overflowing score": '{"results":[{"index":0,"relevance_score":1e999}]}',
    "score as text": {"results": [{"index": 0, "relevance_score": "high"}]},
    "no score": {"results": [{"index": 0}]},
    "no results": {"id": "x", "usage": {"total_tokens": 3}},
    "results not a list": {"results": {"index": 0, "relevance_score": 0.5}},
    "not JSON": "<html>oops</html>",
    "more results than documents": {"results": [{"index": i, "relevance_score": 0.1} for i in range(3)]},
}


@pytest.fixture(scope="module")
def hostile():
    """Envoy with one `openai`-schema rerank backend and one `cohere` backend, both the same scripted
    upstream."""
    upstream = HostileUpstream(max_stall=5.0).start()
    backends = {"vllm": {"backend": "hostile-vllm", "schema": "openai"},
                "cohere": {"backend": "hostile-cohere", "schema": "cohere", "credential": {"value": "co-key"}}}
    config = {"api_keys": [{"name": "hostile", "key": DEMO_KEY}],
              "models": [{"id": f"{name}-rerank", "owned_by": name, "route": name} for name in backends]}
    port = free_port()
    bootstrap = gateway_bootstrap(
        gateway_port=port, admin_port=free_port(), upstream_port=upstream.port, filter_config=config,
        routes=[header_route(name, name, timeout="5s") for name in backends],
        clusters=[static_cluster(name, upstream.port, backend) for name, backend in backends.items()])
    envoy = Envoy(bootstrap, concurrency=1).start().wait_ready()
    try:
        yield upstream, envoy, f"http://127.0.0.1:{port}"
    finally:
        envoy.stop()
        upstream.stop()


def scripted(body) -> Script:
    data = (body if isinstance(body, str) else json.dumps(body)).encode()
    return Script().send(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                         + str(len(data)).encode() + b"\r\nconnection: close\r\n\r\n" + data).close()


@pytest.mark.parametrize("case", list(HOSTILE_ANSWERS))
@pytest.mark.parametrize("backend", ["vllm", "cohere"])
def test_hostile_rerank_answers_are_a_502_in_the_client_shape(hostile, case, backend):
    upstream, envoy, base = hostile
    request = {"model": f"{backend}-rerank", "query": "q", "documents": ["a", "b"]}
    for path in ("/v1/rerank", "/cohere/v2/rerank"):
        upstream.respond(scripted(HOSTILE_ANSWERS[case]))
        answer = requests.post(base + path, json=request, headers=HEADERS, timeout=10)
        assert answer.status_code == 502, (case, path, answer.text)
        body = answer.json()
        if path == "/v1/rerank":
            assert body["error"]["code"] == "bad_upstream_response", body
        else:
            assert set(body) == {"message"} and "upstream rerank answer" in body["message"], body
        # What went upstream: the backend's own path and shape, with its credential.
        sent = upstream.last_request()
        assert sent["path"] == ("/v2/rerank" if backend == "cohere" else "/v1/rerank")
        assert json.loads(sent["body"]) == {"model": f"{backend}-rerank", "query": "q", "documents": ["a", "b"]}
        assert sent["headers"].get("authorization") == ("Bearer co-key" if backend == "cohere" else None)
    assert envoy.process.poll() is None
    # A sane answer right after works.
    upstream.respond(scripted({"results": [{"index": 1, "relevance_score": 0.9}], "usage": {"total_tokens": 4}}))
    answer = requests.post(base + "/v1/rerank", json=request, headers=HEADERS, timeout=10)
    assert answer.status_code == 200 and answer.json()["results"] == [
        {"index": 1, "relevance_score": 0.9, "document": {"text": "b"}}]


# MARK: - The simulators themselves


@pytest.fixture(scope="module")
def sims():
    with Simulators(pace_ms=1, vllm_pool=0) as s:
        yield s


def test_cohere_sim_checks_its_bearer_key_and_answers_in_cohere_shape(sims):
    url = sims.url("cohere") + "/v2/rerank"
    body = {"model": "rerank-v3.5", "query": QUERY, "documents": DOCUMENTS, "top_n": 2}
    assert requests.post(url, json=body, timeout=10).status_code == 401
    wrong = requests.post(url, json=body, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401 and wrong.json()["message"] == "invalid api token"
    good = requests.post(url, json=body, headers={"Authorization": f"Bearer {COHERE_KEY}"}, timeout=10)
    assert good.status_code == 200
    answer = good.json()
    assert [(r["index"], r["relevance_score"]) for r in answer["results"]] == expected_ranking(QUERY, DOCUMENTS)[:2]
    assert answer["meta"] == {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}
    auth = {"Authorization": f"Bearer {COHERE_KEY}"}
    unknown = requests.post(url, json={**body, "model": "rerank-v9"}, headers=auth, timeout=10)
    assert unknown.status_code == 404 and "not found" in unknown.json()["message"]
    # Cohere's v2 takes strings and its own members only: a translation that sends more fails here.
    extra = requests.post(url, json={**body, "return_documents": True}, headers=auth, timeout=10)
    assert extra.status_code == 400 and "return_documents" in extra.json()["message"]
    empty = requests.post(url, json={**body, "documents": []}, headers=auth, timeout=10)
    assert empty.status_code == 400


def test_compat_sim_serves_vllm_rerank_for_its_reranker(sims):
    url = sims.url("compat") + "/v1/rerank"
    answer = requests.post(url, json={"model": COMPAT_RERANK_MODEL, "query": QUERY, "documents": DOCUMENTS}, timeout=10)
    assert answer.status_code == 200
    body = answer.json()
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == expected_ranking(QUERY, DOCUMENTS)
    assert [r["document"]["text"] for r in body["results"]] == [DOCUMENTS[i] for i, _ in expected_ranking(QUERY, DOCUMENTS)]
    assert body["usage"]["total_tokens"] == vllm_tokens(QUERY, DOCUMENTS)
    # top_n cuts; 0 is "all" to vLLM.
    for top_n, count in ((1, 1), (0, len(DOCUMENTS))):
        top = requests.post(url, json={"model": COMPAT_RERANK_MODEL, "query": QUERY, "documents": DOCUMENTS, "top_n": top_n},
                            timeout=10)
        assert len(top.json()["results"]) == count
    # A generative model has no rerank, as vLLM says.
    generative = requests.post(url, json={"model": "sim-llama-3-8b", "query": "q", "documents": ["d"]}, timeout=10)
    assert generative.status_code == 400 and "does not support Rerank" in generative.json()["error"]["message"]
    # OpenAI itself has no rerank.
    assert requests.post(sims.url("openai") + "/v1/rerank", json={"model": "gpt-4o-mini"},
                         headers={"Authorization": "Bearer sk-sim-openai"}, timeout=10).status_code == 404
