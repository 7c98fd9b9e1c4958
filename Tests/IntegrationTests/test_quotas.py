"""Quotas through the real Envoy: requests/minute and dollar budgets per key, 429 in the client's
shape with Retry-After and OpenAI's x-ratelimit-* headers, recovery as the window refills, and
concurrent clients never overspending by more than the in-flight estimates."""
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness import EchoUpstream, Envoy, free_port, gateway_bootstrap

CONFIG = {
    "api_keys": [
        {"name": "metered", "key": "sk-metered", "limits": {"requests_per_minute": 120}},
        {"name": "budgeted", "key": "sk-budgeted", "limits": {"budget_usd_per_day": 0.001}},
        {"name": "team-member", "key": "sk-team", "team": "research"},
    ],
    "team_limits": {"research": {"requests_per_minute": 60}},
    "models": [{"id": "gpt-4o-mini", "route": "echo"}],
    "prices": {"gpt-4o-mini": {"input": 1000.0, "output": 1000.0}},
    "default_output_tokens_estimate": 0,
}


@pytest.fixture(scope="module")
def gateway():
    with EchoUpstream() as echo:
        port = free_port()
        bootstrap = gateway_bootstrap(gateway_port=port, admin_port=free_port(), upstream_port=echo.port, filter_config=CONFIG)
        with Envoy(bootstrap, concurrency=2) as envoy:
            envoy.base = f"http://127.0.0.1:{port}"
            yield envoy


def chat(session, gateway, key, path="/v1/chat/completions"):
    return session.post(gateway.base + path, headers={"Authorization": f"Bearer {key}"},
                        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})


def burst(gateway, key, count, workers=16):
    """`count` requests from `workers` concurrent connections; their statuses."""
    def one(_):
        with requests.Session() as session:
            return chat(session, gateway, key).status_code

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(count)))


def test_requests_per_minute_429_headers_and_recovery(gateway):
    session = requests.Session()
    first = chat(session, gateway, "sk-metered")
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "120"
    assert int(first.headers["x-ratelimit-remaining-requests"]) == 119
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    started = time.monotonic()
    statuses = burst(gateway, "sk-metered", 200)
    elapsed = time.monotonic() - started
    # The bucket refills continuously (2 requests a second at 120/min), as OpenAI's does.
    assert statuses.count(200) <= 119 + int(elapsed * 2) + 1 and 429 in statuses
    refused = chat(session, gateway, "sk-metered")
    assert refused.status_code == 429
    body = refused.json()["error"]
    assert body["code"] == "rate_limit_exceeded" and body["type"] == "requests"
    assert int(refused.headers["retry-after"]) >= 1
    # What a 429 reports is what admission saw: no room for one more request.
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    # The bucket refills at 2 requests/second.
    time.sleep(1.1)
    assert chat(session, gateway, "sk-metered").status_code == 200


def test_team_limit_applies_to_its_keys(gateway):
    session = requests.Session()
    started = time.monotonic()
    statuses = burst(gateway, "sk-team", 120)
    elapsed = time.monotonic() - started
    assert 60 <= statuses.count(200) <= 60 + int(elapsed) + 1 and 429 in statuses


def test_dollar_budget_is_charged_actual_cost_and_then_refuses():
    """Against the simulators (which report usage): the cost of each answer is charged to the
    key's daily budget; once it is spent, 429 insufficient_quota."""
    from default_gateway import DefaultGateway

    def adjust(config):
        config["api_keys"].append({"name": "budgeted", "key": "sk-budgeted", "limits": {"budget_usd_per_day": 0.05}})
        # $1000 per 1M tokens = $0.001 a token: a short chat costs about a cent.
        config["prices"] = {"gpt-4o-mini": {"input": 1000.0, "output": 1000.0}}
        config["default_output_tokens_estimate"] = 16

    with DefaultGateway(adjust_config=adjust) as gw:
        session = requests.Session()
        statuses, spent = [], 0.0
        for _ in range(20):
            r = session.post(gw.base + "/v1/chat/completions", headers={"Authorization": "Bearer sk-budgeted"},
                             json={"model": "gpt-4o-mini", "max_tokens": 8, "messages": [{"role": "user", "content": "one two"}]})
            statuses.append(r.status_code)
            if r.status_code == 200:
                spent += (r.json()["usage"]["total_tokens"]) * 0.001
            else:
                break
        assert statuses[-1] == 429 and 200 in statuses
        assert r.json()["error"]["type"] == "insufficient_quota" and r.json()["error"]["code"] == "budget_exceeded"
        # Never more than one request's estimate beyond the budget.
        assert spent <= 0.05 + (16 + 20) * 0.001



def test_concurrent_clients_never_overspend_beyond_in_flight_estimates():
    """32 connections race one key's daily budget through both Envoy workers. Admission reserves
    each request's estimate before it goes upstream, so what the answers report having cost may
    exceed the budget by at most the estimates of the requests in flight at once."""
    from default_gateway import DefaultGateway

    budget, price_per_token, max_tokens, workers = 2.0, 0.001, 8, 32

    def adjust(config):
        config["api_keys"].append({"name": "racer", "key": "sk-racer", "limits": {"budget_usd_per_day": budget}})
        config["prices"]["gpt-4o-mini"] = {"input": price_per_token * 1e6, "output": price_per_token * 1e6}

    body = {"model": "gpt-4o-mini", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "one two three"}]}
    wire = json.dumps(body).encode()  # what `requests` sends for json=
    # The gateway's estimate: a token per 4 body bytes, plus max_tokens of output.
    estimate = ((len(wire) + 3) // 4 + max_tokens) * price_per_token

    with DefaultGateway(adjust_config=adjust, concurrency=2) as gw:
        def one(_):
            with requests.Session() as session:
                r = session.post(gw.base + "/v1/chat/completions", data=wire, timeout=30,
                                 headers={"Authorization": "Bearer sk-racer", "content-type": "application/json"})
                if r.status_code == 200:
                    return 200, r.json()["usage"]["total_tokens"] * price_per_token
                return r.status_code, 0.0

        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, range(600)))
        statuses = [status for status, _ in results]
        spent = sum(cost for _, cost in results)
        assert set(statuses) <= {200, 429}, sorted(set(statuses))
        assert statuses.count(200) >= 20 and 429 in statuses
        assert spent <= budget + workers * estimate, (spent, budget, workers * estimate)
        # The answers' own usage is what was charged: the next request is refused for budget.
        r = requests.post(gw.base + "/v1/chat/completions", data=wire, timeout=10,
                          headers={"Authorization": "Bearer sk-racer", "content-type": "application/json"})
        assert r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded"


def test_a_listener_update_keeps_spent_quota():
    """Envoy builds a new filter config when a listener is updated (here through file-based LDS,
    as the daemon's xDS will): the counters carry over, so an update is no way to a fresh quota."""
    import os
    import tempfile
    from types import SimpleNamespace

    with EchoUpstream() as echo:
        port, admin = free_port(), free_port()
        config = {"api_keys": [{"name": "lds-key", "key": "sk-lds", "limits": {"requests_per_minute": 3}}],
                  "models": [{"id": "gpt-4o-mini", "route": "echo"}]}
        static = gateway_bootstrap(gateway_port=port, admin_port=admin, upstream_port=echo.port, filter_config=config)
        listener = static["static_resources"].pop("listeners")[0]
        directory = tempfile.mkdtemp(prefix="sluice-lds-")
        lds_path = os.path.join(directory, "lds.json")

        def publish(version: str, listener: dict) -> None:
            # Envoy watches the directory for a moved-in file; write beside it, then rename.
            staging = os.path.join(directory, "lds.tmp")
            with open(staging, "w") as f:
                json.dump({"version_info": version, "resources": [
                    {"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", **listener}]}, f)
            os.rename(staging, lds_path)

        publish("1", listener)
        static["dynamic_resources"] = {"lds_config": {"resource_api_version": "V3", "path_config_source": {
            "path": lds_path, "watched_directory": {"path": directory}}}}
        with Envoy(static, concurrency=2) as envoy:
            gw = SimpleNamespace(base=f"http://127.0.0.1:{port}")
            deadline = time.time() + 10
            while True:  # the listener comes up once LDS has been read
                try:
                    first = chat(requests.Session(), gw, "sk-lds")
                    break
                except requests.ConnectionError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.1)
            statuses = [first.status_code] + [chat(requests.Session(), gw, "sk-lds").status_code for _ in range(3)]
            assert statuses == [200, 200, 200, 429]

            # A changed listener (its stats prefix): Envoy builds a new filter config and drains the old.
            listener["filter_chains"][0]["filters"][0]["typed_config"]["stat_prefix"] = "gateway_v2"
            publish("2", listener)
            deadline = time.time() + 10
            while time.time() < deadline and envoy.stats().get("listener_manager.listener_modified", 0) < 1:
                time.sleep(0.1)
            assert envoy.stats().get("listener_manager.listener_modified", 0) >= 1, envoy.logs()[-2000:]
            # Until the new listener has warmed, the old one may still answer: both must refuse,
            # and eventually the new config must be the one answering.
            deadline = time.time() + 10
            while True:
                after = chat(requests.Session(), gw, "sk-lds")
                assert after.status_code == 429, after.text
                assert after.headers["x-ratelimit-remaining-requests"] == "0"
                if envoy.stats().get("http.gateway_v2.downstream_rq_total", 0) >= 1:
                    break
                assert time.time() < deadline, "the updated listener never served a request"
                time.sleep(0.1)


def test_anthropic_clients_get_anthropic_shaped_429(gateway):
    session = requests.Session()
    # On its own (another test of this module may not have spent the key first): 120 a minute,
    # refilled at 2 a second, so a few hundred quick requests reach the limit on any machine.
    for _ in range(400):
        r = session.post(gateway.base + "/v1/messages", headers={"x-api-key": "sk-metered"},
                         json={"model": "gpt-4o-mini", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]})
        if r.status_code == 429:
            break
    assert r.status_code == 429
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "rate_limit_error"


def test_quota_rejections_are_counted(gateway):
    stats = gateway.flushed_stats()
    assert any(name.startswith("sluice.quota_rejections_total") for name in stats), sorted(stats)[:20]
