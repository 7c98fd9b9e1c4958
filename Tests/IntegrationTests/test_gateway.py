"""The sluice filter inside the real Envoy 1.40: models, client keys, forwarding, stats."""
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness import EchoUpstream, Envoy, free_port, gateway_bootstrap

DEMO_KEY = "sk-sluice-demo"
CONFIG = {
    "api_keys": [
        {"name": "demo", "key": DEMO_KEY},
        {"name": "retired", "key": "sk-retired", "revoked": True},
        {"name": "old", "key": "sk-expired", "expires_at": 1000000000},
        {"name": "limited", "key": "sk-limited", "team": "research", "models": ["gpt-4o-*"]},
    ],
    "models": [
        {"id": "gpt-4o-mini", "owned_by": "openai", "created": 1721172741, "route": "echo"},
        {"id": "claude-sonnet-4-5", "owned_by": "anthropic", "route": "echo"},
    ],
    "max_request_bytes": 4 * 1024 * 1024,
}


@pytest.fixture(scope="module", params=[2, 4], ids=["concurrency2", "concurrency4"])
def gateway(request):
    with EchoUpstream() as upstream:
        port = free_port()
        bootstrap = gateway_bootstrap(
            gateway_port=port, admin_port=free_port(), upstream_port=upstream.port, filter_config=CONFIG
        )
        with Envoy(bootstrap, concurrency=request.param) as envoy:
            envoy.base = f"http://127.0.0.1:{port}"
            yield envoy


def test_module_loaded_with_matching_abi(gateway):
    assert "Dynamic module ABI version v0.2.0 matched" in gateway.logs()
    assert "sluice: filter config loaded: 4 client keys, 2 models, 0 routing rules" in gateway.logs()


def test_models_listed_for_demo_key(gateway):
    r = requests.get(f"{gateway.base}/v1/models", headers={"Authorization": f"Bearer {DEMO_KEY}"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["gpt-4o-mini", "claude-sonnet-4-5"]
    assert body["data"][0] == {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "openai"}


def test_models_with_x_api_key(gateway):
    r = requests.get(f"{gateway.base}/v1/models", headers={"x-api-key": DEMO_KEY})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "headers,code",
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer sk-wrong"}, "invalid_api_key"),
        ({"Authorization": "Basic c2stc2x1aWNlLWRlbW8="}, "missing_api_key"),
        ({"Authorization": "Bearer sk-retired"}, "api_key_revoked"),
        ({"Authorization": "Bearer sk-expired"}, "api_key_expired"),
    ],
)
def test_unauthorised_gets_openai_401(gateway, headers, code):
    r = requests.get(f"{gateway.base}/v1/models", headers=headers)
    assert r.status_code == 401
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code
    assert body["error"]["type"] == "invalid_request_error"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_model_outside_the_keys_allowance_gets_403(gateway):
    ok = requests.post(f"{gateway.base}/v1/chat/completions", headers={"Authorization": "Bearer sk-limited"},
                       json={"model": "gpt-4o-mini", "messages": []})
    assert ok.status_code == 200
    assert ok.json()["headers"].get("authorization") is None
    refused = requests.post(f"{gateway.base}/v1/chat/completions", headers={"Authorization": "Bearer sk-limited"},
                            json={"model": "claude-sonnet-4-5", "messages": []})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "model_not_allowed"
    anthropic_shape = requests.post(f"{gateway.base}/v1/messages", headers={"x-api-key": "sk-limited"},
                                    json={"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": []})
    assert anthropic_shape.status_code == 403
    assert anthropic_shape.json()["error"]["type"] == "permission_error"


def test_anthropic_path_gets_anthropic_error_shape(gateway):
    r = requests.post(f"{gateway.base}/v1/messages", headers={"x-api-key": "nope"}, json={})
    assert r.status_code == 401
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "authentication_error"


def test_authorised_request_passes_without_client_credentials(gateway):
    payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    r = requests.post(
        f"{gateway.base}/v1/chat/completions",
        headers={"Authorization": f"Bearer {DEMO_KEY}", "x-api-key": DEMO_KEY, "x-trace": "t1"},
        json=payload,
    )
    assert r.status_code == 200
    seen = r.json()
    assert seen["path"] == "/v1/chat/completions"
    assert json.loads(seen["body"]) == payload
    assert seen["headers"]["x-trace"] == "t1"
    assert seen["headers"]["x-sluice-route"] == "echo"
    assert "authorization" not in seen["headers"]
    assert "x-api-key" not in seen["headers"]


def test_large_body_is_read_for_routing_and_passes_through_unchanged(gateway):
    # Several MB arrive in many body callbacks: buffered + received must add up to the body.
    body = b'{"input":"' + b"x" * (3 * 1024 * 1024) + b'","model":"gpt-4o-mini"}'
    r = requests.post(
        f"{gateway.base}/v1/embeddings",
        headers={"Authorization": f"Bearer {DEMO_KEY}", "content-type": "application/json"},
        data=body,
    )
    assert r.status_code == 200
    assert r.json()["body"].encode() == body


def test_body_over_the_limit_gets_413_in_openai_shape(gateway):
    body = b'{"model":"gpt-4o-mini","input":"' + b"x" * (5 * 1024 * 1024) + b'"}'
    r = requests.post(
        f"{gateway.base}/v1/embeddings", headers={"Authorization": f"Bearer {DEMO_KEY}"}, data=body
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


def chunked(parts):
    yield from parts


def test_chunked_body_without_content_length_is_routed(gateway):
    parts = [b'{"messages":[{"role":"user","content":"', b"y" * 70000, b'"}],', b'"model":"claude-sonnet-4-5"}']
    r = requests.post(
        f"{gateway.base}/v1/chat/completions",
        headers={"Authorization": f"Bearer {DEMO_KEY}", "content-type": "application/json"},
        data=chunked(parts),
    )
    assert r.status_code == 200, r.text
    assert r.json()["body"].encode() == b"".join(parts)


@pytest.mark.parametrize(
    "body,status,code",
    [
        (b'{"model":"no-such-model"}', 404, "model_not_found"),
        (b'{"messages":[]}', 400, "missing_model"),
        (b'{"model":"gpt-4o-mini"', 400, "invalid_json"),
        (b'{"model":"gpt-4o-mini","model":"claude-sonnet-4-5"}', 400, "invalid_json"),
        (b"", 400, "missing_body"),
    ],
)
def test_bad_llm_requests_get_openai_errors(gateway, body, status, code):
    r = requests.post(
        f"{gateway.base}/v1/chat/completions", headers={"Authorization": f"Bearer {DEMO_KEY}"}, data=body
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_concurrent_requests_across_workers_and_stats(gateway):
    before = gateway.flushed_stats()
    counts = {"ok": 0, "models": 0, "unauthorized": 0}
    lock = threading.Lock()

    def worker(index: int) -> None:
        session = requests.Session()
        for i in range(60):
            kind = (index + i) % 3
            if kind == 0:
                r = session.post(
                    f"{gateway.base}/v1/chat/completions",
                    headers={"Authorization": f"Bearer {DEMO_KEY}"},
                    json={"model": "gpt-4o-mini", "n": i},
                )
                assert r.status_code == 200 and json.loads(r.json()["body"]) == {"model": "gpt-4o-mini", "n": i}
                key = "ok"
            elif kind == 1:
                r = session.get(f"{gateway.base}/v1/models", headers={"x-api-key": DEMO_KEY})
                assert r.status_code == 200 and len(r.json()["data"]) == 2
                key = "models"
            else:
                r = session.get(f"{gateway.base}/v1/models", headers={"Authorization": f"Bearer bad-{i}"})
                assert r.status_code == 401
                key = "unauthorized"
            with lock:
                counts[key] += 1

    with ThreadPoolExecutor(max_workers=16) as pool:
        for future in [pool.submit(worker, n) for n in range(16)]:
            future.result()

    after = gateway.flushed_stats()

    def delta(name: str) -> int:
        return after.get(name, 0) - before.get(name, 0)

    assert delta("sluice.requests_total.outcome.routed") == counts["ok"]
    assert delta("sluice.requests_total.outcome.models_listed") == counts["models"]
    assert delta("sluice.requests_total.outcome.unauthorized") == counts["unauthorized"]
    assert gateway.process.poll() is None  # Envoy alive


def test_prometheus_exposes_module_counter_with_label(gateway):
    requests.get(f"{gateway.base}/v1/models", headers={"x-api-key": DEMO_KEY})
    gateway.flushed_stats()
    text = gateway.prometheus()
    assert any(
        line.startswith('envoy_sluice_requests_total{outcome="models_listed"}') for line in text.splitlines()
    ), text[:2000]
