#!/usr/bin/env python3
"""Helpers for compare.sh: Envoy bootstraps, wrk output parsing, and the summary.

Kept out of the shell script because YAML, percentiles and medians are clumsy in bash.
Standard library plus PyYAML (Debian: python3-yaml), only for reading envoy-module/envoy.yaml.
"""
from __future__ import annotations

import copy
import json
import re
import statistics
import sys
from pathlib import Path


# MARK: - Bootstraps


def load_yaml(envoy_yaml: Path) -> dict:
    try:
        import yaml
    except ImportError:
        sys.exit("compare: PyYAML is missing (apt-get install python3-yaml, or pip install pyyaml)")
    return yaml.safe_load(envoy_yaml.read_text())


def sluice_filter(bootstrap: dict, envoy_yaml: Path) -> dict:
    """The dynamic-module filter entry of the `gateway` listener, verbatim, so the comparison
    runs whatever filter_config the repository's own bootstrap runs."""
    for listener in bootstrap["static_resources"]["listeners"]:
        if listener.get("name") != "gateway":
            continue
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                hcm = network_filter.get("typed_config", {})
                for http_filter in hcm.get("http_filters", []):
                    if http_filter.get("name") == "envoy.filters.http.dynamic_modules":
                        return http_filter
    sys.exit(f"compare: no dynamic_modules filter on listener 'gateway' in {envoy_yaml}")


# The largest limits the module's config accepts (SluiceCore QuotaLimits): quota bookkeeping stays
# in the path, but envoy.yaml's demo limits (600 requests a minute) would turn the load into 429s.
NON_BINDING = {"requests_per_minute": 100_000_000, "budget_usd_per_day": 1_000_000, "budget_usd_per_month": 1_000_000}
NON_BINDING_TOKENS = 10_000_000_000


def without_binding_limits(http_filter: dict) -> dict:
    http_filter = copy.deepcopy(http_filter)
    value = http_filter.get("typed_config", {}).get("filter_config", {}).get("value", {})
    limit_sets = [key.get("limits", {}) for key in value.get("api_keys", [])]
    for group in ("team_limits", "model_limits"):
        limit_sets += list(value.get(group, {}).values())
    for limits in limit_sets:
        for field in limits:
            limits[field] = NON_BINDING_TOKENS if field.endswith("tokens_per_minute") else NON_BINDING.get(field, limits[field])
    return http_filter


def upstream_filter_options(bootstrap: dict, envoy_yaml: Path, cluster_name: str) -> dict:
    """The `typed_extension_protocol_options` (upstream HTTP filters: `sluice_upstream`, codec) of
    one backend cluster, verbatim."""
    for cluster in bootstrap["static_resources"].get("clusters", []):
        if cluster.get("name") == cluster_name and "typed_extension_protocol_options" in cluster:
            return cluster["typed_extension_protocol_options"]
    sys.exit(f"compare: no cluster '{cluster_name}' with upstream filters in {envoy_yaml}")


def address(port: int) -> dict:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
}
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


def proxy_listener(name: str, port: int, http_filters: list, cluster: str) -> dict:
    # No access log on either listener: it would cost both the same and blur the difference.
    return {
        "name": name,
        "address": address(port),
        "filter_chains": [{
            "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": HCM_TYPE,
                    "stat_prefix": name,
                    "route_config": {
                        "virtual_hosts": [{
                            "name": name,
                            "domains": ["*"],
                            # One catch-all route: the x-sluice-route the module sets picks nothing
                            # here, so both listeners reach the same upstream.
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster, "timeout": "30s"}}],
                        }]
                    },
                    "http_filters": http_filters + [ROUTER],
                },
            }]
        }],
    }


def cluster(name: str, upstream_port: int) -> dict:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address(upstream_port)}}]}],
        },
    }


def proxy_bootstrap(
    envoy_yaml: Path, plain_port: int, sluice_port: int, upstream_port: int, admin_port: int, backend: str
) -> dict:
    """`backend` names a cluster of envoy.yaml whose upstream filters (`sluice_upstream`) the
    sluice listener's cluster also runs; empty for the downstream `sluice` filter alone."""
    source = load_yaml(envoy_yaml)
    clusters = [cluster("upstream", upstream_port)]
    sluice_cluster = "upstream"
    resources: dict = {}
    if backend:
        with_filters = cluster("upstream_sluice", upstream_port)
        with_filters["typed_extension_protocol_options"] = upstream_filter_options(source, envoy_yaml, backend)
        clusters.append(with_filters)
        sluice_cluster = "upstream_sluice"
        # The upstream filter reads its provider credential from these generic secrets.
        resources["secrets"] = source["static_resources"].get("secrets", [])
    resources["listeners"] = [
        proxy_listener("plain", plain_port, [], "upstream"),
        proxy_listener("sluice", sluice_port, [without_binding_limits(sluice_filter(source, envoy_yaml))], sluice_cluster),
    ]
    resources["clusters"] = clusters
    return {"admin": {"address": address(admin_port)}, "static_resources": resources}


UPSTREAM_BODY = (
    '{"id":"chatcmpl-bench","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,'
    '"message":{"role":"assistant","content":"Hello."},"finish_reason":"stop"}],'
    '"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n'
)


def upstream_bootstrap(upstream_port: int) -> dict:
    return {
        "static_resources": {
            "listeners": [{
                "name": "upstream",
                "address": address(upstream_port),
                "filter_chains": [{
                    "filters": [{
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": HCM_TYPE,
                            "stat_prefix": "upstream",
                            "route_config": {
                                "virtual_hosts": [{
                                    "name": "upstream",
                                    "domains": ["*"],
                                    "routes": [{
                                        "match": {"prefix": "/"},
                                        "direct_response": {"status": 200, "body": {"inline_string": UPSTREAM_BODY}},
                                        "response_headers_to_add": [
                                            {"header": {"key": "content-type", "value": "application/json"}}
                                        ],
                                    }],
                                }]
                            },
                            "http_filters": [ROUTER],
                        },
                    }]
                }],
            }]
        }
    }


# MARK: - wrk output


def to_microseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unparsed wrk duration {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}[unit]


def parse_wrk(text: str) -> dict:
    result: dict = {"non2xx": 0, "socket_errors": 0}
    for pct in ("50", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        if not match:
            sys.exit(f"compare: wrk output has no {pct}% latency line:\n{text}")
        result[f"p{pct}_us"] = to_microseconds(match.group(1))
    match = re.search(r"^\s+(\d+) requests in", text, re.M)
    result["requests"] = int(match.group(1)) if match else 0
    match = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    result["rps"] = float(match.group(1)) if match else 0.0
    match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if match:
        result["non2xx"] = int(match.group(1))
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if match:
        result["socket_errors"] = sum(int(group) for group in match.groups())
    return result


# MARK: - Commands


def command_bootstraps(args: list[str]) -> None:
    envoy_yaml, out_dir = Path(args[0]), Path(args[1])
    plain, sluice, upstream, admin = (int(value) for value in args[2:6])
    backend = args[6] if len(args) > 6 else ""
    proxy = proxy_bootstrap(envoy_yaml, plain, sluice, upstream, admin, backend)
    (out_dir / "proxy.json").write_text(json.dumps(proxy, indent=1))
    (out_dir / "upstream.json").write_text(json.dumps(upstream_bootstrap(upstream), indent=1))


def command_record(args: list[str]) -> None:
    """Appends one round's result (wrk output + CPU ticks) to results.jsonl and prints its row."""
    results, round_label, variant, wrk_file = Path(args[0]), args[1], args[2], Path(args[3])
    cpu_ticks, ticks_per_second = int(args[4]), int(args[5])
    row = parse_wrk(wrk_file.read_text())
    row.update(round=round_label, variant=variant)
    cpu_us = cpu_ticks * 1e6 / ticks_per_second
    row["cpu_us_per_req"] = cpu_us / row["requests"] if row["requests"] else float("nan")
    with results.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    flag = ""
    if row["non2xx"] or row["socket_errors"]:
        flag = f"   !! non-2xx {row['non2xx']}, socket errors {row['socket_errors']}"
    print(
        f"{round_label:>6} {variant:<8} {row['rps']:>10.0f} {row['p50_us']:>9.0f} {row['p90_us']:>9.0f}"
        f" {row['p99_us']:>9.0f} {row['cpu_us_per_req']:>11.1f}{flag}"
    )


def command_header(_: list[str]) -> None:
    print(f"{'round':>6} {'variant':<8} {'req/s':>10} {'p50 µs':>9} {'p90 µs':>9} {'p99 µs':>9} {'CPU µs/req':>11}")


def command_summary(args: list[str]) -> None:
    rows = [json.loads(line) for line in Path(args[0]).read_text().splitlines() if line.strip()]
    measured = [row for row in rows if row["round"] != "warmup"]
    metrics = [("rps", "req/s"), ("p50_us", "p50 µs"), ("p90_us", "p90 µs"), ("p99_us", "p99 µs"),
               ("cpu_us_per_req", "CPU µs/req")]
    medians = {}
    for variant in ("plain", "sluice"):
        chosen = [row for row in measured if row["variant"] == variant]
        if not chosen:
            sys.exit(f"compare: no measured rounds for {variant}")
        medians[variant] = {key: statistics.median(row[key] for row in chosen) for key, _ in metrics}
    print(f"\nmedians over {len(measured) // 2} rounds (proxy: plain router vs sluice module + router)")
    print(f"{'':<12} {'plain':>10} {'sluice':>10} {'sluice/plain':>13}")
    for key, label in metrics:
        plain, sluice = medians["plain"][key], medians["sluice"][key]
        ratio = sluice / plain if plain else float("nan")
        print(f"{label:<12} {plain:>10.1f} {sluice:>10.1f} {ratio:>13.3f}")
    extra = medians["sluice"]["cpu_us_per_req"] - medians["plain"]["cpu_us_per_req"]
    print(f"module CPU cost ≈ {extra:.1f} µs per request (difference of the medians)")
    bad = [row for row in measured if row["non2xx"] or row["socket_errors"]]
    if bad:
        # Local replies (401/429/5xx) are far cheaper than forwarding: the ratios would lie.
        print(f"ERROR: {len(bad)} measured round(s) had non-2xx responses or socket errors; see the table above")
        sys.exit(3)


if __name__ == "__main__":
    commands = {"bootstraps": command_bootstraps, "record": command_record, "header": command_header,
                "summary": command_summary}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(commands)} ...")
    commands[sys.argv[1]](sys.argv[2:])
