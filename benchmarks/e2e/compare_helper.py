#!/usr/bin/env python3
"""Helpers for compare.sh: Envoy bootstraps, the requests of --sim mode (and their check),
wrk output parsing, and the summary.

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
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
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


# MARK: - Simulator mode (--sim BACKEND)
#
# Both listeners forward to the same sluice-sim listener. The sluice listener gets an OpenAI chat
# request and runs the module's whole path (auth, route, quota, translation, credential, response
# translation, metering). The plain listener gets the request an application would send to the
# provider itself through a plain proxy: the provider's own path, body and credential. The two
# bodies say the same thing (same prompt, same max tokens), and `verify` checks that the module's
# translation of the one is the other, so the simulator does the same work for both.

PROMPT = "Say hello in one word."
MAX_TOKENS = 64
DEMO_KEY = "sk-sluice-demo"
# The upstream filter's Anthropic version header (SluiceCore UpstreamExchange); a client sends its own.
ANTHROPIC_VERSION = "2023-06-01"

# Backend (an envoy.yaml cluster) -> the sluice-sim listener option that serves it; /__sim/last
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
                   plain_port: int) -> dict:
    """What an application sends the provider itself (through the plain listener): the body the
    module would send for the OpenAI request, the provider's path and the provider's credential."""
    schema = config["schema"]
    user = {"role": "user", "content": PROMPT}
    headers = {"Content-Type": "application/json"}
    if schema == "openai":
        path = "/v1/chat/completions"
        body = {"model": wire_model, "messages": [user], "max_tokens": MAX_TOKENS}
        if "credential" in config:  # the self-hosted `local` backend has none
            headers["Authorization"] = "Bearer " + secret(source, config["credential"], envoy_yaml)
        shape = "openai"
    elif schema == "azure_openai":
        version = config["azure"]["api_version"]
        path = f"/openai/deployments/{urllib.parse.quote(wire_model, safe='')}/chat/completions?api-version={version}"
        # The module names the deployment in the path and leaves the client's `model` in the body
        # (Azure ignores it), so the native body carries the same value.
        body = {"model": model, "messages": [user], "max_tokens": MAX_TOKENS}
        headers["api-key"] = secret(source, config["credential"], envoy_yaml)
        shape = "openai"
    elif schema == "anthropic":
        path = "/v1/messages"
        body = {"model": wire_model, "max_tokens": MAX_TOKENS, "messages": [user]}
        headers["x-api-key"] = secret(source, config["credential"], envoy_yaml)
        headers["anthropic-version"] = ANTHROPIC_VERSION
        shape = "anthropic"
    elif schema == "bedrock_converse":
        path = f"/model/{urllib.parse.quote(wire_model, safe='')}/converse"
        body = {"messages": [{"role": "user", "content": [{"text": PROMPT}]}],
                "inferenceConfig": {"maxTokens": MAX_TOKENS}}
        shape = "bedrock"
    elif schema in ("gemini", "vertex_gemini"):
        method = f"models/{wire_model}:generateContent"
        if schema == "gemini":
            path = f"/v1beta/{method}"
            headers["x-goog-api-key"] = secret(source, config["credential"], envoy_yaml)
        else:
            gcp = config["gcp"]
            path = f"/v1/projects/{gcp['project']}/locations/{gcp['location']}/publishers/google/{method}"
            headers["Authorization"] = "Bearer " + secret(source, config["credential"], envoy_yaml)
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
    return {"path": path, "headers": headers, "body": text, "shape": shape}


def sim_requests(envoy_yaml: Path, backend: str, plain_port: int) -> dict:
    """Both sides' requests for `--sim BACKEND`, plus what `verify` needs to know."""
    source = load_yaml(envoy_yaml)
    if backend not in SIM_LISTENERS:
        sys.exit(f"compare: --sim takes one of {', '.join(SIM_LISTENERS)}, not '{backend}'")
    config = upstream_filter_value(upstream_filter_options(source, envoy_yaml, backend), envoy_yaml, backend)
    model = routed_model(sluice_filter(source, envoy_yaml), backend)
    wire_model = config.get("model_overrides", {}).get(model, model)
    sluice = {
        "path": "/v1/chat/completions",
        "headers": {"Content-Type": "application/json", "Authorization": f"Bearer {DEMO_KEY}"},
        "body": compact({"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": MAX_TOKENS}),
        "shape": "openai",
    }
    plain = native_request(source, envoy_yaml, backend, config, model, wire_model, plain_port)
    return {"backend": backend, "schema": config["schema"], "model": model, "wire_model": wire_model,
            "sim_provider": SIM_LISTENERS[backend], "plain": plain, "sluice": sluice}


def wrk_script(request: dict) -> str:
    body = request["body"]
    if "]==]" in body:
        sys.exit("compare: request body cannot be quoted for Lua")
    lines = ['wrk.method = "POST"', f'wrk.path = "{request["path"]}"', f"wrk.body = [==[{body}]==]"]
    for name, value in request["headers"].items():
        if '"' in value or "\\" in value or '"' in name:
            sys.exit(f"compare: header {name} cannot be quoted for Lua")
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    return "\n".join(lines) + "\n"


def command_sim_requests(args: list[str]) -> None:
    """Writes sim.json (both requests) and one wrk script per listener; prints the model."""
    envoy_yaml, out_dir, backend, plain_port = Path(args[0]), Path(args[1]), args[2], int(args[3])
    requests = sim_requests(envoy_yaml, backend, plain_port)
    (out_dir / "sim.json").write_text(json.dumps(requests, indent=1))
    for variant in ("plain", "sluice"):
        (out_dir / f"request.{variant}.lua").write_text(wrk_script(requests[variant]))
    print(f"{requests['model']} -> {requests['schema']} '{requests['wire_model']}'")


# MARK: - Simulator mode: checks before measuring


def send(port: int, request: dict, headers: dict | None = None) -> tuple[int, bytes]:
    """POSTs a request to a listener; returns the status and the body (error bodies included)."""
    url = f"http://127.0.0.1:{port}{request['path']}"
    all_headers = dict(request["headers"] if headers is None else headers)
    all_headers.pop("Host", None)  # urllib sends 127.0.0.1:<port>, the value the signature used
    prepared = urllib.request.Request(url, data=request["body"].encode(), headers=all_headers, method="POST")
    try:
        with urllib.request.urlopen(prepared, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


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


def command_verify(args: list[str]) -> None:
    """Before measuring: both listeners answer 200 with a well-formed body of their shape, the
    sluice listener refuses a request without a key (the module is in the path), the upstream
    filter counted an ok attempt, and the request the simulator received from the module (path,
    query, body) is the plain listener's request: the module translated it, and the simulator
    does the same work on both sides."""
    requests = json.loads(Path(args[0]).read_text())
    plain_port, sluice_port, sim_port, admin_port = (int(value) for value in args[1:5])
    attempts_before = upstream_attempts_ok(admin_port)
    provider = requests["sim_provider"]
    failures = []
    seen = {}
    for variant, port in (("sluice", sluice_port), ("plain", plain_port)):
        request = requests[variant]
        status, body = send(port, request)
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        text = reply_text(request["shape"], document)
        if status != 200 or text is None:
            failures.append(f"{variant}: expected 200 with a {request['shape']} answer, got {status}: {body[:300]!r}")
            continue
        received = last_upstream_request(sim_port, provider)
        if not received.get("authorized"):
            failures.append(f"{variant}: the simulator did not accept the credential: {received}")
        seen[variant] = received
        print(f"verify: {variant:<6} POST {request['path']} -> 200 {request['shape']} answer {text!r}; "
              f"the simulator got POST {received['path']}")
    if "plain" in seen and "sluice" in seen:
        for field in ("method", "path", "query", "body"):
            if seen["plain"].get(field) != seen["sluice"].get(field):
                failures.append(
                    f"the module sent {field} {compact(seen['sluice'].get(field))}, the plain request has "
                    f"{compact(seen['plain'].get(field))}: make the native request in compare_helper.py match")
    attempts = upstream_attempts_ok(admin_port) - attempts_before
    for _ in range(20):  # counted when the attempt's stream ends, which may trail the reply a little
        if attempts >= 1:
            break
        time.sleep(0.05)
        attempts = upstream_attempts_ok(admin_port) - attempts_before
    if attempts != 1:
        failures.append(f"the upstream filter counted {attempts} ok attempts for one sluice request, not 1")
    status, _ = send(sluice_port, requests["sluice"], headers={"Content-Type": "application/json"})
    if status != 401:
        failures.append(f"sluice answered {status} without a key; expected the module's 401")
    if failures:
        sys.exit("compare: " + "\ncompare: ".join(failures))
    print(f"verify: the module's {requests['schema']} request equals the plain request (path, query, body); "
          f"sluice_upstream counted the attempt; no key -> 401")


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
    """proxy.json, and upstream.json unless the upstream is the simulator (`sim` as 8th argument)."""
    envoy_yaml, out_dir = Path(args[0]), Path(args[1])
    plain, sluice, upstream, admin = (int(value) for value in args[2:6])
    backend = args[6] if len(args) > 6 else ""
    simulator = len(args) > 7 and args[7] == "sim"
    proxy = proxy_bootstrap(envoy_yaml, plain, sluice, upstream, admin, backend)
    (out_dir / "proxy.json").write_text(json.dumps(proxy, indent=1))
    if not simulator:
        (out_dir / "upstream.json").write_text(json.dumps(upstream_bootstrap(upstream), indent=1))


def command_record(args: list[str]) -> None:
    """Appends one round's result (wrk output + CPU ticks) to results.jsonl and prints its row."""
    results, round_label, variant, wrk_file = Path(args[0]), args[1], args[2], Path(args[3])
    cpu_ticks, ticks_per_second = int(args[4]), int(args[5])
    upstream_ticks = int(args[6]) if len(args) > 6 else None
    row = parse_wrk(wrk_file.read_text())
    row.update(round=round_label, variant=variant)
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
    mode = args[1] if len(args) > 1 else "plain router vs sluice module + router"
    print(f"\nmedians over {len(measured) // 2} rounds ({mode})")
    print(f"{'':<12} {'plain':>10} {'sluice':>10} {'sluice/plain':>13}")
    for key, label in metrics:
        plain, sluice = medians["plain"][key], medians["sluice"][key]
        ratio = sluice / plain if plain else float("nan")
        print(f"{label:<12} {plain:>10.1f} {sluice:>10.1f} {ratio:>13.3f}")
    extra = medians["sluice"]["cpu_us_per_req"] - medians["plain"]["cpu_us_per_req"]
    print(f"module CPU cost ≈ {extra:.1f} µs per request (difference of the proxy's medians)")
    if all("upstream_cpu_us_per_req" in row for row in measured):
        upstream = [statistics.median(row["upstream_cpu_us_per_req"] for row in measured if row["variant"] == variant)
                    for variant in ("plain", "sluice")]
        print(f"upstream CPU µs/req (not the proxy's): plain {upstream[0]:.1f}, sluice {upstream[1]:.1f}")
    bad = [row for row in measured if row["non2xx"] or row["socket_errors"]]
    if bad:
        # Local replies (401/429/5xx) are far cheaper than forwarding: the ratios would lie.
        print(f"ERROR: {len(bad)} measured round(s) had non-2xx responses or socket errors; see the table above")
        sys.exit(3)


if __name__ == "__main__":
    commands = {"bootstraps": command_bootstraps, "sim-requests": command_sim_requests, "verify": command_verify,
                "record": command_record, "header": command_header, "summary": command_summary}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(commands)} ...")
    commands[sys.argv[1]](sys.argv[2:])
