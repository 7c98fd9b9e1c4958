"""The `sluice_endpoint_picker` load-balancing policy in the real Envoy 1.40: a cluster of four
loopback upstreams whose `load_balancing_policy` is the module's. With no metrics snapshot
published (the scraper is a later step) it picks by least request on Envoy's own active-request
counts; a retry with `previous_hosts` avoids the host that failed; the gateway filter's hand-over
header reaches the load balancer decodable and never reaches the upstream."""
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from harness import Envoy, free_port, gateway_bootstrap, header_route, static_cluster

DEMO_KEY = "sk-sluice-demo"
GATEWAY_CONFIG = {
    "api_keys": [{"name": "demo", "key": DEMO_KEY}],
    "models": [
        {"id": "pool-llama", "owned_by": "self", "route": "pool", "endpoint_picking": True},
        # Routed to the same replicas through a cluster without the upstream filter, so the test
        # can see the hand-over header the filter set (sluice_upstream removes it).
        {"id": "raw-llama", "owned_by": "self", "route": "raw", "endpoint_picking": True},
        {"id": "sql-lora", "owned_by": "self", "route": "raw", "endpoint_picking": True, "lora_adapter": True},
    ],
}
POOL_BACKEND = {"backend": "pool", "schema": "openai", "credential": {"value": "pool-key"}}


class PoolServer:
    """One replica: answers an OpenAI chat completion after `delay` seconds with `status`, and
    records what it received (test id, hand-over header)."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.status = 200
        self.seen: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                with server.lock:
                    seen = {k.lower(): v for k, v in self.headers.items()}
                    seen["hand-over-copies"] = len(self.headers.get_all("x-sluice-epp") or [])
                    server.seen.append(seen)
                time.sleep(server.delay)
                body = json.dumps(
                    {
                        "id": "cmpl-1", "object": "chat.completion", "created": 1, "model": "pool-llama",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                    }
                ).encode()
                self.send_response(server.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self) -> list[str]:
        with self.lock:
            return [h.get("x-test-id", "") for h in self.seen]

    def reset(self) -> None:
        with self.lock:
            self.seen.clear()
        self.delay = 0.0
        self.status = 200


def pool_cluster(ports: list[int], name: str = "pool", upstream_filter: dict | None = POOL_BACKEND) -> dict:
    cluster = static_cluster(name, ports[0], upstream_filter)
    cluster["load_assignment"]["cluster_name"] = name
    cluster["load_assignment"]["endpoints"][0]["lb_endpoints"] = [
        {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}} for p in ports
    ]
    cluster["load_balancing_policy"] = {
        "policies": [
            {
                "typed_extension_config": {
                    "name": "envoy.load_balancing_policies.dynamic_modules",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.load_balancing_policies.dynamic_modules.v3.DynamicModulesLoadBalancerConfig",
                        "dynamic_module_config": {"name": "sluice", "do_not_close": True, "metrics_namespace": "sluice"},
                        "lb_policy_name": "sluice_endpoint_picker",
                        "lb_policy_config": {
                            "@type": "type.googleapis.com/google.protobuf.StringValue",
                            "value": json.dumps({"pool": "pool-llama"}),
                        },
                    },
                }
            }
        ]
    }
    return cluster


RETRY = {
    "retry_on": "5xx",
    "num_retries": 3,
    "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts",
                              "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
    "host_selection_retry_max_attempts": 5,
}


@pytest.fixture(scope="module")
def pool():
    servers = [PoolServer() for _ in range(4)]
    port = free_port()
    plain = free_port()
    bootstrap = gateway_bootstrap(
        gateway_port=port,
        admin_port=free_port(),
        upstream_port=servers[0].port,
        filter_config=GATEWAY_CONFIG,
        with_plain_listener_port=plain,
        routes=[
            header_route("pool", "pool", retry_policy=RETRY, timeout="20s"),
            header_route("raw", "pool-direct", timeout="20s"),
            # The plain listener (no module filter) reaches the same pool through a cluster
            # without the upstream filter, so a test can hand the load balancer a header of its own.
            {"match": {"prefix": "/"}, "route": {"cluster": "pool-direct", "timeout": "20s"}},
        ],
        clusters=[pool_cluster([s.port for s in servers]), pool_cluster([s.port for s in servers], "pool-direct", None)],
    )
    with Envoy(bootstrap) as envoy:
        yield envoy, servers, port, plain
    for server in servers:
        server.server.shutdown()
        server.server.server_close()


def chat(port: int, test_id: str, content: str = "Hello") -> requests.Response:
    return requests.post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        headers={"Authorization": f"Bearer {DEMO_KEY}", "x-test-id": test_id},
        json={"model": "pool-llama", "messages": [{"role": "system", "content": content}, {"role": "user", "content": "Hi"}]},
        timeout=30,
    )


def picker_stats(envoy: Envoy) -> dict[str, int]:
    return {name: value for name, value in envoy.stats().items() if "endpoint_picker_" in name}


def stat(stats: dict[str, int], suffix: str) -> int:
    return sum(value for name, value in stats.items() if name.endswith(suffix))


def test_least_request_steers_around_a_slow_host(pool):
    envoy, servers, port, _ = pool
    for server in servers:
        server.reset()
    servers[0].delay = 1.5  # holds its requests: its active-request count stays up
    before = picker_stats(envoy)
    with ThreadPoolExecutor(max_workers=6) as executor:
        answers = list(executor.map(lambda i: chat(port, f"spread-{i}"), range(36)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200][:2]
    counts = [len(s.ids()) for s in servers]
    # Round robin would send 9 to each; least-request sends the slow host only what arrives
    # while every host is busy or tied with it.
    assert counts[0] <= 6, counts
    assert sum(counts[1:]) >= 30, counts
    after = picker_stats(envoy)
    assert stat(after, "endpoint_picker_picks_least_request_no_snapshot") - stat(before, "endpoint_picker_picks_least_request_no_snapshot") >= 36
    # The filter's hand-over was decodable every time, and never left Envoy.
    assert stat(after, "endpoint_picker_picks_least_request_bad_handover") == stat(before, "endpoint_picker_picks_least_request_bad_handover")
    assert all("x-sluice-epp" not in h for s in servers for h in s.seen)


def test_a_retry_avoids_the_host_that_failed(pool):
    envoy, servers, port, _ = pool
    for server in servers:
        server.reset()
    servers[2].status = 503
    absent_before = stat(picker_stats(envoy), "endpoint_picker_handover_absent")
    answers = [chat(port, f"retry-{i}") for i in range(16)]
    assert all(a.status_code == 200 for a in answers), [a.status_code for a in answers]
    failed = servers[2].ids()
    # Idle hosts tie, and ties rotate: the failing host gets first attempts...
    assert failed, [len(s.ids()) for s in servers]
    # ...and each request that failed there went to another host, never back to it.
    assert len(failed) == len(set(failed)), failed
    served = [i for s in (servers[0], servers[1], servers[3]) for i in s.ids()]
    assert set(failed) <= set(served)
    assert sorted(served) == sorted(f"retry-{i}" for i in range(16))
    # First attempts carry the filter's hand-over; the upstream filter removed it from the
    # request's headers, so each retry's pick sees none (it picks without prefix affinity).
    assert stat(picker_stats(envoy), "endpoint_picker_handover_absent") - absent_before == len(failed)


def test_a_malformed_hand_over_falls_back_to_least_request(pool):
    envoy, servers, _, plain = pool
    for server in servers:
        server.reset()
    before = stat(picker_stats(envoy), "endpoint_picker_picks_least_request_bad_handover")
    for value in ["not-hex", ";" + "g" * 16, "a" * 5000]:
        answer = requests.post(
            f"http://127.0.0.1:{plain}/v1/chat/completions", headers={"x-sluice-epp": value},
            data=b'{"model":"pool-llama","messages":[]}', timeout=10,
        )
        assert answer.status_code == 200
    assert stat(picker_stats(envoy), "endpoint_picker_picks_least_request_bad_handover") - before == 3
    assert envoy.process.poll() is None


def fnv1a(text: str) -> int:
    value = 0xCBF29CE484222325
    for byte in text.encode():
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value or 1


def test_the_filter_hands_the_prompt_blocks_and_adapter_to_the_balancer(pool):
    envoy, servers, port, _ = pool
    for server in servers:
        server.reset()
    system = "You are the support assistant of a bank. Answer briefly and politely. " * 20
    for model in ["raw-llama", "sql-lora"]:
        body = {"model": model, "stream": False, "messages": [{"role": "system", "content": system}, {"role": "user", "content": "Hi"}]}
        answer = requests.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            headers={"Authorization": f"Bearer {DEMO_KEY}", "x-test-id": model}, json=body, timeout=10,
        )
        assert answer.status_code == 200, answer.text
    seen = {h["x-test-id"]: h.get("x-sluice-epp") for s in servers for h in s.seen}
    prompt_bytes = len(json.dumps(body).encode()) - json.dumps(body).encode().index(b'"messages"')
    blocks = min(prompt_bytes // 256, 64)
    plain, adapter = seen["raw-llama"], seen["sql-lora"]
    assert plain is not None and adapter is not None, seen
    assert plain.startswith(";") and len(plain) == 1 + 16 * blocks, plain
    assert all(c in "0123456789abcdef" for c in plain[1:])
    assert adapter == f"{fnv1a('sql-lora'):016x}" + plain[len(plain) - 16 * blocks - 1:], adapter
    # Same system prompt, same blocks: the hashes agree (only the model field differs, before "messages").
    assert adapter.split(";")[1] == plain[1:]

    # A client's own x-sluice-epp is replaced by the gateway's, not added beside it.
    forged = ";" + "0123456789abcdef" * 3
    body = {"model": "raw-llama", "messages": [{"role": "system", "content": system}, {"role": "user", "content": "Hi"}]}
    answer = requests.post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        headers={"Authorization": f"Bearer {DEMO_KEY}", "x-test-id": "forged", "x-sluice-epp": forged}, json=body, timeout=10,
    )
    assert answer.status_code == 200
    seen = {h["x-test-id"]: h.get("x-sluice-epp") for s in servers for h in s.seen}
    assert seen["forged"] == plain
    copies = {h["x-test-id"]: h["hand-over-copies"] for s in servers for h in s.seen}
    assert copies["forged"] == 1
