"""Starts the built `sluiced` (the control daemon) on free loopback ports, and an Envoy that knows
only sluiced (like envoy-module/bootstrap.yaml), for tests.

The binary comes from env `SLUICE_SLUICED` or `.build/debug/sluiced`. Each `Sluiced` runs in a
temp working directory of its own (its `.sluiced/` state, the admin database, the token and the
config file live there); processes are started here and stopped by PID.
"""
from __future__ import annotations

import copy
import errno
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import yaml

from harness import ROOT, Envoy, free_port, wait_until_serving
from sim import demo_sim_ports

DEMO_KEY = "sk-sluice-demo"
ADMIN_TOKEN = "sa-sluice-test-admin-token-0123456789abcdef"


def sluiced_binary() -> str:
    path = os.environ.get("SLUICE_SLUICED") or str(ROOT / ".build" / "debug" / "sluiced")
    if not os.path.exists(path):
        raise RuntimeError(f"sluiced not built at {path}: run `swift build --product sluiced`")
    return path


def retrying_busy_binary(start, timeout: float = 120.0):
    """Runs `start()`, retrying while the binary is being relinked (ETXTBSY: `swift build` writes
    it while tests run)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return start()
        except OSError as error:
            if error.errno != errno.ETXTBSY or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def demo_config(sims, gateway_port: int) -> dict:
    """envoy-module/sluice.yaml (sluiced's embedded default) with its simulator addresses moved to
    `sims`' ports and its listener to `gateway_port`; nothing else changes."""
    with open(ROOT / "envoy-module" / "sluice.yaml") as f:
        config = yaml.safe_load(f)

    sim_ports = demo_sim_ports()

    def remap(url: str) -> str:
        match = re.fullmatch(r"(https?://127\.0\.0\.1):(\d+)/?", url)
        if match and sim_ports.get(int(match.group(2))) in sims.ports:
            return f"{match.group(1)}:{sims.ports[sim_ports[int(match.group(2))]]}"
        return url

    for listener in config["listeners"]:
        if listener["port"] == 10000:
            listener["port"] = gateway_port
    for backend in config.get("backends", []):
        if "address" in backend:
            backend["address"] = remap(backend["address"])
        if "addresses" in backend:
            backend["addresses"] = [remap(a) for a in backend["addresses"]]
    for pool in config.get("pools", []):
        pool["endpoints"] = [remap(e) for e in pool["endpoints"]]
    return config


def gateway_port_of(config: dict) -> int:
    return config["listeners"][0]["port"]


class AdminError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class Sluiced:
    """One `sluiced serve` process with a config file, a SQLite admin database and an admin token
    in its own working directory, on free xDS and admin ports."""

    def __init__(
        self, config: dict | str, *, reload_interval_ms: int = 100, xds_port: int | None = None,
        admin_port: int | None = None, workdir: str | None = None, database: str | None = None, extra_args=(),
    ) -> None:
        """`database`: a postgres:// URL; default a SQLite file in the working directory."""
        self.workdir = workdir or tempfile.mkdtemp(prefix="sluiced-")
        self.xds_port = xds_port or free_port()
        self.admin_port = admin_port or free_port()
        self.reload_interval_ms = reload_interval_ms
        self.extra_args = list(extra_args)
        self.config_path = os.path.join(self.workdir, "sluice.yaml")
        self.database_path = os.path.join(self.workdir, ".sluiced", "sluice-admin.sqlite")
        self.database_url = database
        self.token_path = os.path.join(self.workdir, "admin-token")
        self.token = ADMIN_TOKEN
        self.log_path = os.path.join(self.workdir, "sluiced.log")
        self.process: subprocess.Popen | None = None
        self.starts = 0
        with open(self.token_path, "w") as f:
            f.write(self.token + "\n")
        os.chmod(self.token_path, 0o600)
        self.write_config(config)

    # MARK: The config file

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:{self.database_path}"

    def write_config(self, config: dict | str) -> float:
        """Saves the config the way editors do (a new file renamed over the old one); returns
        the `time.monotonic()` just before the rename, when the new content becomes visible."""
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        self.config_text = text
        temp = self.config_path + ".tmp"
        with open(temp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        written = time.monotonic()
        os.replace(temp, self.config_path)
        return written

    # MARK: The process

    def command(self) -> list[str]:
        return [
            sluiced_binary(), "serve",
            "--config", self.config_path,
            "--xds", f"127.0.0.1:{self.xds_port}",
            "--admin", f"127.0.0.1:{self.admin_port}",
            "--database", self.database,
            "--admin-token-file", self.token_path,
            "--reload-interval-ms", str(self.reload_interval_ms),
            *self.extra_args,
        ]

    def start(self) -> "Sluiced":
        self.starts += 1
        self.log = open(self.log_path, "ab")
        if self.starts > 1:
            self.log.write(f"\n----- sluiced start #{self.starts} -----\n".encode())
            self.log.flush()
        self.process = retrying_busy_binary(
            lambda: subprocess.Popen(self.command(), cwd=self.workdir, stdout=self.log, stderr=subprocess.STDOUT))
        return self

    def wait_ready(self, timeout: float = 30.0) -> "Sluiced":
        wait_until_serving(self.process, f"{self.admin_url}/healthz", "sluiced", self.logs, timeout)
        return self

    def stop(self) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL after 10 s."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close_log()
        return self.process.returncode if self.process else None

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, the ADS streams break."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if getattr(self, "log", None) and not self.log.closed:
            self.log.close()

    def logs(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self) -> "Sluiced":
        return self.start().wait_ready()

    def __exit__(self, *exc) -> None:
        self.stop()

    # MARK: The admin API

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def admin(self, method: str, path: str, body: dict | None = None, *, timeout: float = 10) -> dict | None:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.admin_url}{path}", data=data, method=method,
            headers={"authorization": f"Bearer {self.token}", "content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                text = r.read().decode()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            raise AdminError(error.code, error.read().decode("utf-8", "replace")) from None

    def status(self) -> dict:
        return self.admin("GET", "/v1/admin/status")

    def node(self, node_id: str) -> dict | None:
        return next((n for n in self.status()["nodes"] if n["node_id"] == node_id), None)

    def create_consumer(self, name: str, **fields) -> str:
        """Creates a database consumer; returns its key (shown this once)."""
        return self.admin("POST", "/v1/admin/consumers", {"name": name, **fields})["key"]

    def disable_consumer(self, name: str) -> dict:
        return self.admin("POST", f"/v1/admin/consumers/{name}/disable")

    # MARK: The CLI on the same binary

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return retrying_busy_binary(lambda: subprocess.run(
            [sluiced_binary(), *args], cwd=self.workdir, capture_output=True, text=True, timeout=timeout
        ))


def bootstrap(xds_port: int, admin_port: int, node_id: str = "sluice-gateway") -> dict:
    """envoy-module/bootstrap.yaml with its node id, admin port and the sluiced cluster's port set."""
    with open(ROOT / "envoy-module" / "bootstrap.yaml") as f:
        result = yaml.safe_load(f)
    result = copy.deepcopy(result)
    result["node"]["id"] = node_id
    result["admin"]["address"]["socket_address"]["port_value"] = admin_port
    (cluster,) = [c for c in result["static_resources"]["clusters"] if c["name"] == "sluiced"]
    for group in cluster["load_assignment"]["endpoints"]:
        for endpoint in group["lb_endpoints"]:
            endpoint["endpoint"]["address"]["socket_address"]["port_value"] = xds_port
    return result


def envoy_for(sluiced: Sluiced, node_id: str = "sluice-gateway", concurrency: int = 2) -> Envoy:
    """An Envoy (not started) bootstrapped only from `sluiced`."""
    return Envoy(bootstrap(sluiced.xds_port, free_port(), node_id), concurrency=concurrency)
