"""The shipped default (envoy-module/envoy.yaml) with the provider simulators, on free ports.

envoy.yaml is `sluiced render` of the embedded default (envoy-module/sluice.yaml). Loads the real
bootstrap and only moves its ports (gateway, admin, simulators), so the tests exercise exactly what
the README's run command serves."""
from __future__ import annotations

import json

import yaml

from harness import ROOT, Envoy, free_port
from sim import Simulators, demo_sim_ports
DEMO_KEY = "sk-sluice-demo"


def sluice_filter_block(bootstrap: dict) -> dict:
    """The `sluice` filter's `filter_config` (an Any) inside the default bootstrap."""
    for listener in bootstrap["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                for http_filter in network_filter["typed_config"].get("http_filters", []):
                    if http_filter["typed_config"].get("filter_name") == "sluice":
                        return http_filter["typed_config"]["filter_config"]
    raise KeyError("no sluice filter in the bootstrap")


def adjust_sluice_filter_config(bootstrap: dict, adjust) -> None:
    """Calls `adjust(config)` on the `sluice` filter's config as a dict, and writes it back in the
    bootstrap's own encoding: `sluiced render` writes a StringValue of JSON, a hand-written
    bootstrap may use a Struct."""
    block = sluice_filter_block(bootstrap)
    if block.get("@type", "").endswith("google.protobuf.StringValue"):
        config = json.loads(block["value"])
        adjust(config)
        block["value"] = json.dumps(config, separators=(",", ":"))
    else:
        adjust(block["value"])


def gateway_http_filters(bootstrap: dict) -> list:
    """The HTTP filter list of the gateway listener (port 10000 in envoy.yaml), to insert into."""
    for listener in bootstrap["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                filters = network_filter["typed_config"].get("http_filters", [])
                if any(f["typed_config"].get("filter_name") == "sluice" for f in filters):
                    return filters
    raise KeyError("no listener with the sluice filter in the bootstrap")


def remove_fleet_worker(bootstrap: dict) -> None:
    """Drops the module's background worker and its `sluiced_fleet` cluster from the bootstrap."""
    bootstrap.pop("bootstrap_extensions", None)
    clusters = bootstrap["static_resources"]["clusters"]
    clusters[:] = [c for c in clusters if c["name"] != "sluiced_fleet"]


def scraper_only_worker(bootstrap: dict, **endpoint_metrics) -> None:
    """Keeps the module's background worker for its endpoint scraper only: no sluiced runs, so its
    usage records have nowhere to go (no token file; a short timeout bounds the flush at
    shutdown) and leases stay off. `endpoint_metrics` overrides the scraper's settings."""
    for extension in bootstrap.get("bootstrap_extensions", []):
        config = extension["typed_config"]
        if config.get("extension_name") != "sluice_fleet":
            continue
        worker = {"cluster": "sluiced_fleet", "token_file": "/nonexistent/sluice-fleet-token", "envoy": "test-envoy",
                  "timeout_ms": 100}
        if endpoint_metrics:
            worker["endpoint_metrics"] = endpoint_metrics
        config["extension_config"]["value"] = json.dumps(worker)
        return
    raise KeyError("no sluice_fleet bootstrap extension in the bootstrap")


def picker_config(cluster: dict) -> dict | None:
    """The `sluice_endpoint_picker` config (a dict) of a cluster, or None."""
    for policy in cluster.get("load_balancing_policy", {}).get("policies", []):
        typed = policy["typed_extension_config"]["typed_config"]
        if typed.get("lb_policy_name") == "sluice_endpoint_picker":
            return json.loads(typed["lb_policy_config"]["value"])
    return None


def set_picker_config(cluster: dict, config: dict) -> None:
    for policy in cluster.get("load_balancing_policy", {}).get("policies", []):
        typed = policy["typed_extension_config"]["typed_config"]
        if typed.get("lb_policy_name") == "sluice_endpoint_picker":
            typed["lb_policy_config"]["value"] = json.dumps(config, separators=(",", ":"))


def remapped_bootstrap(sims: Simulators, gateway_port: int, admin_port: int) -> dict:
    with open(ROOT / "envoy-module" / "envoy.yaml") as f:
        bootstrap = yaml.safe_load(f)
    bootstrap["admin"]["address"]["socket_address"]["port_value"] = admin_port
    for listener in bootstrap["static_resources"]["listeners"]:
        if listener["address"]["socket_address"]["port_value"] == 10000:
            listener["address"]["socket_address"]["port_value"] = gateway_port

    sim_ports = demo_sim_ports()

    def visit(node):
        if isinstance(node, dict):
            if "socket_address" in node and sim_ports.get(node["socket_address"].get("port_value")) in sims.ports:
                node["socket_address"]["port_value"] = sims.ports[sim_ports[node["socket_address"]["port_value"]]]
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(bootstrap["static_resources"]["clusters"])
    # The endpoint picker's scrape list names the same hosts, as "ip:port" strings.
    for cluster in bootstrap["static_resources"]["clusters"]:
        config = picker_config(cluster)
        if config is None:
            continue
        moved = []
        for endpoint in config.get("endpoints", []):
            host, port = endpoint.rsplit(":", 1)
            name = sim_ports.get(int(port))
            moved.append(f"{host}:{sims.ports[name]}" if name in sims.ports else endpoint)
        config["endpoints"] = moved
        set_picker_config(cluster, config)
    return bootstrap


class DefaultGateway:
    """Simulators + Envoy with the default bootstrap; `base` is the gateway URL."""

    def __init__(
        self, concurrency: int = 2, pace_ms: int = 1, adjust_config=None, adjust_bootstrap=None, fleet_worker: bool = False,
        scraper: bool = False, sim_args=(),
    ) -> None:
        """`adjust_config(config)` edits the sluice filter's config; `adjust_bootstrap(bootstrap)`
        the whole bootstrap (e.g. to add a filter before sluice). `fleet_worker`: keep the
        module's background worker (it posts usage records to sluiced's admin port); tests that
        run no sluiced leave it out, so their Envoy does not wait for a flush at shutdown.
        `scraper`: keep the worker for its endpoint scraper only (see `scraper_only_worker`);
        without it the endpoint picker has no metrics and picks by least request.
        `sim_args`: extra arguments of sluice-sim (the vLLM-like replicas' engine settings)."""
        self.fleet_worker = fleet_worker
        self.scraper = scraper
        self.sims = Simulators(pace_ms=pace_ms, extra_args=sim_args)
        self.concurrency = concurrency
        self.adjust_config = adjust_config
        self.adjust_bootstrap = adjust_bootstrap

    def __enter__(self) -> "DefaultGateway":
        self.sims.__enter__()
        self.envoy = None
        try:
            port = free_port()
            bootstrap = remapped_bootstrap(self.sims, port, free_port())
            if self.scraper and not self.fleet_worker:
                scraper_only_worker(bootstrap)
            elif not self.fleet_worker:
                remove_fleet_worker(bootstrap)
            if self.adjust_config:
                adjust_sluice_filter_config(bootstrap, self.adjust_config)
            if self.adjust_bootstrap:
                self.adjust_bootstrap(bootstrap)
            self.envoy = Envoy(
                bootstrap, concurrency=self.concurrency,
                # Access log lines reach the log file quickly enough for tests to read them.
                extra_args=["--file-flush-interval-msec", "50"],
            )
            self.envoy.start().wait_ready()
        except BaseException:
            # `with` never calls __exit__ when __enter__ raises: stop what was started here.
            self.__exit__(None, None, None)
            raise
        self.base = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        if self.envoy is not None:
            self.envoy.stop()
        self.sims.__exit__(*exc)
