"""Nothing a client sends can crash Envoy: seeded random and mutated bodies, odd headers and
abrupt disconnects against every backend of the default gateway; every answer is a clean HTTP
response, and Envoy is alive at the end."""
import json
import random
import socket

import pytest
import requests

from default_gateway import DEMO_KEY, DefaultGateway

MODELS = ["gpt-4o-mini", "azure-gpt-4o-mini", "claude-sonnet-4-6", "bedrock-claude-haiku", "gemini-2.5-flash",
          "vertex-gemini-2.5-flash", "sim-llama-3-8b", "gemini-embedding-001"]
SEED_BODY = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "s"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
    ],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}],
    "max_tokens": 16,
    "stream": False,
}


def mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        if choice < 0.3 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice < 0.5 and data:
            del data[rng.randrange(len(data)) :]
        elif choice < 0.7:
            position = rng.randrange(len(data) + 1)
            data[position:position] = bytes(rng.choice([b"{", b"}", b"[", b"]", b'"', b",", b":", b"null", b"\\u", b"\xff", b"9e999"]))
        else:
            position = rng.randrange(len(data) + 1)
            data[position:position] = data[rng.randrange(len(data) + 1) :][:20]
    return bytes(data)


def structural_variants(rng: random.Random, model: str) -> dict:
    body = json.loads(json.dumps(SEED_BODY))
    body["model"] = model
    mutations = [
        lambda b: b.update(messages="not a list"),
        lambda b: b.update(messages=[{"role": "user", "content": 7}]),
        lambda b: b["messages"].append({"role": "wizard", "content": "x"}),
        lambda b: b.update(temperature="hot"),
        lambda b: b.update(max_tokens=-5),
        lambda b: b.update(stream=rng.choice([True, "yes", None])),
        lambda b: b.update(tools=[{"type": "function", "function": {}}]),
        lambda b: b["messages"][2]["tool_calls"][0]["function"].update(arguments="not json"),
        lambda b: b.update(n=3),
        lambda b: b.update(input=["a", 1, None]),
        lambda b: b.update(response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
        lambda b: b.update(messages=[]),
    ]
    rng.choice(mutations)(body)
    return body


@pytest.fixture(scope="module")
def gateway():
    with DefaultGateway() as gw:
        yield gw


def test_random_and_mutated_bodies_never_crash_envoy(gateway):
    rng = random.Random(20261127)
    session = requests.Session()
    statuses = {}
    for i in range(400):
        model = rng.choice(MODELS)
        path = rng.choice(["/v1/chat/completions", "/v1/messages", "/v1/embeddings", "/v1/completions"])
        if i % 2:
            body = json.dumps(structural_variants(rng, model)).encode()
        else:
            seed = dict(SEED_BODY, model=model)
            body = mutate(rng, json.dumps(seed).encode())
        headers = {"Authorization": f"Bearer {DEMO_KEY}", "content-type": "application/json"}
        if rng.random() < 0.1:
            headers["x-api-key"] = "".join(chr(rng.randrange(32, 127)) for _ in range(rng.randrange(0, 80)))
        r = session.post(gateway.base + path, data=body, headers=headers, timeout=30)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert 200 <= r.status_code < 600
        if r.status_code >= 400:
            # Every error is JSON in one of the two client shapes.
            payload = r.json()
            assert "error" in payload, payload
    assert gateway.envoy.process.poll() is None
    assert sum(v for k, v in statuses.items() if 400 <= k < 500) > 0


def test_abrupt_disconnects_mid_body_and_mid_stream(gateway):
    host, port = gateway.base.removeprefix("http://").split(":")
    for cut in [10, 200]:
        with socket.create_connection((host, int(port))) as s:
            body = json.dumps(dict(SEED_BODY, stream=True)).encode()
            s.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + DEMO_KEY.encode()
                + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:cut]
            )
    # A stream the client walks away from after the first bytes.
    with requests.post(
        gateway.base + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {DEMO_KEY}"},
        json={"model": "bedrock-claude-haiku", "stream": True, "messages": [{"role": "user", "content": "a b c d e f g h"}]},
        stream=True,
        timeout=30,
    ) as r:
        next(r.iter_content(16))
    r = requests.get(gateway.base + "/v1/models", headers={"Authorization": f"Bearer {DEMO_KEY}"})
    assert r.status_code == 200
    assert gateway.envoy.process.poll() is None
