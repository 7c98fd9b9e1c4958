"""Usage records through the real `sluiced` over real HTTP (issue 10, items 3 and 4, sluiced's side):
the fleet token sluiced creates, `POST /v1/fleet/usage` with a 500-record batch, its retry
(duplicates), a batch with a poisoned record, a wrong token and a body past 4 MiB; then a
restart of sluiced (SIGTERM, and SIGKILL), after which nothing is lost or counted twice in the
database, the usage API or `/metrics`. On SQLite, and on PostgreSQL when SLUICE_TEST_POSTGRES_URL
is set (Tests/run-all.sh starts one).

No Envoy here: the module's worker that sends these batches is tested with Envoy in its own
suite; this one holds sluiced to the protocol, byte for byte, from a client of its own."""
from __future__ import annotations

import json
import os
import re
import socket
import stat
import time
import types
import uuid
import urllib.error
import urllib.request

import pytest

from harness import free_port
from sim import demo_sim_ports
from sluiced import ROOT, Sluiced, demo_config, envoy_for

POSTGRES_URL = os.environ.get("SLUICE_TEST_POSTGRES_URL")
START_MS = 1_764_900_000_000


def demo_config_text() -> str:
    # sluiced only serves it here (no Envoy connects), so the simulator ports need not be live.
    with open(ROOT / "envoy-module" / "sluice.yaml") as f:
        return f.read()


def record(record_id: str, index: int, **overrides) -> dict:
    teams = ["research", "support", ""]
    models = ["gpt-4o-mini", "claude-sonnet-4-6"]
    result = {
        "id": record_id, "time_ms": START_MS + index, "key": f"key-{index % 4}", "team": teams[index % 3],
        "model": models[index % 2], "backend": "openai" if index % 2 == 0 else "anthropic",
        "provider": "openai" if index % 2 == 0 else "anthropic", "status": 429 if index % 10 == 9 else 200,
        "input_tokens": 10 + index % 7, "cached_input_tokens": index % 3, "output_tokens": 20 + index % 5,
        "cost_micro_usd": 1_000 + index, "duration_ms": 100 + index % 50, "ttft_ms": None if index % 2 else 25 + index % 9,
        "stream": index % 2 == 0,
    }
    # Some records in the newer shape: a rerank's search units, an image model's and a
    # transcription's counts in their unit; the rest as a sender from before units writes them.
    if index % 11 == 5:
        result["search_units"] = 1 + index % 3
    if index % 13 == 6:
        result.update(unit="images", input_tokens=0, cached_input_tokens=0)
    elif index % 17 == 3:
        result.update(unit="seconds", cached_input_tokens=0, output_tokens=0)
    result.update(overrides)
    return result


def post(sluiced: Sluiced, token: str | None, body: bytes | dict, timeout: float = 30) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{sluiced.admin_url}/v1/fleet/usage", data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def post_raw_too_large(sluiced: Sluiced, token: str, size: int) -> int:
    """Sends a body of `size` bytes with Content-Length and returns the status sluiced answers;
    sluiced may answer (and close) before the body is all sent, so a send error is not a failure."""
    with socket.create_connection(("127.0.0.1", sluiced.admin_port), timeout=30) as s:
        head = (
            f"POST /v1/fleet/usage HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        ).encode()
        s.sendall(head)
        chunk = b" " * 65536
        try:
            sent = 0
            while sent < size:
                s.sendall(chunk[: min(len(chunk), size - sent)])
                sent += len(chunk)
        except OSError:
            pass
        answer = b""
        try:
            while b"\r\n" not in answer:
                data = s.recv(4096)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    match = re.match(rb"HTTP/1\.1 (\d{3})", answer)
    assert match, f"no HTTP answer to a {size}-byte body: {answer[:200]!r}"
    return int(match.group(1))


def metrics(sluiced: Sluiced) -> str:
    with urllib.request.urlopen(f"{sluiced.admin_url}/metrics", timeout=10) as r:
        return r.read().decode()


def metric(text: str, series: str) -> float:
    """The value of one exact series line (`name{labels}`), 0 when absent."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def all_records(sluiced: Sluiced, query: str = "") -> list[dict]:
    records, cursor = [], None
    for _ in range(1000):
        suffix = f"&cursor={cursor}" if cursor else ""
        page = sluiced.admin("GET", f"/v1/admin/usage/records?limit=97{query}{suffix}")
        records += page["records"]
        cursor = page["next_cursor"]
        if cursor is None:
            return records
    raise AssertionError("records paging did not end")


def expected_totals(records: list[dict]) -> dict:
    """The usage API's sums: tokens of token-metered records (a record without `unit` is one), a
    media record's counts in its unit's sum."""
    def total(field: str, unit: str) -> int:
        return sum(r[field] for r in records if r.get("unit", "tokens") == unit)

    return {
        "requests": len(records),
        "errors": sum(1 for r in records if r["status"] >= 400),
        "input_tokens": total("input_tokens", "tokens"),
        "cached_input_tokens": total("cached_input_tokens", "tokens"),
        "output_tokens": total("output_tokens", "tokens"),
        "search_units": sum(r.get("search_units", 0) for r in records),
        "images": total("output_tokens", "images"),
        "speech_characters": total("input_tokens", "characters"),
        "audio_seconds": total("input_tokens", "seconds"),
        "cost_micro_usd": sum(r["cost_micro_usd"] for r in records),
    }


def check_stored(sluiced: Sluiced, stored: list[dict]) -> None:
    """The database holds exactly `stored` (each once), and the usage API sums them."""
    by_id = {r["id"]: r for r in stored}
    got = all_records(sluiced)
    assert len(got) == len(by_id), "records lost or stored twice"
    assert {r["id"] for r in got} == set(by_id)
    assert [(r["time_ms"], r["id"]) for r in got] == sorted(((r["time_ms"], r["id"]) for r in got), reverse=True)
    for r in got:
        sent = by_id[r["id"]]
        for field, value in sent.items():
            assert r[field] == value, (r["id"], field)
    summary = sluiced.admin("GET", "/v1/admin/usage")
    totals = {k: v for k, v in summary["totals"].items() if k != "cost_usd"}
    assert totals == expected_totals(stored)
    # Grouped by team and model, paged two groups at a time: the groups add up to the totals.
    groups, cursor = [], None
    while True:
        page = sluiced.admin("GET", "/v1/admin/usage?group_by=model,team&limit=2" + (f"&cursor={cursor}" if cursor else ""))
        groups += page["groups"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    keys = [(g["team"], g["model"]) for g in groups]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for team, model in keys:
        group = next(g for g in groups if (g["team"], g["model"]) == (team, model))
        mine = [r for r in stored if r["team"] == team and r["model"] == model]
        assert group["requests"] == len(mine)
        assert group["cost_micro_usd"] == sum(r["cost_micro_usd"] for r in mine)
        expected = expected_totals(mine)
        assert {k: group[k] for k in expected} == expected, (team, model)


DATABASES = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


@pytest.mark.parametrize("database", DATABASES)
def test_usage_records_are_stored_once_and_survive_restarts(database):
    url = None
    if database == "postgres":
        url = POSTGRES_URL + ("&" if "?" in POSTGRES_URL else "?") + f"schema=fleet_{uuid.uuid4().hex[:12]}"
    sluiced = Sluiced(demo_config_text(), database=url)
    with sluiced:
        # The fleet token sluiced created: 32 random bytes in hex, readable by its owner only.
        token_path = os.path.join(sluiced.workdir, ".sluiced", "fleet-token")
        token = open(token_path).read().strip()
        assert re.fullmatch(r"[0-9a-f]{64}", token)
        assert stat.S_IMODE(os.stat(token_path).st_mode) == 0o600

        batch_a = [record(f"req-a-{i}", i) for i in range(500)]
        status, answer = post(sluiced, token, {"envoy": "envoy-1", "records": batch_a})
        assert (status, answer) == (200, {"accepted": 500, "duplicates": 0, "rejected": []})
        # The sender retries a batch whose answer it lost: nothing is stored or counted twice.
        status, answer = post(sluiced, token, {"envoy": "envoy-1", "records": batch_a})
        assert (status, answer) == (200, {"accepted": 0, "duplicates": 500, "rejected": []})

        # A poisoned record is rejected alone; the rest of its batch is stored.
        batch_b = [record(f"req-b-{i}", 500 + i) for i in range(10)]
        batch_b[3]["status"] = 700
        batch_b[7]["input_tokens"] = -5
        batch_b.append(batch_a[0])  # one already stored
        status, answer = post(sluiced, token, {"envoy": "envoy-2", "records": batch_b})
        assert status == 200
        assert answer["accepted"] == 8 and answer["duplicates"] == 1
        assert answer["rejected"] == [
            {"index": 3, "error": "status: must be an integer between 100 and 599, got 700"},
            {"index": 7, "error": "input_tokens: must be an integer between 0 and 1000000000, got -5"},
        ]
        stored = batch_a + [r for i, r in enumerate(batch_b[:10]) if i not in (3, 7)]

        # Refusals: the admin token, a wrong token, none; a malformed envelope; a body past 4 MiB.
        for bad in [sluiced.token, "0" * 64, None]:
            status, answer = post(sluiced, bad, {"envoy": "envoy-1", "records": [record("req-x", 1)]})
            assert status == 401 and answer["error"]["code"] == "unauthorized"
        status, answer = post(sluiced, token, {"envoy": "envoy-1", "records": []})
        assert status == 400 and answer["error"]["field"] == "records"
        status, answer = post(sluiced, token, b'{"envoy": "envoy-1", "records": [')
        assert status == 400 and answer["error"]["code"] == "invalid_request"
        assert post_raw_too_large(sluiced, token, (4 << 20) + 1) == 413

        check_stored(sluiced, stored)
        text = metrics(sluiced)
        assert metric(text, "sluiced_usage_records_received_total") == len(stored)
        assert metric(text, "sluiced_usage_records_duplicated_total") == 501
        assert metric(text, "sluiced_usage_records_rejected_total") == 2
        assert metric(text, "sluice_admin_store_version") == 0
        requests = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("sluice_requests_total{"))
        assert requests == len(stored)
        cost = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("sluice_cost_usd_total{"))
        assert cost == pytest.approx(sum(r["cost_micro_usd"] for r in stored) / 1e6)
        # Token histograms observe answered token-metered records (a media record counts images or seconds).
        answered = [r for r in stored if r["status"] < 400 and r["model"] == "gpt-4o-mini" and r.get("unit", "tokens") == "tokens"]
        labels = 'gen_ai_request_model="gpt-4o-mini",gen_ai_provider_name="openai"'
        assert metric(text, f'gen_ai_client_token_usage_count{{gen_ai_token_type="input",{labels}}}') == len(answered)
        assert metric(text, f'gen_ai_client_token_usage_sum{{gen_ai_token_type="output",{labels}}}') == sum(
            r["output_tokens"] for r in answered)
        streamed = [r for r in stored if r["ttft_ms"] is not None and r["model"] == "gpt-4o-mini"]
        assert metric(text, f"gen_ai_server_time_to_first_token_seconds_count{{{labels}}}") == len(streamed)
        assert "sluiced_ads_clients_connected 0" in text

        # A graceful restart, then a crash: every record is still there once, and the batches
        # the sender retries after each are duplicates.
        for how in ["stop", "kill"]:
            getattr(sluiced, how)()
            sluiced.start().wait_ready()
            assert open(token_path).read().strip() == token  # the token file is kept, not replaced
            status, answer = post(sluiced, token, {"envoy": "envoy-1", "records": batch_a})
            assert (status, answer) == (200, {"accepted": 0, "duplicates": 500, "rejected": []})
            check_stored(sluiced, stored)
            text = metrics(sluiced)
            # Counters start at zero in a new process; retried records are not counted again.
            assert metric(text, "sluiced_usage_records_received_total") == 0
            assert metric(text, "sluiced_usage_records_duplicated_total") == 500
            assert not any(line.startswith("sluice_requests_total{") for line in text.splitlines())

        # New records after the restarts count in the metrics and the database.
        batch_c = [record(f"req-c-{i}", 600 + i) for i in range(20)]
        status, answer = post(sluiced, token, {"envoy": "envoy-3", "records": batch_c})
        assert (status, answer) == (200, {"accepted": 20, "duplicates": 0, "rejected": []})
        stored += batch_c
        check_stored(sluiced, stored)
        text = metrics(sluiced)
        assert metric(text, "sluiced_usage_records_received_total") == 20
        requests = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("sluice_requests_total{"))
        assert requests == 20
        assert [r["envoy"] for r in all_records(sluiced, "&key=key-0") if r["id"].startswith("req-c-")] == ["envoy-3"] * 5

        # `sluiced usage` reads the same database while sluiced runs.
        cli = sluiced.cli("usage", "--database", sluiced.database, "--group-by", "team", "--from", "0", "--json")
        assert cli.returncode == 0, cli.stderr
        summary = json.loads(cli.stdout)
        assert {k: v for k, v in summary["totals"].items() if k != "cost_usd"} == expected_totals(stored)
        assert [g["team"] for g in summary["groups"]] == ["", "research", "support"]
        table = sluiced.cli("usage", "--database", sluiced.database, "--group-by", "team", "--since", "3650d")
        assert table.returncode == 0, table.stderr
        # A column for each non-token unit the records have (search units, images, audio seconds).
        assert table.stdout.splitlines()[0].split() == [
            "TEAM", "REQUESTS", "ERRORS", "INPUT", "CACHED", "OUTPUT", "SEARCH", "UNITS", "IMAGES", "AUDIO", "SECONDS", "COST"]
        assert table.stdout.splitlines()[-1].split()[:2] == ["total", str(len(stored))]
        bad = sluiced.cli("usage", "--database", sluiced.database, "--group-by", "colour")
        assert bad.returncode != 0 and "group_by: 'colour' is not a dimension" in bad.stderr


def test_fleet_token_from_file_and_environment():
    sluiced = Sluiced(demo_config_text())
    token_file = os.path.join(sluiced.workdir, "my-fleet-token")
    with open(token_file, "w") as f:
        f.write("fleet-token-from-a-file-0123456789\n")
    sluiced.extra_args = ["--fleet-token-file", token_file]
    with sluiced:
        body = {"envoy": "e", "records": [record("t-1", 1)]}
        assert post(sluiced, "fleet-token-from-a-file-0123456789", body)[0] == 200
        assert not os.path.exists(os.path.join(sluiced.workdir, ".sluiced", "fleet-token"))
    # The environment variable, when no file is given.
    sluiced.extra_args = []
    os.environ["SLUICED_FLEET_TOKEN"] = "fleet-token-from-the-environment-42"
    try:
        with sluiced:
            body = {"envoy": "e", "records": [record("t-2", 2)]}
            assert post(sluiced, "fleet-token-from-the-environment-42", body)[0] == 200
            assert post(sluiced, "fleet-token-from-a-file-0123456789", body)[0] == 401
    finally:
        del os.environ["SLUICED_FLEET_TOKEN"]
    # A token too short is a start-up error that says which.
    with open(token_file, "w") as f:
        f.write("short\n")
    sluiced.extra_args = ["--fleet-token-file", token_file]
    sluiced.start()
    assert sluiced.process.wait(timeout=60) != 0
    sluiced.stop()
    assert "fleet token: fleet_token_file: must be at least 16 characters" in sluiced.logs()


def test_ads_clients_connected_follows_envoy():
    # The demo config with every address moved to a free port (no simulator runs: nothing is
    # routed here), so this Envoy binds nothing another test or a developer's gateway uses.
    sims = types.SimpleNamespace(ports={name: free_port() for name in demo_sim_ports().values()})
    with Sluiced(demo_config(sims, free_port())) as sluiced:
        def connected() -> float:
            return metric(metrics(sluiced), "sluiced_ads_clients_connected")

        assert connected() == 0
        envoy = envoy_for(sluiced, node_id="fleet-metrics-envoy").start().wait_ready()
        try:
            deadline = time.monotonic() + 30
            while connected() != 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert connected() == 1
        finally:
            envoy.stop()
        deadline = time.monotonic() + 30
        while connected() != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert connected() == 0
