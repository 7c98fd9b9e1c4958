"""Starts the real Envoy 1.40 with libsluice.so and local upstreams on loopback, for tests.

Every process is started by this module and stopped by PID; ports are picked free at start so
tests never collide with a gateway a developer has running on 10000/9901.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


# The module sums its labelled counters and hands them to Envoy every 100 ms
# (Sources/SluiceEnvoy/Runtime/AggregatedCounters.swift); a test that reads them right after its
# requests waits this long first.
MODULE_COUNTER_FLUSH_SECONDS = 0.3


def envoy_binary() -> str:
    path = os.environ.get("SLUICE_ENVOY") or str(ROOT / ".envoy" / "bin" / "envoy")
    if not os.path.exists(path):
        raise RuntimeError(f"Envoy not installed at {path}: run envoy-module/install-envoy.sh")
    return path


def module_dir() -> str:
    path = os.environ.get("SLUICE_MODULE_DIR") or str(ROOT / ".build" / "release")
    if not os.path.exists(os.path.join(path, "libsluice.so")):
        raise RuntimeError(f"libsluice.so not built in {path}: run envoy-module/build-module.sh")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: every socket stays bound until all are chosen, so the kernel
    cannot hand the same port out twice (one at a time, a port freed by the last call can come
    back at once)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# MARK: - A local upstream that echoes what it received


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()  # CRLF after each chunk
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self) -> None:
        body = self._read_body()
        payload = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


class EchoUpstream:
    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "EchoUpstream":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# MARK: - Envoy bootstraps


def gateway_bootstrap(
    *,
    gateway_port: int,
    admin_port: int,
    upstream_port: int,
    filter_config: dict | str,
    filter_name: str = "sluice",
    metrics_namespace: str = "sluice",
    with_plain_listener_port: int | None = None,
    routes: list | None = None,
    clusters: list | None = None,
    secrets: list | None = None,
) -> dict:
    """A bootstrap like envoy-module/envoy.yaml, pointed at test ports.

    `routes`/`clusters` replace the default catch-all route to the single `upstream` cluster."""
    config_value = filter_config if isinstance(filter_config, str) else json.dumps(filter_config)

    def listener(name: str, port: int, with_module: bool) -> dict:
        filters = []
        if with_module:
            filters.append(
                {
                    "name": "envoy.filters.http.dynamic_modules",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
                        "dynamic_module_config": {
                            "name": "sluice",
                            "do_not_close": True,
                            "metrics_namespace": metrics_namespace,
                        },
                        "filter_name": filter_name,
                        "filter_config": {
                            "@type": "type.googleapis.com/google.protobuf.StringValue",
                            "value": config_value,
                        },
                    },
                }
            )
        filters.append(
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            }
        )
        return {
            "name": name,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [
                {
                    "filters": [
                        {
                            "name": "envoy.filters.network.http_connection_manager",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                                "stat_prefix": name,
                                "route_config": {
                                    "virtual_hosts": [
                                        {
                                            "name": "all",
                                            "domains": ["*"],
                                            "routes": routes
                                            or [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}],
                                        }
                                    ]
                                },
                                "http_filters": filters,
                            },
                        }
                    ]
                }
            ],
        }

    listeners = [listener("gateway", gateway_port, True)]
    if with_plain_listener_port:
        listeners.append(listener("plain", with_plain_listener_port, False))
    resources = {"listeners": listeners, "clusters": clusters or [static_cluster("upstream", upstream_port)]}
    if secrets:
        resources["secrets"] = secrets
    return {
        # SDS (file-based secret rotation) needs a node identity.
        "node": {"id": "sluice-test", "cluster": "sluice"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": resources,
    }


def static_cluster(name: str, port: int, upstream_filter_config: dict | None = None) -> dict:
    """A loopback cluster; with `upstream_filter_config`, the `sluice_upstream` filter runs per attempt."""
    cluster = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}
            ],
        },
    }
    if upstream_filter_config is not None:
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http_protocol_options": {}},
                "http_filters": [
                    {
                        "name": "envoy.filters.http.dynamic_modules",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
                            "dynamic_module_config": {"name": "sluice", "do_not_close": True, "metrics_namespace": "sluice"},
                            "filter_name": "sluice_upstream",
                            "filter_config": {
                                "@type": "type.googleapis.com/google.protobuf.StringValue",
                                "value": json.dumps(upstream_filter_config),
                            },
                        },
                    },
                    {
                        "name": "envoy.filters.http.upstream_codec",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"
                        },
                    },
                ],
            }
        }
    return cluster


def header_route(route_name: str, cluster: str, **route_options) -> dict:
    """An Envoy route taking requests whose `x-sluice-route` header (set by the filter) is `route_name`."""
    return {
        "match": {"prefix": "/", "headers": [{"name": "x-sluice-route", "string_match": {"exact": route_name}}]},
        "route": {"cluster": cluster, **route_options},
    }


def wait_until_serving(process: subprocess.Popen, url: str, name: str, logs, timeout: float) -> None:
    """Polls `url` until it answers 200; raises with `logs()` if `process` exits or time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{logs()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{name} not ready after {timeout}s:\n{logs()}")


class Envoy:
    """One Envoy process with a JSON bootstrap; stopped by PID on exit."""

    def __init__(
        self, bootstrap: dict, *, concurrency: int = 2, log_level: str = "info", extra_args=(), as_yaml: bool = False
    ) -> None:
        """`as_yaml`: hand Envoy the bootstrap as YAML, so its YAML loader (which turns large
        integers into strings on the way to a protobuf Struct) is what the module sees."""
        self.bootstrap = bootstrap
        self.as_yaml = as_yaml
        self.concurrency = concurrency
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.admin_port = bootstrap["admin"]["address"]["socket_address"]["port_value"]
        self.workdir = tempfile.mkdtemp(prefix="sluice-envoy-")
        self.log_path = os.path.join(self.workdir, "envoy.log")
        self.process: subprocess.Popen | None = None

    def start(self) -> "Envoy":
        config_path = os.path.join(self.workdir, "envoy.yaml" if self.as_yaml else "envoy.json")
        with open(config_path, "w") as f:
            if self.as_yaml:
                import yaml

                yaml.safe_dump(self.bootstrap, f)
            else:
                json.dump(self.bootstrap, f)
        env = dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=module_dir())
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                envoy_binary(),
                "-c", config_path,
                "--concurrency", str(self.concurrency),
                "--log-level", self.log_level,
                "--use-dynamic-base-id",
                *self.extra_args,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        return self

    def wait_ready(self, timeout: float = 30.0) -> "Envoy":
        wait_until_serving(self.process, f"http://127.0.0.1:{self.admin_port}/ready", "Envoy", self.logs, timeout)
        return self

    def wait_exit(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout=timeout)

    def logs(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/stats?usedonly", timeout=5) as r:
            text = r.read().decode()
        result = {}
        for line in text.splitlines():
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                result[name] = int(value)
        return result

    def flushed_stats(self) -> dict[str, int]:
        """Stats once the module has flushed its summed counters (it does every 100 ms)."""
        time.sleep(MODULE_COUNTER_FLUSH_SECONDS)
        return self.stats()

    def prometheus(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/stats/prometheus", timeout=5) as r:
            return r.read().decode()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "log", None):
            self.log.close()

    def __enter__(self) -> "Envoy":
        return self.start().wait_ready()

    def __exit__(self, *exc) -> None:
        self.stop()
