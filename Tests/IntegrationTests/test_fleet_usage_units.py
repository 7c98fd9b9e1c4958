"""Usage that is not tokens, through the real Envoy 1.40, the module's worker and the real sluiced:
a Cohere rerank (`rerank-v3.5`, billed in search units by the Cohere simulator) becomes a usage
record whose `search_units` sluiced stores and its usage API sums per model, and the access log
reads the same count from `%DYNAMIC_METADATA(sluice:search_units)%`; a chat request has no
search units, in its record (0) and in the log (the key is not written, so `-`)."""
from __future__ import annotations

import json
import re
import time

import pytest
import requests

from default_gateway import DEMO_KEY, DefaultGateway, sluice_filter_block
from harness import free_port
from sluiced import Sluiced
from test_fleet_worker import fleet_bootstrap, sluiced_config, stored, wait_for

COHERE_MODEL = "rerank-v3.5"
HEADERS = {"Authorization": f"Bearer {DEMO_KEY}"}
LOG_FORMAT = (
    "units id=%REQ(X-REQUEST-ID)% model=%DYNAMIC_METADATA(sluice:model)% "
    "tokens_in=%DYNAMIC_METADATA(sluice:input_tokens)% search_units=%DYNAMIC_METADATA(sluice:search_units)% "
    "cost_usd=%DYNAMIC_METADATA(sluice:cost_usd)%\n"
)


def with_units_log(adjust):
    """`adjust` (the worker pointed at sluiced), then the gateway listener's access log in
    LOG_FORMAT, which names each line's request id. The rendered filter writes only the metadata
    sluiced's own format prints (`metadata_keys`), so a format of one's own names its keys there too."""

    def both(bootstrap: dict) -> None:
        adjust(bootstrap)
        block = sluice_filter_block(bootstrap)
        config = json.loads(block["value"])
        config["metadata_keys"] = re.findall(r"%DYNAMIC_METADATA\(sluice:([a-z_]+)\)%", LOG_FORMAT)
        block["value"] = json.dumps(config)
        for listener in bootstrap["static_resources"]["listeners"]:
            for chain in listener["filter_chains"]:
                for network_filter in chain["filters"]:
                    config = network_filter["typed_config"]
                    if "http_filters" not in config:
                        continue
                    for log in config.get("access_log", []):
                        log["typed_config"]["log_format"] = {"text_format_source": {"inline_string": LOG_FORMAT}}

    return both


def log_line(gw, request_id: str) -> dict:
    deadline = time.time() + 5
    while True:
        for line in gw.envoy.logs().splitlines():
            if line.startswith("units ") and f" id={request_id} " in line:
                return dict(part.split("=", 1) for part in line.split()[1:])
        if time.time() > deadline:
            raise AssertionError(f"no access log line for {request_id}")
        time.sleep(0.05)


@pytest.fixture()
def sluiced():
    with Sluiced(sluiced_config(), admin_port=free_port()) as daemon:
        yield daemon


def test_cohere_search_units_reach_sluiceds_usage_api_and_the_access_log(sluiced):
    token_file = f"{sluiced.workdir}/.sluiced/fleet-token"
    adjust = with_units_log(fleet_bootstrap(sluiced.admin_port, token_file, flush_interval_ms=100))
    with DefaultGateway(fleet_worker=True, adjust_bootstrap=adjust) as gw:
        def rerank(path: str, documents: list[str], request_id: str) -> None:
            answer = requests.post(
                gw.base + path, headers={**HEADERS, "x-request-id": request_id}, timeout=30,
                json={"model": COHERE_MODEL, "query": "France", "documents": documents})
            assert answer.status_code == 200, answer.text

        # One search unit for up to 100 documents, two for 150 (the simulator bills as Cohere does).
        rerank("/v1/rerank", ["Paris is in France", "Bananas are yellow"], "units-rerank-1")
        rerank("/cohere/v2/rerank", [f"document {i} about France" for i in range(150)], "units-rerank-2")
        chat = requests.post(
            gw.base + "/v1/chat/completions", headers={**HEADERS, "x-request-id": "units-chat"}, timeout=30,
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}]})
        assert chat.status_code == 200, chat.text

        ids = {"units-rerank-1", "units-rerank-2", "units-chat"}
        records = wait_for(lambda: (lambda got: got if ids <= set(got) else None)(stored(sluiced)), what="records")
        one, two, plain = records["units-rerank-1"], records["units-rerank-2"], records["units-chat"]
        assert (one["search_units"], two["search_units"], plain["search_units"]) == (1, 2, 0)
        assert one["unit"] == two["unit"] == plain["unit"] == "tokens"
        assert one["model"] == COHERE_MODEL and one["backend"] == "cohere" and one["status"] == 200
        # $0.002 a search unit.
        assert (one["cost_micro_usd"], two["cost_micro_usd"]) == (2000, 4000)
        assert plain["input_tokens"] > 0

        summary = sluiced.admin("GET", "/v1/admin/usage?group_by=model")
        by_model = {group["model"]: group for group in summary["groups"]}
        assert by_model[COHERE_MODEL]["search_units"] == 3 and by_model[COHERE_MODEL]["requests"] == 2
        assert by_model[COHERE_MODEL]["cost_micro_usd"] == 6000
        assert by_model["gpt-4o-mini"]["search_units"] == 0
        assert summary["totals"]["search_units"] == 3
        assert summary["totals"]["images"] == 0

        assert log_line(gw, "units-rerank-1")["search_units"] == "1"
        assert log_line(gw, "units-rerank-2")["search_units"] == "2"
        chat_line = log_line(gw, "units-chat")
        assert chat_line["search_units"] == "-" and chat_line["tokens_in"] == str(plain["input_tokens"])
