#!/usr/bin/env python3
"""Helpers for compare.sh: Envoy bootstraps, both listeners' requests (and their check before and
after measuring), wrk output parsing, the summary with issue 12's targets, and the --matrix table.

Kept out of the shell script because YAML, JSON, SigV4, percentiles and medians are clumsy in bash.
Standard library plus PyYAML (Debian: python3-yaml), only for reading envoy-module/envoy.yaml.
"""
from __future__ import annotations

import copy
import datetime
import hashlib
import hmac
import json
import re
import statistics
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path


# MARK: - Bootstraps


def load_yaml(envoy_yaml: Path) -> dict:
    try:
        import yaml
    except ImportError:
        sys.exit("compare: PyYAML is missing (apt-get install python3-yaml, or pip install pyyaml)")
    return yaml.safe_load(envoy_yaml.read_text())


def filter_value(typed_config: dict) -> dict:
    """A dynamic-module filter's config as a dict: envoy.yaml (`sluiced render`'s output) holds it
    as a StringValue of JSON, a hand-written bootstrap may hold a Struct."""
    config = typed_config.get("filter_config", {})
    value = config.get("value", {})
    if config.get("@type", "").endswith("google.protobuf.StringValue"):
        return json.loads(value)
    return value


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
    typed = http_filter.get("typed_config", {})
    value = filter_value(typed)
    limit_sets = [key.get("limits", {}) for key in value.get("api_keys", [])]
    for group in ("team_limits", "model_limits"):
        limit_sets += list(value.get(group, {}).values())
    for limits in limit_sets:
        for field in limits:
            limits[field] = NON_BINDING_TOKENS if field.endswith("tokens_per_minute") else NON_BINDING.get(field, limits[field])
    if isinstance(typed.get("filter_config", {}).get("value"), str):
        typed["filter_config"]["value"] = json.dumps(value, separators=(",", ":"))
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


# --null MODE: the null module (benchmarks/e2e/null-module) where `sluice` and `sluice_upstream`
# would be. MODE -> (downstream filter_name, whether the cluster runs the `upstream` null filter).
NULL_MODES = {"pass": ("pass", False), "buffer": ("buffer", False), "buffer+upstream": ("buffer", True)}
# The cluster of envoy.yaml whose upstream filter chain (protocol options, upstream_codec) the
# null module's `upstream` filter takes the place of `sluice_upstream` in: `--upstream-filter openai`'s.
NULL_UPSTREAM_BACKEND = "openai"
DYNAMIC_MODULES_FILTER = "envoy.filters.http.dynamic_modules"


def null_filter(http_filter: dict, filter_name: str) -> dict:
    """A sluice dynamic-module filter entry turned into the null module's: the same entry with
    module `null_filter` (libnull_filter.so), `filter_name` picking its behaviour and no config."""
    http_filter = copy.deepcopy(http_filter)
    typed = http_filter["typed_config"]
    typed["dynamic_module_config"] = {**typed.get("dynamic_module_config", {}), "name": "null_filter",
                                      "metrics_namespace": "null"}
    typed["filter_name"] = filter_name
    typed["filter_config"] = {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": ""}
    return http_filter


def null_upstream_options(options: dict) -> dict:
    """A cluster's upstream filter options with every dynamic-module filter made the `upstream`
    null filter; the rest (protocol options, upstream_codec) as they are."""
    options = copy.deepcopy(options)
    replaced = 0
    for protocol_options in options.values():
        filters = protocol_options.get("http_filters", [])
        for index, http_filter in enumerate(filters):
            if http_filter.get("name") == DYNAMIC_MODULES_FILTER:
                filters[index] = null_filter(http_filter, "upstream")
                replaced += 1
    if replaced != 1:
        sys.exit(f"compare: expected one dynamic-module upstream filter on cluster '{NULL_UPSTREAM_BACKEND}', found {replaced}")
    return options


def with_fleet_worker(bootstrap: dict, source: dict, fleet: str) -> dict:
    """Adds envoy.yaml's background worker (the `sluice_fleet` bootstrap extension) to `bootstrap`,
    sending usage records to the sluiced of `fleet` ("PORT:TOKEN_FILE") through a `sluiced_fleet`
    cluster. The worker is process-wide: the plain listener makes no records, so its rounds do not
    pay for it, and the sluice listener's rounds pay for all of it (filter push, main-thread drain,
    encoding and the callouts)."""
    port, token_file = fleet.split(":", 1)
    extensions = [e for e in source.get("bootstrap_extensions", [])
                  if e.get("typed_config", {}).get("extension_name") == "sluice_fleet"]
    if len(extensions) != 1:
        sys.exit("compare: --fleet needs exactly one sluice_fleet bootstrap extension in envoy.yaml")
    extension = json.loads(json.dumps(extensions[0]))
    block = extension["typed_config"]["extension_config"]
    config = json.loads(block["value"])
    config.update({"cluster": "sluiced_fleet", "token_file": token_file, "envoy": "compare-proxy"})
    # Usage records only: the benchmark lifts the filter's limits, but sluiced would lease the
    # demo config's own (it is the authority), and the sluice side would measure 429s.
    config.pop("leases", None)
    block["value"] = json.dumps(config, separators=(",", ":"))
    bootstrap["bootstrap_extensions"] = [extension]
    bootstrap["static_resources"]["clusters"].append(cluster("sluiced_fleet", int(port)))
    return bootstrap


def proxy_bootstrap(
    envoy_yaml: Path, plain_port: int, sluice_port: int, upstream_port: int, admin_port: int, backend: str,
    null_mode: str = "", fleet: str = "",
) -> dict:
    bootstrap = proxy_bootstrap_without_worker(
        envoy_yaml, plain_port, sluice_port, upstream_port, admin_port, backend, null_mode)
    return with_fleet_worker(bootstrap, load_yaml(envoy_yaml), fleet) if fleet else bootstrap


def proxy_bootstrap_without_worker(
    envoy_yaml: Path, plain_port: int, sluice_port: int, upstream_port: int, admin_port: int, backend: str,
    null_mode: str = "",
) -> dict:
    """`backend` names a cluster of envoy.yaml whose upstream filters (`sluice_upstream`) the
    sluice listener's cluster also runs; empty for the downstream `sluice` filter alone.
    `null_mode` (a key of NULL_MODES) puts the null module in their place."""
    source = load_yaml(envoy_yaml)
    clusters = [cluster("upstream", upstream_port)]
    sluice_cluster = "upstream"
    resources: dict = {}
    if null_mode:
        if backend:
            sys.exit("compare: --null replaces the sluice filters; drop --upstream-filter")
        downstream_name, with_upstream = NULL_MODES[null_mode]
        if with_upstream:
            with_filters = cluster("upstream_sluice", upstream_port)
            with_filters["typed_extension_protocol_options"] = null_upstream_options(
                upstream_filter_options(source, envoy_yaml, NULL_UPSTREAM_BACKEND))
            clusters.append(with_filters)
            sluice_cluster = "upstream_sluice"
        resources["listeners"] = [
            proxy_listener("plain", plain_port, [], "upstream"),
            proxy_listener("sluice", sluice_port, [null_filter(sluice_filter(source, envoy_yaml), downstream_name)],
                           sluice_cluster),
        ]
        resources["clusters"] = clusters
        return {"admin": {"address": address(admin_port)}, "static_resources": resources}
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


def openai_chunk(delta: dict, finish: str | None = None) -> str:
    return "data: " + json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": None,
    }, separators=(",", ":")) + "\n\n"


# The direct_response upstream's answer to a streaming request: an OpenAI stream of the same
# reply, with the usage chunk `stream_options.include_usage` asks for, as the simulator sends it.
UPSTREAM_SSE_BODY = (
    openai_chunk({"role": "assistant", "content": ""})
    + openai_chunk({"content": "Hello"})
    + openai_chunk({"content": "."})
    + openai_chunk({}, "stop")
    + 'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini",'
    '"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\n'
    + "data: [DONE]\n\n"
)


def upstream_bootstrap(upstream_port: int, stream: bool = False) -> dict:
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
                                        "direct_response": {
                                            "status": 200,
                                            "body": {"inline_string": UPSTREAM_SSE_BODY if stream else UPSTREAM_BODY},
                                        },
                                        "response_headers_to_add": [{"header": {
                                            "key": "content-type",
                                            "value": "text/event-stream" if stream else "application/json",
                                        }}],
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


# MARK: - The requests
#
# direct_response mode: both listeners get the same OpenAI chat request with the demo key (the
# plain router forwards it as it is; the module authenticates, routes, admits and forwards it).
#
# Simulator mode (--sim BACKEND): both listeners forward to the same sluice-sim listener. The
# sluice listener gets an OpenAI chat request and runs the module's whole path (auth, route,
# quota, translation, credential, response translation, metering). The plain listener gets the
# request an application would send to the provider itself through a plain proxy: the provider's
# own path, body and credential. The two bodies say the same thing (same prompt, same max tokens,
# both streaming or neither), and `verify` checks that the module's translation of the one is the
# other, so the simulator does the same work for both.

PROMPT = "Say hello in one word."
MAX_TOKENS = 64
DEMO_KEY = "sk-sluice-demo"
# The request of direct_response mode (as before streams and the simulator existed; no max_tokens).
DIRECT_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]}
# What an OpenAI client streaming with usage adds (the usage chunk is what the module meters).
OPENAI_STREAM_FIELDS = {"stream": True, "stream_options": {"include_usage": True}}
# The upstream filter's Anthropic version header (SluiceCore UpstreamExchange); a client sends its own.
ANTHROPIC_VERSION = "2023-06-01"

# Backend (an envoy.yaml cluster) -> the sluice-sim listener (`--listen NAME=...`) that serves it; /__sim/last
# takes the same names except that `gemini` also serves Vertex.
SIM_LISTENERS = {
    "openai": "openai", "azure": "azure", "anthropic": "anthropic", "bedrock": "bedrock",
    "gemini": "gemini", "vertex": "gemini", "local": "compat",
}

def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def upstream_filter_value(options: dict, envoy_yaml: Path, backend: str) -> dict:
    """The `sluice_upstream` filter_config of a backend cluster (one backend, not a failover list)."""
    for protocol_options in options.values():
        for http_filter in protocol_options.get("http_filters", []):
            typed = http_filter.get("typed_config", {})
            if typed.get("filter_name") == "sluice_upstream":
                value = filter_value(typed)
                if "schema" in value:
                    return value
    sys.exit(f"compare: cluster '{backend}' in {envoy_yaml} has no single-backend sluice_upstream filter")


def secret(source: dict, reference: object, envoy_yaml: Path) -> str:
    """The inline value of a generic secret referenced as `{secret: name}`."""
    name = reference.get("secret") if isinstance(reference, dict) else None
    for entry in source["static_resources"].get("secrets", []):
        if entry.get("name") == name:
            return entry["generic_secret"]["secret"]["inline_string"]
    sys.exit(f"compare: no inline generic secret {reference!r} in envoy.yaml")


def routed_model(http_filter: dict, backend: str) -> str:
    """The first model of the `sluice` filter's `models:` list that routes to `backend`."""
    value = filter_value(http_filter["typed_config"])
    for model in value.get("models", []):
        if model.get("route") == backend:
            return model["id"]
    sys.exit(f"compare: no model in envoy.yaml routes to '{backend}'")


def sigv4_headers(method: str, path: str, host: str, body: bytes, access_key: str, secret_key: str,
                  region: str, service: str, now: datetime.datetime) -> dict:
    """AWS Signature Version 4 (header form) as botocore does it: the wire path (already
    percent-encoded once) is encoded once more for the canonical URI; host, content-type,
    x-amz-content-sha256 and x-amz-date are signed."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date_stamp = amz_date[:8]
    payload_hash = hashlib.sha256(body).hexdigest()
    signed = {"content-type": "application/json", "host": host, "x-amz-content-sha256": payload_hash,
              "x-amz-date": amz_date}
    names = sorted(signed)
    canonical = "\n".join([
        method, urllib.parse.quote(path, safe="/-_.~"), "",
        "".join(f"{name}:{signed[name]}\n" for name in names), ";".join(names), payload_hash,
    ])
    scope = f"{date_stamp}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (date_stamp, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "Host": host,
        "X-Amz-Content-Sha256": payload_hash,
        "X-Amz-Date": amz_date,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                         f"SignedHeaders={';'.join(names)}, Signature={signature}",
    }



def native_request(source: dict, envoy_yaml: Path, backend: str, config: dict, model: str, wire_model: str,
                   plain_port: int, stream: bool) -> dict:
    """What an application sends the provider itself (through the plain listener): the body the
    module would send for the OpenAI request, the provider's path and the provider's credential."""
    schema = config["schema"]
    user = {"role": "user", "content": PROMPT}
    headers = {"Content-Type": "application/json"}
    openai_stream = OPENAI_STREAM_FIELDS if stream else {}
    if schema == "openai":
        path = "/v1/chat/completions"
        body = {"model": wire_model, "messages": [user], "max_tokens": MAX_TOKENS, **openai_stream}
        if "credential" in config:  # the self-hosted `local` backend has none
            headers["Authorization"] = "Bearer " + secret(source, config["credential"], envoy_yaml)
        shape = "openai"
    elif schema == "azure_openai":
        version = config["azure"]["api_version"]
        path = f"/openai/deployments/{urllib.parse.quote(wire_model, safe='')}/chat/completions?api-version={version}"
        # The module names the deployment in the path and leaves the client's `model` in the body
        # (Azure ignores it), so the native body carries the same value.
        body = {"model": model, "messages": [user], "max_tokens": MAX_TOKENS, **openai_stream}
        headers["api-key"] = secret(source, config["credential"], envoy_yaml)
        shape = "openai"
    elif schema == "anthropic":
        path = "/v1/messages"
        body = {"model": wire_model, "max_tokens": MAX_TOKENS, "messages": [user]}
        if stream:
            body["stream"] = True
        headers["x-api-key"] = secret(source, config["credential"], envoy_yaml)
        headers["anthropic-version"] = ANTHROPIC_VERSION
        shape = "anthropic"
    elif schema == "bedrock_converse":
        path = f"/model/{urllib.parse.quote(wire_model, safe='')}/{'converse-stream' if stream else 'converse'}"
        body = {"messages": [{"role": "user", "content": [{"text": PROMPT}]}],
                "inferenceConfig": {"maxTokens": MAX_TOKENS}}
        shape = "bedrock"
    elif schema in ("gemini", "vertex_gemini"):
        method = f"models/{wire_model}:{'streamGenerateContent' if stream else 'generateContent'}"
        if schema == "gemini":
            path = f"/v1beta/{method}"
            headers["x-goog-api-key"] = secret(source, config["credential"], envoy_yaml)
        else:
            gcp = config["gcp"]
            path = f"/v1/projects/{gcp['project']}/locations/{gcp['location']}/publishers/google/{method}"
            headers["Authorization"] = "Bearer " + secret(source, config["credential"], envoy_yaml)
        if stream:
            path += "?alt=sse"  # server-sent events; without it Gemini streams one JSON array
        body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
                "generationConfig": {"maxOutputTokens": MAX_TOKENS}}
        shape = "gemini"
    else:
        sys.exit(f"compare: --sim does not know schema '{schema}' of cluster '{backend}'")
    text = compact(body)
    if schema == "bedrock_converse":
        aws = config["aws"]
        # Signed once, here: the script refuses runs longer than the 15-minute window the
        # simulator (like AWS) allows between x-amz-date and its clock.
        headers = sigv4_headers(
            "POST", path, f"127.0.0.1:{plain_port}", text.encode(),
            secret(source, aws["access_key_id"], envoy_yaml), secret(source, aws["secret_access_key"], envoy_yaml),
            aws["region"], "bedrock", datetime.datetime.now(datetime.timezone.utc))
    return {"path": path, "headers": headers, "body": text, "shape": shape, "stream": stream}


def target_category(upstream_filter: str, schema: str, null_mode: str = "") -> str:
    """Which of issue 12's proxy-CPU targets a mode is held to (see TARGETS)."""
    if null_mode:
        return "null"
    if not upstream_filter:
        return "downstream"
    return {"openai": "passthrough", "anthropic": "anthropic", "bedrock_converse": "bedrock"}.get(schema, "translation")


def requests_for(envoy_yaml: Path, upstream_filter: str, simulated: bool, stream: bool, plain_port: int,
                 null_mode: str = "") -> dict:
    """Both sides' requests, plus what `verify` and the summary need to know."""
    source = load_yaml(envoy_yaml)
    schema = ""
    if upstream_filter:
        schema = upstream_filter_value(upstream_filter_options(source, envoy_yaml, upstream_filter), envoy_yaml,
                                       upstream_filter)["schema"]
    if null_mode and (upstream_filter or simulated):
        sys.exit("compare: --null runs with the direct_response upstream and no sluice filter")
    common = {"backend": upstream_filter, "schema": schema, "simulated": simulated, "stream": stream,
              "category": target_category(upstream_filter, schema, null_mode), "null": null_mode}
    if not simulated:
        request = {
            "path": "/v1/chat/completions",
            "headers": {"Content-Type": "application/json", "Authorization": f"Bearer {DEMO_KEY}"},
            "body": compact({**DIRECT_BODY, **(OPENAI_STREAM_FIELDS if stream else {})}),
            "shape": "openai",
            "stream": stream,
        }
        return {**common, "model": DIRECT_BODY["model"], "plain": request, "sluice": dict(request)}
    backend = upstream_filter
    if backend not in SIM_LISTENERS:
        sys.exit(f"compare: --sim takes one of {', '.join(SIM_LISTENERS)}, not '{backend}'")
    config = upstream_filter_value(upstream_filter_options(source, envoy_yaml, backend), envoy_yaml, backend)
    model = routed_model(sluice_filter(source, envoy_yaml), backend)
    wire_model = config.get("model_overrides", {}).get(model, model)
    sluice = {
        "path": "/v1/chat/completions",
        "headers": {"Content-Type": "application/json", "Authorization": f"Bearer {DEMO_KEY}"},
        "body": compact({"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": MAX_TOKENS,
                         **(OPENAI_STREAM_FIELDS if stream else {})}),
        "shape": "openai",
        "stream": stream,
    }
    plain = native_request(source, envoy_yaml, backend, config, model, wire_model, plain_port, stream)
    return {**common, "model": model, "wire_model": wire_model, "sim_provider": SIM_LISTENERS[backend],
            "plain": plain, "sluice": sluice}


# Printed by wrk after a run: its own percentile lines round to two decimals of the unit ("1.23ms"
# is 10 µs steps), too coarse for the concurrency-1 phase; its histogram holds whole microseconds.
WRK_EXACT_LATENCY = '''done = function(summary, latency, requests)
  io.write(string.format("exact latency us: p50 %d p90 %d p99 %d\\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
'''


def wrk_script(request: dict) -> str:
    body = request["body"]
    if "]==]" in body:
        sys.exit("compare: request body cannot be quoted for Lua")
    lines = ['wrk.method = "POST"', f'wrk.path = "{request["path"]}"', f"wrk.body = [==[{body}]==]"]
    for name, value in request["headers"].items():
        if '"' in value or "\\" in value or '"' in name:
            sys.exit(f"compare: header {name} cannot be quoted for Lua")
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    return "\n".join(lines) + "\n" + WRK_EXACT_LATENCY


def command_requests(args: list[str]) -> None:
    """Writes requests.json (both requests) and one wrk script per listener; prints what is sent."""
    envoy_yaml, out_dir, upstream_filter = Path(args[0]), Path(args[1]), args[2]
    simulated, stream, plain_port = args[3] == "sim", args[4] == "stream", int(args[5])
    null_mode = args[6] if len(args) > 6 else ""
    if null_mode and null_mode not in NULL_MODES:
        sys.exit(f"compare: --null takes {', '.join(NULL_MODES)}, not '{null_mode}'")
    requests = requests_for(envoy_yaml, upstream_filter, simulated, stream, plain_port, null_mode)
    (out_dir / "requests.json").write_text(json.dumps(requests, indent=1))
    for variant in ("plain", "sluice"):
        (out_dir / f"request.{variant}.lua").write_text(wrk_script(requests[variant]))
    if simulated:
        print(f"{requests['model']} -> {requests['schema']} '{requests['wire_model']}'")
    else:
        print(requests["model"])


# MARK: - Checks before and after measuring


def send(port: int, request: dict, headers: dict | None = None) -> tuple[int, str, bytes]:
    """POSTs a request to a listener; returns the status, the content-type and the body (error
    bodies included; a stream is read to its end)."""
    url = f"http://127.0.0.1:{port}{request['path']}"
    all_headers = dict(request["headers"] if headers is None else headers)
    all_headers.pop("Host", None)  # urllib sends 127.0.0.1:<port>, the value the signature used
    prepared = urllib.request.Request(url, data=request["body"].encode(), headers=all_headers, method="POST")
    try:
        with urllib.request.urlopen(prepared, timeout=5) as response:
            return response.status, response.headers.get("content-type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type", ""), error.read()


def reply_text(shape: str, document: object) -> str | None:
    """The generated text of a non-streaming answer in `shape`, or None when the shape is wrong."""
    try:
        if shape == "openai":
            ok = document["object"] == "chat.completion" and "usage" in document
            text = document["choices"][0]["message"]["content"]
        elif shape == "anthropic":
            ok = document["type"] == "message" and "usage" in document
            text = next(block["text"] for block in document["content"] if block["type"] == "text")
        elif shape == "bedrock":
            ok = "usage" in document and "stopReason" in document
            text = next(block["text"] for block in document["output"]["message"]["content"] if "text" in block)
        elif shape == "gemini":
            ok = "usageMetadata" in document
            text = next(part["text"] for part in document["candidates"][0]["content"]["parts"] if "text" in part)
        else:
            return None
    except (KeyError, IndexError, TypeError, StopIteration):
        return None
    return text if ok and isinstance(text, str) and text else None


def sse_data(body: bytes) -> list[str]:
    """The `data:` payloads of a server-sent-events body, one per event (multi-line data joined)."""
    events = re.split(r"\r?\n\r?\n", body.decode("utf-8", errors="replace"))
    payloads = []
    for event in events:
        lines = [line[5:].removeprefix(" ") for line in re.split(r"\r?\n", event) if line.startswith("data:")]
        if lines:
            payloads.append("\n".join(lines))
    return payloads


def eventstream_messages(body: bytes) -> list[tuple[str, dict]] | None:
    """AWS event-stream frames (Bedrock's converse-stream) as (event type, JSON payload); None
    when a frame is cut short or a checksum is wrong."""
    fixed_sizes = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}
    messages = []
    offset = 0
    while offset < len(body):
        if len(body) - offset < 16:
            return None
        total, headers_length, prelude_crc = struct.unpack_from(">III", body, offset)
        end = offset + total
        if total < 16 or end > len(body) or 12 + headers_length > total - 4:
            return None
        if zlib.crc32(body[offset:offset + 8]) != prelude_crc or \
                zlib.crc32(body[offset:end - 4]) != struct.unpack_from(">I", body, end - 4)[0]:
            return None
        headers = {}
        position, headers_end = offset + 12, offset + 12 + headers_length
        while position < headers_end:
            name_length = body[position]
            name = body[position + 1:position + 1 + name_length].decode(errors="replace")
            kind = body[position + 1 + name_length]
            position += 2 + name_length
            if kind in (6, 7):
                (length,) = struct.unpack_from(">H", body, position)
                headers[name] = body[position + 2:position + 2 + length].decode(errors="replace")
                position += 2 + length
            elif kind in fixed_sizes:
                position += fixed_sizes[kind]
            else:
                return None
        try:
            payload = json.loads(body[headers_end:end - 4] or b"{}")
        except ValueError:
            return None
        if headers.get(":message-type") != "event":
            return None
        messages.append((headers.get(":event-type", ""), payload))
        offset = end
    return messages


def stream_reply_text(shape: str, content_type: str, body: bytes) -> str | None:
    """The generated text of a streamed answer in `shape`, or None unless the stream is complete
    and well formed: OpenAI chunks ending in `data: [DONE]` with a usage chunk, Anthropic events
    from message_start to message_stop, Gemini chunks ending with usageMetadata, Bedrock
    event-stream frames with messageStop and usage metadata."""
    try:
        if shape == "bedrock":
            messages = eventstream_messages(body)
            if not content_type.startswith("application/vnd.amazon.eventstream") or not messages:
                return None
            text = "".join(payload["delta"].get("text", "") for kind, payload in messages if kind == "contentBlockDelta")
            ok = any(kind == "messageStop" for kind, _ in messages) and \
                any(kind == "metadata" and "usage" in payload for kind, payload in messages)
            return text if ok and text else None
        if not content_type.startswith("text/event-stream"):
            return None
        payloads = sse_data(body)
        if shape == "openai":
            if len(payloads) < 2 or payloads[-1] != "[DONE]":
                return None
            chunks = [json.loads(payload) for payload in payloads[:-1]]
            # Azure opens with a prompt-filter chunk that has no choices and an empty `object`.
            ok = all(chunk["object"] == "chat.completion.chunk" for chunk in chunks
                     if chunk["choices"] or chunk.get("usage")) and any(chunk.get("usage") for chunk in chunks)
            text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"])
        elif shape == "anthropic":
            events = [json.loads(payload) for payload in payloads]
            kinds = [event["type"] for event in events]
            ok = kinds[:1] == ["message_start"] and kinds[-1:] == ["message_stop"] and "message_delta" in kinds
            text = "".join(event["delta"].get("text", "") for event in events if event["type"] == "content_block_delta")
        elif shape == "gemini":
            chunks = [json.loads(payload) for payload in payloads]
            ok = bool(chunks) and "usageMetadata" in chunks[-1]
            text = "".join(part.get("text", "") for chunk in chunks for candidate in chunk.get("candidates", [])[:1]
                           for part in candidate["content"].get("parts", []))
        else:
            return None
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        return None
    return text if ok and text else None


def last_upstream_request(sim_port: int, provider: str) -> dict:
    url = f"http://127.0.0.1:{sim_port}/__sim/last?provider={provider}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def upstream_attempts_ok(admin_port: int) -> int:
    """The upstream filter's successful attempts on the sluice listener's cluster."""
    query = urllib.parse.urlencode({"filter": r"^cluster\.upstream_sluice\.sluice\.upstream_attempts_total"})
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/stats?{query}", timeout=5) as response:
        lines = response.read().decode().splitlines()
    return sum(int(line.rsplit(":", 1)[1]) for line in lines if ".outcome.ok:" in line)


def null_probe(port: int, path: str) -> tuple[int, str]:
    """GETs `path` (no body: never a measured request) and returns the status and the
    `x-null-filter` header, with which the null module answers such a probe (null_filter.c)."""
    prepared = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="GET")
    try:
        with urllib.request.urlopen(prepared, timeout=5) as response:
            return response.status, response.headers.get("x-null-filter", "")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("x-null-filter", "")


def null_module_checks(null_mode: str, sluice_port: int) -> tuple[list[str], list[str]]:
    """The null module is in the path with the behaviour asked for: its downstream filter answers
    the probe path with its name, and with `+upstream` a probe that passes it is answered by the
    `upstream` filter on the cluster. Returns (failures, what was checked)."""
    downstream_name, with_upstream = NULL_MODES[null_mode]
    failures = []
    probes = [("/__null/filter", downstream_name)]
    if with_upstream:
        probes.append(("/__null/upstream", "upstream"))
    for path, expected in probes:
        status, name = null_probe(sluice_port, path)
        if status != 200 or name != expected:
            failures.append(f"GET {path} on the null listener: expected 200 with x-null-filter: {expected}, "
                            f"got {status} with {name!r}")
    return failures, [f"GET {path} -> x-null-filter: {expected}" for path, expected in probes]


def command_verify(args: list[str]) -> None:
    """Before (and again after) measuring: both listeners answer 200 with a well-formed answer of
    their shape (a complete stream when streaming), the sluice listener refuses a request without
    a key (the module is in the path), the upstream filter (if any) counted one ok attempt, and
    with the simulator the request it received from the module (path, query, body) is the plain
    listener's request: the module translated it, and the simulator does the same work on both
    sides. The last argument, `before` or `after`, only labels the output."""
    requests = json.loads(Path(args[0]).read_text())
    plain_port, sluice_port, upstream_port, admin_port = (int(value) for value in args[1:5])
    when = args[5] if len(args) > 5 else "before"
    simulated = requests["simulated"]
    attempts_before = upstream_attempts_ok(admin_port) if requests["backend"] else 0
    failures = []
    seen = {}
    for variant, port in (("sluice", sluice_port), ("plain", plain_port)):
        request = requests[variant]
        status, content_type, body = send(port, request)
        if request["stream"]:
            text = stream_reply_text(request["shape"], content_type, body)
            what = f"complete {request['shape']} stream"
        else:
            try:
                document = json.loads(body)
            except ValueError:
                document = None
            text = reply_text(request["shape"], document)
            what = f"{request['shape']} answer"
        if status != 200 or text is None:
            failures.append(f"{variant}: expected 200 with a {what}, got {status} {content_type}: {body[:400]!r}")
            continue
        note = ""
        if simulated:
            received = last_upstream_request(upstream_port, requests["sim_provider"])
            if not received.get("authorized"):
                failures.append(f"{variant}: the simulator did not accept the credential: {received}")
            seen[variant] = received
            note = f"; the simulator got POST {received['path']}"
        print(f"verify {when}: {variant:<6} POST {request['path']} -> 200 {what} {text!r}{note}")
    if "plain" in seen and "sluice" in seen:
        for field in ("method", "path", "query", "body"):
            if seen["plain"].get(field) != seen["sluice"].get(field):
                failures.append(
                    f"the module sent {field} {compact(seen['sluice'].get(field))}, the plain request has "
                    f"{compact(seen['plain'].get(field))}: make the native request in compare_helper.py match")
    if requests["backend"]:
        attempts = upstream_attempts_ok(admin_port) - attempts_before
        for _ in range(20):  # counted when the attempt's stream ends, which may trail the reply a little
            if attempts >= 1:
                break
            time.sleep(0.05)
            attempts = upstream_attempts_ok(admin_port) - attempts_before
        if attempts != 1:
            failures.append(f"the upstream filter counted {attempts} ok attempts for one sluice request, not 1")
    null_mode = requests.get("null", "")
    if null_mode:
        null_failures, checks = null_module_checks(null_mode, sluice_port)
        failures += null_failures
    else:
        status, _, _ = send(sluice_port, requests["sluice"], headers={"Content-Type": "application/json"})
        if status != 401:
            failures.append(f"sluice answered {status} without a key; expected the module's 401")
        checks = ["no key -> 401"]
    if failures:
        sys.exit("compare: " + "\ncompare: ".join(failures))
    if requests["backend"]:
        checks.insert(0, "sluice_upstream counted the attempt")
    if simulated:
        checks.insert(0, f"the module's {requests['schema']} request equals the plain request (path, query, body)")
    print(f"verify {when}: " + "; ".join(checks))


# MARK: - wrk output


def to_microseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unparsed wrk duration {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}[unit]


def parse_wrk(text: str) -> dict:
    result: dict = {"non2xx": 0, "socket_errors": 0}
    exact = re.search(r"^exact latency us: p50 (\d+) p90 (\d+) p99 (\d+)", text, re.M)
    for index, pct in enumerate(("50", "90", "99")):
        if exact:
            result[f"p{pct}_us"] = float(exact.group(index + 1))
            continue
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


# MARK: - Issue 12's targets
#
# As ratios (and differences) to plain Envoy measured in the same run. Proxy CPU per request and
# throughput come from the saturated phase (CONNECTIONS connections), the added latency from the
# concurrency-1 phase.

# category (target_category) -> (largest sluice/plain ratio of the proxy's CPU per request,
# largest difference in µs or None when the issue names none)
CPU_TARGETS = {
    "downstream": (1.08, 10.0),
    "passthrough": (1.15, 20.0),
    "anthropic": (1.30, None),
    "bedrock": (1.40, None),
}
THROUGHPUT_MIN_RATIO = 0.9
# The issue holds the passthrough case (streaming included) to it; other modes show the number.
C1_P50_MAX_ADDED_US = {"passthrough": 40.0}

CATEGORY_NAMES = {
    "null": "none for the null module: it measures the floor under them",
    "downstream": "downstream filter only", "passthrough": "OpenAI passthrough", "anthropic": "to Anthropic",
    "bedrock": "to Bedrock", "translation": "translation (no CPU target named)",
}


def target_checks(summary: dict) -> list[dict]:
    """Each target that applies to this mode: what, the measured value, the limit and whether it is met."""
    checks = []
    category = summary["category"]
    throughput = summary["throughput"]
    if category == "null":
        return checks
    if category in CPU_TARGETS:
        max_ratio, max_added = CPU_TARGETS[category]
        checks.append({"key": "cpu_ratio", "what": "proxy CPU per request, sluice/plain",
                       "value": throughput["ratio"]["cpu_us_per_req"], "limit": max_ratio, "at_most": True})
        if max_added is not None:
            checks.append({"key": "cpu_added", "what": "proxy CPU added per request, µs",
                           "value": throughput["added"]["cpu_us_per_req"], "limit": max_added, "at_most": True})
    checks.append({"key": "rps_ratio", "what": "throughput at saturation, sluice/plain",
                   "value": throughput["ratio"]["rps"], "limit": THROUGHPUT_MIN_RATIO, "at_most": False})
    if category in C1_P50_MAX_ADDED_US and summary.get("latency"):
        checks.append({"key": "c1_p50_added", "what": "added p50 latency at concurrency 1, µs",
                       "value": summary["latency"]["added"]["p50_us"], "limit": C1_P50_MAX_ADDED_US[category],
                       "at_most": True})
    for check in checks:
        value = check["value"]
        check["met"] = value == value and (value <= check["limit"] if check["at_most"] else value >= check["limit"])
    return checks


# MARK: - Commands


def command_bootstraps(args: list[str]) -> None:
    """proxy.json, and upstream.json unless the upstream is the simulator (`sim` as 8th argument;
    `stream` as 9th makes the direct_response upstream answer with an SSE body; a NULL_MODES key as
    10th puts the null module where the sluice filters would be; "PORT:TOKEN_FILE" as 11th adds the
    background worker, shipping usage records to the sluiced on PORT)."""
    envoy_yaml, out_dir = Path(args[0]), Path(args[1])
    plain, sluice, upstream, admin = (int(value) for value in args[2:6])
    backend = args[6] if len(args) > 6 else ""
    simulator = len(args) > 7 and args[7] == "sim"
    stream = len(args) > 8 and args[8] == "stream"
    null_mode = args[9] if len(args) > 9 else ""
    fleet = args[10] if len(args) > 10 else ""
    if null_mode and null_mode not in NULL_MODES:
        sys.exit(f"compare: --null takes {', '.join(NULL_MODES)}, not '{null_mode}'")
    proxy = proxy_bootstrap(envoy_yaml, plain, sluice, upstream, admin, backend, null_mode, fleet)
    (out_dir / "proxy.json").write_text(json.dumps(proxy, indent=1))
    if not simulator:
        (out_dir / "upstream.json").write_text(json.dumps(upstream_bootstrap(upstream, stream), indent=1))


def command_record(args: list[str]) -> None:
    """Appends one round's result (wrk output + CPU ticks) to results.jsonl and prints its row."""
    results, phase, round_label, variant, wrk_file = Path(args[0]), args[1], args[2], args[3], Path(args[4])
    cpu_ticks, ticks_per_second = int(args[5]), int(args[6])
    upstream_ticks = int(args[7]) if len(args) > 7 else None
    row = parse_wrk(wrk_file.read_text())
    row.update(phase=phase, round=round_label, variant=variant)
    per_request = 1e6 / ticks_per_second / row["requests"] if row["requests"] else float("nan")
    row["cpu_us_per_req"] = cpu_ticks * per_request
    if upstream_ticks is not None:
        # The upstream's (direct_response Envoy or simulator) CPU: not the proxy's, shown apart.
        row["upstream_cpu_us_per_req"] = upstream_ticks * per_request
    with results.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    flag = ""
    if row["non2xx"] or row["socket_errors"]:
        flag = f"   !! non-2xx {row['non2xx']}, socket errors {row['socket_errors']}"
    label = round_label if phase == "throughput" else f"c1 {round_label}"
    print(
        f"{label:>8} {variant:<8} {row['rps']:>10.0f} {row['p50_us']:>9.0f} {row['p90_us']:>9.0f}"
        f" {row['p99_us']:>9.0f} {row['cpu_us_per_req']:>11.1f}{flag}"
    )


def command_header(args: list[str]) -> None:
    if args and args[0] == "latency":
        print("concurrency-1 phase (wrk -t 1 -c 1), same ABBA order:")
    print(f"{'round':>8} {'variant':<8} {'req/s':>10} {'p50 µs':>9} {'p90 µs':>9} {'p99 µs':>9} {'CPU µs/req':>11}")


PHASE_METRICS = ["rps", "p50_us", "p90_us", "p99_us", "cpu_us_per_req"]


def phase_medians(rows: list[dict]) -> dict | None:
    """Per variant, the median of each metric over the rounds; sluice/plain ratios and differences."""
    if not rows:
        return None
    result: dict = {}
    for variant in ("plain", "sluice"):
        chosen = [row for row in rows if row["variant"] == variant]
        if not chosen:
            sys.exit(f"compare: no measured rounds for {variant}")
        result[variant] = {key: statistics.median(row[key] for row in chosen) for key in PHASE_METRICS}
        if all("upstream_cpu_us_per_req" in row for row in chosen):
            result[variant]["upstream_cpu_us_per_req"] = statistics.median(
                row["upstream_cpu_us_per_req"] for row in chosen)
    result["ratio"] = {key: result["sluice"][key] / result["plain"][key] if result["plain"][key] else float("nan")
                       for key in PHASE_METRICS}
    result["added"] = {key: result["sluice"][key] - result["plain"][key] for key in PHASE_METRICS}
    result["rounds"] = len(rows) // 2
    # How far the rounds spread, to judge the medians by.
    result["range"] = {variant: {key: [min(row[key] for row in rows if row["variant"] == variant),
                                       max(row[key] for row in rows if row["variant"] == variant)]
                                 for key in ("p50_us", "cpu_us_per_req")} for variant in ("plain", "sluice")}
    return result


def print_phase(title: str, medians: dict) -> None:
    labels = {"rps": "req/s", "p50_us": "p50 µs", "p90_us": "p90 µs", "p99_us": "p99 µs", "cpu_us_per_req": "CPU µs/req"}
    print(f"\n{title}: medians over {medians['rounds']} rounds")
    print(f"{'':<12} {'plain':>10} {'sluice':>10} {'sluice/plain':>13} {'sluice−plain':>13}")
    for key in PHASE_METRICS:
        print(f"{labels[key]:<12} {medians['plain'][key]:>10.1f} {medians['sluice'][key]:>10.1f}"
              f" {medians['ratio'][key]:>13.3f} {medians['added'][key]:>+13.1f}")
    spread = medians["range"]
    print("range over the rounds: " + "; ".join(
        f"{labels[key]} plain {spread['plain'][key][0]:.0f}–{spread['plain'][key][1]:.0f}, "
        f"sluice {spread['sluice'][key][0]:.0f}–{spread['sluice'][key][1]:.0f}" for key in ("p50_us", "cpu_us_per_req")))


def command_summary(args: list[str]) -> None:
    """Medians per phase, the targets, the summary as JSON (for --matrix). Arguments: results.jsonl,
    requests.json, mode text, load average before, `1` if the checks after measuring passed,
    where to write the JSON (optional)."""
    rows = [json.loads(line) for line in Path(args[0]).read_text().splitlines() if line.strip()]
    requests = json.loads(Path(args[1]).read_text())
    mode, load_before, verified_after = args[2], args[3], args[4] == "1"
    output = Path(args[5]) if len(args) > 5 and args[5] else None
    measured = [row for row in rows if row["round"] != "warmup"]
    throughput = phase_medians([row for row in measured if row["phase"] == "throughput"])
    if throughput is None:
        sys.exit("compare: no measured throughput rounds")
    latency = phase_medians([row for row in measured if row["phase"] == "latency"])
    print(f"\nmode: {mode}")
    print_phase("saturated (throughput) phase", throughput)
    print(f"module CPU cost ≈ {throughput['added']['cpu_us_per_req']:.1f} µs per request "
          "(difference of the proxy's medians)")
    if "upstream_cpu_us_per_req" in throughput["plain"] and "upstream_cpu_us_per_req" in throughput["sluice"]:
        print(f"upstream CPU µs/req (not the proxy's): plain {throughput['plain']['upstream_cpu_us_per_req']:.1f}, "
              f"sluice {throughput['sluice']['upstream_cpu_us_per_req']:.1f}")
    if latency:
        print_phase("concurrency-1 (latency) phase", latency)
        print(f"added latency at concurrency 1: p50 {latency['added']['p50_us']:+.0f} µs, "
              f"p99 {latency['added']['p99_us']:+.0f} µs")
    bad = [row for row in measured if row["non2xx"] or row["socket_errors"]]
    summary = {
        "mode": mode, "backend": requests["backend"], "schema": requests["schema"],
        "simulated": requests["simulated"], "stream": requests["stream"], "category": requests["category"],
        "throughput": throughput, "latency": latency, "bad_rounds": len(bad), "verified_after": verified_after,
        "load_before": load_before, "load_after": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }
    summary["checks"] = target_checks(summary)
    print(f"\nissue 12 targets ({CATEGORY_NAMES[requests['category']]}):")
    for check in summary["checks"]:
        relation = "≤" if check["at_most"] else "≥"
        print(f"  {check['what']}: {check['value']:.2f} ({relation} {check['limit']:g}) "
              f"{'met' if check['met'] else 'NOT met'}")
    if output:
        output.write_text(json.dumps(summary, indent=1))
    if bad:
        # Local replies (401/429/5xx) are far cheaper than forwarding: the ratios would lie.
        print(f"ERROR: {len(bad)} measured round(s) had non-2xx responses or socket errors; see the table above")
        sys.exit(3)
    if not verified_after:
        print("ERROR: the checks after measuring failed (see above): the rounds may not have measured what they claim")
        sys.exit(4)


def cell(check: dict | None, text: str) -> str:
    if check is None:
        return text
    relation = "≤" if check["at_most"] else "≥"
    return f"{text} ({relation} {check['limit']:g}) {'✓' if check['met'] else '✗'}"


def command_matrix(args: list[str]) -> None:
    """The --matrix table from a manifest of `label<TAB>exit status<TAB>summary JSON` lines."""
    lines = [line.split("\t") for line in Path(args[0]).read_text().splitlines() if line.strip()]
    print("| Mode | proxy CPU µs/req plain → sluice | CPU ratio | CPU added µs | req/s plain → sluice | req/s ratio "
          "| c=1 p50 µs plain → sluice | c=1 p50 added µs | targets | load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    failed = 0
    for label, status, path in lines:
        summary_file = Path(path)
        if not summary_file.is_file():
            failed += 1
            print(f"| `{label}` | failed (exit {status}), no numbers | | | | | | | | |")
            continue
        summary = json.loads(summary_file.read_text())
        checks = {check["key"]: check for check in summary["checks"]}
        throughput, latency = summary["throughput"], summary["latency"]
        plain, sluice = throughput["plain"], throughput["sluice"]
        row = [
            f"`{label}`",
            f"{plain['cpu_us_per_req']:.1f} → {sluice['cpu_us_per_req']:.1f}",
            cell(checks.get("cpu_ratio"), f"**{throughput['ratio']['cpu_us_per_req']:.2f}**"),
            cell(checks.get("cpu_added"), f"{throughput['added']['cpu_us_per_req']:+.1f}"),
            f"{plain['rps']:,.0f} → {sluice['rps']:,.0f}",
            cell(checks.get("rps_ratio"), f"**{throughput['ratio']['rps']:.2f}**"),
        ]
        if latency:
            row += [f"{latency['plain']['p50_us']:.0f} → {latency['sluice']['p50_us']:.0f}",
                    cell(checks.get("c1_p50_added"), f"{latency['added']['p50_us']:+.0f}")]
        else:
            row += ["—", "—"]
        missed = [key for key, check in checks.items() if not check["met"]]
        verdict = "all met" if not missed else "missed: " + ", ".join(missed)
        if status != "0":
            failed += 1
            verdict += f"; exit {status}" + (" (non-2xx or socket errors)" if status == "3" else "")
        row += [verdict, summary["load_before"].split()[0]]
        print("| " + " | ".join(row) + " |")
    print("\nKeys: cpu_ratio / cpu_added = proxy CPU per request (saturated phase) as sluice/plain and as "
          "sluice−plain; rps_ratio = req/s at saturation; c1_p50_added = p50 at concurrency 1, sluice−plain. "
          "Targets in brackets, from issue 12.")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    commands = {"bootstraps": command_bootstraps, "requests": command_requests, "verify": command_verify,
                "record": command_record, "header": command_header, "summary": command_summary,
                "matrix": command_matrix}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(commands)} ...")
    commands[sys.argv[1]](sys.argv[2:])
