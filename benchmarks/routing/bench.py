#!/usr/bin/env python3
"""Routing benchmark against sluice-sim's vLLM-like pool: how much time-to-first-token a prefix-
and adapter-aware endpoint pick saves against round robin, measured directly against the replicas
(no Envoy), so the table shows the headroom the in-Envoy picker has to reach.

For each policy a fresh `sluice-sim` pool starts (cold caches, same seed), an open-loop client
sends the same Poisson schedule of streaming chat requests for `--duration` seconds, and the
replicas are stopped by PID. Policies, all client-side:

  round-robin   request i to replica i mod N (Envoy's ROUND_ROBIN)
  random        a seeded random replica (Envoy's RANDOM)
  least-request fewest requests this client has in flight there (Envoy's LEAST_REQUEST, all hosts)
  envoy-round-robin, envoy-least-request
                the same through a plain Envoy 1.40 (no Sluice module) whose cluster of the
                replicas uses ROUND_ROBIN or LEAST_REQUEST (Envoy's own active-request counts);
                Envoy from $SLUICE_ENVOY or .envoy/bin/envoy (envoy-module/install-envoy.sh)
  envoy-sluice  Envoy with the Sluice module, bootstrapped by `sluiced render` from a sluice.yaml
                whose pool says `lb: endpoint_picker` (the gateway filter hands the prompt's
                prefix blocks and adapter to the picker; the background worker scrapes the
                replicas' /metrics every 50 ms); module from $SLUICE_MODULE_DIR or
                .build/release, sluiced from $SLUICE_SLUICED or .build/debug; `--picker` adds an
                `endpoint_picker` block (weights, thresholds) to tune it
  affinity      the "oracle": the replica that was sent the longest prefix of this prompt (256-byte
                chained block hashes, as the gateway's picker hashes), then one with the request's
                LoRA adapter, among replicas within `--slack` in-flight requests of the least
                loaded; ties by fewest in flight. It knows what it sent; it reads no metrics.

Workloads:
  shared  users spread over a few long system prompts, multi-turn conversations that grow
  unique  no shared prefixes (every conversation has its own system prompt)
  lora    shared, and every conversation runs on one of 4 LoRA adapters

Stdlib only. Usage:
  benchmarks/routing/bench.py [--sim PATH] [--workload shared|unique|lora] [--rate 40] [--duration 10]

Each policy's run takes --duration seconds plus the drain of what is still in flight (about a
second), so the four policies take about a minute.
"""
from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL = "llama-3.1-8b-instruct"
ADAPTERS = ["sql-lora", "chat-lora", "code-lora", "summarize-lora"]
BLOCK = 256

# The simulated engine the benchmark runs (passed to sluice-sim, so the numbers are reproducible
# from this file alone): a small GPU, so a 2-core machine reaches saturation at a few dozen req/s.
ENGINE_ARGS = [
    "--vllm-max-num-seqs", "8",
    "--vllm-max-num-batched-tokens", "2048",
    "--vllm-num-blocks", "160",          # 10240 tokens of KV cache per replica: less than 8 system prompts
    "--vllm-prefill-us-per-token", "40",  # a 6 KiB system prompt (~1.5k tokens) costs ~60 ms
    "--vllm-step-us", "6000",
    "--vllm-decode-us-per-seq", "600",
    "--vllm-max-loras", "2",
    "--vllm-lora-load-us", "30000",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sim_binary(explicit: str | None) -> str:
    for candidate in (explicit, os.environ.get("SLUICE_SIM"), ROOT / ".build/release/sluice-sim",
                      ROOT / ".build/debug/sluice-sim"):
        if candidate and Path(candidate).exists():
            return str(candidate)
    sys.exit("no sluice-sim binary: run envoy-module/build-sim.sh (release) or pass --sim")


# MARK: - Workload


@dataclass
class Request:
    at: float
    conversation: int
    messages: list
    model: str


def words(rng: random.Random, count: int) -> str:
    vocabulary = ("policy customer invoice refund shipping account schema query table index latency "
                  "summary report deploy cluster region tenant budget review contract section clause").split()
    return " ".join(rng.choice(vocabulary) for _ in range(count))


def build_schedule(args) -> list[Request]:
    """The Poisson arrivals and their prompts, identical for every policy (seeded)."""
    rng = random.Random(args.seed)
    shared = args.workload in ("shared", "lora")
    systems = [f"System prompt {i}. " + words(rng, args.system_bytes // 7) for i in range(args.system_prompts)]
    conversations = []
    for c in range(args.conversations):
        system = systems[c % len(systems)] if shared else f"System prompt of user {c}. " + words(rng, args.system_bytes // 7)
        model = ADAPTERS[(c % len(systems)) % len(ADAPTERS)] if args.workload == "lora" else MODEL
        conversations.append({"system": system, "turns": [], "model": model})
    schedule = []
    now = 0.0
    while True:
        now += rng.expovariate(args.rate)
        if now >= args.duration:
            break
        c = rng.randrange(len(conversations))
        conversation = conversations[c]
        question = f"Question {len(conversation['turns'])} of user {c}: " + words(rng, 30)
        messages = [{"role": "system", "content": conversation["system"]}]
        for q, a in conversation["turns"][-args.max_turns:]:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        messages.append({"role": "user", "content": question})
        schedule.append(Request(now, c, messages, conversation["model"]))
        # The next turn carries this one (multi-turn growth); the answer is a stand-in of the
        # reply's length (the real reply is streamed back but the schedule must not depend on it).
        conversation["turns"].append((question, words(rng, args.output_tokens)))
    return schedule


def prompt_blocks(messages: list) -> list[int]:
    """Chained hashes of the prompt's 256-byte blocks, as the picker would compute them."""
    text = "".join(f"<{m['role']}>{m['content']}" for m in messages).encode()
    hashes, chain = [], 0
    for start in range(0, len(text) - BLOCK + 1, BLOCK):
        chain = hash((chain, text[start:start + BLOCK]))
        hashes.append(chain)
    return hashes


# MARK: - Policies


class Picker:
    def __init__(self, policy: str, replicas: int, seed: int, slack: int) -> None:
        self.policy, self.replicas, self.slack = policy, replicas, slack
        self.rng = random.Random(seed + 1)
        self.next = 0
        self.in_flight = [0] * replicas
        self.seen: list[dict[int, int]] = [dict() for _ in range(replicas)]  # hash -> last use
        self.adapters: list[dict[str, int]] = [dict() for _ in range(replicas)]
        self.clock = 0
        self.lock = threading.Lock()

    def pick(self, request: Request) -> int:
        with self.lock:
            self.clock += 1
            if self.policy == "round-robin":
                choice = self.next % self.replicas
                self.next += 1
            elif self.policy == "random":
                choice = self.rng.randrange(self.replicas)
            elif self.policy == "least-request":
                low = min(self.in_flight)
                choice = self.rng.choice([i for i in range(self.replicas) if self.in_flight[i] == low])
            else:
                choice = self._affinity(request)
            self.in_flight[choice] += 1
            return choice

    def _affinity(self, request: Request) -> int:
        blocks = prompt_blocks(request.messages)
        low = min(self.in_flight)
        best, best_key = 0, None
        for i in range(self.replicas):
            if self.in_flight[i] > low + self.slack:
                continue
            matched = 0
            for h in blocks:
                if h not in self.seen[i]:
                    break
                matched += 1
            adapter = request.model in self.adapters[i]
            key = (matched, adapter, -self.in_flight[i])
            if best_key is None or key > best_key:
                best, best_key = i, key
        # Learn where this prefix went (bounded, least recently used dropped).
        seen = self.seen[best]
        for h in blocks:
            seen[h] = self.clock
        if len(seen) > 4096:
            for h, _ in sorted(seen.items(), key=lambda kv: kv[1])[: len(seen) - 4096]:
                del seen[h]
        if request.model != MODEL:
            self.adapters[best][request.model] = self.clock
            if len(self.adapters[best]) > 2:
                oldest = min(self.adapters[best], key=self.adapters[best].get)
                del self.adapters[best][oldest]
        return best

    def done(self, replica: int) -> None:
        with self.lock:
            self.in_flight[replica] -= 1


# MARK: - Client


@dataclass
class Result:
    ttft: float | None = None
    e2e: float | None = None
    output_tokens: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    error: str | None = None


BENCH_KEY = "sk-sluice-bench"


def send(port: int, request: Request, output_tokens: int, result: Result, start: float) -> None:
    body = json.dumps({"model": request.model, "messages": request.messages, "stream": True,
                       "stream_options": {"include_usage": True}, "max_tokens": output_tokens,
                       "ignore_eos": True}).encode()
    sent = time.perf_counter()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connection.request("POST", "/v1/chat/completions", body,
                           {"content-type": "application/json", "authorization": f"Bearer {BENCH_KEY}"})
        response = connection.getresponse()
        if response.status != 200:
            result.error = f"HTTP {response.status}"
            return
        for raw in response:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            chunk = json.loads(data)
            if result.ttft is None and chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                result.ttft = time.perf_counter() - sent
            if chunk.get("usage"):
                usage = chunk["usage"]
                result.output_tokens = usage["completion_tokens"]
                result.prompt_tokens = usage["prompt_tokens"]
                result.cached_tokens = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        result.e2e = time.perf_counter() - sent
        connection.close()
    except Exception as error:  # noqa: BLE001 - a benchmark counts failures, it does not stop
        result.error = repr(error)


@functools.cache
def provider_simulators(sim: str) -> list[str]:
    """The names of sluice-sim's provider simulators (`--list`), each of which the pool runs with
    its listener off."""
    listing = subprocess.run([sim, "--list"], check=True, capture_output=True, text=True, timeout=60)
    return list(json.loads(listing.stdout))


def start_pool(sim: str, replicas: int, workdir: str) -> tuple[subprocess.Popen, list[int]]:
    ports = [free_port() for _ in range(replicas)]
    args = [sim, *(f"--listen={name}=0" for name in provider_simulators(sim)),
            "--vllm-ports", ",".join(map(str, ports)), *ENGINE_ARGS]
    log = open(os.path.join(workdir, "sim.log"), "ab")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    pending = set(ports)
    while pending and time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"sluice-sim exited with {process.returncode}; see {workdir}/sim.log")
        for port in list(pending):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    pending.discard(port)
            except OSError:
                pass
        time.sleep(0.05)
    if pending:
        stop(process)
        sys.exit(f"replicas not ready on {sorted(pending)}")
    return process, ports


def envoy_binary() -> str:
    for candidate in (os.environ.get("SLUICE_ENVOY"), ROOT / ".envoy/bin/envoy"):
        if candidate and Path(candidate).exists():
            return str(candidate)
    sys.exit("envoy-* policies need Envoy: set SLUICE_ENVOY or run envoy-module/install-envoy.sh")


def start_envoy(lb_policy: str, replica_ports: list[int], workdir: str) -> tuple[subprocess.Popen, int]:
    """A plain Envoy (router only) in front of the replicas, with `lb_policy` on their cluster."""
    port, admin = free_port(), free_port()
    def address(p):
        return {"socket_address": {"address": "127.0.0.1", "port_value": p}}
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "bench",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "route": {"cluster": "pool", "timeout": "120s"}}]}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    bootstrap = {
        "admin": {"address": address(admin)},
        "static_resources": {
            "listeners": [{"name": "bench", "address": address(port), "filter_chains": [{"filters": [
                {"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}]}]}],
            "clusters": [{"name": "pool", "type": "STATIC", "connect_timeout": "2s", "lb_policy": lb_policy,
                          "load_assignment": {"cluster_name": "pool", "endpoints": [{"lb_endpoints": [
                              {"endpoint": {"address": address(p)}} for p in replica_ports]}]}}],
        },
    }
    path = os.path.join(workdir, "envoy.json")
    with open(path, "w") as f:
        json.dump(bootstrap, f)
    return wait_envoy(path, admin, port, workdir)


def built(name: str, env: str, *candidates: Path) -> str:
    for candidate in (os.environ.get(env), *candidates):
        if candidate and Path(candidate).exists():
            return str(candidate)
    sys.exit(f"envoy-sluice needs {name}: set ${env}")


def start_sluice_envoy(replica_ports: list[int], workdir: str, picker: str | None) -> tuple[subprocess.Popen, int]:
    """Envoy with the Sluice module in front of the replicas: `sluiced render` of a one-pool
    sluice.yaml with `lb: endpoint_picker` (its static bootstrap: the gateway filter, the picker
    cluster with its scrape list, the metrics cluster and the background worker)."""
    port, admin = free_port(), free_port()
    endpoints = ", ".join(f"http://127.0.0.1:{p}" for p in replica_ports)
    block = f", endpoint_picker: {picker}" if picker else ""
    adapters = "".join(f"  - {{ id: {a}, backend: pool, lora_adapter: true }}\n" for a in ADAPTERS)
    config = (
        f"listeners: [{{ name: gateway, address: 127.0.0.1, port: {port} }}]\n"
        f"pools: [{{ name: pool, lb: endpoint_picker, endpoints: [{endpoints}]{block} }}]\n"
        f"models:\n  - {{ id: {MODEL}, backend: pool }}\n{adapters}"
        f"consumers: [{{ name: bench, key: {BENCH_KEY} }}]\n"
    )
    config_path = os.path.join(workdir, "sluice.yaml")
    with open(config_path, "w") as f:
        f.write(config)
    token = os.path.join(workdir, "fleet-token")
    with open(token, "w") as f:
        f.write("bench\n")
    sluiced = built("sluiced", "SLUICE_SLUICED", ROOT / ".build/debug/sluiced", ROOT / ".build/release/sluiced")
    # No sluiced runs: the worker's usage records have nowhere to go (port 9 refuses), which costs
    # nothing per request; the worker is there for its metrics scraper.
    rendered = subprocess.run([sluiced, "render", "--config", config_path, "--format", "json", "--admin-port", str(admin),
                               "--fleet-admin", "127.0.0.1:9", "--fleet-token-file", token],
                              capture_output=True, text=True, timeout=60)
    if rendered.returncode != 0:
        sys.exit(f"sluiced render failed:\n{rendered.stderr}")
    path = os.path.join(workdir, "envoy-sluice.json")
    with open(path, "w") as f:
        f.write(rendered.stdout)
    module_dir = built("libsluice.so", "SLUICE_MODULE_DIR", ROOT / ".build/release")
    env = dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=module_dir)
    return wait_envoy(path, admin, port, workdir, env)


def wait_envoy(path: str, admin: int, port: int, workdir: str, env=None) -> tuple[subprocess.Popen, int]:
    log = open(os.path.join(workdir, "envoy.log"), "ab")
    process = subprocess.Popen([envoy_binary(), "-c", path, "--concurrency", "2", "--disable-hot-restart",
                                "--log-level", "warn"], stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 20
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"envoy exited with {process.returncode}; see {workdir}/envoy.log")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", admin, timeout=1)
            connection.request("GET", "/ready")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            pass
        time.sleep(0.05)
    stop(process)
    sys.exit("envoy not ready")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_policy(policy: str, schedule: list[Request], args, sim: str, workdir: str) -> dict:
    process, ports = start_pool(sim, args.replicas, workdir)
    envoy = None
    try:
        if policy == "envoy-sluice":
            envoy, envoy_port = start_sluice_envoy(ports, workdir, args.picker)
            time.sleep(0.5)  # the first scrapes (a cold picker starts on least-request)
            ports = [envoy_port]
            picker = Picker("round-robin", 1, args.seed, args.slack)
        elif policy.startswith("envoy-"):
            # Envoy picks; the client sends everything to its listener.
            lb = {"envoy-round-robin": "ROUND_ROBIN", "envoy-least-request": "LEAST_REQUEST"}[policy]
            envoy, envoy_port = start_envoy(lb, ports, workdir)
            ports = [envoy_port]
            picker = Picker("round-robin", 1, args.seed, args.slack)
        else:
            picker = Picker(policy, args.replicas, args.seed, args.slack)
        results = [Result() for _ in schedule]
        threads = []
        start = time.perf_counter()

        def worker(index: int, replica: int) -> None:
            try:
                send(ports[replica], schedule[index], args.output_tokens, results[index], start)
            finally:
                picker.done(replica)

        for index, request in enumerate(schedule):
            delay = start + request.at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            replica = picker.pick(request)
            thread = threading.Thread(target=worker, args=(index, replica), daemon=True)
            thread.start()
            threads.append(thread)
        deadline = time.perf_counter() + args.drain
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.perf_counter()))
        wall = time.perf_counter() - start
    finally:
        if envoy is not None:
            stop(envoy)
        stop(process)
    done = [r for r in results if r.e2e is not None and r.ttft is not None]
    errors = len(results) - len(done)
    ttfts = sorted(r.ttft for r in done)
    e2es = sorted(r.e2e for r in done)
    prompt = sum(r.prompt_tokens for r in done)

    def pct(values, p):
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

    return {
        "policy": policy, "requests": len(results), "errors": errors,
        "ttft_p50": pct(ttfts, 50), "ttft_p90": pct(ttfts, 90), "ttft_p99": pct(ttfts, 99),
        "e2e_p50": pct(e2es, 50), "e2e_p90": pct(e2es, 90),
        "output_tps": sum(r.output_tokens for r in done) / wall,
        "cache_hit": (sum(r.cached_tokens for r in done) / prompt) if prompt else 0.0,
        "mean_ttft": statistics.fmean(ttfts) if ttfts else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sim", help="sluice-sim binary (default: $SLUICE_SIM, .build/release, .build/debug)")
    parser.add_argument("--workload", choices=["shared", "unique", "lora"], default="shared")
    parser.add_argument("--policies", default="round-robin,random,least-request,affinity")
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second (Poisson)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of arrivals per policy")
    parser.add_argument("--drain", type=float, default=20.0, help="seconds to wait for stragglers")
    parser.add_argument("--system-prompts", type=int, default=8)
    parser.add_argument("--system-bytes", type=int, default=6144)
    parser.add_argument("--conversations", type=int, default=64)
    parser.add_argument("--max-turns", type=int, default=4, help="history turns a request carries")
    parser.add_argument("--output-tokens", type=int, default=24)
    parser.add_argument("--slack", type=int, default=6, help="affinity: in-flight slack over the least loaded")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--picker", help="envoy-sluice: the pool's endpoint_picker block, as YAML (\"{ prefix_weight: 4 }\")")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    unknown = set(args.policies.split(",")) - {"round-robin", "random", "least-request", "affinity",
                                               "envoy-round-robin", "envoy-least-request", "envoy-sluice"}
    if unknown:
        sys.exit(f"unknown policies: {sorted(unknown)}")
    if not (1 <= args.replicas <= 64 and 0 < args.rate <= 1000 and 0 < args.duration <= 60):
        sys.exit("--replicas 1..64, --rate 0..1000, --duration 0..60")
    sim = sim_binary(args.sim)
    schedule = build_schedule(args)
    workdir = tempfile.mkdtemp(prefix="sluice-routing-")
    print(f"workload {args.workload}: {len(schedule)} requests at {args.rate}/s for {args.duration}s over "
          f"{args.replicas} replicas, {args.output_tokens} output tokens, seed {args.seed}; sim {sim}", flush=True)
    rows = []
    try:
        for policy in args.policies.split(","):
            rows.append(run_policy(policy, schedule, args, sim, workdir))
            print(f"  {policy}: done", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    base = next((r for r in rows if r["policy"] in ("envoy-round-robin", "round-robin")), rows[0])
    least = next((r for r in rows if r["policy"] in ("envoy-least-request", "least-request")), None)
    print()
    vs_least = f" p90 TTFT vs {least['policy']} |" if least else ""
    print(f"| policy | TTFT p50 ms | p90 ms | p99 ms | E2E p50 ms | p90 ms | output tok/s | prefix hit | errors | "
          f"p90 TTFT vs {base['policy']} | tok/s vs {base['policy']} |{vs_least}")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if least else ""))
    for r in rows:
        extra = f" {r['ttft_p90'] / least['ttft_p90']:.2f}x |" if least else ""
        print(f"| {r['policy']} | {r['ttft_p50'] * 1e3:.1f} | {r['ttft_p90'] * 1e3:.1f} | {r['ttft_p99'] * 1e3:.1f} | "
              f"{r['e2e_p50'] * 1e3:.0f} | {r['e2e_p90'] * 1e3:.0f} | {r['output_tps']:.0f} | {r['cache_hit'] * 100:.0f}% | "
              f"{r['errors']} | {r['ttft_p90'] / base['ttft_p90']:.2f}x | {r['output_tps'] / base['output_tps']:.2f}x |{extra}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
