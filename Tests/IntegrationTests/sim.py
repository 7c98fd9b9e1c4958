"""Starts the built `sluice-sim` on free loopback ports, for tests; plus SigV4 and event-stream helpers.

The binary comes from env `SLUICE_SIM` or `.build/debug/sluice-sim`. The process is started here and
stopped by PID.
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import hmac
import json
import os
import struct
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import zlib

from harness import ROOT, free_ports

# Credentials the simulators accept by default.
OPENAI_KEY = "sk-sim-openai"
AZURE_KEY = "sim-azure-key"
ANTHROPIC_KEY = "sk-ant-sim"
AWS_ACCESS_KEY_ID = "AKIDSLUICESIM"
AWS_SECRET_ACCESS_KEY = "sluice-sim-secret"
AWS_REGION = "us-east-1"
GEMINI_KEY = "sim-gemini-key"
VERTEX_TOKEN = "sim-vertex-token"
COMPAT_KEY = "sim-local"
COMPAT_MODEL = "sim-llama-3-8b"
COMPAT_RERANK_MODEL = "bge-reranker-v2-m3"
COHERE_KEY = "sim-cohere-key"
# The vLLM-like pool (`--vllm-ports`): its model, LoRA adapters and replica names in `ports`.
VLLM_MODEL = "llama-3.1-8b-instruct"
VLLM_ADAPTERS = ("sql-lora", "chat-lora", "code-lora", "summarize-lora")
VLLM_POOL = 4
# Where the demo config (envoy-module/sluice.yaml) has the pool: `--vllm-base-port`'s default.
VLLM_BASE_PORT = 18111


def vllm_replica(index: int) -> str:
    return f"vllm-{index}"


def sim_binary() -> str:
    path = os.environ.get("SLUICE_SIM") or str(ROOT / ".build" / "debug" / "sluice-sim")
    if not os.path.exists(path):
        raise RuntimeError(f"sluice-sim not built at {path}: run `swift build --product sluice-sim`")
    return path


@functools.cache
def providers() -> dict[str, int]:
    """The provider simulators `sluice-sim` serves, name -> default port, in its order
    (`sluice-sim --list`; asked once per process)."""
    listing = subprocess.run([sim_binary(), "--list"], check=True, capture_output=True, text=True, timeout=60)
    return json.loads(listing.stdout)


def demo_sim_ports() -> dict[int, str]:
    """The simulators' ports in the demo config (envoy-module/sluice.yaml, sluiced's embedded
    default), by listener name: each provider's default port and the vLLM-like pool's."""
    ports = {port: name for name, port in providers().items()}
    ports.update({VLLM_BASE_PORT + index: vllm_replica(index) for index in range(VLLM_POOL)})
    return ports


class Simulators:
    """All provider simulators in one `sluice-sim` process, each on its own free port, and the
    vLLM-like pool (`vllm_pool` replicas, named `vllm-0`... in `ports`)."""

    def __init__(self, *, pace_ms: int = 1, extra_args=(), vllm_pool: int = VLLM_POOL) -> None:
        self.pace_ms = pace_ms
        self.extra_args = list(extra_args)
        self.vllm_replicas = [vllm_replica(i) for i in range(vllm_pool)]
        names = list(providers()) + self.vllm_replicas
        # Every listener in one process: distinct ports (one sluice-sim fails whole on a clash).
        self.ports = dict(zip(names, free_ports(len(names))))
        self.workdir = tempfile.mkdtemp(prefix="sluice-sim-")
        self.log_path = os.path.join(self.workdir, "sim.log")
        self.process: subprocess.Popen | None = None

    def url(self, provider: str) -> str:
        return f"http://127.0.0.1:{self.ports[provider]}"

    def start(self) -> "Simulators":
        args = [sim_binary(), "--pace-ms", str(self.pace_ms)]
        for name in providers():
            args += ["--listen", f"{name}={self.ports[name]}"]
        if self.vllm_replicas:
            args += ["--vllm-ports", ",".join(str(self.ports[name]) for name in self.vllm_replicas)]
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(args + self.extra_args, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, timeout: float = 20.0) -> "Simulators":
        deadline = time.time() + timeout
        pending = set(self.ports)
        while pending and time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sluice-sim exited with {self.process.returncode}:\n{self.logs()}")
            for name in list(pending):
                try:
                    with urllib.request.urlopen(self.url(name) + "/healthz", timeout=1) as r:
                        if r.status == 200:
                            pending.discard(name)
                except OSError:
                    pass
            time.sleep(0.05)
        if pending:
            raise RuntimeError(f"sluice-sim listeners not ready: {sorted(pending)}\n{self.logs()}")
        return self

    def last(self, provider: str) -> dict | None:
        """The last request `provider` received (secrets redacted), or None."""
        query = urllib.parse.urlencode({"provider": provider})
        try:
            with urllib.request.urlopen(f"{self.url(provider)}/__sim/last?{query}", timeout=5) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def logs(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> int | None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "log", None):
            self.log.close()
        return self.process.returncode if self.process else None

    def __enter__(self) -> "Simulators":
        return self.start().wait_ready()

    def __exit__(self, *exc) -> None:
        self.stop()


# MARK: - SigV4 (independent of the Swift signer, from the AWS documentation)


def sigv4_headers(
    method: str,
    url: str,
    body: bytes,
    *,
    access_key: str = AWS_ACCESS_KEY_ID,
    secret_key: str = AWS_SECRET_ACCESS_KEY,
    region: str = AWS_REGION,
    service: str = "bedrock",
    headers: dict | None = None,
    now: datetime.datetime | None = None,
) -> dict:
    """Headers (including `authorization`) that sign a request the way AWS SDKs do."""
    parts = urllib.parse.urlsplit(url)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date_stamp = now.strftime("%Y%m%d")
    payload_hash = hashlib.sha256(body).hexdigest()
    signed = {k.lower(): v for k, v in (headers or {}).items()}
    signed.update({"host": parts.netloc, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash})
    names = sorted(signed)
    # Every service but S3 encodes the already-encoded path once more.
    canonical_uri = urllib.parse.quote(parts.path or "/", safe="/~")
    query_pairs = sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='~')}={urllib.parse.quote(v, safe='~')}" for k, v in query_pairs
    )
    canonical_headers = "".join(f"{n}:{' '.join(str(signed[n]).split())}\n" for n in names)
    signed_headers = ";".join(names)
    canonical = "\n".join([method, canonical_uri, canonical_query, canonical_headers, signed_headers, payload_hash])
    scope = f"{date_stamp}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])

    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = mac(("AWS4" + secret_key).encode(), date_stamp)
    for part in (region, service, "aws4_request"):
        key = mac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    result = dict(headers or {})
    result.update(
        {
            "x-amz-date": amz_date,
            "x-amz-content-sha256": payload_hash,
            "authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}",
        }
    )
    return result


# MARK: - AWS event stream


def decode_event_stream(data: bytes) -> list[tuple[dict, bytes]]:
    """Decodes `application/vnd.amazon.eventstream` frames, checking both CRCs."""
    messages = []
    offset = 0
    while offset < len(data):
        total, header_length, prelude_crc = struct.unpack_from(">III", data, offset)
        assert zlib.crc32(data[offset : offset + 8]) == prelude_crc, "prelude CRC"
        end = offset + total
        assert zlib.crc32(data[offset : end - 4]) == struct.unpack_from(">I", data, end - 4)[0], "message CRC"
        headers = {}
        cursor = offset + 12
        headers_end = cursor + header_length
        while cursor < headers_end:
            name_length = data[cursor]
            name = data[cursor + 1 : cursor + 1 + name_length].decode()
            cursor += 1 + name_length
            value_type = data[cursor]
            cursor += 1
            if value_type == 7:
                (length,) = struct.unpack_from(">H", data, cursor)
                headers[name] = data[cursor + 2 : cursor + 2 + length].decode()
                cursor += 2 + length
            else:
                raise AssertionError(f"unexpected header type {value_type}")
        messages.append((headers, data[headers_end : end - 4]))
        offset = end
    return messages


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """Splits an SSE body into (event, data) pairs; accepts `\\n\\n` and `\\r\\n\\r\\n` separators."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        event = None
        data = []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        events.append((event, "\n".join(data)))
    return events
