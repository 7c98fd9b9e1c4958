"""The module's background worker through the real Envoy 1.40 and the real sluiced (issue 10, items
1 and 3, the module's side): requests through Envoy become usage records in sluiced's database —
their ids are the x-request-id Envoy used, their tokens and cost those the provider simulator
reported and the gateway charged; while sluiced is away records wait in the worker's bounded
buffer and arrive when it is back; past the bound they are dropped and counted in
`sluice.fleet_usage_dropped`; Envoy's shutdown flushes what the worker holds; `/sluice/fleet` on
Envoy's admin shows the worker's state.

The filter and the worker are two extension kinds of one `libsluice.so`: records cross from the
filter (worker threads) to the worker (main thread) through a process-wide Swift global, which
only works because Envoy loads the image once — these tests are the proof."""
from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.request
import uuid

import pytest
import requests

from default_gateway import DEMO_KEY, DefaultGateway, gateway_http_filters
from harness import free_port
from sluiced import Sluiced

COST_HEADER = "x-sluice-cost-usd"


def sluiced_config() -> str:
    # sluiced here only stores usage records; no Envoy takes its config over ADS.
    from sluiced import ROOT

    with open(ROOT / "envoy-module" / "sluice.yaml") as f:
        return f.read()


def fleet_bootstrap(admin_port: int, token_file: str, **settings):
    """Points the rendered bootstrap's worker at sluiced's admin port and token, with `settings`
    (flush_interval_ms, buffer_max_records, ...) over the rendered ones; Envoy also returns the
    x-request-id it used, so the test can match records to responses."""

    def adjust(bootstrap: dict) -> None:
        for cluster in bootstrap["static_resources"]["clusters"]:
            if cluster["name"] == "sluiced_fleet":
                endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
                endpoint["address"]["socket_address"]["port_value"] = admin_port
        (extension,) = bootstrap["bootstrap_extensions"]
        block = extension["typed_config"]["extension_config"]
        config = json.loads(block["value"])
        # Usage records are under test here: quota leases only where a test asks for them (the
        # rendered worker has them on; a fail_open scope's first burst before its first grant
        # would be capped at 10 % of its limit, which is the lease tests' subject, not these).
        config.pop("leases", None)
        config.update(token_file=token_file, **settings)
        block["value"] = json.dumps(config)
        for listener in bootstrap["static_resources"]["listeners"]:
            for chain in listener["filter_chains"]:
                for network_filter in chain["filters"]:
                    if "http_filters" in network_filter["typed_config"]:
                        network_filter["typed_config"]["always_set_request_id_in_response"] = True

    return adjust


def with_cost_header(config: dict) -> None:
    config["response_cost_header"] = COST_HEADER


def chat(gw, stream: bool = False, request_id: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {DEMO_KEY}"}
    if request_id:
        headers["x-request-id"] = request_id
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    r = requests.post(gw.base + "/v1/chat/completions", headers=headers, json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r


def answered(r: requests.Response) -> dict:
    """What the client saw: the request id, the usage the simulator reported, the cost charged."""
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        lines = r.text.splitlines()
        usage = [json.loads(line[6:]) for line in lines if line.startswith("data: {")][-1]["usage"]
        cost = float(next(line for line in lines if line.startswith(f": {COST_HEADER}=")).split("=", 1)[1])
        stream = True
    else:
        usage = r.json()["usage"]
        cost = float(r.headers[COST_HEADER])
        stream = False
    return {
        "id": r.headers["x-request-id"], "input_tokens": usage["prompt_tokens"],
        "cached_input_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
        "output_tokens": usage["completion_tokens"], "cost_micro_usd": round(cost * 1e6), "stream": stream,
    }


def stored(sluiced: Sluiced) -> dict[str, dict]:
    records, cursor = [], None
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        page = sluiced.admin("GET", f"/v1/admin/usage/records?limit=500{suffix}")
        records += page["records"]
        cursor = page["next_cursor"]
        if cursor is None:
            return {r["id"]: r for r in records}


def wait_for(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def fleet_page(gw) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.envoy.admin_port}/sluice/fleet", timeout=5) as r:
        assert r.status == 200
        return json.loads(r.read())


def stat(gw, name: str) -> int:
    return gw.envoy.stats().get(name, 0)


@pytest.fixture()
def sluiced():
    with Sluiced(sluiced_config(), admin_port=free_port()) as daemon:
        yield daemon


def gateway(sluiced: Sluiced, **settings) -> DefaultGateway:
    token_file = os.path.join(sluiced.workdir, ".sluiced", "fleet-token")
    return DefaultGateway(
        adjust_config=with_cost_header, fleet_worker=True,
        adjust_bootstrap=fleet_bootstrap(sluiced.admin_port, token_file, **settings))


def test_every_request_becomes_one_record_in_sluiced(sluiced):
    with gateway(sluiced, flush_interval_ms=200) as gw:
        own_id = f"client-{uuid.uuid4()}"
        seen = [answered(chat(gw)) for _ in range(3)]
        seen += [answered(chat(gw, stream=True)) for _ in range(2)]
        seen.append(answered(chat(gw, request_id=own_id)))
        ids = {r["id"] for r in seen}
        assert len(ids) == 6
        records = wait_for(lambda: (lambda got: got if ids <= set(got) else None)(stored(sluiced)), what="records in sluiced")
        assert set(records) == ids, "records for requests that were not made"
        for client in seen:
            record = records[client["id"]]
            for field in ("input_tokens", "cached_input_tokens", "output_tokens", "cost_micro_usd", "stream"):
                assert record[field] == client[field], (field, record, client)
            assert record["input_tokens"] > 0 and record["output_tokens"] > 0 and record["cost_micro_usd"] > 0
            assert record["key"] == "demo" and record["team"] == "demo-team" and record["model"] == "gpt-4o-mini"
            assert record["backend"] == "openai" and record["provider"] == "openai" and record["status"] == 200
            assert record["envoy"] == "sluice-gateway"
            assert abs(record["time_ms"] - time.time() * 1000) < 120_000
            assert (record["ttft_ms"] is not None) == client["stream"]
            assert record["duration_ms"] >= (record["ttft_ms"] or 0)
        # Envoy may have kept an external x-request-id or made its own; the record has what Envoy used.
        page = wait_for(lambda: (lambda p: p if p["sent"] >= 6 else None)(fleet_page(gw)), what="the admin page")
        assert page["buffered"] == 0 and page["dropped"] == 0 and page["rejected"] == 0
        assert page["last_success_ms"] is not None and page["envoy"] == "sluice-gateway"
        assert stat(gw, "sluice.fleet_usage_sent") >= 6
        assert stat(gw, "sluice.fleet_usage_dropped") == 0


def test_requests_the_gateway_refuses_are_records_too_but_not_unknown_keys(sluiced):
    with gateway(sluiced, flush_interval_ms=100) as gw:
        headers = {"Authorization": f"Bearer {DEMO_KEY}"}
        bad = requests.post(gw.base + "/v1/chat/completions", headers=headers, data=b"{", timeout=10)
        assert bad.status_code == 400
        stranger = requests.post(gw.base + "/v1/chat/completions", headers={"Authorization": "Bearer sk-nobody"},
                                 json={"model": "gpt-4o-mini", "messages": []}, timeout=10)
        assert stranger.status_code == 401
        ok = answered(chat(gw))
        records = wait_for(lambda: (lambda got: got if ok["id"] in got else None)(stored(sluiced)), what="records")
        refused = records[bad.headers["x-request-id"]]
        assert refused["status"] == 400 and refused["key"] == "demo" and refused["input_tokens"] == 0
        assert refused["cost_micro_usd"] == 0 and refused["backend"] == ""
        assert stranger.headers["x-request-id"] not in records
        assert len(records) == 2


def test_records_wait_while_sluiced_is_away_and_arrive_when_it_is_back(sluiced):
    with gateway(sluiced, flush_interval_ms=100) as gw:
        sluiced.stop()
        seen = {answered(chat(gw))["id"] for _ in range(4)}
        page = wait_for(
            lambda: (lambda p: p if p["buffered"] == 4 and p["last_error"] else None)(fleet_page(gw)),
            what="records held while sluiced is away")
        assert "sluiced unreachable" in page["last_error"] or "sluiced answered" in page["last_error"], page
        wait_for(lambda: stat(gw, "sluice.fleet_usage_retried") >= 1, what="a retried batch")
        assert stat(gw, "sluice.fleet_usage_buffered") == 4
        time.sleep(1.0)  # a few failed attempts, backing off
        sluiced.start().wait_ready()
        # Backoff is at most 30 s; a few failures in, the next attempt is within a few seconds.
        records = wait_for(lambda: (lambda got: got if seen <= set(got) else None)(stored(sluiced)), timeout=30,
                           what="held records delivered")
        assert seen <= set(records)
        page = fleet_page(gw)
        assert page["buffered"] == 0 and page["dropped"] == 0


def test_past_the_buffer_bound_records_are_dropped_and_counted():
    token_dir = tempfile.mkdtemp(prefix="sluice-fleet-")
    token_file = os.path.join(token_dir, "fleet-token")
    with open(token_file, "w") as f:
        f.write("token-of-an-absent-sluiced\n")
    nobody = free_port()
    with DefaultGateway(
        adjust_config=with_cost_header, fleet_worker=True,
        adjust_bootstrap=fleet_bootstrap(nobody, token_file, flush_interval_ms=100, buffer_max_records=3, timeout_ms=200),
    ) as gw:
        for _ in range(7):
            chat(gw)
        wait_for(lambda: stat(gw, "sluice.fleet_usage_dropped") == 4, what="4 dropped records counted")
        page = fleet_page(gw)
        assert page["buffered"] == 3 and page["dropped"] == 4 and page["buffer_max_records"] == 3
        assert stat(gw, "sluice.fleet_usage_buffered") == 3
        assert "records dropped" in gw.envoy.logs() or page["dropped"] == 4


def test_shutdown_flushes_what_the_worker_holds(sluiced):
    # A long flush interval: nothing would go out before Envoy stops.
    with gateway(sluiced, flush_interval_ms=600_000) as gw:
        seen = {answered(chat(gw))["id"] for _ in range(3)}
        time.sleep(0.5)
        assert fleet_page(gw)["buffered"] == 3
        assert not seen & set(stored(sluiced))
        gw.envoy.process.terminate()
        gw.envoy.wait_exit(timeout=20)
        logs = gw.envoy.logs()
        assert "flushed every usage record" in logs, logs[-3000:]
        assert seen <= set(stored(sluiced))


def test_run_commands_gateway_shows_fleet_usage_in_sluiceds_metrics():
    """What `envoy-module/run.sh` runs: Envoy bootstrapped only from sluiced (bootstrap.yaml), with
    envoy-module/fleet-worker.yaml merged in by `--config-yaml`. After a few requests sluiced's
    `/metrics` counts them."""
    from sim import Simulators
    from sluiced import ROOT, demo_config, envoy_for, gateway_port_of

    with Simulators(pace_ms=0) as sims:
        config = demo_config(sims, free_port())
        base = f"http://127.0.0.1:{gateway_port_of(config)}"
        with Sluiced(config) as daemon:
            token_file = os.path.join(daemon.workdir, ".sluiced", "fleet-token")
            with open(ROOT / "envoy-module" / "fleet-worker.yaml") as f:
                fragment = f.read().replace("@FLEET_TOKEN_FILE@", token_file).replace("port_value: 18001", f"port_value: {daemon.admin_port}")
            envoy = envoy_for(daemon)
            envoy.extra_args += ["--config-yaml", fragment]
            envoy.start().wait_ready()
            try:
                headers = {"Authorization": f"Bearer {DEMO_KEY}"}
                body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}

                def routed():
                    try:
                        return requests.post(f"{base}/v1/chat/completions", headers=headers, json=body, timeout=5).status_code == 200
                    except requests.ConnectionError:
                        return False

                wait_for(routed, timeout=30, what="the gateway's listener from sluiced")
                for _ in range(3):
                    assert requests.post(f"{base}/v1/chat/completions", headers=headers, json=body, timeout=5).status_code == 200

                def fleet_metrics():
                    with urllib.request.urlopen(f"{daemon.admin_url}/metrics", timeout=10) as r:
                        text = r.read().decode()
                    received = [line for line in text.splitlines() if line.startswith("sluiced_usage_records_received_total ")]
                    return text if received and float(received[0].split()[-1]) >= 4 else None

                text = wait_for(fleet_metrics, timeout=15, what="usage records in sluiced's /metrics")
                assert any(line.startswith("gen_ai_client_token_usage") and 'gpt-4o-mini' in line for line in text.splitlines()), text[:3000]
            finally:
                envoy.stop()


def test_concurrent_requests_on_both_workers_lose_nothing(sluiced):
    """Eight clients at once on Envoy's two worker threads push onto the one lock-free queue: every
    answered request is stored exactly once, with nothing dropped."""
    from concurrent.futures import ThreadPoolExecutor

    with gateway(sluiced, flush_interval_ms=200, batch_max_records=50) as gw:
        def client(_):
            session = requests.Session()
            ids = []
            for _ in range(25):
                r = session.post(gw.base + "/v1/chat/completions", headers={"Authorization": f"Bearer {DEMO_KEY}"},
                                 json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}, timeout=10)
                assert r.status_code == 200, r.text
                ids.append(r.headers["x-request-id"])
            return ids

        with ThreadPoolExecutor(max_workers=8) as pool:
            answered_ids = [i for ids in pool.map(client, range(8)) for i in ids]
        assert len(set(answered_ids)) == 200
        records = wait_for(
            lambda: (lambda got: got if set(answered_ids) <= set(got) else None)(stored(sluiced)), timeout=30,
            what="200 records in sluiced")
        assert set(records) == set(answered_ids)
        page = fleet_page(gw)
        assert page["sent"] == 200 and page["dropped"] == 0 and page["rejected"] == 0 and page["buffered"] == 0


def test_sluiced_killed_mid_load_and_restarted_loses_and_doubles_nothing(sluiced):
    """Issue 10's kill-and-restart: four clients keep sending through Envoy while sluiced is
    SIGKILLed (no graceful shutdown: a batch may be stored with its answer lost) and started
    again on the same database. Traffic never stops, and afterwards sluiced holds exactly one
    record per answered request: none lost, none stored twice (a batch resent after a lost answer
    counts as duplicates, which change nothing)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    # Leases on, as run.sh runs it: a restarted sluiced must not cost traffic its slices.
    with gateway(sluiced, flush_interval_ms=100, batch_max_records=20, leases={"interval_ms": 1000}) as gw:
        stop = threading.Event()

        def client(_):
            session = requests.Session()
            ids = []
            while not stop.is_set():
                r = session.post(gw.base + "/v1/chat/completions", headers={"Authorization": f"Bearer {DEMO_KEY}"},
                                 json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}, timeout=10)
                assert r.status_code == 200, r.text
                ids.append(r.headers["x-request-id"])
                # ≈ 40 requests a second in all: within the demo key's 600 a minute, and what the
                # outage lets through fits its slice or its fail_open allowance (10 %: 60 a minute
                # per Envoy), so every refusal would be a fault, not the policy.
                time.sleep(0.1)
            return ids

        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(client, n) for n in range(4)]
            time.sleep(1.0)
            sluiced.kill()
            time.sleep(1.0)  # requests go on; the worker buffers and retries
            sluiced.start().wait_ready()
            time.sleep(1.0)
            stop.set()
            answered_ids = [i for future in futures for i in future.result()]
        assert len(answered_ids) == len(set(answered_ids)) and len(answered_ids) > 20, len(answered_ids)
        # Backoff after failures is bounded; the held records follow within seconds.
        records = wait_for(
            lambda: (lambda got: got if set(answered_ids) <= set(got) else None)(stored(sluiced)), timeout=45,
            what=f"{len(answered_ids)} records in sluiced")
        assert set(records) == set(answered_ids)
        totals = sluiced.admin("GET", "/v1/admin/usage")
        assert totals["totals"]["requests"] == len(answered_ids), totals["totals"]
        page = fleet_page(gw)
        assert page["dropped"] == 0 and page["rejected"] == 0 and page["buffered"] == 0, page
