"""The endpoint picker scored on live metrics, through the real Envoy 1.40: the shipped default
gateway (envoy-module/envoy.yaml, `sluiced render` of sluice.yaml, whose `vllm_pool` says
`lb: endpoint_picker`) with its four vLLM-like replicas. The module's background worker scrapes
each replica's `/metrics` through the `sluice_endpoint_metrics` cluster and publishes snapshots;
the picker scores them.

- requests sharing a long system prompt stay on the replica that holds it (round robin and
  least-request would spread them);
- a replica saturated by load Envoy does not see (sent to it directly) is avoided;
- metrics that fail (error status, hung scrapes) fall back to least-request with every request
  answered, and scoring resumes when the pages come back;
- requests naming one session (`x-session-id`, the default's `session_header`) stay on one
  replica even with prompts that share nothing, and requests without it spread;
- `/sluice/endpoints` shows figures, ages, staleness, scores and the prefix-index fill."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from default_gateway import DEMO_KEY, DefaultGateway
from sim import VLLM_MODEL

HEADERS = {"authorization": f"Bearer {DEMO_KEY}"}
# About 13 KiB: 50 prefix blocks of 256 bytes, well past the picker's hand-over of 64 blocks' worth.
HANDBOOK_A = " ".join(f"Rule {i}: answer briefly and cite section {i} of handbook A." for i in range(220))
HANDBOOK_B = " ".join(f"Policy {i}: be precise and quote clause {i} of manual B verbatim." for i in range(220))


def chat(gw: DefaultGateway, system: str, question: str, **extra) -> requests.Response:
    body = {"model": VLLM_MODEL, "max_tokens": 4,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}]}
    body.update(extra)
    return requests.post(gw.base + "/v1/chat/completions", headers=HEADERS, json=body, timeout=30)


def endpoints_page(gw: DefaultGateway) -> dict:
    r = requests.get(f"http://127.0.0.1:{gw.envoy.admin_port}/sluice/endpoints", timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def pool(page: dict) -> dict:
    pools = [p for p in page["pools"] if p["pool"] == "vllm_pool"]
    assert len(pools) == 1, page
    return pools[0]


def wait_fresh(gw: DefaultGateway, timeout: float = 10.0) -> dict:
    """The pool once every endpoint has fresh figures."""
    deadline = time.time() + timeout
    while True:
        current = pool(endpoints_page(gw))
        if all(not e["stale"] and e["metrics"] is not None for e in current["endpoints"]):
            return current
        assert time.time() < deadline, current
        time.sleep(0.05)


def picker_stat(gw: DefaultGateway, reason: str) -> int:
    return sum(v for k, v in gw.envoy.stats().items() if k.endswith("endpoint_picker_picks_" + reason) and "vllm_pool" in k) or sum(
        v for k, v in gw.envoy.stats().items() if k.endswith("endpoint_picker_picks_" + reason))


def replica(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return response.headers["x-sluice-sim-replica"]


@pytest.fixture(scope="module")
def gw():
    # Two Envoy workers, as run.sh: they share the picker's prefix index, so a prefix lives on one
    # replica whichever worker takes the connection.
    with DefaultGateway(concurrency=2, scraper=True) as gateway:
        yield gateway


def test_the_page_lists_the_pool_with_fresh_figures(gw):
    page = endpoints_page(gw)
    assert page["cluster"] == "sluice_endpoint_metrics" and page["interval_ms"] == 50
    current = wait_fresh(gw)
    addresses = [e["address"] for e in current["endpoints"]]
    assert addresses == [f"127.0.0.1:{gw.sims.ports[f'vllm-{i}']}" for i in range(4)]
    assert current["stale_after_ms"] == 2000 and current["metrics_path"] == "/metrics"
    for endpoint in current["endpoints"]:
        assert endpoint["age_ms"] < 1000, endpoint
        assert endpoint["scrapes_ok"] > 0 and endpoint["consecutive_failures"] == 0
        metrics = endpoint["metrics"]
        assert metrics["waiting"] == 0 and metrics["kv_cache_usage"] is not None
        assert metrics["lora"]["max_lora"] >= 1
        score = endpoint["score"]
        assert score["saturated"] is False and score["queue_room"] == 1
        assert score["total_without_prefix"] > 0
    # Scrapes keep coming at about 50 ms: the counts grow by several per second per endpoint.
    before = sum(e["scrapes_ok"] for e in current["endpoints"])
    time.sleep(0.5)
    after = sum(e["scrapes_ok"] for e in pool(endpoints_page(gw))["endpoints"])
    assert after - before >= 4 * 4, (before, after)
    stats = gw.envoy.stats()
    assert any(k.endswith("endpoint_scrapes_ok") and v > 0 for k, v in stats.items()), stats


def test_requests_sharing_a_long_prefix_stay_on_the_replica_that_holds_it(gw):
    wait_fresh(gw)
    scored_before = picker_stat(gw, "scored")
    first_a = replica(chat(gw, HANDBOOK_A, "question 0"))
    time.sleep(0.1)  # the finished request leaves the queue figures
    first_b = replica(chat(gw, HANDBOOK_B, "question 0"))
    seen_a, seen_b = [first_a], [first_b]
    for i in range(1, 8):
        seen_a.append(replica(chat(gw, HANDBOOK_A, f"question {i}")))
        seen_b.append(replica(chat(gw, HANDBOOK_B, f"question {i}")))
    assert set(seen_a) == {first_a}, seen_a
    assert set(seen_b) == {first_b}, seen_b
    assert picker_stat(gw, "scored") - scored_before >= 16
    # The replica reports the prefix cache hits the picker aimed for.
    usage = chat(gw, HANDBOOK_A, "one more").json()["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] >= len(HANDBOOK_A) // 4 // 2
    current = pool(endpoints_page(gw))
    assert current["prefix_index_entries"][0] > 0 and current["scored_picks"] >= 16


def test_requests_of_one_session_stay_together_and_others_spread(gw):
    wait_fresh(gw)
    before = pool(endpoints_page(gw))
    assert before["session_header"] == "x-session-id"

    def ask(i: int, session: str | None) -> str:
        # Prompts share nothing (under one prefix block), so only the session can keep them together.
        extra = {"x-session-id": session} if session else {}
        r = requests.post(gw.base + "/v1/chat/completions", timeout=30, headers={**HEADERS, **extra}, json={
            "model": VLLM_MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": f"q{i} {time.time()}"}]})
        return replica(r)

    unsessioned = [ask(i, None) for i in range(8)]
    assert len(set(unsessioned)) >= 2, unsessioned  # the tie-break spreads idle replicas
    tag = str(time.time())
    alice = [ask(i, "alice-" + tag) for i in range(8)]
    bob = [ask(i, "bob-" + tag) for i in range(8)]
    assert len(set(alice)) == 1, alice
    assert len(set(bob)) == 1, bob
    after = pool(endpoints_page(gw))
    assert max(after["session_entries"]) >= 2
    # Every pick after each session's first knew the session and stayed.
    assert after["session_picks"] - before["session_picks"] >= 14
    assert after["session_stays"] - before["session_stays"] >= 14


def test_a_replica_saturated_behind_envoys_back_is_avoided(gw):
    wait_fresh(gw)
    # Load vllm-2 directly (Envoy's active-request counts see none of it, so least-request would
    # keep choosing it): long generations fill its batch and queue.
    target = gw.sims.url("vllm-2")
    port = str(gw.sims.ports["vllm-2"])
    stop = threading.Event()

    def flood(i: int) -> None:
        while not stop.is_set():
            requests.post(target + "/v1/chat/completions", timeout=60, json={
                "model": VLLM_MODEL, "max_tokens": 400, "ignore_eos": True,
                "messages": [{"role": "user", "content": f"long story {i} {time.time()}"}]})

    # 40 at once: 8 run, 32 wait, past the default saturation threshold of 20 waiting.
    pool_threads = ThreadPoolExecutor(max_workers=40)
    for i in range(40):
        pool_threads.submit(flood, i)
    try:
        deadline = time.time() + 15
        while True:
            busy = next(e for e in pool(endpoints_page(gw))["endpoints"] if e["address"].endswith(":" + port))
            if busy["metrics"] and busy["score"]["saturated"] and not busy["stale"]:
                break
            assert time.time() < deadline, busy
            time.sleep(0.05)
        seen = [replica(chat(gw, f"fresh prompt {i} {time.time()}", "hi")) for i in range(12)]
        assert "2" not in seen, seen
    finally:
        stop.set()
        pool_threads.shutdown(wait=True)


def test_failing_metrics_fall_back_to_least_request_and_recover(gw):
    wait_fresh(gw)
    base = gw.sims.url("vllm-1")
    port = str(gw.sims.ports["vllm-1"])
    stale_before = picker_stat(gw, "least_request_stale_metrics")
    try:
        # An error status: the endpoint is stale from the next scrape on.
        assert requests.post(base + "/__sim/metrics-fault?status=500").status_code == 200
        deadline = time.time() + 5
        while True:
            endpoint = next(e for e in pool(endpoints_page(gw))["endpoints"] if e["address"].endswith(":" + port))
            if endpoint["stale"]:
                break
            assert time.time() < deadline, endpoint
            time.sleep(0.05)
        assert "answered 500" in endpoint["last_error"] and endpoint["consecutive_failures"] >= 1
        answers = [chat(gw, HANDBOOK_A, f"while stale {i}") for i in range(8)]
        assert all(r.status_code == 200 for r in answers), [r.text for r in answers if r.status_code != 200]
        assert picker_stat(gw, "least_request_stale_metrics") - stale_before >= 8
        # Least-request spreads sequential requests again (ties rotate), prefix or not.
        assert len({r.headers["x-sluice-sim-replica"] for r in answers}) >= 2

        # A hung scrape (past the 500 ms timeout) is just as stale.
        assert requests.post(base + "/__sim/metrics-fault?status=0&delay_ms=3000").status_code == 200
        deadline = time.time() + 5
        while True:
            endpoint = next(e for e in pool(endpoints_page(gw))["endpoints"] if e["address"].endswith(":" + port))
            if endpoint["stale"] and endpoint["last_error"] and "answered 500" not in endpoint["last_error"]:
                break
            assert time.time() < deadline, endpoint
            time.sleep(0.1)
        answers = [chat(gw, "plain question", f"hung {i}") for i in range(4)]
        assert all(r.status_code == 200 for r in answers)
    finally:
        requests.post(base + "/__sim/metrics-fault")
    # Pages back: scored again.
    wait_fresh(gw)
    scored_before = picker_stat(gw, "scored")
    assert chat(gw, HANDBOOK_B, "after recovery").status_code == 200
    assert picker_stat(gw, "scored") > scored_before
    stats = gw.envoy.stats()
    assert any(k.endswith("endpoint_scrapes_failed") and v > 0 for k, v in stats.items())


def test_the_run_commands_gateway_scores_the_pool_from_sluiced():
    """What `envoy-module/run.sh` runs: sluiced serving sluice.yaml over ADS (the picker cluster,
    its endpoints over EDS, the metrics cluster over CDS) and Envoy from bootstrap.yaml with
    fleet-worker.yaml merged in. The pool is scraped and `llama-3.1-8b-instruct` is picked by score."""
    import os

    from harness import free_port
    from sim import Simulators
    from sluiced import ROOT, Sluiced, demo_config, envoy_for, gateway_port_of

    with Simulators(pace_ms=0) as sims:
        config = demo_config(sims, free_port())
        base = f"http://127.0.0.1:{gateway_port_of(config)}"
        with Sluiced(config) as daemon:
            token_file = os.path.join(daemon.workdir, ".sluiced", "fleet-token")
            with open(ROOT / "envoy-module" / "fleet-worker.yaml") as f:
                fragment = f.read().replace("@FLEET_TOKEN_FILE@", token_file).replace(
                    "port_value: 18001", f"port_value: {daemon.admin_port}")
            envoy = envoy_for(daemon)
            envoy.extra_args += ["--config-yaml", fragment]
            envoy.start().wait_ready()
            try:
                admin = f"http://127.0.0.1:{envoy.admin_port}"
                deadline = time.time() + 30
                while True:
                    page = requests.get(admin + "/sluice/endpoints", timeout=5).json()
                    pools = [p for p in page["pools"] if p["pool"] == "vllm_pool"]
                    if pools and all(not e["stale"] for e in pools[0]["endpoints"]):
                        break
                    assert time.time() < deadline, page
                    time.sleep(0.1)
                assert [e["address"] for e in pools[0]["endpoints"]] == [
                    f"127.0.0.1:{sims.ports[f'vllm-{i}']}" for i in range(4)]
                body = {"model": VLLM_MODEL, "max_tokens": 4,
                        "messages": [{"role": "system", "content": HANDBOOK_A}, {"role": "user", "content": "hi"}]}
                deadline = time.time() + 30
                while True:
                    try:
                        r = requests.post(base + "/v1/chat/completions", headers=HEADERS, json=body, timeout=10)
                        if r.status_code == 200:
                            break
                    except requests.ConnectionError:
                        pass
                    assert time.time() < deadline, "the gateway's listener never served"
                    time.sleep(0.2)
                for i in range(4):
                    assert requests.post(base + "/v1/chat/completions", headers=HEADERS, json=body, timeout=10).status_code == 200
                stats = envoy.stats()
                scored = sum(v for k, v in stats.items() if k.endswith("endpoint_picker_picks_scored"))
                assert scored >= 5, {k: v for k, v in stats.items() if "endpoint_picker" in k}
            finally:
                envoy.stop()
