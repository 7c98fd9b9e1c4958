#!/usr/bin/env python3
"""Save-to-routable through a real Envoy configured only by sluiced (issue 9, item 8).

Starts `sluice-sim` (every provider simulator on a free port), `sluiced serve` on a temp copy of
envoy-module/sluice.yaml (simulator ports and the gateway port moved to free ones; the default
`--reload-interval-ms`), and Envoy with a bootstrap like envoy-module/bootstrap.yaml (free admin
port, sluiced's xDS port). Then, N times (50): one new model (`gpt-edit-latency-<n>` on the
openai backend) is inserted into the config file's `models:` list (written to a temp file and
renamed over the config, like editors save), and the time from just before the rename to the
first 200 for that model through Envoy is measured, polling a chat completion every 5 ms (404
until the model is routable). The copy also gets a consumer of its own without limits, whose key
the polling uses (the demo key's 600 requests a minute would answer 429).
Between edits it waits a random 0-250 ms (seeded), so edits land at every phase of sluiced's
reload timer. Prints p50/p90/p99/max.

Every process is started here and stopped by PID (SIGTERM, then SIGKILL) on exit; the run is
bounded by --max-seconds. Run through e2e/sluiced-edit-latency.sh (which finds the binaries).
"""
from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# A consumer of its own without limits (the demo key's 600 requests a minute would turn the
# 5 ms polling into 429s).
BENCH_KEY = "sk-sluice-edit-latency-bench"

processes: list[tuple[str, subprocess.Popen]] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_all() -> None:
    """Stops every process this script started, by PID, newest first."""
    for name, process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for name, process in reversed(processes):
        if process.poll() is None:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    processes.clear()


def start(name: str, args: list[str], log_path: str, **kwargs) -> subprocess.Popen:
    log = open(log_path, "wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **kwargs)
    processes.append((name, process))
    return process


def tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_until(condition, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} while waiting for {what}")
        if condition():
            return
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


class Gateway:
    """One keep-alive connection to Envoy's gateway listener."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def chat(self, model: str) -> int:
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": "edit latency"}], "max_tokens": 8})
        headers = {"Authorization": f"Bearer {BENCH_KEY}", "Content-Type": "application/json"}
        for attempt in range(2):
            try:
                if self.connection is None:
                    self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                self.connection.request("POST", "/v1/chat/completions", body=body, headers=headers)
                response = self.connection.getresponse()
                response.read()
                if response.getheader("connection", "").lower() == "close":
                    self.connection.close()
                    self.connection = None
                return response.status
            except (OSError, http.client.HTTPException):
                if self.connection is not None:
                    self.connection.close()
                self.connection = None
                if attempt == 1:
                    return 0
        return 0


def provider_simulators(sim: str) -> dict[str, int]:
    """sluice-sim's provider simulators, name -> default port (`--list`): the ports
    envoy-module/sluice.yaml addresses them at."""
    listing = subprocess.run([sim, "--list"], check=True, capture_output=True, text=True, timeout=60)
    return json.loads(listing.stdout)


def demo_config_text(defaults: dict[str, int], sim_ports: dict[str, int], gateway_port: int) -> str:
    """envoy-module/sluice.yaml as text, with the simulator addresses (at their `defaults`) and the
    listener port moved."""
    with open(os.path.join(ROOT, "envoy-module", "sluice.yaml")) as f:
        text = f.read()
    by_port = {port: name for name, port in defaults.items()}

    def remap(match: re.Match) -> str:
        port = int(match.group(1))
        return f"127.0.0.1:{sim_ports[by_port[port]]}" if port in by_port else match.group(0)

    text = re.sub(r"127\.0\.0\.1:(\d+)", remap, text)
    text, count = re.subn(r"port: 10000\b", f"port: {gateway_port}", text)
    if count != 1:
        raise RuntimeError("envoy-module/sluice.yaml: expected one listener on port 10000")
    lines = []
    for line in text.splitlines():
        if line.startswith("# yaml-language-server"):
            continue  # the copy lives elsewhere: its schema path would point nowhere
        lines.append(line)
        if line.startswith("consumers:"):
            lines.append(f"  - {{ name: edit-latency-bench, key: {BENCH_KEY} }}")
    return "\n".join(lines) + "\n"


def with_model(text: str, model_id: str) -> str:
    """`text` with one more model, first in the `models:` list, on the openai backend (whose
    simulator serves every `gpt-*` name)."""
    line = f"  - {{ id: {model_id}, backend: openai, created: 1764201600 }}"
    lines = text.splitlines()
    for index, current in enumerate(lines):
        if current.startswith("models:"):
            return "\n".join(lines[: index + 1] + [line] + lines[index + 1 :]) + "\n"
    raise RuntimeError("the config has no 'models:' line")


def save(path: str, text: str) -> float:
    """Writes `text` to a temp file and renames it over `path`; returns time.monotonic() just
    before the rename (when the new content becomes visible)."""
    temp = path + ".tmp"
    with open(temp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    written = time.monotonic()
    os.replace(temp, path)
    return written


def percentile(values: list[float], p: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=int(os.environ.get("EDITS", 50)))
    parser.add_argument("--poll-ms", type=float, default=5.0)
    parser.add_argument("--edit-timeout", type=float, default=10.0, help="seconds an edit may take to become routable")
    parser.add_argument("--max-seconds", type=float, default=float(os.environ.get("MAX_SECONDS", 300)))
    parser.add_argument("--reload-interval-ms", type=int, default=None, help="sluiced's option (default: sluiced's default)")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (configs and logs)")
    parser.add_argument("--sluiced", required=True)
    parser.add_argument("--sim", required=True)
    parser.add_argument("--envoy", required=True)
    parser.add_argument("--module-dir", required=True)
    args = parser.parse_args()

    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="sluiced-edit-latency-")
    defaults = provider_simulators(args.sim)
    sim_ports = {name: free_port() for name in defaults}
    gateway_port, xds_port, admin_port, envoy_admin_port = (free_port() for _ in range(4))
    config_path = os.path.join(workdir, "sluice.yaml")
    config = demo_config_text(defaults, sim_ports, gateway_port)
    save(config_path, config)
    token_path = os.path.join(workdir, "admin-token")
    with open(token_path, "w") as f:
        f.write("sa-sluice-bench-admin-token-0123456789abcdef\n")
    os.chmod(token_path, 0o600)

    with open(os.path.join(ROOT, "envoy-module", "bootstrap.yaml")) as f:
        bootstrap = f.read()
    bootstrap = bootstrap.replace("port_value: 9901", f"port_value: {envoy_admin_port}")
    bootstrap = bootstrap.replace("port_value: 18000", f"port_value: {xds_port}")
    bootstrap_path = os.path.join(workdir, "bootstrap.yaml")
    with open(bootstrap_path, "w") as f:
        f.write(bootstrap)

    def check_time(what: str) -> None:
        if time.monotonic() - started > args.max_seconds:
            raise RuntimeError(f"--max-seconds {args.max_seconds:.0f} reached ({what})")

    try:
        # Private copies: `swift build` may relink the originals while this runs.
        os.makedirs(os.path.join(workdir, "bin"))
        args.sluiced = shutil.copy2(args.sluiced, os.path.join(workdir, "bin", "sluiced"))
        args.sim = shutil.copy2(args.sim, os.path.join(workdir, "bin", "sluice-sim"))
        sim_args = [args.sim, "--pace-ms", "0"]
        for name, port in sim_ports.items():
            sim_args += ["--listen", f"{name}={port}"]
        start("sluice-sim", sim_args, os.path.join(workdir, "sim.log"))
        sluiced_args = [
            args.sluiced, "serve", "--config", config_path,
            "--xds", f"127.0.0.1:{xds_port}", "--admin", f"127.0.0.1:{admin_port}",
            "--database", f"sqlite:{os.path.join(workdir, 'admin.sqlite')}", "--admin-token-file", token_path,
        ]
        if args.reload_interval_ms is not None:
            sluiced_args += ["--reload-interval-ms", str(args.reload_interval_ms)]
        start("sluiced", sluiced_args, os.path.join(workdir, "sluiced.log"), cwd=workdir)
        wait_until(lambda: all(port_open(p) for p in sim_ports.values()), 30, "the simulators")
        wait_until(lambda: http_ok(f"http://127.0.0.1:{admin_port}/healthz"), 60, "sluiced's admin API")
        env = dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=args.module_dir)
        start(
            "envoy",
            [args.envoy, "-c", bootstrap_path, "--concurrency", "2", "--log-level", "warn", "--use-dynamic-base-id"],
            os.path.join(workdir, "envoy.log"), env=env)
        wait_until(lambda: http_ok(f"http://127.0.0.1:{envoy_admin_port}/ready"), 60, "Envoy ready")
        gateway = Gateway(gateway_port)
        wait_until(lambda: gateway.chat("gpt-4o-mini") == 200, 60, "a 200 for gpt-4o-mini through Envoy")
        print(
            f"sluiced-edit-latency: Envoy :{gateway_port} configured by sluiced (xDS :{xds_port}, "
            f"reload interval {args.reload_interval_ms or 'default'}); {args.edits} edits, polling every {args.poll_ms:g} ms",
            flush=True)

        rng = random.Random(args.seed)
        poll = args.poll_ms / 1000
        times: list[float] = []
        polls: list[int] = []
        for edit in range(args.edits):
            check_time(f"edit {edit}")
            model = f"gpt-edit-latency-{edit}"
            status = gateway.chat(model)
            if status != 404:
                raise RuntimeError(f"edit {edit}: {model} answered {status} before the edit (expected 404)")
            time.sleep(rng.uniform(0, 0.25))
            config = with_model(config, model)
            written = save(config_path, config)
            deadline = written + args.edit_timeout
            count = 0
            while True:
                count += 1
                status = gateway.chat(model)
                now = time.monotonic()
                if status == 200:
                    break
                if status != 404:
                    raise RuntimeError(f"edit {edit}: {model} answered {status} while waiting (expected 404, then 200)")
                if now > deadline:
                    raise RuntimeError(f"edit {edit}: {model} not routable {args.edit_timeout:.0f} s after the save")
                time.sleep(poll)
            times.append(now - written)
            polls.append(count)

        ms = [t * 1000 for t in times]
        print(f"save -> first 200 for the new model, {len(ms)} edits (ms): " + " ".join(f"{t:.0f}" for t in ms))
        print(
            f"  p50 {percentile(ms, 50):.1f} ms   p90 {percentile(ms, 90):.1f} ms   p99 {percentile(ms, 99):.1f} ms   "
            f"max {max(ms):.1f} ms   min {min(ms):.1f} ms   mean {statistics.fmean(ms):.1f} ms   "
            f"(polls per edit: median {statistics.median(polls):.0f})")
        if len(ms) < 100:
            print(f"  (nearest-rank p99 of {len(ms)} samples is the maximum)")
        return 0
    except Exception as error:  # noqa: BLE001 - report and clean up
        print(f"sluiced-edit-latency: {error}", file=sys.stderr)
        for name in ("sluiced", "envoy", "sim"):
            print(f"--- {name}.log (tail) ---\n{tail(os.path.join(workdir, name + '.log'))}", file=sys.stderr)
        return 1
    finally:
        stop_all()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
