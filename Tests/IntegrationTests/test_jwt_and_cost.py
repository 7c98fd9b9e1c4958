"""JWT identity through Envoy's own jwt_authn filter, the opt-in cost header, and rate-limit
headers on the gateway's own answers: the shipped default bootstrap with the simulators, plus a
jwt_authn filter (HS256, local JWKS) in front of the sluice filter."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import openai
import pytest
import requests

from default_gateway import DEMO_KEY, DefaultGateway, gateway_http_filters

SECRET = b"sluice-test-hs256-secret-of-32-bytes!!"
ISSUER = "https://idp.sluice.test"
PAYLOAD_HEADER = "x-sluice-jwt-payload"
PRICE_IN, PRICE_OUT = 0.15, 0.6  # gpt-4o-mini in envoy.yaml, USD per 1M tokens


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(claims: dict, secret: bytes = SECRET) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"iss": ISSUER, "aud": "sluice", "exp": int(time.time()) + 600, **claims}).encode())
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64url(signature)}"


def add_jwt_authn(bootstrap: dict) -> None:
    jwks = {"keys": [{"kty": "oct", "alg": "HS256", "k": b64url(SECRET)}]}
    jwt_authn = {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {
                "idp": {
                    "issuer": ISSUER,
                    "audiences": ["sluice"],
                    "local_jwks": {"inline_string": json.dumps(jwks)},
                    "forward": False,
                    "forward_payload_header": PAYLOAD_HEADER,
                    "payload_in_metadata": "jwt_payload",
                }
            },
            # Sluice keys also travel as `Authorization: Bearer`, where jwt_authn looks for tokens:
            # let what does not verify through, and the sluice filter (which trusts only a payload
            # jwt_authn verified) checks it as an API key instead.
            "rules": [{"match": {"prefix": "/"}, "requires": {"allow_missing_or_failed": {}}}],
        },
    }
    gateway_http_filters(bootstrap).insert(0, jwt_authn)


def configure(config: dict) -> None:
    config["response_cost_header"] = "x-sluice-cost-usd"
    config["jwt"] = {
        "payload_header": PAYLOAD_HEADER, "payload_metadata_key": "jwt_payload", "team_claim": "team",
        "models_claim": "models", "limits": {"requests_per_minute": 3},
    }


@pytest.fixture(scope="module")
def gw():
    with DefaultGateway(adjust_config=configure, adjust_bootstrap=add_jwt_authn) as gateway:
        yield gateway


def chat(gw, headers: dict, model: str = "gpt-4o-mini", **extra):
    return requests.post(gw.base + "/v1/chat/completions", headers=headers, timeout=10,
                         json={"model": model, "messages": [{"role": "user", "content": "Say hi"}], **extra})


# MARK: - JWT


def test_verified_token_names_the_consumer_and_never_reaches_the_provider(gw):
    r = chat(gw, {"Authorization": f"Bearer {token({'sub': 'alice', 'team': 'research'})}"})
    assert r.status_code == 200, r.text
    received = gw.sims.last("openai")
    lowered = {name.lower(): value for name, value in received["headers"].items()}
    assert PAYLOAD_HEADER not in lowered
    assert "alice" not in json.dumps(lowered)  # neither the token nor its payload went upstream
    # The consumer label of the GenAI metrics is the subject.
    text = gw.envoy.prometheus()
    assert 'consumer="jwt:alice"' in text
    # Rate-limit headers are the subject's own (3 a minute, one used).
    assert r.headers["x-ratelimit-limit-requests"] == "3"
    assert r.headers["x-ratelimit-remaining-requests"] == "2"


def test_models_claim_limits_the_subject(gw):
    r = chat(gw, {"Authorization": f"Bearer {token({'sub': 'dave', 'models': ['gpt-*']})}"}, model="claude-sonnet-4-6")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "model_not_allowed"


def test_each_subject_has_its_own_request_limit(gw):
    erin = {"Authorization": f"Bearer {token({'sub': 'erin'})}"}
    statuses = [chat(gw, erin).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    frank = {"Authorization": f"Bearer {token({'sub': 'frank'})}"}
    assert chat(gw, frank).status_code == 200


def test_bad_signature_is_refused(gw):
    r = chat(gw, {"Authorization": f"Bearer {token({'sub': 'mallory'}, secret=b'wrong-secret-wrong-secret-wrong!!')}"})
    # jwt_authn let it through unverified (no payload metadata), so it was checked as a key.
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    # Expired beyond jwt_authn's default clock skew (60 s).
    expired = token({"sub": "mallory", "exp": int(time.time()) - 600})
    assert chat(gw, {"Authorization": f"Bearer {expired}"}).status_code == 401


def test_forged_payload_header_is_ignored(gw):
    forged = b64url(json.dumps({"sub": "forger", "team": "admins"}).encode())
    # No token: the forged header proves nothing and there is no key either.
    r = chat(gw, {PAYLOAD_HEADER: forged})
    assert r.status_code == 401
    # With the demo key the key decides, and the forged header does not go upstream.
    r = chat(gw, {"Authorization": f"Bearer {DEMO_KEY}", PAYLOAD_HEADER: forged})
    assert r.status_code == 200
    lowered = {name.lower() for name in gw.sims.last("openai")["headers"]}
    assert PAYLOAD_HEADER not in lowered
    # A genuine token plus a forged copy: the verified payload wins.
    r = chat(gw, {"Authorization": f"Bearer {token({'sub': 'grace'})}", PAYLOAD_HEADER: forged})
    assert r.status_code == 200
    assert 'consumer="jwt:grace"' in gw.envoy.prometheus()
    assert 'consumer="jwt:forger"' not in gw.envoy.prometheus()


# MARK: - Cost header


def test_unstreamed_response_carries_its_cost(gw):
    r = chat(gw, {"Authorization": f"Bearer {DEMO_KEY}"})
    assert r.status_code == 200
    usage = r.json()["usage"]
    expected = (usage["prompt_tokens"] * PRICE_IN + usage["completion_tokens"] * PRICE_OUT) / 1e6
    assert abs(float(r.headers["x-sluice-cost-usd"]) - expected) < 1e-6
    assert int(r.headers["content-length"]) == len(r.content)


def test_translated_response_carries_its_cost(gw):
    r = chat(gw, {"Authorization": f"Bearer {DEMO_KEY}"}, model="claude-sonnet-4-6", max_tokens=16)
    assert r.status_code == 200
    usage = r.json()["usage"]
    expected = (usage["prompt_tokens"] * 3.0 + usage["completion_tokens"] * 15.0) / 1e6
    assert abs(float(r.headers["x-sluice-cost-usd"]) - expected) < 1e-6


def test_stream_ends_with_the_cost_as_an_sse_comment_the_sdk_ignores(gw):
    r = chat(gw, {"Authorization": f"Bearer {DEMO_KEY}"}, stream=True, stream_options={"include_usage": True})
    assert r.status_code == 200
    text = r.text
    assert "x-sluice-cost-usd" not in r.headers
    last = text.rstrip("\n").splitlines()[-1]
    assert last.startswith(": x-sluice-cost-usd="), text[-300:]
    usage = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")][-1]["usage"]
    expected = (usage["prompt_tokens"] * PRICE_IN + usage["completion_tokens"] * PRICE_OUT) / 1e6
    assert abs(float(last.split("=", 1)[1]) - expected) < 1e-6
    # The official SDK reads the same stream without tripping over the comment.
    client = openai.OpenAI(base_url=gw.base + "/v1", api_key=DEMO_KEY)
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hi"}], stream=True))
    assert chunks and chunks[-1].choices[0].finish_reason == "stop"


# MARK: - Rate-limit headers on local answers


def test_model_list_and_rejections_carry_rate_limit_headers(gw):
    r = requests.get(gw.base + "/v1/models", headers={"Authorization": f"Bearer {DEMO_KEY}"}, timeout=5)
    assert r.status_code == 200
    assert r.headers["x-ratelimit-limit-requests"] == "600"
    assert int(r.headers["x-ratelimit-remaining-requests"]) <= 600
    r = chat(gw, {"Authorization": f"Bearer {DEMO_KEY}"}, model="no-such-model")
    assert r.status_code == 404
    assert r.headers["x-ratelimit-limit-requests"] == "600"
