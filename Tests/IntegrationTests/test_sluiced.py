"""The real Envoy 1.40 configured only by `sluiced` (issue 9, item 7): an Envoy bootstrapped like
envoy-module/bootstrap.yaml (its static resources hold nothing but the sluiced cluster) gets
listeners, routes, clusters, secrets and the `sluice` filter's config (ECDS) over gRPC ADS from
a `sluiced` serving the demo config (envoy-module/sluice.yaml, ports moved to free ones).

1. every demo model through the openai SDK (chat, embeddings, a stream) and the anthropic SDK;
2. a saved edit that adds a model is routable in under a second (timed, printed);
3. an invalid edit is refused with file:line:column in sluiced's log, traffic unaffected;
4. a config Envoy NACKs (a TLS listener whose files do not exist) is in /v1/admin/status;
5. 100 keys created and revoked under a keep-alive load: no failed request, no connection
   closed or drained by Envoy, no listener rebuilt;
6. sluiced SIGKILLed: Envoy serves on (fail-static); restarted: reconnects, converges;
7. an Envoy started after a change gets the current config;
8. `sluiced keys create` on the daemon's database; 9. `sluiced render` validates and serves;
10. rotated keys, limits, removed backends, database overrides, admin token, start-up errors;
11. two replicas on PostgreSQL (when SLUICE_TEST_POSTGRES_URL is set).

Every wait polls with a deadline; nothing sleeps a fixed time to wait for convergence. One
simulators process per module; one sluiced + Envoy shared by the tests that neither kill nor
restart them (each such test leaves the config file valid), and a fresh pair where a test
kills, restarts or loads them."""
from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import threading
import time

import anthropic
import openai
import pytest
import requests
import yaml

from harness import Envoy, envoy_binary, free_port, module_dir
from sim import Simulators
from sluiced import DEMO_KEY, ROOT, Sluiced, demo_config, envoy_for, gateway_port_of

with open(ROOT / "envoy-module" / "sluice.yaml") as _f:
    DEMO_MODELS = [m["id"] for m in yaml.safe_load(_f)["models"]]
EMBEDDING_MODELS = [m for m in DEMO_MODELS if "embedding" in m]
# Images and audio models (test_images_audio.py) answer their own endpoints, not chat; rerank models only rerank (test_rerank.py).
MEDIA_MODELS = [m for m in DEMO_MODELS if any(kind in m for kind in ("image", "dall-e", "tts", "whisper"))]
RERANK_MODELS = [m for m in DEMO_MODELS if "rerank" in m]
CHAT_MODELS = [m for m in DEMO_MODELS if m not in EMBEDDING_MODELS and m not in MEDIA_MODELS and m not in RERANK_MODELS]


# MARK: - Helpers


def wait_until(condition, timeout: float, what: str, interval: float = 0.01):
    """Polls `condition()` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def auth(key: str) -> dict:
    return {"authorization": f"Bearer {key}"}


def chat(session: requests.Session, base: str, model: str, key: str = DEMO_KEY, text: str = "Hello") -> requests.Response:
    return session.post(
        f"{base}/v1/chat/completions", headers=auth(key), timeout=10,
        json={"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 16},
    )


def models_status(session: requests.Session, base: str, key: str) -> int:
    return session.get(f"{base}/v1/models", headers=auth(key), timeout=10).status_code


def add_model(config: dict, model_id: str, upstream_model: str | None = None) -> dict:
    """A copy of `config` with one more model on the OpenAI backend (whose simulator serves
    every `gpt-*` name)."""
    edited = yaml.safe_load(yaml.safe_dump(config))
    model = {"id": model_id, "backend": "openai", "created": 1721172741}
    if upstream_model:
        model["upstream_model"] = upstream_model
    edited["models"].append(model)
    return edited


def synced(node: dict | None) -> bool:
    """The node is connected and has ACKed what it was last sent of all six types."""
    return bool(
        node and node["connected"] and node["in_sync"] and len(node["resources"]) == 6
        and all(r["acked_version"] == r["sent_version"] for r in node["resources"]))


def envoy_clusters(envoy: Envoy) -> set[str]:
    """The names of the clusters Envoy has (its admin's /clusters)."""
    text = requests.get(f"http://127.0.0.1:{envoy.admin_port}/clusters", timeout=5).text
    return {line.split("::", 1)[0] for line in text.splitlines() if "::" in line}


def stat(envoy: Envoy, name: str) -> int:
    return envoy.stats().get(name, 0)


def closed_by_envoy(stats: dict[str, int]) -> dict[str, int]:
    """Envoy stats that count connections Envoy closed or drained, and listener rebuilds."""
    names = [name for name in stats if name.startswith("http.gateway.downstream_cx_destroy_local")]
    names += [
        "http.gateway.downstream_cx_drain_close",
        "listener_manager.listener_modified",
        "listener_manager.listener_removed",
        "listener_manager.total_filter_chains_draining",
        "listener_manager.total_listeners_draining",
    ]
    return {name: stats.get(name, 0) for name in sorted(set(names))}


class Traffic(threading.Thread):
    """Requests in a loop on keep-alive sessions (one per thread) until stopped; records every
    answer that is not 200 and every exception."""

    def __init__(self, base: str, *, threads: int = 1, pace: float = 0.0, deadline: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.threads = threads
        self.pace = pace
        self.deadline = time.monotonic() + deadline
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures: list[str] = []

    def count(self) -> int:
        with self.lock:
            return self.ok + len(self.failures)

    def worker(self, index: int) -> None:
        session = requests.Session()
        i = 0
        while not self.stopping.is_set() and time.monotonic() < self.deadline:
            i += 1
            try:
                if i % 2:
                    r = session.get(f"{self.base}/v1/models", headers=auth(DEMO_KEY), timeout=10)
                else:
                    r = chat(session, self.base, "sim-llama-3-8b", text=f"load {index} {i}")
                with self.lock:
                    if r.status_code == 200:
                        self.ok += 1
                    else:
                        self.failures.append(f"{r.status_code}: {r.text[:200]}")
            except Exception as error:  # a connection Envoy reset, a timeout
                with self.lock:
                    self.failures.append(repr(error))
            if self.pace:
                time.sleep(self.pace)
        session.close()

    def run(self) -> None:
        workers = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(self.threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()

    def stop(self) -> "Traffic":
        self.stopping.set()
        self.join(timeout=30)
        return self


# MARK: - Fixtures


@pytest.fixture(scope="module")
def sims():
    with Simulators(pace_ms=0) as s:
        yield s


class Pair:
    """A sluiced and an Envoy configured only by it."""

    def __init__(
        self, sims: Simulators, config: dict | None = None, node_id: str = "sluice-gateway", database: str | None = None
    ) -> None:
        self.config = config or demo_config(sims, free_port())
        self.base = f"http://127.0.0.1:{gateway_port_of(self.config)}"
        self.sluiced = Sluiced(self.config, database=database)
        self.node_id = node_id
        self.envoy = None

    def __enter__(self) -> "Pair":
        self.sluiced.start().wait_ready()
        try:
            self.envoy = envoy_for(self.sluiced, self.node_id).start().wait_ready()
        except Exception:
            self.sluiced.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.envoy:
            self.envoy.stop()
        self.sluiced.stop()

    def diagnostics(self) -> str:
        return f"--- sluiced log ---\n{self.sluiced.logs()[-6000:]}\n--- envoy log ---\n{self.envoy.logs()[-6000:]}"


@pytest.fixture(scope="module")
def shared(sims):
    with Pair(sims) as pair:
        yield pair


@pytest.fixture(scope="module")
def oai(shared):
    return openai.OpenAI(base_url=f"{shared.base}/v1", api_key=DEMO_KEY, max_retries=0, timeout=30)


# MARK: - 1. Every model of the default config through the official SDKs


def test_models_list_has_every_demo_model(oai):
    ids = [m.id for m in oai.models.list()]
    assert sorted(ids) == sorted(DEMO_MODELS)


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_every_chat_model_answers_the_openai_sdk(oai, model):
    r = oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello through sluiced"}], max_tokens=32)
    assert r.choices[0].message.role == "assistant"
    assert "Hello through sluiced" in r.choices[0].message.content
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0


@pytest.mark.parametrize("model", EMBEDDING_MODELS)
def test_every_embedding_model_answers_the_openai_sdk(oai, model):
    r = oai.embeddings.create(model=model, input=["first text", "second text"])
    assert len(r.data) == 2 and all(len(d.embedding) > 0 for d in r.data)  # (Gemini reports no embedding usage)


def test_a_stream_through_the_openai_sdk(oai):
    stream = oai.chat.completions.create(
        model="bedrock-claude-haiku", messages=[{"role": "user", "content": "Stream me some words"}],
        max_tokens=64, stream=True, stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert "Stream me some words" in text
    assert finish == "stop" and usage is not None and usage.completion_tokens > 0


def test_the_anthropic_sdk(shared):
    claude = anthropic.Anthropic(base_url=shared.base, api_key=DEMO_KEY, max_retries=0, timeout=30)
    r = claude.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "Hi Claude via sluiced"}])
    assert r.type == "message" and r.role == "assistant"
    assert "Hi Claude via sluiced" in r.content[0].text
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0


# MARK: - 2. An edit that adds a model is routable in under a second


def test_an_added_model_is_routable_within_a_second(shared, sims):
    # Five edits, one model each: from the file's save to the first 200 for the new model.
    session = requests.Session()
    before = shared.envoy.stats()
    times = []
    for i in range(5):
        model = f"gpt-4o-mini-added-{i}"
        assert chat(session, shared.base, model).status_code == 404  # model_not_found before the edit
        edited = add_model(shared.config, model)
        written = shared.sluiced.write_config(edited)
        deadline = written + 5
        while True:
            r = chat(session, shared.base, model, text="added model")
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            assert r.status_code == 404, r.text
            time.sleep(0.005)
        elapsed = time.monotonic() - written
        assert r.status_code == 200, f"{r.status_code} {r.text}\n{shared.diagnostics()}"
        assert "added model" in r.json()["choices"][0]["message"]["content"]
        assert sims.last("openai")["body"]["model"] == model
        times.append(elapsed)
        # Later tests edit on top of the file as it is now.
        shared.config = edited
    print(f"\nedit -> routable: {', '.join(f'{t * 1000:.0f}' for t in times)} ms "
          f"(p50 {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms)")
    assert max(times) < 1.0, f"an added model took {max(times):.3f}s to become routable"
    after = shared.envoy.stats()
    # Models reach Envoy as filter config (ECDS): the listener is never rebuilt.
    assert after.get("listener_manager.listener_modified", 0) == before.get("listener_manager.listener_modified", 0)
    assert closed_by_envoy(after) == closed_by_envoy(before)


def test_an_added_model_with_an_upstream_name_is_rewritten_within_a_second(sims):
    # A regression test: the edit changes the openai cluster (its upstream filter's
    # model_overrides); Envoy warms the updated EDS cluster on an EDS response, which sluiced did
    # not send for unchanged endpoints, so the edit waited for Envoy's 15 s initial_fetch_timeout
    # (fixed in e94fc9d: every CDS response is followed by the stream's EDS resources).
    # Its own pair: a warming cluster would hold the shared Envoy's CDS out of sync for 15 s.
    with Pair(sims) as pair, requests.Session() as session:
        written = pair.sluiced.write_config(add_model(pair.config, "gpt-renamed", upstream_model="gpt-4o-mini"))

        def rewritten():
            r = chat(session, pair.base, "gpt-renamed", text="renamed model")
            last = sims.last("openai")
            return r.status_code == 200 and last["body"]["model"] == "gpt-4o-mini"

        try:
            wait_until(rewritten, 3, "the upstream model name to be sent", interval=0.02)
        finally:
            print(f"\nserved {pair.sluiced.status()['served_version']}, node: {pair.sluiced.node(pair.node_id)}")
        elapsed = time.monotonic() - written
        print(f"edit (upstream_model) -> rewritten: {elapsed * 1000:.0f} ms")
        assert elapsed < 1.0
        wait_until(lambda: synced(pair.sluiced.node(pair.node_id)), 2, "the CDS update to be ACKed", interval=0.02)
        assert pair.envoy.stats().get("cluster_manager.warming_clusters", 0) == 0


# MARK: - 3. An invalid edit is refused with its error, traffic unaffected


def misspelt_field(config: dict) -> tuple[dict, str, str]:
    edited = yaml.safe_load(yaml.safe_dump(config))
    edited["models"][0]["pirce"] = edited["models"][0].pop("price")
    return edited, "pirce:", "models[0]: unknown field 'pirce'; did you mean 'price'?"


def unknown_backend(config: dict) -> tuple[dict, str, str]:
    edited = yaml.safe_load(yaml.safe_dump(config))
    edited["models"][1]["backend"] = "opneai"
    return edited, "opneai", "models[1].backend: unknown backend 'opneai'; did you mean 'openai'?"


@pytest.mark.parametrize("make_edit", [misspelt_field, unknown_backend], ids=["misspelt-field", "unknown-backend"])
def test_an_invalid_edit_is_refused_and_traffic_is_unaffected(shared, make_edit):
    config, token, message = make_edit(shared.config)
    text = yaml.safe_dump(config, sort_keys=False)
    (line_index,) = [i for i, line in enumerate(text.splitlines()) if token in line]
    line = text.splitlines()[line_index]
    column = line.index(token) + 1
    expected = f"{shared.sluiced.config_path}:{line_index + 1}:{column}: {message}"
    served = shared.sluiced.status()["served_version"]
    log_start = len(shared.sluiced.logs())

    traffic = Traffic(shared.base, pace=0.05, deadline=30)
    traffic.start()
    wait_until(lambda: traffic.count() >= 3, 10, "traffic before the edit")
    shared.sluiced.write_config(text)
    refused = wait_until(
        lambda: "is refused" in shared.sluiced.logs()[log_start:] and shared.sluiced.logs()[log_start:], 5,
        "sluiced to refuse the edit")
    print(f"\nsluiced log:\n{refused.strip()}")
    assert expected in refused, refused
    assert "still serving the last good config" in refused
    # Traffic during: a few more requests after the refusal, then the file is made valid again.
    seen = traffic.count()
    wait_until(lambda: traffic.count() >= seen + 5, 10, "traffic after the refusal")
    assert shared.sluiced.status()["served_version"] == served
    with requests.Session() as session:
        assert chat(session, shared.base, "gpt-4o-mini").status_code == 200
    # And after: the valid config again (with one more model, so a new snapshot is served).
    fixed = add_model(shared.config, f"gpt-after-{make_edit.__name__}")
    shared.sluiced.write_config(fixed)
    with requests.Session() as session:
        wait_until(lambda: chat(session, shared.base, f"gpt-after-{make_edit.__name__}").status_code == 200, 5,
                   "the fixed config to be served")
    shared.config = fixed
    seen = traffic.count()
    wait_until(lambda: traffic.count() >= seen + 3, 10, "traffic after the fix")
    traffic.stop()
    assert traffic.failures == [], traffic.failures[:5]
    assert traffic.ok >= 11


def test_the_admin_status_shows_a_refused_edit(shared):
    config, _, message = misspelt_field(shared.config)
    log_start = len(shared.sluiced.logs())
    shared.sluiced.write_config(config)
    try:
        wait_until(lambda: "is refused" in shared.sluiced.logs()[log_start:], 5, "sluiced to refuse the edit")
        status = json.dumps(shared.sluiced.status())
        assert "pirce" in status, status
    finally:
        log_start = len(shared.sluiced.logs())
        shared.sluiced.write_config(shared.config)
        wait_until(lambda: "config file changed" in shared.sluiced.logs()[log_start:], 5, "the valid file to load")


# MARK: - 4. A config Envoy NACKs is reported, traffic unaffected


def test_a_config_envoy_nacks_is_reported_by_the_admin_api(shared, tmp_path):
    # The compiler accepts a TLS listener naming certificate files (Envoy reads them); Envoy
    # cannot load files that do not exist and NACKs the listeners.
    missing = tmp_path / "missing"
    edited = yaml.safe_load(yaml.safe_dump(shared.config))
    tls_port = free_port()
    edited["listeners"].append(
        {"name": "tls-gateway", "port": tls_port, "tls": {"cert_file": f"{missing}/cert.pem", "key_file": f"{missing}/key.pem"}})
    check = shared.sluiced.cli("check", "--config", shared.sluiced.config_path)
    assert check.returncode == 0, check.stderr  # the current file is valid
    traffic = Traffic(shared.base, pace=0.05, deadline=30)
    traffic.start()
    wait_until(lambda: traffic.count() >= 3, 10, "traffic before the edit")
    shared.sluiced.write_config(edited)

    def nacked():
        node = shared.sluiced.node(shared.node_id)
        nack = node and node.get("last_nack")
        return nack if nack and not nack.get("resolved") else None

    nack = wait_until(nacked, 10, "a NACK in /v1/admin/status", interval=0.05)
    print(f"\nlast_nack: {nack}")
    assert nack["type_url"] == "type.googleapis.com/envoy.config.listener.v3.Listener", nack
    assert "cert.pem" in nack["message"] or "key.pem" in nack["message"], nack
    assert shared.envoy.stats().get("listener_manager.lds.update_rejected", 0) >= 1
    seen = traffic.count()
    wait_until(lambda: traffic.count() >= seen + 5, 10, "traffic after the NACK")
    # The fixed file: a new LDS version that Envoy ACKs resolves the NACK.
    shared.sluiced.write_config(shared.config)

    def resolved():
        node = shared.sluiced.node(shared.node_id)
        return node if synced(node) and node["last_nack"] and node["last_nack"]["resolved"] else None

    node = wait_until(resolved, 10, "the NACK to be resolved", interval=0.05)
    assert node["connected"]
    seen = traffic.count()
    wait_until(lambda: traffic.count() >= seen + 3, 10, "traffic after the fix")
    traffic.stop()
    assert traffic.failures == [], traffic.failures[:5]


def test_an_envoy_connecting_after_a_nack_gets_the_last_accepted_config(sims, tmp_path):
    with Pair(sims) as pair:
        edited = yaml.safe_load(yaml.safe_dump(pair.config))
        edited["listeners"].append({"name": "tls-gateway", "port": free_port(), "tls": {
            "cert_file": f"{tmp_path}/missing/cert.pem", "key_file": f"{tmp_path}/missing/key.pem"}})
        edited = add_model(edited, "gpt-with-the-nacked-listener")
        pair.sluiced.write_config(edited)
        wait_until(lambda: (n := pair.sluiced.node(pair.node_id)) and n.get("last_nack"), 10, "the NACK", interval=0.05)
        pair.envoy.stop()
        late = envoy_for(pair.sluiced, node_id="sluice-after-nack").start()
        try:
            late.wait_ready()
            node = wait_until(lambda: (n := pair.sluiced.node("sluice-after-nack")) and synced(n) and n, 10,
                              "the late Envoy in sync")
            assert node.get("last_nack") is None, node  # it was never sent the refused listeners
            assert late.stats().get("listener_manager.lds.update_rejected", 0) == 0
            with requests.Session() as session:
                # The accepted types of the refused snapshot (the model, in ECDS) are served.
                assert chat(session, pair.base, "gpt-with-the-nacked-listener").status_code == 200
        finally:
            late.stop()


# MARK: - 5. 100 key creations and revocations under load: nothing fails, nothing is closed


def poll_key(session: requests.Session, base: str, key: str, want: int, since: float, timeout: float = 5.0) -> float:
    """Polls `/v1/models` with `key` until it answers `want` (200 live, 401 revoked); returns the
    milliseconds since `since`. Any other answer fails."""
    deadline = time.monotonic() + timeout
    while True:
        status = models_status(session, base, key)
        if status == want:
            return (time.monotonic() - since) * 1000
        assert status in (200, 401), status
        if time.monotonic() > deadline:
            raise AssertionError(f"key still answers {status} after {timeout}s (want {want})")
        time.sleep(0.005)


def test_key_churn_under_load_drops_nothing(sims):
    config = demo_config(sims, free_port())
    # The demo key allows 600 requests a minute; the load loop makes more.
    config["consumers"][0]["limits"] = {"requests_per_minute": 10_000_000, "tokens_per_minute": 1_000_000_000}
    config["teams"][0]["limits"] = {"tokens_per_minute": 1_000_000_000}
    with Pair(sims, config) as pair:
        poller = requests.Session()
        assert models_status(poller, pair.base, DEMO_KEY) == 200  # its connection opens before the counts
        traffic = Traffic(pair.base, threads=4, deadline=90)
        traffic.start()
        wait_until(lambda: traffic.count() >= 40, 10, "the load loop to run")
        before = pair.envoy.stats()
        reloads_before = before.get("extension_config_discovery.http_filter.sluice.config_reload", 0)
        live_ms, revoked_ms = [], []
        # Ten bursts of ten creations, then ten revocations; every key polled until it works
        # (then until it is refused), timed from its own admin call.
        for batch in range(10):
            created = {}
            for i in range(10):
                name = f"churn-{batch}-{i}"
                at = time.monotonic()
                created[name] = (pair.sluiced.create_consumer(name), at)
            try:
                for name, (key, at) in created.items():
                    live_ms.append(poll_key(poller, pair.base, key, 200, at))
                revoked = {}
                for name, (key, _) in created.items():
                    at = time.monotonic()
                    pair.sluiced.disable_consumer(name)
                    revoked[name] = (key, at)
                for name, (key, at) in revoked.items():
                    revoked_ms.append(poll_key(poller, pair.base, key, 401, at))
            except AssertionError as error:
                raise AssertionError(f"batch {batch} ({name}): {error}\n{pair.sluiced.status()}\n{pair.diagnostics()}") from None
        churn_requests = traffic.count()
        after = pair.envoy.stats()
        traffic.stop()
        final = pair.envoy.stats()
        reloads = after.get("extension_config_discovery.http_filter.sluice.config_reload", 0) - reloads_before
        print(
            f"\nload: {traffic.ok} ok, {len(traffic.failures)} failed ({churn_requests} during the churn); "
            f"key create -> live: p50 {statistics.median(live_ms):.0f} ms, max {max(live_ms):.0f} ms; "
            f"disable -> 401: p50 {statistics.median(revoked_ms):.0f} ms, max {max(revoked_ms):.0f} ms; "
            f"{reloads} ECDS updates")
        assert len(live_ms) == 100 and len(revoked_ms) == 100
        assert traffic.failures == [], traffic.failures[:5]
        assert traffic.ok >= 200
        assert reloads >= 20  # the keys went out as filter config updates (at least one per burst)
        assert closed_by_envoy(final) == closed_by_envoy(before), (closed_by_envoy(before), closed_by_envoy(final))
        # Every connection of the load and the poller stayed open: none was opened during the churn.
        assert after["http.gateway.downstream_cx_total"] == before["http.gateway.downstream_cx_total"]
        assert final.get("listener_manager.listener_modified", 0) == 0
        poller.close()


def test_back_to_back_admin_writes_all_converge(sims):
    # A regression test: sluiced read the consumers and teams, then the database version, so a
    # write between the reads was recorded as served but never compiled (keys that never went
    # live, or kept working after their revocation); fixed by one consistent read (f626a5e).
    # Bursts of writes, each burst's last one racing a reload (every 10 ms here, to hit the race
    # in a few seconds); each burst must be live through Envoy within 2 s.
    config = demo_config(sims, free_port())
    config["consumers"][0]["limits"] = {"requests_per_minute": 10_000_000}
    pair = Pair(sims, config)
    pair.sluiced.reload_interval_ms = 10
    with pair, requests.Session() as session:
        for burst in range(30):
            names = [f"burst-{burst}-{i}" for i in range(5)]
            keys = {name: pair.sluiced.create_consumer(name) for name in names}
            start = time.monotonic()
            for name, key in keys.items():
                try:
                    poll_key(session, pair.base, key, 200, start, timeout=2)
                except AssertionError as error:
                    raise AssertionError(f"burst {burst}, {name} never went live: {error}; "
                                         f"{pair.sluiced.status()}") from None
            for name in names:
                pair.sluiced.disable_consumer(name)
            start = time.monotonic()
            for name, key in keys.items():
                try:
                    poll_key(session, pair.base, key, 401, start, timeout=2)
                except AssertionError as error:
                    raise AssertionError(f"burst {burst}, {name} still works after its revocation: {error}; "
                                         f"{pair.sluiced.status()}") from None


# MARK: - 6. sluiced killed: Envoy keeps serving; restarted: reconnects and converges


def test_fail_static_and_reconnect(sims):
    with Pair(sims) as pair:
        session = requests.Session()
        key = pair.sluiced.create_consumer("before-kill")
        wait_until(lambda: models_status(session, pair.base, key) == 200, 5, "the key to be live")
        pair.sluiced.kill()
        wait_until(lambda: stat(pair.envoy, "control_plane.connected_state") == 0, 10,
                   "Envoy to notice that sluiced is gone", interval=0.05)
        # Fail-static: the last config keeps serving, every model and both keys.
        for model in CHAT_MODELS:
            r = chat(session, pair.base, model)
            assert r.status_code == 200, (model, r.text)
        assert models_status(session, pair.base, key) == 200
        assert models_status(session, pair.base, "sk-sluice-unknown") == 401

        # An edit saved while sluiced is down is served once it is back.
        pair.config = add_model(pair.config, "gpt-while-down")
        pair.sluiced.write_config(pair.config)
        killed_at = time.monotonic()
        pair.sluiced.start().wait_ready()  # same ports, same working directory and database

        def reconnected():
            node = pair.sluiced.node(pair.node_id)
            return node if synced(node) else None

        node = wait_until(reconnected, 30, "Envoy to reconnect and ACK", interval=0.05)
        print(f"\nrestart -> Envoy connected and in sync: {(time.monotonic() - killed_at) * 1000:.0f} ms; {node}")
        assert stat(pair.envoy, "control_plane.connected_state") == 1
        assert models_status(session, pair.base, key) == 200  # the database kept the key
        wait_until(lambda: chat(session, pair.base, "gpt-while-down").status_code == 200, 2, "the edit made while down")
        # A change after the restart converges: a key, and an edit of the file.
        key2 = pair.sluiced.create_consumer("after-restart")
        wait_until(lambda: models_status(session, pair.base, key2) == 200, 5, "a key created after the restart",
                   interval=0.02)
        pair.sluiced.write_config(add_model(pair.config, "gpt-after-restart"))
        wait_until(lambda: chat(session, pair.base, "gpt-after-restart").status_code == 200, 5,
                   "a model added after the restart", interval=0.02)
        pair.sluiced.disable_consumer("before-kill")
        wait_until(lambda: models_status(session, pair.base, key) == 401, 5, "a key revoked after the restart",
                   interval=0.02)
        # SIGTERM: a graceful shutdown (exit 0, promptly) while Envoy is connected; Envoy keeps serving.
        stopping = time.monotonic()
        assert pair.sluiced.stop() == 0, pair.sluiced.logs()[-2000:]
        assert time.monotonic() - stopping < 5
        wait_until(lambda: stat(pair.envoy, "control_plane.connected_state") == 0, 10, "Envoy to notice", interval=0.05)
        assert models_status(session, pair.base, key2) == 200
        assert chat(session, pair.base, "gpt-after-restart").status_code == 200


# MARK: - 7. An Envoy started after a change gets the current config


def test_an_envoy_started_after_a_change_gets_the_current_config(shared):
    key = shared.sluiced.create_consumer("late-envoy-key")
    model = "gpt-late-envoy"
    edited = add_model(shared.config, model)
    shared.sluiced.write_config(edited)
    with requests.Session() as session:
        wait_until(lambda: chat(session, shared.base, model).status_code == 200, 5, "the change on the first Envoy")
    shared.config = edited
    first = wait_until(lambda: (n := shared.sluiced.node(shared.node_id)) and synced(n) and n, 5, "the first Envoy in sync")
    current = {r["type_url"]: r["acked_version"] for r in first["resources"]}

    # Every Envoy of a sluiced gets the same listeners, so the late one can bind the gateway
    # port only once the first one is gone.
    shared.envoy.stop()
    late = envoy_for(shared.sluiced, node_id="sluice-late").start()
    try:
        late.wait_ready()
        with requests.Session() as session:
            # The first answers the late Envoy gives are already the current config's.
            (r,) = wait_until(lambda: _first_answer(session, shared.base, key), 10, "the late Envoy's listener")
            assert r.status_code == 200, r.text
            assert chat(session, shared.base, model).status_code == 200
        node = shared.sluiced.node("sluice-late")
        assert synced(node), node
        assert {r["type_url"]: r["acked_version"] for r in node["resources"]} == current, (current, node)
    finally:
        late.stop()
        shared.envoy = envoy_for(shared.sluiced, node_id=shared.node_id).start().wait_ready()


def port_refuses(base: str) -> bool:
    """True when a new connection to `base` is refused."""
    try:
        requests.get(f"{base}/v1/models", headers=auth(DEMO_KEY), timeout=2)
        return False
    except requests.ConnectionError:
        return True


def _first_answer(session, base, key):
    """[the answer], or None while nothing listens (a list: a non-2xx Response is falsy)."""
    try:
        return [session.get(f"{base}/v1/models", headers=auth(key), timeout=5)]
    except requests.ConnectionError:
        return None


def test_three_envoys_on_one_sluiced_all_converge(shared):
    # Two more Envoys (their own node ids) on the shared sluiced; the gateway port is shared
    # with the first through SO_REUSEPORT (Envoy's default on Linux). A key and an edit reach all.
    extra = [envoy_for(shared.sluiced, node_id=f"sluice-fleet-{i}", concurrency=1).start() for i in range(2)]
    try:
        for envoy in extra:
            envoy.wait_ready()
        envoys = [shared.envoy, *extra]
        nodes = [shared.node_id, "sluice-fleet-0", "sluice-fleet-1"]
        reloads = [stat(e, "extension_config_discovery.http_filter.sluice.config_reload") for e in envoys]
        ecds = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"

        def served_after(version):
            return (v := shared.sluiced.status()["served_version"]) != version and v

        served = shared.sluiced.status()["served_version"]
        key = shared.sluiced.create_consumer("fleet-key")
        served = wait_until(lambda: served_after(served), 5, "the key's snapshot", interval=0.02)
        edited = add_model(shared.config, "gpt-fleet")
        shared.sluiced.write_config(edited)
        shared.config = edited
        served = wait_until(lambda: served_after(served), 5, "the edit's snapshot", interval=0.02)

        def converged():
            by_node = {n["node_id"]: n for n in shared.sluiced.status()["nodes"]}
            return all(synced(by_node.get(n)) and {r["type_url"]: r["acked_version"] for r in by_node[n]["resources"]}[ecds]
                       == served for n in nodes)

        wait_until(converged, 5, f"every Envoy to ACK the filter config of snapshot {served}", interval=0.05)
        for envoy, before in zip(envoys, reloads):
            assert stat(envoy, "extension_config_discovery.http_filter.sluice.config_reload") > before
        with requests.Session() as session:
            wait_until(lambda: models_status(session, shared.base, key) == 200, 5, "the key")
            assert chat(session, shared.base, "gpt-fleet").status_code == 200
    finally:
        for envoy in extra:
            envoy.stop()


# MARK: - 8. `sluiced keys create` writes the database the daemon polls


def test_cli_key_create_is_live_through_envoy(shared):
    created = shared.sluiced.cli(
        "keys", "create", "--database", shared.sluiced.database, "--team", "demo-team", "--budget-usd-per-day", "20")
    assert created.returncode == 0, created.stderr
    match = re.search(r"sk-sluice-[A-Za-z0-9_-]+", created.stdout)
    assert match, created.stdout
    key = match.group(0)
    started = time.monotonic()
    with requests.Session() as session:
        wait_until(lambda: models_status(session, shared.base, key) == 200, 5, "the CLI's key through Envoy")
        print(f"\nCLI key -> live: {(time.monotonic() - started) * 1000:.0f} ms")
        r = chat(session, shared.base, "gpt-4o-mini", key=key)
        assert r.status_code == 200, r.text


# MARK: - 9. `sluiced render` loads in Envoy and serves statically


def test_render_output_validates_and_serves_statically(shared, tmp_path):
    config = yaml.safe_load(yaml.safe_dump(shared.config))
    port = free_port()
    config["listeners"][0]["port"] = port
    config_path = tmp_path / "sluice.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    admin_port = free_port()
    rendered = shared.sluiced.cli("render", "--config", str(config_path), "--admin-port", str(admin_port))
    assert rendered.returncode == 0, rendered.stderr
    bootstrap_path = tmp_path / "envoy.yaml"
    bootstrap_path.write_text(rendered.stdout)
    env = dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=module_dir())
    validated = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(bootstrap_path), "--use-dynamic-base-id"],
        capture_output=True, text=True, env=env, timeout=60)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    static = yaml.safe_load(rendered.stdout)
    assert "dynamic_resources" not in static
    with Envoy(static, as_yaml=True) as envoy:
        with requests.Session() as session:
            r = session.get(f"http://127.0.0.1:{port}/v1/models", headers=auth(DEMO_KEY), timeout=10)
            assert r.status_code == 200, r.text
            assert sorted(m["id"] for m in r.json()["data"]) == sorted(m["id"] for m in config["models"])
            r = chat(session, f"http://127.0.0.1:{port}", "claude-sonnet-4-6")
            assert r.status_code == 200, r.text
        assert envoy.process.poll() is None


# MARK: - 10. More edits through Envoy: rotated keys, removed backends, database overrides


def test_a_rotated_key_replaces_the_old_one_through_envoy(shared):
    with requests.Session() as session:
        old = shared.sluiced.create_consumer("rotating")
        wait_until(lambda: models_status(session, shared.base, old) == 200, 5, "the first key")
        new = shared.sluiced.admin("POST", "/v1/admin/consumers/rotating/rotate")["key"]
        assert new != old
        wait_until(lambda: models_status(session, shared.base, new) == 200, 5, "the rotated key")
        assert models_status(session, shared.base, old) == 401


def test_removing_a_backend_under_traffic_fails_no_request(shared):
    # Make-before-break: the vertex cluster and its model go; requests to the others never fail.
    edited = yaml.safe_load(yaml.safe_dump(shared.config))
    edited["backends"] = [b for b in edited["backends"] if b["name"] != "vertex"]
    edited["models"] = [m for m in edited["models"] if m.get("backend") != "vertex"]
    traffic = Traffic(shared.base, threads=2, pace=0.02, deadline=30)
    traffic.start()
    with requests.Session() as session:
        try:
            wait_until(lambda: traffic.count() >= 5, 10, "traffic before the edit")
            assert "vertex" in envoy_clusters(shared.envoy)
            shared.sluiced.write_config(edited)
            wait_until(lambda: chat(session, shared.base, "vertex-gemini-2.5-flash").status_code == 404, 5,
                       "the vertex model to go", interval=0.02)
            wait_until(lambda: "vertex" not in envoy_clusters(shared.envoy), 5, "the vertex cluster to go", interval=0.05)
            shared.sluiced.write_config(shared.config)  # and back
            wait_until(lambda: chat(session, shared.base, "vertex-gemini-2.5-flash").status_code == 200, 5,
                       "the vertex model back", interval=0.02)
            assert "vertex" in envoy_clusters(shared.envoy)
            seen = traffic.count()
            wait_until(lambda: traffic.count() >= seen + 5, 10, "traffic after the edits")
        finally:
            traffic.stop()
    assert traffic.failures == [], traffic.failures[:5]


def test_listeners_added_moved_and_removed(sims):
    # LDS edits: a second listener comes up; the first moves to another port (the old one stops
    # answering); the second goes again. Each within a second of the save.
    with Pair(sims) as pair, requests.Session() as session:
        second, moved = free_port(), free_port()
        edited = yaml.safe_load(yaml.safe_dump(pair.config))
        edited["listeners"].append({"name": "second", "port": second})
        written = pair.sluiced.write_config(edited)
        wait_until(lambda: (_first_answer(session, f"http://127.0.0.1:{second}", DEMO_KEY) or [None])[0] is not None
                   and models_status(session, f"http://127.0.0.1:{second}", DEMO_KEY) == 200, 5, "the second listener")
        added_ms = (time.monotonic() - written) * 1000
        assert chat(session, f"http://127.0.0.1:{second}", "claude-sonnet-4-6").status_code == 200
        assert models_status(session, pair.base, DEMO_KEY) == 200
        edited["listeners"][0]["port"] = moved
        written = pair.sluiced.write_config(edited)
        with requests.Session() as fresh:
            wait_until(lambda: (_first_answer(fresh, f"http://127.0.0.1:{moved}", DEMO_KEY) or [None])[0] is not None,
                       5, "the moved listener")
            moved_ms = (time.monotonic() - written) * 1000
            assert chat(fresh, f"http://127.0.0.1:{moved}", "gpt-4o-mini").status_code == 200

            # New connections are refused at once (open ones drain, Envoy's way of removing a listener).
            wait_until(lambda: port_refuses(pair.base), 10, "the old port to close", interval=0.05)
            closed_ms = (time.monotonic() - written) * 1000
            del edited["listeners"][1]
            written = pair.sluiced.write_config(edited)
            wait_until(lambda: port_refuses(f"http://127.0.0.1:{second}"), 10, "the second listener to go", interval=0.05)
            removed_ms = (time.monotonic() - written) * 1000
            assert chat(fresh, f"http://127.0.0.1:{moved}", "gpt-4o-mini").status_code == 200
        print(f"\nlistener added -> serving: {added_ms:.0f} ms; moved -> serving: {moved_ms:.0f} ms, "
              f"old port closed: {closed_ms:.0f} ms; removed -> closed: {removed_ms:.0f} ms")
        assert added_ms < 1000 and moved_ms < 1000
        node = wait_until(lambda: (n := pair.sluiced.node(pair.node_id)) and synced(n) and n, 5, "in sync")
        assert node.get("last_nack") is None, node


def test_a_database_consumer_overrides_the_config_one_through_envoy(shared):
    # (Last in the file: it takes the demo key away for a moment.)
    with requests.Session() as session:
        assert models_status(session, shared.base, DEMO_KEY) == 200
        key = shared.sluiced.create_consumer("demo", team="demo-team")
        listed = shared.sluiced.admin("GET", "/v1/admin/consumers/demo")
        assert listed["source"] == "database" and listed.get("overrides_config") is True, listed
        wait_until(lambda: models_status(session, shared.base, key) == 200, 5, "the database key of 'demo'")
        assert models_status(session, shared.base, DEMO_KEY) == 401  # the config's key is replaced
        shared.sluiced.admin("DELETE", "/v1/admin/consumers/demo")
        wait_until(lambda: models_status(session, shared.base, DEMO_KEY) == 200, 5, "the config's key back")
        assert models_status(session, shared.base, key) == 401


def test_a_provider_key_rotated_in_its_file_is_used(sims, tmp_path):
    # The schema: `credential.file` is "re-read when it changes; served to Envoy over SDS" (a
    # regression test: sluiced read it only when compiling until fcb243e).
    key_file = tmp_path / "openai-key"
    key_file.write_text("sk-sim-openai\n")
    config = demo_config(sims, free_port())
    (openai_backend,) = [b for b in config["backends"] if b["name"] == "openai"]
    openai_backend["credential"] = {"file": str(key_file)}

    def rotate(value: str) -> float:
        temp = tmp_path / "openai-key.new"
        temp.write_text(value + "\n")
        at = time.monotonic()
        os.replace(temp, key_file)
        return at

    with Pair(sims, config) as pair, requests.Session() as session:
        assert chat(session, pair.base, "gpt-4o-mini").status_code == 200
        before = pair.envoy.stats()
        # A key the simulator refuses: the rotation is seen when the answers turn 401.
        at = rotate("sk-sim-wrong-key")
        wait_until(lambda: chat(session, pair.base, "gpt-4o-mini").status_code == 401, 3,
                   "the rotated key to be sent", interval=0.05)
        wrong_ms = (time.monotonic() - at) * 1000
        at = rotate("sk-sim-openai")
        wait_until(lambda: chat(session, pair.base, "gpt-4o-mini").status_code == 200, 3,
                   "the good key again", interval=0.05)
        print(f"\nkey file rotated -> used: {wrong_ms:.0f} ms, {(time.monotonic() - at) * 1000:.0f} ms")
        after = pair.envoy.stats()
        # SDS alone: no cluster or listener was rebuilt for it.
        for name in ("cluster_manager.cluster_modified", "listener_manager.listener_modified"):
            assert after.get(name, 0) == before.get(name, 0), name


def test_limits_set_through_the_admin_api_reach_envoy(shared):
    with requests.Session() as session:
        key = shared.sluiced.create_consumer("limited")
        wait_until(lambda: models_status(session, shared.base, key) == 200, 5, "the key")
        shared.sluiced.admin("PUT", "/v1/admin/consumers/limited/limits", {"requests_per_minute": 1})
        # (A list: a requests.Response is falsy when it is not a 2xx.)
        (r,) = wait_until(lambda: (r := chat(session, shared.base, "gpt-4o-mini", key=key)).status_code == 429 and [r], 5,
                          "the limit to apply", interval=0.05)
        assert r.json()["error"]["type"] and "retry-after" in r.headers, (r.headers, r.text)
        shared.sluiced.admin("PUT", "/v1/admin/consumers/limited/limits", {})
        wait_until(lambda: chat(session, shared.base, "gpt-4o-mini", key=key).status_code == 200, 5,
                   "the limit to go", interval=0.05)


def test_the_admin_api_needs_its_token(shared):
    assert requests.get(f"{shared.sluiced.admin_url}/healthz", timeout=5).status_code == 200
    for headers in ({}, {"authorization": "Bearer wrong-token"}, {"authorization": f"Basic {shared.sluiced.token}"}):
        r = requests.get(f"{shared.sluiced.admin_url}/v1/admin/status", headers=headers, timeout=5)
        assert r.status_code == 401 and r.headers.get("www-authenticate") == "Bearer", (headers, r.status_code)
        r = requests.post(f"{shared.sluiced.admin_url}/v1/admin/consumers", json={"name": "intruder"}, headers=headers, timeout=5)
        assert r.status_code == 401
    assert requests.get(f"{shared.sluiced.admin_url}/openapi.json", timeout=5).json()["openapi"]


def test_an_invalid_config_at_startup_exits_with_its_diagnostic(sims):
    config, token, message = misspelt_field(demo_config(sims, free_port()))
    sluiced = Sluiced(config)
    line = next(i + 1 for i, text in enumerate(sluiced.config_text.splitlines()) if token in text)
    sluiced.start()
    try:
        code = sluiced.process.wait(timeout=30)
    finally:
        sluiced.kill()
    assert code != 0
    assert f"{sluiced.config_path}:{line}:3: {message}" in sluiced.logs(), sluiced.logs()


# MARK: - 11. PostgreSQL: the admin database of several sluiced replicas

POSTGRES_URL = os.environ.get("SLUICE_TEST_POSTGRES_URL")


@pytest.mark.skipif(not POSTGRES_URL, reason="SLUICE_TEST_POSTGRES_URL not set (Tests/start-postgres.sh, as Tests/run-all.sh does)")
def test_postgres_replicas_serve_each_others_keys(sims):
    # Two sluiced on one PostgreSQL database, each with its own Envoy (own gateway port): a key
    # created through either replica's admin API, or the CLI, is live on both Envoys; a revocation
    # too. Names are unique per run: the database is shared with the admin store's unit tests.
    run = os.urandom(4).hex()
    config_b = demo_config(sims, free_port())
    with Pair(sims, database=POSTGRES_URL) as a:
        b = Pair(sims, config_b, node_id="sluice-replica-b", database=POSTGRES_URL)
        with b, requests.Session() as session:
            bases = [a.base, b.base]
            key = a.sluiced.create_consumer(f"pg-a-{run}")
            for base in bases:
                poll_key(session, base, key, 200, time.monotonic())
            key_b = b.sluiced.create_consumer(f"pg-b-{run}")
            for base in bases:
                poll_key(session, base, key_b, 200, time.monotonic())
            created = a.sluiced.cli("keys", "create", "--database", POSTGRES_URL, "--name", f"pg-cli-{run}")
            assert created.returncode == 0, created.stderr
            cli_key = re.search(r"sk-sluice-[A-Za-z0-9_-]+", created.stdout).group(0)
            for base in bases:
                poll_key(session, base, cli_key, 200, time.monotonic())
            b.sluiced.disable_consumer(f"pg-a-{run}")
            for base in bases:
                poll_key(session, base, key, 401, time.monotonic())
            assert chat(session, b.base, "gpt-4o-mini", key=key_b).status_code == 200
            for name in (f"pg-a-{run}", f"pg-b-{run}", f"pg-cli-{run}"):
                a.sluiced.admin("DELETE", f"/v1/admin/consumers/{name}")
