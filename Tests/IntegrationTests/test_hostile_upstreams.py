"""Hostile upstreams through the real Envoy 1.40 with both filters (issue 8, item 3).

Upstream bytes are untrusted input: a provider (or anything pretending to be one) may answer with
absurd or mistyped token counts, broken JSON, lying lengths, corrupt event-stream frames, streams
that never end or stall. A Swift trap inside Envoy kills the whole proxy, so for every case:

- Envoy is still alive and the next, normal request works;
- the client gets the upstream's bytes (same-schema passthrough), an error in its own API's shape
  with a 5xx status, or a stream that ends (possibly cut) -- never a hang beyond a bound;
- token metrics stay sane: no `gen_ai_client_tokens_total` series grows by more than
  100_000_000 (the per-request bound usage is clamped to) or wraps;
- absurd usage is clamped and counted: `cluster.<cluster>.sluice.upstream_usage_clamped` + 1.

Cases: absurd and mistyped usage (JSON and streamed, every schema, OpenAI and Anthropic clients);
answers that are no answer (truncated, not JSON, empty, 100k-deep, 10 MiB); streams without their
terminator or usage, cut, reset, byte by byte, with a 10 MiB event; AWS event-stream frames that
lie (lengths, CRCs, headers); lying content-length, stalls, resets, broken heads; provider errors
with hostile bodies; Envoy's own replies; absurd tool-call indexes; Bedrock id headers; Gemini
embeddings.

One scriptable raw-socket upstream (hostile_upstream.py) stands behind four clusters, one per
schema (openai, anthropic, bedrock_converse, gemini); one Envoy serves the whole module and is
restarted if a case killed it or did not end with a normal, exactly metered request.
"""
from __future__ import annotations

import contextlib
import functools
import json
import time

import pytest

from harness import Envoy, free_port, gateway_bootstrap, header_route, static_cluster
from hostile_upstream import (
    HostileUpstream,
    Script,
    bedrock_event,
    event_stream_frame,
    full_response,
    http_request,
    response_head,
    streamed_response,
)

DEMO_KEY = "sk-sluice-hostile"
SANE_TOKENS_PER_REQUEST = 100_000_000
# The client's bound on any answer: the route's timeout (5s) plus margin.
CLIENT_DEADLINE = 12.0

BACKENDS = {
    # name: (cluster, model, upstream filter config)
    "openai": ("openai", "gpt-hostile", {"backend": "hostile-openai", "schema": "openai", "credential": {"value": "sk-up"}}),
    "anthropic": ("anthropic", "claude-hostile",
                  {"backend": "hostile-anthropic", "schema": "anthropic", "credential": {"value": "sk-ant-up"}}),
    "bedrock": ("bedrock", "bedrock-hostile", {
        "backend": "hostile-bedrock", "schema": "bedrock_converse",
        "aws": {"region": "us-east-1", "access_key_id": {"value": "AKIDHOSTILE"}, "secret_access_key": {"value": "hostile-secret"}},
    }),
    "gemini": ("gemini", "gemini-hostile", {"backend": "hostile-gemini", "schema": "gemini", "credential": {"value": "g-up"}}),
}

GATEWAY_CONFIG = {
    "api_keys": [{"name": "hostile", "key": DEMO_KEY, "limits": {"budget_usd_per_day": 1000000}}],
    "models": [{"id": model, "owned_by": name, "route": name} for name, (_, model, _) in BACKENDS.items()],
    # Prices make every request compute a cost from the usage it reports (and charge a budget).
    "prices": {model: {"input": 1.0, "output": 2.0} for _, (_, model, _) in BACKENDS.items()},
}

# Short bounds so stalls end fast: the whole upstream exchange, and the longest silence.
ROUTE_OPTIONS = {"timeout": "5s", "idle_timeout": "0.8s"}


class HostileGateway:
    """Envoy with the four backend clusters in front of one HostileUpstream."""

    def __init__(self) -> None:
        self.upstream = HostileUpstream(max_stall=15.0).start()
        self.port = free_port()
        self.admin_port = free_port()
        clusters = [static_cluster(cluster, self.upstream.port, config) for cluster, _, config in BACKENDS.values()]
        for cluster in clusters:
            # Trailers reach the filters (Envoy's HTTP/1 codec drops them unless asked), as they
            # would from an HTTP/2 upstream.
            options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
            options["explicit_http_config"]["http_protocol_options"]["enable_trailers"] = True
        routes = [header_route(name, cluster, **ROUTE_OPTIONS) for name, (cluster, _, _) in BACKENDS.items()]
        self.bootstrap = gateway_bootstrap(
            gateway_port=self.port, admin_port=self.admin_port, upstream_port=self.upstream.port,
            filter_config=GATEWAY_CONFIG, routes=routes, clusters=clusters)
        self.envoy: Envoy | None = None
        self.crashes: list[str] = []
        self.healthy = True
        self._start()

    def _start(self) -> None:
        self.envoy = Envoy(self.bootstrap, concurrency=2)
        self.envoy.start().wait_ready()

    def alive(self) -> bool:
        return self.envoy.process.poll() is None

    def ensure_alive(self) -> None:
        """Restarts Envoy if an earlier case killed it (that case failed and recorded the crash),
        or did not end with a normal request metered exactly: it may have left poisoned counters
        or a spent budget behind, and the next cases must be judged on their own."""
        if not self.alive():
            self.crashes.append(self.envoy.logs()[-4000:])
            self.envoy.stop()
            self._start()
        elif not self.healthy:
            self.envoy.stop()
            self._start()
        self.healthy = False  # until this case's next normal request has worked

    def crash_report(self) -> str:
        logs = self.envoy.logs()
        backtrace = [line for line in logs.splitlines() if "[critical]" in line and "Address mapping" not in line][:10]
        return (f"Envoy exited with {self.envoy.process.returncode}; backtrace:\n" + "\n".join(backtrace)
                + f"\nlog tail:\n{logs[-1500:]}")

    def stats(self) -> dict[str, int]:
        return self.envoy.stats()

    def settled_stats(self, timeout: float = 3.0) -> dict[str, int]:
        """Stats once no request is in flight (the downstream filter records usage when a stream
        completes, which may be just after the client has its last byte)."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            active = stats.get("http.gateway.downstream_rq_active", 0) + sum(
                stats.get(f"cluster.{cluster}.upstream_rq_active", 0) for cluster, _, _ in BACKENDS.values())
            if active == 0 or time.monotonic() > deadline:
                # The module hands its summed counters to Envoy every 100 ms.
                return self.envoy.flushed_stats()
            time.sleep(0.02)

    def stop(self) -> None:
        if self.envoy:
            self.envoy.stop()
        self.upstream.stop()


@pytest.fixture(scope="module")
def gateway():
    gw = HostileGateway()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def gw(gateway):
    gateway.ensure_alive()
    gateway.upstream.respond()
    return gateway


# MARK: - What each schema's upstream says (usage values are raw JSON text, so any number can be sent)

USAGE_FIELDS = {
    "openai": ("prompt_tokens", "completion_tokens", "total_tokens"),
    "anthropic": ("input_tokens", "output_tokens", None),
    "bedrock": ("inputTokens", "outputTokens", "totalTokens"),
    "gemini": ("promptTokenCount", "candidatesTokenCount", "totalTokenCount"),
}
TEXT = "Hello"


def usage_json(backend: str, input_raw: str = "3", output_raw: str = "2", total_raw: str | None = None) -> str:
    """The usage object of `backend`'s schema with the given raw JSON values."""
    names = USAGE_FIELDS[backend]
    parts = [f'"{names[0]}":{input_raw}', f'"{names[1]}":{output_raw}']
    if names[2]:
        parts.append(f'"{names[2]}":{total_raw if total_raw is not None else input_raw}')
    return "{" + ",".join(parts) + "}"


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def with_usage(prefix: dict, key: str, usage: str | None) -> bytes:
    """`prefix` as JSON with `"key": usage` (raw text) appended, or without it when None."""
    text = compact(prefix)
    if usage is None:
        return text.encode()
    return (text[:-1] + f',"{key}":{usage}' + "}").encode()


def json_body(backend: str, usage: str | None) -> bytes:
    """A complete non-streamed answer saying TEXT."""
    if backend == "openai":
        return with_usage({"id": "chatcmpl-hostile", "object": "chat.completion", "created": 1, "model": "gpt-hostile",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}]},
                          "usage", usage)
    if backend == "anthropic":
        return with_usage({"id": "msg_hostile", "type": "message", "role": "assistant", "model": "claude-hostile",
                           "content": [{"type": "text", "text": TEXT}], "stop_reason": "end_turn", "stop_sequence": None},
                          "usage", usage)
    if backend == "bedrock":
        return with_usage({"output": {"message": {"role": "assistant", "content": [{"text": TEXT}]}}, "stopReason": "end_turn",
                           "metrics": {"latencyMs": 1}}, "usage", usage)
    if backend == "gemini":
        return with_usage({"candidates": [{"content": {"role": "model", "parts": [{"text": TEXT}]}, "finishReason": "STOP", "index": 0}],
                           "modelVersion": "gemini-hostile", "responseId": "r-hostile"}, "usageMetadata", usage)
    raise ValueError(backend)


def sse(data: bytes | str, event: str | None = None, crlf: bool = False) -> bytes:
    data = data.encode() if isinstance(data, str) else data
    text = (b"event: " + event.encode() + b"\n" if event else b"") + b"data: " + data + b"\n\n"
    return text.replace(b"\n", b"\r\n") if crlf else text


def stream_pieces(backend: str, usage: str | None, *, terminated: bool = True, text: str = TEXT) -> list[bytes]:
    """A streamed answer saying `text`, in the backend's framing, with `usage` (raw, None: no usage
    event) and its terminator (`[DONE]`, `message_stop`, `messageStop`, the STOP chunk) unless not
    `terminated`."""
    half = max(1, len(text) // 2)
    if backend == "openai":
        def chunk(delta, finish=None):
            return sse(compact({"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 1, "model": "gpt-hostile",
                                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
        pieces = [chunk({"role": "assistant", "content": ""}), chunk({"content": text[:half]}), chunk({"content": text[half:]}),
                  chunk({}, "stop")]
        if usage is not None:
            pieces.append(sse(with_usage({"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 1,
                                          "model": "gpt-hostile", "choices": []}, "usage", usage)))
        if terminated:
            pieces.append(sse("[DONE]"))
        return pieces
    if backend == "anthropic":
        # The input count comes with message_start, the output count with message_delta.
        names = USAGE_FIELDS["anthropic"]
        start_usage = '{"input_tokens":0,"output_tokens":1}'
        delta_usage = None
        if usage is not None:
            parsed_in, parsed_out = usage_values(usage, names)
            start_usage = f'{{"input_tokens":{parsed_in},"output_tokens":1}}'
            delta_usage = f'{{"output_tokens":{parsed_out}}}'
        message = {"id": "msg_hostile", "type": "message", "role": "assistant", "model": "claude-hostile", "content": [],
                   "stop_reason": None, "stop_sequence": None}
        pieces = [
            sse(b'{"type":"message_start","message":' + with_usage(message, "usage", start_usage) + b"}", "message_start"),
            sse(compact({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}), "content_block_start"),
            sse(compact({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[:half]}}), "content_block_delta"),
            sse(compact({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[half:]}}), "content_block_delta"),
            sse(compact({"type": "content_block_stop", "index": 0}), "content_block_stop"),
        ]
        if delta_usage is not None:
            pieces.append(sse(with_usage({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}},
                                         "usage", delta_usage), "message_delta"))
        if terminated:
            pieces.append(sse('{"type":"message_stop"}', "message_stop"))
        return pieces
    if backend == "bedrock":
        pieces = [bedrock_event("messageStart", {"role": "assistant"}),
                  bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text[:half]}}),
                  bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text[half:]}}),
                  bedrock_event("contentBlockStop", {"contentBlockIndex": 0})]
        if terminated:
            pieces.append(bedrock_event("messageStop", {"stopReason": "end_turn"}))
        if usage is not None:
            pieces.append(bedrock_event("metadata", with_usage({"metrics": {"latencyMs": 1}}, "usage", usage)))
        return pieces
    if backend == "gemini":
        def chunk(part, finish=None, usage_raw=None):
            candidate = {"content": {"role": "model", "parts": [{"text": part}]}, "index": 0}
            if finish:
                candidate["finishReason"] = finish
            return sse(with_usage({"candidates": [candidate], "modelVersion": "gemini-hostile", "responseId": "r-hostile"},
                                  "usageMetadata", usage_raw), crlf=True)
        return [chunk(text[:half]), chunk(text[half:]), chunk("", "STOP" if terminated else None, usage)]
    raise ValueError(backend)


def usage_values(usage: str, names) -> tuple[str, str]:
    """The raw input and output values of a usage object built by usage_json."""
    body = usage.strip()[1:-1]
    values = {}
    depth, start = 0, 0
    parts = []
    for index, char in enumerate(body):  # split on top-level commas (values may be objects/arrays)
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(body[start:index])
            start = index + 1
    parts.append(body[start:])
    for part in parts:
        key, _, value = part.partition(":")
        values[key.strip().strip('"')] = value
    return values.get(names[0], "0"), values.get(names[1], "0")


def content_type(backend: str, stream: bool) -> str:
    if not stream:
        return "application/json"
    return "application/vnd.amazon.eventstream" if backend == "bedrock" else "text/event-stream"


def answer(backend: str, stream: bool, usage: str | None = None, **stream_options) -> tuple[Script, bytes]:
    """A well-formed answer (the script, and the body bytes it sends)."""
    usage = usage if usage is not None else usage_json(backend)
    if stream:
        pieces = stream_pieces(backend, usage, **stream_options)
        return streamed_response(pieces, content_type=content_type(backend, True)), b"".join(pieces)
    body = json_body(backend, usage)
    return full_response(body), body


# MARK: - The client side


def request_body(model: str, client: str, stream: bool) -> bytes:
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    if stream and client == "openai":
        # The client asks for usage, so an OpenAI stream passes through byte for byte.
        body["stream_options"] = {"include_usage": True}
    return compact(body).encode()


def ask(gw: HostileGateway, backend: str, client: str = "openai", stream: bool = False, body: bytes | None = None):
    model = BACKENDS[backend][1]
    path, headers = ("/v1/chat/completions", {"authorization": f"Bearer {DEMO_KEY}"}) if client == "openai" else (
        "/v1/messages", {"x-api-key": DEMO_KEY, "anthropic-version": "2023-06-01"})
    headers["content-type"] = "application/json"
    return http_request(gw.port, path, body or request_body(model, client, stream), headers, deadline=CLIENT_DEADLINE)


def is_client_error_shape(payload, client: str) -> bool:
    if client == "anthropic":
        return (isinstance(payload, dict) and payload.get("type") == "error" and isinstance(payload.get("error"), dict)
                and isinstance(payload["error"].get("type"), str) and isinstance(payload["error"].get("message"), str))
    return (isinstance(payload, dict) and isinstance(payload.get("error"), dict)
            and isinstance(payload["error"].get("message"), str) and isinstance(payload["error"].get("type"), str))


def is_envoy_local_reply(response) -> bool:
    """Envoy's own text/plain answer (reset before headers, protocol error, timeout)."""
    return response.status >= 500 and response.content_type.startswith("text/plain")


class WrongAnswer(AssertionError):
    """The client got something other than the answer, the upstream's bytes or an error in its
    shape. Tests judge the answer last, after Envoy's survival, the metrics and the next request,
    so a wrong answer is told apart from a crash (and an xfail(raises=WrongAnswer) for a known
    wrong answer never hides one)."""


@contextlib.contextmanager
def judging_the_answer():
    try:
        yield
    except WrongAnswer:
        raise
    except (AssertionError, ValueError, KeyError, IndexError, TypeError) as error:  # ValueError: not JSON
        raise WrongAnswer(f"{type(error).__name__}: {error}") from error


def parse_sse(body: bytes) -> list[tuple[str | None, str]]:
    events = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        event, data = None, []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                event = line[6:].strip().decode("utf-8", "replace")
            elif line.startswith(b"data:"):
                data.append(line[5:].lstrip().decode("utf-8", "replace"))
        if data:
            events.append((event, "\n".join(data)))
    return events


def sane_usage_numbers(usage) -> None:
    """Usage a translated answer reports: integers within the per-request bound (never the
    provider's absurd numbers, never wrapped)."""
    if not isinstance(usage, dict):
        return
    for key, value in usage.items():
        if isinstance(value, dict):
            sane_usage_numbers(value)
        elif key.endswith("tokens") and value is not None:
            assert isinstance(value, int) and not isinstance(value, bool), f"usage {key}={value!r}"
            assert 0 <= value <= SANE_TOKENS_PER_REQUEST, f"usage {key}={value!r} wrapped or absurd"


def stream_text(events, client: str) -> tuple[str, bool, list]:
    """(the text the stream delivered, whether it ended properly, the error payloads in it)."""
    text, ended, errors = "", False, []
    for event, data in events:
        if data == "[DONE]":
            ended = True
            continue
        payload = json.loads(data)  # every event of a translated stream is JSON
        assert isinstance(payload, dict), data[:200]
        if "error" in payload:
            errors.append(payload)
            continue
        if client == "anthropic":
            if payload.get("type") == "content_block_delta":
                text += payload["delta"].get("text", "")
            elif payload.get("type") == "message_stop":
                ended = True
            elif payload.get("type") == "message_delta":
                sane_usage_numbers(payload.get("usage"))
            elif payload.get("type") == "message_start":
                sane_usage_numbers(payload["message"].get("usage"))
        else:
            for choice in payload.get("choices") or []:
                text += (choice.get("delta") or {}).get("content") or ""
            sane_usage_numbers(payload.get("usage"))
    return text, ended, errors


def passthrough(backend: str, client: str) -> bool:
    return (backend, client) in {("openai", "openai"), ("anthropic", "anthropic")}


def assert_good_answer(response, backend: str, client: str, stream: bool, sent: bytes) -> None:
    """The whole answer, as the client's API says it (or the upstream's own bytes)."""
    assert response.status == 200, (response.status, response.body[:500])
    assert response.complete, f"answer cut after {len(response.body)} bytes"
    if passthrough(backend, client):
        assert response.body == sent, (response.body[:300], sent[:300])
        return
    if stream:
        text, ended, errors = stream_text(parse_sse(response.body), client)
        assert not errors and ended and text == TEXT, response.body[:800]
        return
    payload = response.json()
    if client == "anthropic":
        assert payload["type"] == "message" and payload["content"][0]["text"] == TEXT, payload
    else:
        assert payload["choices"][0]["message"]["content"] == TEXT, payload
    sane_usage_numbers(payload.get("usage"))


def assert_acceptable(response, backend: str, client: str, stream: bool, sent: bytes) -> str:
    """The upstream's bytes (or a cut prefix), a 5xx error in the client's shape (Envoy's own
    replies to a broken upstream included), or a stream that ended; returns which."""
    assert not response.timed_out, f"no end within {CLIENT_DEADLINE}s: {response.body[:300]!r}"
    if passthrough(backend, client) and sent and response.body == sent and not is_envoy_local_reply(response):
        return "passthrough"  # whatever the status: the upstream's own answer
    if response.status >= 400:
        assert response.status >= 500, (response.status, response.body[:500])
        assert response.content_type.startswith("application/json"), (response.headers, response.body[:300])
        assert is_client_error_shape(response.json(), client), response.body[:500]
        return "error"
    assert response.status == 200, (response.status, response.body[:300])
    if passthrough(backend, client):
        assert sent.startswith(response.body), (response.body[:300], sent[:300])
        return "passthrough" if response.body == sent else "cut"
    if stream:
        assert response.content_type.startswith("text/event-stream"), response.headers
        _, _, _ = stream_text(parse_sse(response.body), client)
        return "stream"
    payload = response.json()
    if client == "anthropic":
        assert payload.get("type") == "message", payload
    else:
        assert payload.get("object") == "chat.completion" and payload.get("choices"), payload
    sane_usage_numbers(payload.get("usage"))
    return "answer"


# MARK: - What must hold after every case


def token_series(stats: dict) -> dict:
    return {name: value for name, value in stats.items() if "gen_ai_client_tokens_total" in name}


def clamped(stats: dict, backend: str) -> int:
    return stats.get(f"cluster.{BACKENDS[backend][0]}.sluice.upstream_usage_clamped", 0)


class Checkpoint:
    def __init__(self, gw: HostileGateway) -> None:
        self.gw = gw
        self.before = gw.settled_stats()

    def after_case(self, backend: str, *, clamped_delta: int | None = None) -> dict:
        """Envoy alive, token counters sane, and the clamped counter as expected."""
        gw = self.gw
        # Usage is recorded when the stream completes, just after the client's last byte; a trap
        # there kills Envoy, and the admin port with it.
        try:
            after = gw.settled_stats()
        except OSError as error:
            time.sleep(0.2)
            assert gw.alive(), gw.crash_report()
            raise AssertionError(f"admin port failed while Envoy lives: {error}")
        assert gw.alive(), gw.crash_report()
        before_tokens, after_tokens = token_series(self.before), token_series(after)
        for name, value in after_tokens.items():
            grown = value - before_tokens.get(name, 0)
            assert 0 <= grown <= SANE_TOKENS_PER_REQUEST, f"{name} grew by {grown} in one request (from {before_tokens.get(name, 0)} to {value})"
            assert value < 2**63, f"{name} = {value}"
        if clamped_delta is not None:
            got = clamped(after, backend) - clamped(self.before, backend)
            assert got == clamped_delta, f"upstream_usage_clamped of {BACKENDS[backend][0]} grew by {got}, expected {clamped_delta}"
        self.before = after
        return after

    def metered_tokens(self, backend: str) -> dict:
        """How far the input and output token counters grew since this checkpoint, once they show
        the 3 and 2 tokens every scripted answer reports (or after 3 s)."""
        before = token_series(self.before)
        deadline = time.monotonic() + 3.0
        while True:
            # The module flushes its counters every 100 ms; on a loaded machine, one read may be early.
            after = token_series(self.after_case(backend, clamped_delta=0))
            grown = {kind: sum(v - before.get(k, 0) for k, v in after.items() if k.endswith(f"gen_ai_token_type.{kind}"))
                     for kind in ("input", "output")}
            if grown == {"input": 3, "output": 2} or time.monotonic() > deadline:
                return grown
            time.sleep(0.05)

    def next_request_works(self, backend: str) -> None:
        """A normal answer right after, metered exactly (3 input and 2 output tokens): Envoy, the
        connection pool and the counters recovered."""
        gw = self.gw
        script, sent = answer(backend, stream=False)
        gw.upstream.respond(script)
        response = ask(gw, backend)
        assert_good_answer(response, backend, "openai", False, sent)
        grown = self.metered_tokens(backend)
        assert grown == {"input": 3, "output": 2}, grown
        gw.healthy = True


def exchange(gw: HostileGateway, backend: str, client: str, stream: bool, script: Script, body: bytes | None = None):
    """Sends one request the upstream answers with `script`; a connection Envoy dropped because
    it died fails with its crash log."""
    gw.upstream.respond(script)
    try:
        return ask(gw, backend, client, stream, body)
    except (ConnectionError, TimeoutError) as error:
        time.sleep(0.1)
        assert gw.alive(), f"{error}\n{gw.crash_report()}"
        raise


# Backend schema x client API: same-schema pairs pass through (metered), the rest are translated.
PAIRS = [("openai", "openai"), ("openai", "anthropic"), ("anthropic", "openai"), ("anthropic", "anthropic"),
         ("bedrock", "openai"), ("bedrock", "anthropic"), ("gemini", "openai")]
PAIR_IDS = [f"{backend}-via-{client}" for backend, client in PAIRS]
MODES = [False, True]
MODE_IDS = ["json", "stream"]


# MARK: - Absurd numbers in usage: clamped, counted, and the answer still arrives

ABSURD = {
    "2^63": ("9223372036854775808", "9223372036854775808"),
    "-2^63": ("-9223372036854775808", "-9223372036854775808"),
    "2^63-1": ("9223372036854775807", "9223372036854775807"),
    "2^63-1000": ("9223372036854775000", "9223372036854775000"),  # a Double just below 2^63: no trap, absurd totals
    "2^64": ("18446744073709551616", "18446744073709551616"),
    "1e300": ("1e300", "1e300"),
    "-1e300": ("-1e300", "-1e300"),
    "10^12": ("1000000000000", "1000000000000"),
    "NaN-string": ('"NaN"', '"NaN"'),
    "negative": ("-5", "-7"),
    # The issue's own answer: prompt_tokens 2^63-1, completion_tokens 1e300.
    "issue8": ("9223372036854775807", "1e300"),
}


def absurd_usage_case(gw, backend, client, stream, value) -> int:
    """Runs one absurd-usage answer through; returns how much upstream_usage_clamped grew."""
    input_raw, output_raw = ABSURD[value]
    script, sent = answer(backend, stream, usage_json(backend, input_raw, output_raw))
    check = Checkpoint(gw)
    before = clamped(check.before, backend)
    response = exchange(gw, backend, client, stream, script)
    after = check.after_case(backend)
    check.next_request_works(backend)
    with judging_the_answer():
        assert_good_answer(response, backend, client, stream, sent)
    return clamped(after, backend) - before


@pytest.mark.parametrize("value", list(ABSURD))
@pytest.mark.parametrize("stream", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("backend,client", PAIRS, ids=PAIR_IDS)
def test_absurd_usage_is_clamped(gw, backend, client, stream, value):
    """Envoy survives, the answer arrives whole (the upstream's bytes when same-schema; usage
    within the bound when translated), no token series grows by more than the bound, the next
    request is metered exactly, and the absurd report is counted as clamped, once."""
    grown = absurd_usage_case(gw, backend, client, stream, value)
    assert grown == 1, f"upstream_usage_clamped of {BACKENDS[backend][0]} grew by {grown}, expected 1"


# MARK: - Wrong types where numbers belong

WRONG_TYPES = {
    "string": '"12"',
    "object": '{"n":1}',
    "array": "[1,2]",
    "true": "true",
    "null": "null",
    "fraction": "1.5",
}
WRONG_USAGE = {
    "usage-string": '"lots"',
    "usage-array": "[3,2]",
}
# A count that is not exactly an integer is clamped (to 0) and counted; null is a count of 0, and
# a usage that is no object has no counts to clamp.
WRONG_CLAMPED = {"string": 1, "object": 1, "array": 1, "true": 1, "fraction": 1, "null": 0, "usage-string": 0, "usage-array": 0}


def assert_answer_or_error(response, backend, client, stream, sent):
    """Either the answer (usage ignored) or a 5xx in the client's shape; never a mangled answer."""
    kind = assert_acceptable(response, backend, client, stream, sent)
    if kind == "stream":
        text, ended, errors = stream_text(parse_sse(response.body), client)
        assert errors or (ended and text == TEXT), response.body[:800]
    elif kind == "answer":
        payload = response.json()
        text = payload["content"][0]["text"] if client == "anthropic" else payload["choices"][0]["message"]["content"]
        assert text == TEXT, payload
    else:
        assert kind in ("passthrough", "error"), (kind, response.body[:300])


@pytest.mark.parametrize("value", list(WRONG_TYPES) + list(WRONG_USAGE))
@pytest.mark.parametrize("stream", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("backend,client", PAIRS, ids=PAIR_IDS)
def test_wrong_types_in_usage(gw, backend, client, stream, value):
    if value in WRONG_TYPES:
        usage = usage_json(backend, WRONG_TYPES[value], WRONG_TYPES[value])
    else:
        usage = WRONG_USAGE[value]
        if backend == "anthropic" and stream:
            pytest.skip("an Anthropic stream's usage is two objects in two events; covered by the typed values")
    script, sent = answer(backend, stream, usage)
    check = Checkpoint(gw)
    response = exchange(gw, backend, client, stream, script)
    check.after_case(backend, clamped_delta=WRONG_CLAMPED[value])
    check.next_request_works(backend)
    with judging_the_answer():
        assert_answer_or_error(response, backend, client, stream, sent)


# MARK: - Broken answers (not streamed)

TEN_MIB = 10 * 1024 * 1024


@functools.cache
def malformed_bodies(backend: str) -> dict[str, tuple[bytes, str, bool]]:
    """name -> (body, content type, whether a translated answer must be an error)."""
    good = json_body(backend, usage_json(backend))
    key = "usageMetadata" if backend == "gemini" else "usage"
    prefix = json.loads(json_body(backend, None))
    return {
        "truncated-json": (good[: len(good) // 2], "application/json", True),
        "non-json-200": (b"<html><body>502 Bad Gateway? No: 200 OK</body></html>", "text/html", True),
        "empty-200": (b"", "application/json", True),
        "json-null": (b"null", "application/json", True),
        "json-array": (b"[1,2,3]", "application/json", True),
        "nul-bytes": (b"\x00" * 64, "application/json", True),
        "invalid-escape": (good.replace(TEXT.encode(), b"He\\xllo"), "application/json", True),
        "deep-nesting-unterminated": (b"[" * 100_000, "application/json", True),
        "deep-nesting-in-usage": (with_usage(prefix, key, "[" * 100_000 + "]" * 100_000), "application/json", False),
        "deep-objects-in-usage": (with_usage(prefix, key, '{"a":' * 50_000 + "1" + "}" * 50_000), "application/json", False),
        "invalid-utf8-in-text": (good.replace(TEXT.encode(), b"He\xff\xfello"), "application/json", False),
        "lone-surrogate-in-text": (good.replace(TEXT.encode(), b"He\\ud800llo"), "application/json", False),
        "huge-numbers-elsewhere": (b'{"created":1e99999,"index":-99999999999999999999999,' + good[1:], "application/json", False),
        "duplicate-usage": (good[:-1] + b',"' + key.encode() + b'":' + usage_json(backend, "9223372036854775807").encode() + b"}",
                            "application/json", False),
        "10MiB-text": (good.replace(TEXT.encode(), b"x" * TEN_MIB), "application/json", False),
    }


def malformed_params():
    for backend, client in PAIRS:
        for case in malformed_bodies("openai"):
            yield pytest.param(backend, client, case, id=f"{backend}-via-{client}-{case}")


@pytest.mark.parametrize("backend,client,case", list(malformed_params()))
def test_malformed_answer(gw, backend, client, case):
    """Same-schema: the upstream's bytes, unchanged. Translated: the answer, or (for bytes that
    are no answer at all, an empty 200 included) a 502 in the client's shape. A 10 MiB answer to
    translate is over Envoy's buffer limit: an error in the client's shape."""
    body, ctype, must_fail = malformed_bodies(backend)[case]
    check = Checkpoint(gw)
    response = exchange(gw, backend, client, False, full_response(body, content_type=ctype))
    check.after_case(backend)
    check.next_request_works(backend)
    with judging_the_answer():
        kind = assert_acceptable(response, backend, client, False, body)
        if passthrough(backend, client):
            assert kind == "passthrough", kind
        elif must_fail:
            assert kind == "error" and response.status == 502, (response.status, response.headers, response.body[:300])


# MARK: - Answers that end in trailers

@pytest.mark.parametrize("stream", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("backend,client", PAIRS, ids=PAIR_IDS)
def test_answers_ending_in_trailers_are_translated_and_metered(gw, backend, client, stream):
    """Trailers end the answer with no last data frame that says so (an HTTP/2 upstream, or a
    proxy in front of one): the answer is still translated whole and its usage metered exactly."""
    usage = usage_json(backend)
    pieces = stream_pieces(backend, usage) if stream else [json_body(backend, usage)]
    script = streamed_response(pieces, content_type=content_type(backend, stream), end="trailers")
    check = Checkpoint(gw)
    response = exchange(gw, backend, client, stream, script)
    with judging_the_answer():
        assert_good_answer(response, backend, client, stream, b"".join(pieces))
    assert check.metered_tokens(backend) == {"input": 3, "output": 2}
    gw.healthy = True


# MARK: - Streams that end badly, or carry monsters

def big_event(backend: str, size: int = TEN_MIB) -> bytes:
    """One event (one `data:` line; for Bedrock one frame) carrying `size` bytes of text."""
    filler = "x" * size
    if backend == "openai":
        return sse(compact({"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 1, "model": "gpt-hostile",
                            "choices": [{"index": 0, "delta": {"content": filler}, "finish_reason": None}]}))
    if backend == "anthropic":
        return sse(compact({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": filler}}),
                   "content_block_delta")
    if backend == "gemini":
        return sse(compact({"candidates": [{"content": {"role": "model", "parts": [{"text": filler}]}, "index": 0}]}), crlf=True)
    return bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": filler}})


@functools.cache
def stream_cases(backend: str) -> dict[str, tuple[Script, bytes, bool]]:
    """name -> (script, the body bytes it sends, whether the answer must arrive whole)."""
    usage = usage_json(backend)
    full = stream_pieces(backend, usage)
    ctype = content_type(backend, True)

    def whole(pieces, **options):
        return streamed_response(pieces, content_type=ctype, **options), b"".join(pieces)

    cases = {
        "no-terminator": (*whole(stream_pieces(backend, usage, terminated=False)), False),
        "no-usage": (*whole(stream_pieces(backend, None)), False),
        "no-usage-no-terminator": (*whole(stream_pieces(backend, None, terminated=False)), False),
        "byte-by-byte": (*whole([bytes([b]) for b in b"".join(full)]), True),
        "10MiB-event": (*whole(full[:2] + [big_event(backend)] + full[2:]), False),
    }
    plain = json_body(backend, usage_json(backend))
    cases["json-instead-of-stream"] = (full_response(plain), plain, False)
    joined = b"".join(full[:2])
    half = joined + full[2][: len(full[2]) // 2]
    cases["cut-mid-event"] = (streamed_response([half], content_type=ctype, end="close"), half, False)
    cases["reset-mid-stream"] = (streamed_response(full[:2], content_type=ctype, end="reset"), joined, False)
    if backend != "bedrock":
        unterminated = b"data: " + b"x" * TEN_MIB
        cases["10MiB-line-never-ends"] = (streamed_response(full[:1] + [unterminated], content_type=ctype, end="close"),
                                          full[0] + unterminated, False)
        junk = full[:1] + [sse("this is not json"), sse("{\"choices\": 7}")] + full[1:]
        cases["non-json-events"] = (*whole(junk), False)
        comments = [b": keep-alive\n\n" * 20_000] + full
        cases["comment-flood"] = (*whole(comments), True)
    else:
        cases["17MiB-frame"] = (*whole(full[:2] + [big_event(backend, 17 * 1024 * 1024)] + full[2:]), False)
    return cases


STREAM_CASES = sorted(set(stream_cases("openai")) | set(stream_cases("bedrock")))


@pytest.mark.parametrize("case", STREAM_CASES)
@pytest.mark.parametrize("backend,client", PAIRS, ids=PAIR_IDS)
def test_stream_that_ends_badly(gw, backend, client, case):
    cases = stream_cases(backend)
    if case not in cases:
        pytest.skip(f"not a {backend} framing")
    script, sent, must_be_whole = cases[case]
    check = Checkpoint(gw)
    response = exchange(gw, backend, client, True, script)
    check.after_case(backend)
    check.next_request_works(backend)
    with judging_the_answer():
        if must_be_whole:
            assert_good_answer(response, backend, client, True, sent)
        else:
            kind = assert_acceptable(response, backend, client, True, sent)
            if passthrough(backend, client):
                assert kind in ("passthrough", "cut"), kind


# MARK: - AWS event-stream frames that lie

@functools.cache
def frame_lies() -> dict[str, bytes]:
    """name -> bytes sent after a good messageStart frame, then the response ends (FIN)."""
    delta = {"contentBlockIndex": 0, "delta": {"text": TEXT}}
    good = bedrock_event("contentBlockDelta", delta)
    headers = [(":event-type", "contentBlockDelta"), (":content-type", "application/json"), (":message-type", "event")]
    payload = compact(delta).encode()
    unknown_type = bytes([4]) + b"name" + bytes([42]) + b"\x00\x01x"
    return {
        "length-longer-than-frame": bedrock_event("contentBlockDelta", delta, total_length=len(good) + 100),
        "length-shorter-than-frame": bedrock_event("contentBlockDelta", delta, total_length=len(good) - 10),
        "length-4GiB": bedrock_event("contentBlockDelta", delta, total_length=0xFFFFFFFF),
        "length-below-minimum": bedrock_event("contentBlockDelta", delta, total_length=8),
        "headers-length-beyond-frame": bedrock_event("contentBlockDelta", delta, headers_length=len(good) + 1000),
        "bad-prelude-crc": bedrock_event("contentBlockDelta", delta, prelude_crc=0xDEADBEEF),
        "bad-message-crc": bedrock_event("contentBlockDelta", delta, message_crc=0xDEADBEEF),
        "unknown-header-type": _frame_with_raw_headers(unknown_type, payload),
        "truncated-frame": good[: len(good) // 2],
        "payload-not-json": bedrock_event("contentBlockDelta", b"{not json"),
        "exception-frame": event_stream_frame(
            [(":exception-type", "throttlingException"), (":content-type", "application/json"), (":message-type", "exception")],
            b'{"message":"slow down"}'),
        "absurd-usage-in-metadata-frame": good + bedrock_event("messageStop", {"stopReason": "end_turn"}) + bedrock_event(
            "metadata", b'{"usage":{"inputTokens":9223372036854775807,"outputTokens":1e300,"totalTokens":-1},"metrics":{}}'),
        "zero-length-headers-and-payload": event_stream_frame([], b""),
        "garbage-after-frames": good + b"\xff" * 64,
    }


def _frame_with_raw_headers(block: bytes, payload: bytes) -> bytes:
    import struct
    import zlib

    total = 16 + len(block) + len(payload)
    prelude = struct.pack(">II", total, len(block))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + block + payload
    return message + struct.pack(">I", zlib.crc32(message))


@pytest.mark.parametrize("case", list(frame_lies()))
@pytest.mark.parametrize("client", ["openai", "anthropic"])
def test_event_stream_frame_lies(gw, client, case):
    """A corrupt or lying frame ends the stream with an error event in the client's shape (or the
    stream is cut); never a trap, never a wait for bytes that will not come."""
    start = bedrock_event("messageStart", {"role": "assistant"})
    lie = frame_lies()[case]
    script = streamed_response([start, lie], content_type="application/vnd.amazon.eventstream")
    check = Checkpoint(gw)
    response = exchange(gw, "bedrock", client, True, script)
    check.after_case("bedrock", clamped_delta=1 if "absurd-usage" in case else None)
    check.next_request_works("bedrock")
    with judging_the_answer():
        assert_acceptable(response, "bedrock", client, True, b"")
        text, ended, errors = stream_text(parse_sse(response.body), client)
        if case == "absurd-usage-in-metadata-frame":
            assert text == TEXT and ended and not errors, response.body[:800]
        else:
            assert errors, f"no error event: {response.body[:800]!r}"


# MARK: - Lying content-length, stalls, abrupt closes

def framing_cases(backend: str, stream: bool) -> dict[str, tuple[Script, bytes]]:
    """name -> (script, the body bytes it sends) for answers whose HTTP framing lies or breaks."""
    if stream:
        body = b"".join(stream_pieces(backend, usage_json(backend)))
    else:
        body = json_body(backend, usage_json(backend))
    ctype = content_type(backend, stream)

    def head(length=None, extra=()):
        headers = [("content-type", ctype)] + ([("content-length", str(length))] if length is not None else [])
        return response_head(200, headers + [("connection", "close")] + list(extra))

    return {
        # content-length disagrees with the body
        "content-length-shorter": (Script().send(head(len(body) - 20) + body).close(), body[: len(body) - 20]),
        "content-length-longer": (Script().send(head(len(body) + 100) + body).close(), body),
        "content-length-longer-reset": (Script().send(head(len(body) + 100) + body).reset(), body),
        "content-length-and-chunked": (Script().send(
            head(5, [("transfer-encoding", "chunked")]) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)).close(), body),
        "content-length-twice": (Script().send(head(len(body), [("content-length", str(len(body) + 7))]) + body).close(), body),
        "content-length-negative": (Script().send(head(-1) + body).close(), body),
        "content-length-2^64": (Script().send(head(2**64) + body).close(), body),
        # stalls: bounded by the route's idle timeout
        "stall-before-headers": (Script().stall(), b""),
        "stall-after-headers": (Script().send(head(len(body))).stall(), b""),
        "stall-mid-body": (Script().send(head(len(body)) + body[: len(body) // 2]).stall(), body[: len(body) // 2]),
        "slow-drip": (Script().send(head(len(body))).sleep(0.25).send(body[:10]).sleep(0.25).send(body[10:]).close(), body),
        # abrupt ends and broken heads
        "reset-before-headers": (Script().reset(), b""),
        "close-before-headers": (Script().close(), b""),
        "reset-after-headers": (Script().send(head(len(body))).reset(), b""),
        "reset-mid-body": (Script().send(head(len(body)) + body[: len(body) // 2]).reset(), body[: len(body) // 2]),
        "garbage-status-line": (Script().send(b"HELLO THERE\r\n\r\n" + body).close(), b""),
        "no-status-line": (Script().send(body).close(), b""),
        "status-999": (Script().send(response_head(999, [("content-type", ctype), ("content-length", str(len(body))), ("connection", "close")]) + body).close(), body),
        "header-without-colon": (Script().send(b"HTTP/1.1 200 OK\r\nthis is no header\r\n\r\n" + body).close(), b""),
        "100-continue-then-close": (Script().send(b"HTTP/1.1 100 Continue\r\n\r\n").close(), b""),
        "100KiB-header": (Script().send(head(len(body), [("x-huge", "h" * 100_000)]) + body).close(), b""),
        "200-headers": (Script().send(head(len(body), [(f"x-h{i}", "v") for i in range(200)]) + body).close(), b""),
        "invalid-chunk-size": (Script().send(
            response_head(200, [("content-type", ctype), ("transfer-encoding", "chunked")]) + b"zz\r\n" + body).close(), b""),
        # valid, if unusual: a body delimited by the connection's close; trailers after the last chunk
        "close-delimited-body": (Script().send(head() + body).close(), body),
        "chunked-with-trailers": (Script().send(
            head(None, [("transfer-encoding", "chunked"), ("trailer", "x-checksum")])
            + b"%x\r\n%s\r\n0\r\nx-checksum: 1\r\nx-usage: 9223372036854775807\r\n\r\n" % (len(body), body)).close(), body),
    }


FRAMING_CASES = list(framing_cases("openai", False))
STALL_BOUND = 5.0  # seconds: the route's idle timeout is 0.8 s and its timeout 5 s
# Stalls cost the idle timeout each: run them for one client path per backend.
STALL_PAIRS = {("openai", "openai"), ("anthropic", "anthropic"), ("bedrock", "openai"), ("gemini", "openai")}
# A streamed answer's HTTP framing breaks the same ways; these are the cases where a stream differs.
STREAM_FRAMING_CASES = {"content-length-shorter", "content-length-longer", "stall-mid-body", "reset-mid-body",
                        "close-delimited-body", "slow-drip", "content-length-and-chunked", "chunked-with-trailers"}


def framing_params():
    for backend, client in PAIRS:
        for stream in MODES:
            for case in FRAMING_CASES:
                if case.startswith("stall") and (backend, client) not in STALL_PAIRS:
                    continue
                if stream and case not in STREAM_FRAMING_CASES:
                    continue
                yield pytest.param(backend, client, stream, case,
                                   id=f"{backend}-via-{client}-{'stream' if stream else 'json'}-{case}")


@pytest.mark.parametrize("backend,client,stream,case", list(framing_params()))
def test_broken_http_framing(gw, backend, client, stream, case):
    """Lying lengths, stalls, resets and broken heads: the answer ends within the bound, as the
    upstream's bytes (whole or cut), an error, or a stream that ends; a valid close-delimited or
    slowly dripping answer arrives whole."""
    script, sent = framing_cases(backend, stream)[case]
    check = Checkpoint(gw)
    response = exchange(gw, backend, client, stream, script)
    check.after_case(backend)
    check.next_request_works(backend)
    assert response.elapsed < STALL_BOUND + 1, f"{response.elapsed:.1f}s"
    with judging_the_answer():
        if case in ("slow-drip", "close-delimited-body", "chunked-with-trailers"):
            assert_good_answer(response, backend, client, stream, sent)
        else:
            assert_acceptable(response, backend, client, stream, sent)


# MARK: - Provider errors with hostile bodies

def error_bodies() -> dict[str, tuple[int, bytes, str]]:
    return {
        "500-html": (500, b"<html><body>oops</body></html>", "text/html"),
        "429-plain-text": (429, b"slow down", "text/plain"),
        "503-empty": (503, b"", "application/json"),
        "400-deep-nesting": (400, b"[" * 100_000, "application/json"),
        "502-2MiB-message": (502, compact({"error": {"message": "m" * (2 << 20), "type": "server_error"}}).encode(), "application/json"),
        "401-error-is-a-string": (401, b'{"error":"no"}', "application/json"),
        "404-error-is-null": (404, b'{"error":null,"type":null,"message":7}', "application/json"),
        "500-with-absurd-usage": (500, b'{"error":{"message":"x","type":"server_error"},"usage":{"prompt_tokens":9223372036854775807}}',
                                  "application/json"),
        "400-invalid-utf8": (400, b'{"error":{"message":"\xff\xfe","type":"invalid_request_error"}}', "application/json"),
    }


def error_params():
    for backend, client in PAIRS:
        for case in error_bodies():
            yield pytest.param(backend, client, case, id=f"{backend}-via-{client}-{case}")


@pytest.mark.parametrize("backend,client,case", list(error_params()))
def test_provider_error_with_hostile_body(gw, backend, client, case):
    """Same-schema: the upstream's status and bytes. Translated: the upstream's status with an
    error in the client's shape."""
    status, body, ctype = error_bodies()[case]
    check = Checkpoint(gw)
    response = exchange(gw, backend, client, False, full_response(body, status=status, content_type=ctype))
    check.after_case(backend)
    check.next_request_works(backend)
    with judging_the_answer():
        if passthrough(backend, client):
            assert (response.status, response.body) == (status, body), (response.status, response.body[:300])
        else:
            assert response.status == status, (response.status, response.body[:300])
            assert response.content_type.startswith("application/json"), response.headers
            assert is_client_error_shape(response.json(), client), response.body[:500]


# MARK: - Envoy's own answers to a broken upstream

def local_reply_params():
    for backend, client in [("openai", "openai"), ("anthropic", "anthropic"), ("gemini", "openai"), ("bedrock", "anthropic")]:
        for case in ["reset-before-headers", "stall-before-headers", "garbage-status-line", "content-length-longer"]:
            if case == "content-length-longer" and passthrough(backend, client):
                continue  # the upstream's headers went through: a cut answer is all a client can get
            yield pytest.param(backend, client, case, id=f"{backend}-via-{client}-{case}")
    for backend, client in [("gemini", "openai"), ("bedrock", "anthropic")]:
        yield pytest.param(backend, client, "10MiB-text", id=f"{backend}-via-{client}-10MiB-text")


@pytest.mark.parametrize("backend,client,case", list(local_reply_params()))
def test_envoy_local_replies_are_in_the_clients_shape(gw, backend, client, case):
    """A client of the OpenAI (Anthropic) API gets every error as OpenAI (Anthropic) error JSON,
    including the ones Envoy makes up when the upstream fails before the response started."""
    if case == "10MiB-text":
        body = malformed_bodies(backend)[case][0]
        script = full_response(body)
    else:
        script = framing_cases(backend, False)[case][0]
    check = Checkpoint(gw)
    response = exchange(gw, backend, client, False, script)
    check.after_case(backend)
    check.next_request_works(backend)
    with judging_the_answer():
        assert response.status >= 500, (response.status, response.body[:300])
        assert response.content_type.startswith("application/json"), (response.status, response.headers, response.body[:200])
        assert is_client_error_shape(response.json(), client), response.body[:500]


# MARK: - The frame encoder is AWS's format (checked by botocore's own decoder)


def test_frame_encoder_agrees_with_botocore():
    """The frames the tests send are what AWS sends: botocore decodes the good ones and refuses
    the lying ones the same way the tests expect the gateway to."""
    from botocore.eventstream import EventStreamBuffer

    frames = stream_pieces("bedrock", usage_json("bedrock", "9223372036854775807", "1e300"))
    decoder = EventStreamBuffer()
    decoder.add_data(b"".join(frames))
    messages = list(decoder)
    assert [m.headers[":event-type"] for m in messages] == [
        "messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"]
    assert b"9223372036854775807" in messages[-1].payload
    for case in ["bad-prelude-crc", "bad-message-crc", "length-shorter-than-frame"]:
        decoder = EventStreamBuffer()
        decoder.add_data(frame_lies()[case])
        with pytest.raises(Exception):
            list(decoder)


# MARK: - Response headers the gateway copies into answers

REQUEST_IDS = {
    "quote-and-backslash": 'a"b\\c</script>{',
    "40KiB": "r" * 40_000,
    "utf-8": "\u00e9t\u00e9".encode().decode("latin-1"),  # the raw bytes of "été"
    "raw-0xff": "\xff\xfe",
}


@pytest.mark.parametrize("value", list(REQUEST_IDS))
@pytest.mark.parametrize("stream", MODES, ids=MODE_IDS)
def test_bedrock_request_id_and_error_type_headers_are_escaped(gw, stream, value):
    """Bedrock answers carry no id: the gateway uses `x-amzn-requestid` (and maps errors by
    `x-amzn-errortype`). Whatever those headers hold, the client's JSON stays JSON."""
    header = REQUEST_IDS[value]
    pieces = stream_pieces("bedrock", usage_json("bedrock"))
    script = (streamed_response(pieces, content_type=content_type("bedrock", True), extra_headers=[("x-amzn-requestid", header)])
              if stream else full_response(json_body("bedrock", usage_json("bedrock")), extra_headers=[("x-amzn-requestid", header)]))
    check = Checkpoint(gw)
    response = exchange(gw, "bedrock", "openai", stream, script)
    check.after_case("bedrock")
    error = exchange(gw, "bedrock", "openai", False,
                     full_response(b'{"message":"no"}', status=400, extra_headers=[("x-amzn-errortype", header)]))
    check.after_case("bedrock")
    check.next_request_works("bedrock")
    with judging_the_answer():
        assert_good_answer(response, "bedrock", "openai", stream, b"")
        for _, data in parse_sse(response.body) if stream else [(None, response.body.decode())]:
            if data != "[DONE]":
                assert isinstance(json.loads(data)["id"], str)
        assert error.status == 400 and is_client_error_shape(error.json(), "openai"), (error.status, error.body[:300])


# MARK: - Absurd indexes in tool calls and content blocks

INDEXES = {"2^63-1": "9223372036854775807", "-1": "-1", "1e300": "1e300", "2^32": "4294967296", "string": '"0"'}


def indexed_answer(kind: str, index: str) -> tuple[str, str, bool, Script]:
    """(backend, client, stream, script) of a tool-call answer whose index is `index` (raw)."""
    if kind.startswith("openai"):
        choice_index, tool_index = (index, "0") if kind == "openai-choice" else ("0", index)
        chunk = ('{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-hostile","choices":[{"index":%s,'
                 '"delta":{"role":"assistant","tool_calls":[{"index":%s,"id":"call_1","type":"function","function":'
                 '{"name":"f","arguments":"{}"}}]},"finish_reason":null}]}') % (choice_index, tool_index)
        end = '{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-hostile","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}'
        return "openai", "anthropic", True, streamed_response([sse(chunk), sse(end), sse("[DONE]")])
    if kind == "anthropic-block":
        start = ('{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"c","content":[],'
                 '"stop_reason":null,"usage":{"input_tokens":1,"output_tokens":1}}}')
        block = '{"type":"content_block_start","index":%s,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{}}}' % index
        delta = '{"type":"content_block_delta","index":%s,"delta":{"type":"input_json_delta","partial_json":"{}"}}' % index
        pieces = [sse(start, "message_start"), sse(block, "content_block_start"), sse(delta, "content_block_delta"),
                  sse('{"type":"message_stop"}', "message_stop")]
        return "anthropic", "openai", True, streamed_response(pieces)
    if kind.startswith("bedrock"):
        frames = [bedrock_event("messageStart", {"role": "assistant"}),
                  bedrock_event("contentBlockStart", ('{"contentBlockIndex":%s,"start":{"toolUse":{"toolUseId":"t","name":"f"}}}' % index).encode()),
                  bedrock_event("contentBlockDelta", ('{"contentBlockIndex":%s,"delta":{"toolUse":{"input":"{}"}}}' % index).encode()),
                  bedrock_event("contentBlockStop", ('{"contentBlockIndex":%s}' % index).encode()),
                  bedrock_event("messageStop", {"stopReason": "tool_use"})]
        client = "anthropic" if kind == "bedrock-via-anthropic" else "openai"
        return "bedrock", client, True, streamed_response(frames, content_type=content_type("bedrock", True))
    candidate = ('{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]},"index":%s,'
                 '"finishReason":"STOP"}]}') % index
    if kind == "gemini-stream":
        return "gemini", "openai", True, streamed_response([sse(candidate, crlf=True)])
    return "gemini", "openai", False, full_response(candidate.encode())


@pytest.mark.parametrize("index", list(INDEXES))
@pytest.mark.parametrize("kind", ["openai-tool", "openai-choice", "anthropic-block", "bedrock-via-openai",
                                  "bedrock-via-anthropic", "gemini-stream", "gemini-json"])
def test_absurd_indexes_in_tool_calls(gw, kind, index):
    """Indexes are numbers the translators use to pair deltas with blocks: absurd ones must not
    trap, allocate or hang; the answer is translated (or refused) in the client's shape."""
    backend, client, stream, script = indexed_answer(kind, INDEXES[index])
    check = Checkpoint(gw)
    response = exchange(gw, backend, client, stream, script)
    check.after_case(backend)
    check.next_request_works(backend)
    with judging_the_answer():
        assert response.complete, response.body[-300:]
        assert_acceptable(response, backend, client, stream, b"")


# MARK: - Embeddings (Gemini batchEmbedContents -> OpenAI)

EMBEDDINGS = {
    "absurd-usage": ('{"embeddings":[{"values":[0.1,0.2]}],"usageMetadata":{"promptTokenCount":9223372036854775807}}', True),
    "negative-usage": ('{"embeddings":[{"values":[0.1,0.2]}],"usageMetadata":{"promptTokenCount":-3}}', True),
    "value-1e300": ('{"embeddings":[{"values":[1e300,-1e300]}]}', False),
    "value-1e999": ('{"embeddings":[{"values":[1e999]}]}', False),
    "value-strings": ('{"embeddings":[{"values":["NaN","Infinity",null,true]}]}', False),
    "value-nested": ('{"embeddings":[{"values":[[0.1],[[0.2]],{"x":1}]}]}', False),
    "values-not-array": ('{"embeddings":[{"values":"0.1,0.2"}]}', False),
    "no-embeddings": ('{"embeddings":[]}', False),
    "embeddings-object": ('{"embeddings":{"values":[0.1]}}', False),
    "100k-values": ('{"embeddings":[{"values":[' + ",".join(["0.5"] * 100_000) + "]}]}", False),
    "10k-vectors": ('{"embeddings":[' + ",".join(['{"values":[0.1]}'] * 10_000) + "]}", False),
}


@pytest.mark.parametrize("encoding", ["float", "base64"])
@pytest.mark.parametrize("case", list(EMBEDDINGS))
def test_hostile_gemini_embeddings(gw, case, encoding):
    """An embeddings answer is an OpenAI embedding list or a 502 in OpenAI's shape; absurd usage is
    clamped and counted like a chat's."""
    body, counted = EMBEDDINGS[case]
    request = compact({"model": "gemini-hostile", "input": "hi", "encoding_format": encoding}).encode()
    check = Checkpoint(gw)
    gw.upstream.respond(full_response(body.encode()))
    response = http_request(gw.port, "/v1/embeddings", request, {"authorization": f"Bearer {DEMO_KEY}",
                                                                  "content-type": "application/json"}, deadline=CLIENT_DEADLINE)
    check.after_case("gemini", clamped_delta=1 if counted else None)
    check.next_request_works("gemini")
    with judging_the_answer():
        assert response.complete and not response.timed_out
        if response.status == 200:
            payload = response.json()
            assert payload["object"] == "list" and isinstance(payload["data"], list), payload
            sane_usage_numbers(payload.get("usage"))
        else:
            assert response.status == 502 and is_client_error_shape(response.json(), "openai"), (response.status, response.body[:300])
