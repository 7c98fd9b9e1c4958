#!/usr/bin/env python3
"""Usage-record ingest rate of sluiced: starts `sluiced serve` on free loopback ports in a temp
directory (SQLite by default), posts 500-record batches to POST /v1/fleet/usage from N
keep-alive clients for D seconds, and prints records/s and sluiced's RSS (before, every 10 s, after).
Every id is new, so each record is one row inserted. sluiced is stopped by its PID.

    benchmarks/fleet-ingest.py --sluiced .build/release/sluiced [--seconds 20] [--clients 2]
        [--database postgres://…] [--preload /usr/lib/x86_64-linux-gnu/libjemalloc.so.2]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "fleet-benchmark-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def batch_template(records: int) -> bytes:
    """A batch whose ids are `@@@@-<i>`: the client replaces @@@@ with a unique prefix."""
    rows = []
    for i in range(records):
        rows.append({
            "id": f"@@@@-{i}", "time_ms": 1_764_900_000_000 + i, "key": f"key-{i % 50}", "team": f"team-{i % 5}",
            "model": ["gpt-4o-mini", "claude-sonnet-4-6", "gemini-2.5-flash"][i % 3], "backend": f"backend-{i % 3}",
            "provider": ["openai", "anthropic", "gemini"][i % 3], "status": 429 if i % 20 == 0 else 200,
            "input_tokens": 100 + i % 400, "cached_input_tokens": i % 50, "output_tokens": 50 + i % 300,
            "cost_micro_usd": 100 + i * 7, "duration_ms": 200 + i % 900, "ttft_ms": 30 + i % 200 if i % 2 else None,
            "stream": i % 2 == 1,
        })
    return json.dumps({"envoy": "bench-envoy", "records": rows}, separators=(",", ":")).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sluiced", default=os.path.join(ROOT, ".build", "release", "sluiced"))
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--database", help="a postgres:// URL; default a SQLite file in a temp dir")
    parser.add_argument("--preload", help="LD_PRELOAD for sluiced (e.g. libjemalloc.so.2)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (database, log)")
    args = parser.parse_args()
    args.sluiced = os.path.abspath(args.sluiced)
    if not (1 <= args.seconds <= 600 and 1 <= args.clients <= 16 and 1 <= args.batch <= 1000):
        parser.error("--seconds 1..600, --clients 1..16, --batch 1..1000")

    workdir = tempfile.mkdtemp(prefix="sluiced-ingest-")
    token_file = os.path.join(workdir, "fleet-token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    admin_port, xds_port = free_port(), free_port()
    env = dict(os.environ)
    if args.preload:
        env["LD_PRELOAD"] = args.preload
    database = args.database or f"sqlite:{os.path.join(workdir, 'admin.sqlite')}"
    log = open(os.path.join(workdir, "sluiced.log"), "wb")
    process = subprocess.Popen(
        [args.sluiced, "serve", "--admin", f"127.0.0.1:{admin_port}", "--xds", f"127.0.0.1:{xds_port}",
         "--database", database, "--fleet-token-file", token_file, "--log-level", "warning"],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"sluiced exited with {process.returncode}; see {workdir}/sluiced.log")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/healthz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("sluiced did not start within 60 s")
                time.sleep(0.05)
        rss_start = rss_kib(process.pid)
        template = batch_template(args.batch)
        headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
        accepted = [0] * args.clients
        batches = [0] * args.clients
        failures: list[str] = []
        stop_at = time.monotonic() + args.seconds

        def client(index: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=30)
            sequence = 0
            while time.monotonic() < stop_at and not failures:
                body = template.replace(b"@@@@", f"c{index}b{sequence}".encode())
                sequence += 1
                connection.request("POST", "/v1/fleet/usage", body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    failures.append(f"{response.status}: {answer[:200]!r}")
                    return
                accepted[index] += json.loads(answer)["accepted"]
                batches[index] += 1
            connection.close()

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        # sluiced's RSS every 10 s of the run (does it stay flat under a steady ingest?)
        rss_samples = []
        next_sample = time.monotonic() + 10
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=max(0.0, next_sample - time.monotonic()))
                if time.monotonic() >= next_sample:
                    rss_samples.append(rss_kib(process.pid))
                    next_sample += 10
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        if failures:
            raise RuntimeError(f"a batch failed: {failures[0]}")
        rss_end = rss_kib(process.pid)
        total = sum(accepted)
        print(json.dumps({
            "database": "postgres" if args.database else "sqlite", "preload": args.preload or None,
            "clients": args.clients, "batch_records": args.batch, "seconds": round(elapsed, 2),
            "batches": sum(batches), "records": total, "records_per_second": round(total / elapsed),
            "rss_kib_start": rss_start, "rss_kib_end": rss_end, "rss_kib_every_10s": rss_samples,
        }))
        return 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
