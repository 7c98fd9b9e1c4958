"""Quota leases end to end (issue 10, item 2, the module's side): two real Envoy processes and one
real sluiced. A key limited to 30 requests per minute, requests alternated across both Envoys:
together they admit at most the limit (FleetLeases.md's bound limit + D + R + F, here with D = 0
for a request count, R = 0 with no Envoy going silent and F = 0 for a fail_closed scope) and at
least the limit minus a small slack, where each Envoy alone would admit the whole limit. Then
sluiced stops: once the slices run out, the fail_closed key gets 429 `quota_unavailable` naming
sluiced and the scope (counted in `sluice.lease.fail_closed_denied`), and a fail_open key admits
up to its local cap (10 % of 30: 3 per minute on each Envoy), then the same 429.

Fast by config: the workers trade leases every 100 ms and sluiced's lease TTL is 2 s."""
from __future__ import annotations

import json
import os
import time
import urllib.request

import requests

from default_gateway import DEMO_KEY, DefaultGateway
from harness import Envoy, free_port
from sluiced import ROOT, Sluiced
from test_fleet_worker import fleet_bootstrap

LIMIT = 30
OPEN_KEY = "sk-sluice-open-key"
DEMO_LIMITS = "limits: { requests_per_minute: 600, tokens_per_minute: 200000, budget_usd_per_day: 5 }"


def sluiced_config() -> str:
    """The demo config with the demo key at 30 requests per minute and a second key, `open`."""
    with open(ROOT / "envoy-module" / "sluice.yaml") as f:
        text = f.read()
    assert DEMO_LIMITS in text
    text = text.replace(DEMO_LIMITS, f"limits: {{ requests_per_minute: {LIMIT} }}")
    return text.replace(
        "\nteams:", f"\n  - {{ name: open, key: {OPEN_KEY}, limits: {{ requests_per_minute: {LIMIT} }} }}\n\nteams:", 1)


def filter_config(config: dict) -> None:
    """The same limits in the filter's config; `demo` (and by default every scope) fail_closed,
    `open` fail_open with 10 % of its limit."""
    for key in config["api_keys"]:
        if key["name"] == "demo":
            key["limits"] = {"requests_per_minute": LIMIT}
    config["api_keys"].append({
        "name": "open", "key": OPEN_KEY,
        "limits": {"requests_per_minute": LIMIT, "lease_failure": {"policy": "fail_open", "local_cap_percent": 10}}})
    config["quota_lease_failure"] = {"policy": "fail_closed"}


def gateway(sluiced: Sluiced, name: str) -> DefaultGateway:
    token_file = os.path.join(sluiced.workdir, ".sluiced", "fleet-token")
    adjust_worker = fleet_bootstrap(
        sluiced.admin_port, token_file, envoy=name, flush_interval_ms=100, timeout_ms=1000, leases={"interval_ms": 100})
    return DefaultGateway(adjust_config=filter_config, fleet_worker=True, adjust_bootstrap=adjust_worker)


def chat(gw: DefaultGateway, key: str = DEMO_KEY) -> requests.Response:
    return requests.post(
        gw.base + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]}, timeout=10)


def error_code(r: requests.Response) -> str | None:
    try:
        return r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def fleet_page(gw: DefaultGateway) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.envoy.admin_port}/sluice/fleet", timeout=5) as r:
        return json.loads(r.read())


def stat(gw: DefaultGateway, name: str) -> int:
    return gw.envoy.stats().get(name, 0)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def minute() -> int:
    return int(time.time()) // 60


def test_two_envoys_share_one_limit_and_apply_the_failure_policy_when_sluiced_is_away():
    sluiced = Sluiced(sluiced_config(), admin_port=free_port(), extra_args=["--lease-ttl-ms", "2000"])
    with sluiced, gateway(sluiced, "gw-a") as a, gateway(sluiced, "gw-b") as b:
        # Both workers hold the key's slot (the filter config acquired it) and reach sluiced.
        for gw in (a, b):
            page = fleet_page(gw)
            slots = {(s["scope"], s["name"], s["dimension"]): s for s in page["leases"]["slots"]}
            demo = slots[("key", "demo", "requests_per_minute")]
            assert demo["limit"] == LIMIT and demo["policy"] == "fail_closed" and demo["active"]
            assert slots[("key", "open", "requests_per_minute")]["policy"] == "fail_open (local cap 3)"

        # Alternate until one UTC minute (the fleet's window) has been refused several times in a
        # row on both Envoys: its budget is spent. Grouped by minute in case the test spans two.
        admitted: dict[int, int] = {}
        per_envoy = {"gw-a": 0, "gw-b": 0}
        refused_in_a_row: dict[int, int] = {}
        saturated = None
        started = time.monotonic()
        while saturated is None and time.monotonic() - started < 20:
            for name, gw in (("gw-a", a), ("gw-b", b)):
                window = minute()
                r = chat(gw)
                if r.status_code == 200:
                    admitted[window] = admitted.get(window, 0) + 1
                    per_envoy[name] += 1
                    refused_in_a_row[window] = 0
                else:
                    assert r.status_code == 429, r.text
                    # Before the first grant fail_closed refuses with quota_unavailable; after, the
                    # fleet's limit answers like a local quota.
                    assert error_code(r) in ("rate_limit_exceeded", "quota_unavailable"), r.text
                    if error_code(r) == "rate_limit_exceeded" and admitted.get(window, 0) > 0:
                        refused_in_a_row[window] = refused_in_a_row.get(window, 0) + 1
                        if refused_in_a_row[window] >= 10:
                            saturated = window
            time.sleep(0.01)
        assert saturated is not None, f"the limit was never reached: {admitted}"
        for window, count in admitted.items():
            assert count <= LIMIT, f"the fleet admitted {count} > {LIMIT} in minute {window}"
        assert admitted[saturated] >= LIMIT - 2, f"the fleet used only {admitted[saturated]} of {LIMIT}"
        # Without leases each Envoy's own counter admits the whole limit, twice it together. (How
        # the limit splits between the two depends on who asked first: sluiced shares what remains
        # among the Envoys active at the time.)
        assert sum(per_envoy.values()) == sum(admitted.values()), per_envoy
        assert all(fleet_page(gw)["leases"]["requests_sent"] > 0 for gw in (a, b))
        assert stat(a, "sluice.lease_requests_sent") > 0

        # sluiced goes away: the slices lapse (TTL 2 s, 1 s margin), then each scope's policy.
        sluiced.stop()
        last: list[requests.Response] = []

        def refused_unavailable() -> bool:
            last[:] = [chat(a)]
            return error_code(last[0]) == "quota_unavailable"

        try:
            wait_for(refused_unavailable, timeout=6, what="fail_closed to refuse without a lease")
        except AssertionError:
            raise AssertionError(f"still {last[0].status_code} {last[0].text}; worker: {fleet_page(a)['leases']}")
        closed = last[0]
        assert closed.status_code == 429
        message = closed.json()["error"]["message"]
        assert "quota service is unreachable" in message and "key demo (requests_per_minute)" in message, message
        assert "fail_closed" in message
        wait_for(lambda: stat(a, "sluice.lease.fail_closed_denied") >= 1, timeout=3, what="the fail_closed stat")
        assert fleet_page(a)["leases"]["last_error"], "the worker should show why leases fail"

        # fail_open: `open` never had a lease; this Envoy admits 3 per minute on its own, then refuses.
        open_admitted: dict[int, int] = {}
        refusal = None
        for _ in range(8):
            window = minute()
            r = chat(b, OPEN_KEY)
            if r.status_code == 200:
                open_admitted[window] = open_admitted.get(window, 0) + 1
            else:
                assert r.status_code == 429 and error_code(r) == "quota_unavailable", r.text
                refusal = (window, r.json()["error"]["message"])
        assert refusal is not None, open_admitted
        assert open_admitted.get(refusal[0]) == 3, open_admitted
        assert "fail_open allowance for key open (requests_per_minute: 3 per window)" in refusal[1], refusal[1]
        wait_for(lambda: stat(b, "sluice.lease.fail_open_cap_denied") >= 1, timeout=3, what="the fail_open cap stat")
        assert stat(b, "sluice.lease.fail_open_admitted") >= 3


def sluiced_metrics(sluiced: Sluiced) -> str:
    with urllib.request.urlopen(f"{sluiced.admin_url}/metrics", timeout=10) as r:
        return r.read().decode()


def metric_sum(text: str, name: str, containing: str = "") -> float:
    total = 0.0
    for line in text.splitlines():
        if (line.startswith(name + " ") or line.startswith(name + "{")) and containing in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_an_envoy_that_shuts_down_gives_its_slices_back():
    with Sluiced(sluiced_config(), admin_port=free_port(), extra_args=["--lease-ttl-ms", "10000"]) as sluiced:
        gw = gateway(sluiced, "gw-stopping")
        with gw:
            # fail_closed: the first requests wait for the first grant (one 20 ms tick away).
            wait_for(lambda: chat(gw).status_code == 200, timeout=3, what="a request admitted against a slice")
            answered = [chat(gw).status_code for _ in range(5)]
            assert answered.count(200) >= 4, answered
            wait_for(
                lambda: metric_sum(sluiced_metrics(sluiced), "sluiced_leases_outstanding") > 0, timeout=3,
                what="slices held by the Envoy")
            held = fleet_page(gw)["leases"]["slots"]
            assert any(s["valid"] and s["remaining"] > 0 for s in held), held
        # Envoy's shutdown waited for the worker's last request: it reported the spend and returned
        # every slice, well before their 10 s TTL would have.
        text = sluiced_metrics(sluiced)
        assert metric_sum(text, "sluiced_leases_outstanding") == 0, text
        assert metric_sum(text, "sluiced_lease_returned_units_total", 'dimension="requests_per_minute"') > 0, text
        assert metric_sum(text, "sluiced_leases_reclaimed_total") == 0
        assert "returned its lease slices" in gw.envoy.logs()


def test_filter_configs_pushed_over_ecds_bring_their_scopes_and_retire_removed_ones():
    """Envoy bootstrapped from sluiced alone (the `sluice` filter's config arrives over ECDS) with
    the worker of envoy-module/fleet-worker.yaml, as `run.sh` starts it: each pushed config
    acquires the slots of its scopes; a scope the new config drops stops being held."""
    import yaml

    from sluiced import bootstrap

    with Sluiced(sluiced_config(), admin_port=free_port()) as sluiced:
        envoy_bootstrap = bootstrap(sluiced.xds_port, free_port())
        with open(ROOT / "envoy-module" / "fleet-worker.yaml") as f:
            worker = yaml.safe_load(f)
        (cluster,) = worker["static_resources"]["clusters"]
        cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"][
            "port_value"] = sluiced.admin_port
        envoy_bootstrap["static_resources"]["clusters"].append(cluster)
        block = worker["bootstrap_extensions"][0]["typed_config"]["extension_config"]
        block["value"] = block["value"].replace("@FLEET_TOKEN_FILE@", os.path.join(sluiced.workdir, ".sluiced", "fleet-token"))
        assert json.loads(block["value"])["leases"] == {"interval_ms": 1000}, "run.sh's worker turns leases on"
        envoy_bootstrap["bootstrap_extensions"] = worker["bootstrap_extensions"]
        envoy = Envoy(envoy_bootstrap)
        envoy.start().wait_ready()
        try:
            def slots() -> dict:
                with urllib.request.urlopen(f"http://127.0.0.1:{envoy.admin_port}/sluice/fleet", timeout=5) as r:
                    page = json.loads(r.read())
                return {(s["scope"], s["name"], s["dimension"]): s for s in page["leases"]["slots"]}

            open_key = ("key", "open", "requests_per_minute")
            wait_for(lambda: open_key in slots() and slots()[open_key]["active"], timeout=10, what="the ECDS config's slots")
            assert slots()[("key", "demo", "requests_per_minute")]["limit"] == LIMIT

            # The next config: `open` is gone, `demo` allows 40 a minute, `newcomer` is new.
            text = sluiced.config_text.replace(
                f"  - {{ name: open, key: {OPEN_KEY}, limits: {{ requests_per_minute: {LIMIT} }} }}\n",
                "  - { name: newcomer, key: sk-sluice-newcomer, limits: { tokens_per_minute: 5000 } }\n")
            text = text.replace(f"limits: {{ requests_per_minute: {LIMIT} }}", "limits: { requests_per_minute: 40 }")
            assert "newcomer" in text and "name: open," not in text
            sluiced.write_config(text)
            newcomer = ("key", "newcomer", "tokens_per_minute")

            def updated():
                table = slots()
                return (newcomer in table and table[newcomer]["active"] and table[newcomer]["limit"] == 5000
                        and not table[open_key]["active"]
                        and table[("key", "demo", "requests_per_minute")]["limit"] == 40)

            wait_for(updated, timeout=10, what="the pushed config's slots (new active, removed inactive)")
        finally:
            envoy.stop()


BUDGET_USD = 0.002  # a day's budget spent in a few seconds: ≈ 11 µ$ a request


def budget_config() -> str:
    """The demo config with the demo key's only limit a tiny daily dollar budget."""
    with open(ROOT / "envoy-module" / "sluice.yaml") as f:
        text = f.read()
    assert DEMO_LIMITS in text
    return text.replace(DEMO_LIMITS, f"limits: {{ budget_usd_per_day: {BUDGET_USD} }}")


def budget_filter_config(config: dict) -> None:
    for key in config["api_keys"]:
        if key["name"] == "demo":
            key["limits"] = {"budget_usd_per_day": BUDGET_USD}
    config["quota_lease_failure"] = {"policy": "fail_closed"}


def test_two_envoys_under_concurrent_load_share_one_daily_budget():
    """Issue 10's budget test: two Envoys, eight concurrent clients spread over both, one key with
    a daily dollar budget. Together they charge at most the budget (FleetLeases.md's bound with
    D = 0: every request states max_tokens, so its estimate covers its cost; R = 0: no Envoy goes
    silent; F = 0: fail_closed), they use nearly all of it, and then every request on either
    Envoy gets `budget_exceeded`. What was charged is read back from sluiced's usage records."""
    from concurrent.futures import ThreadPoolExecutor

    sluiced = Sluiced(budget_config(), admin_port=free_port(), extra_args=["--lease-ttl-ms", "2000"])
    with sluiced:
        token_file = os.path.join(sluiced.workdir, ".sluiced", "fleet-token")

        def gw(name: str) -> DefaultGateway:
            return DefaultGateway(
                adjust_config=budget_filter_config, fleet_worker=True,
                adjust_bootstrap=fleet_bootstrap(sluiced.admin_port, token_file, envoy=name, flush_interval_ms=100,
                                                 timeout_ms=1000, leases={"interval_ms": 100}))

        with gw("budget-a") as a, gw("budget-b") as b:
            def client(n: int) -> list[tuple[int, str | None]]:
                session = requests.Session()
                seen: list[tuple[int, str | None]] = []
                exceeded_in_a_row = 0
                deadline = time.monotonic() + 30
                turn = n
                while exceeded_in_a_row < 6 and time.monotonic() < deadline:
                    target = (a, b)[turn % 2]
                    turn += 1
                    r = session.post(
                        target.base + "/v1/chat/completions", headers={"Authorization": f"Bearer {DEMO_KEY}"},
                        json={"model": "gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": "Say hi"}]},
                        timeout=10)
                    code = None if r.status_code == 200 else error_code(r)
                    seen.append((r.status_code, code))
                    assert r.status_code in (200, 429), r.text
                    # fail_closed: before an Envoy's first grant its requests wait (quota_unavailable).
                    assert code in (None, "budget_exceeded", "quota_unavailable"), r.text
                    exceeded_in_a_row = exceeded_in_a_row + 1 if code == "budget_exceeded" else 0
                return seen

            with ThreadPoolExecutor(max_workers=8) as pool:
                results = [s for seen in pool.map(client, range(8)) for s in seen]
            admitted = sum(1 for status, _ in results if status == 200)
            assert admitted > 20, results[:20]
            for gateway_ in (a, b):
                r = chat(gateway_)
                assert r.status_code == 429 and error_code(r) == "budget_exceeded", r.text
            # Every answered request is a record (refused ones at 0 cost); wait for the last flush.
            answered = len(results) + 2
            budget_micro = round(BUDGET_USD * 1e6)

            def totals():
                summary = sluiced.admin("GET", "/v1/admin/usage")["totals"]
                return summary if summary["requests"] >= answered else None

            summary = wait_for(totals, timeout=10, what=f"{answered} usage records")
            charged = summary["cost_micro_usd"]
            assert summary["requests"] == answered, summary
            assert charged <= budget_micro, f"the fleet charged {charged} µ$ of a {budget_micro} µ$ budget"
            assert charged >= 0.8 * budget_micro, f"the fleet used only {charged} of {budget_micro} µ$"


def test_a_killed_envoys_slices_come_back_after_their_expiry():
    """An Envoy SIGKILLed with slices out never returns them: sluiced takes them back when their
    lease expires (TTL 2 s here) and counts them as reclaimed (FleetLeases.md's R)."""
    with Sluiced(sluiced_config(), admin_port=free_port(), extra_args=["--lease-ttl-ms", "2000"]) as sluiced:
        gw = gateway(sluiced, "gw-killed")
        with gw:
            wait_for(lambda: chat(gw).status_code == 200, timeout=3, what="a request admitted against a slice")
            wait_for(
                lambda: metric_sum(sluiced_metrics(sluiced), "sluiced_leases_outstanding") > 0, timeout=3,
                what="slices held by the Envoy")
            gw.envoy.process.kill()
            gw.envoy.process.wait()
            killed_at = time.monotonic()
            text = sluiced_metrics(sluiced)
            if time.monotonic() - killed_at < 1.0:  # well inside the TTL: still out
                assert metric_sum(text, "sluiced_leases_outstanding") > 0, text
            assert metric_sum(text, "sluiced_leases_reclaimed_total") == 0, text
            wait_for(lambda: metric_sum(sluiced_metrics(sluiced), "sluiced_leases_outstanding") == 0, timeout=6,
                     what="the killed Envoy's slices to expire")
            text = sluiced_metrics(sluiced)
            assert metric_sum(text, "sluiced_leases_reclaimed_total") > 0, text
            assert metric_sum(text, "sluiced_lease_returned_units_total", 'dimension="requests_per_minute"') == 0, text
