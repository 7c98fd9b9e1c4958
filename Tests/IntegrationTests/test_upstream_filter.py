"""The `sluice_upstream` filter in backend clusters of the real Envoy 1.40: per-attempt paths and
credentials, model overrides, client keys never forwarded, and a fallback to another backend."""
import json
import time

import pytest
import requests

from harness import EchoUpstream, Envoy, free_port, gateway_bootstrap, header_route, static_cluster

DEMO_KEY = "sk-sluice-demo"
GATEWAY_CONFIG = {
    "api_keys": [{"name": "demo", "key": DEMO_KEY}],
    "models": [
        {"id": "gpt-4o-mini", "owned_by": "openai", "route": "compat"},
        {"id": "azure-gpt", "owned_by": "azure", "route": "azure"},
        {"id": "claude-haiku", "owned_by": "anthropic", "route": "anthropic"},
        {"id": "fallback-gpt", "owned_by": "openai", "route": "fallback"},
        {"id": "fallback-claude", "owned_by": "anthropic", "route": "claude-fallback"},
    ],
}

RETRY = {
    "retry_on": "connect-failure,reset,5xx,retriable-status-codes",
    "retriable_status_codes": [429],
    "num_retries": 2,
    "retry_priority": {
        "name": "envoy.retry_priorities.previous_priorities",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
            "update_frequency": 1,
        },
    },
}


DEAD_BACKEND = {"backend": "dead-openai", "schema": "openai", "credential": {"value": "dead-provider-key"}}
AZURE_BACKEND = {
    "backend": "azure-east",
    "schema": "azure_openai",
    "azure": {"api_version": "2024-10-21"},
    "credential": {"value": "azure-secret"},
    "model_overrides": {"azure-gpt": "gpt4o-deployment", "fallback-gpt": "gpt4o-deployment"},
}


def aggregate_cluster(name: str, backends: list, members: list) -> list:
    """An aggregate cluster trying `members` ((cluster name, port, backend name)) in order. The
    upstream filter runs on the aggregate cluster (configured with `backends`) and knows each
    host's backend from endpoint metadata."""
    def member(cluster_name, port, backend):
        cluster = static_cluster(cluster_name, port)
        endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
        endpoint["metadata"] = {"filter_metadata": {"sluice": {"backend": backend}}}
        return cluster

    aggregate = static_cluster(name, 1, {"backends": backends})
    del aggregate["load_assignment"]
    del aggregate["type"]
    aggregate["lb_policy"] = "CLUSTER_PROVIDED"
    aggregate["cluster_type"] = {
        "name": "envoy.clusters.aggregate",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig",
            "clusters": [cluster_name for cluster_name, _, _ in members],
        },
    }
    return [member(*m) for m in members] + [aggregate]


def fallback_cluster(dead_port: int, azure_port: int) -> list:
    """The dead OpenAI backend first, Azure as the fallback."""
    return aggregate_cluster(
        "fallback", [DEAD_BACKEND, AZURE_BACKEND],
        [("fallback-dead", dead_port, "dead-openai"), ("fallback-azure", azure_port, "azure-east")])


DEAD_BEDROCK_CLAUDE = {
    "backend": "dead-bedrock-claude", "schema": "bedrock_anthropic",
    "aws": {"region": "us-east-1", "access_key_id": {"value": "AKIDDEAD"}, "secret_access_key": {"value": "s"}},
}
ANTHROPIC_BACKEND = {"backend": "anthropic-direct", "schema": "anthropic", "credential": {"value": "sk-ant-fallback"}}


def claude_fallback_cluster(dead_port: int, anthropic_port: int) -> list:
    """Claude on Bedrock (dead) first, Anthropic as the fallback: the Bedrock attempt takes
    `anthropic-beta` off the shared request headers, so the Anthropic attempt must get it back."""
    return aggregate_cluster(
        "claude-fallback", [DEAD_BEDROCK_CLAUDE, ANTHROPIC_BACKEND],
        [("claude-dead-bedrock", dead_port, "dead-bedrock-claude"), ("claude-anthropic", anthropic_port, "anthropic-direct")])


@pytest.fixture(scope="module")
def gateway():
    with EchoUpstream() as echo:
        port = free_port()
        dead_port = free_port()  # nothing listens: connect failure
        clusters = [
            static_cluster(
                "compat",
                echo.port,
                {
                    "backend": "local-vllm",
                    "schema": "openai",
                    "path_prefix": "/prefix",
                    "credential": {"secret": "compat-key"},
                    "model_overrides": {"gpt-4o-mini": "Qwen/Qwen2.5-7B-Instruct"},
                },
            ),
            static_cluster("azure", echo.port, AZURE_BACKEND),
            static_cluster(
                "anthropic",
                echo.port,
                {"backend": "anthropic", "schema": "anthropic", "credential": {"value": "sk-ant-provider"}},
            ),
            *fallback_cluster(dead_port, echo.port),
            *claude_fallback_cluster(dead_port, echo.port),
        ]
        routes = [
            header_route("compat", "compat"),
            header_route("azure", "azure"),
            header_route("anthropic", "anthropic"),
            header_route("fallback", "fallback", retry_policy=RETRY),
            header_route("claude-fallback", "claude-fallback", retry_policy=RETRY),
            {"match": {"prefix": "/"}, "route": {"cluster": "compat"}},
        ]
        secrets = [{"name": "compat-key", "generic_secret": {"secret": {"inline_string": "sk-compat-from-sds"}}}]
        bootstrap = gateway_bootstrap(
            gateway_port=port,
            admin_port=free_port(),
            upstream_port=echo.port,
            filter_config=GATEWAY_CONFIG,
            routes=routes,
            clusters=clusters,
            secrets=secrets,
        )
        with Envoy(bootstrap) as envoy:
            envoy.base = f"http://127.0.0.1:{port}"
            yield envoy


def post(gateway, path, body, **headers):
    return requests.post(f"{gateway.base}{path}", headers={"Authorization": f"Bearer {DEMO_KEY}", **headers}, json=body)


def test_openai_compatible_backend_gets_its_path_key_and_model(gateway):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2}
    r = post(gateway, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["path"] == "/prefix/v1/chat/completions"
    assert seen["headers"]["authorization"] == "Bearer sk-compat-from-sds"
    sent = json.loads(seen["body"])
    assert sent == {**body, "model": "Qwen/Qwen2.5-7B-Instruct"}
    assert int(seen["headers"]["content-length"]) == len(seen["body"].encode())
    assert "x-sluice-route" not in seen["headers"]


def test_azure_backend_gets_deployment_path_and_api_key(gateway):
    r = post(gateway, "/v1/embeddings", {"model": "azure-gpt", "input": "hello"})
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["path"] == "/openai/deployments/gpt4o-deployment/embeddings?api-version=2024-10-21"
    assert seen["headers"]["api-key"] == "azure-secret"
    assert "authorization" not in seen["headers"]


def test_anthropic_client_passthrough_swaps_the_key(gateway):
    body = {"model": "claude-haiku", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    r = requests.post(f"{gateway.base}/v1/messages", headers={"x-api-key": DEMO_KEY, "anthropic-version": "2023-06-01"}, json=body)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["path"] == "/v1/messages"
    assert seen["headers"]["x-api-key"] == "sk-ant-provider"
    assert seen["headers"]["anthropic-version"] == "2023-06-01"
    assert json.loads(seen["body"]) == body


def test_fallback_to_the_next_backend_is_translated_for_it(gateway):
    r = post(gateway, "/v1/chat/completions", {"model": "fallback-gpt", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200, r.text
    seen = r.json()
    # The retry landed on Azure: Azure's path and key, nothing left from the dead OpenAI attempt.
    assert seen["path"] == "/openai/deployments/gpt4o-deployment/chat/completions?api-version=2024-10-21"
    assert seen["headers"]["api-key"] == "azure-secret"
    assert "authorization" not in seen["headers"]
    stats = gateway.flushed_stats()
    assert stats.get("cluster.fallback.upstream_rq_retry", 0) >= 1
    assert stats.get("cluster.fallback.sluice.upstream_attempts_total.backend.azure-east.outcome.ok", 0) >= 1


def test_a_fallback_gets_back_the_beta_header_bedrock_took_into_its_body(gateway):
    body = {"model": "fallback-claude", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}
    r = requests.post(f"{gateway.base}/v1/messages", json=body, headers={
        "x-api-key": DEMO_KEY, "anthropic-version": "2023-06-01", "anthropic-beta": "a-1, b-2"})
    assert r.status_code == 200, r.text
    seen = r.json()
    # The retry landed on Anthropic, which takes betas as a header: the one the Bedrock attempt took off.
    assert seen["path"] == "/v1/messages" and seen["headers"]["x-api-key"] == "sk-ant-fallback"
    assert seen["headers"]["anthropic-beta"] == "a-1, b-2"
    assert "anthropic_beta" not in json.loads(seen["body"]) and "x-amz-date" not in seen["headers"]
    stats = gateway.flushed_stats()
    assert stats.get("cluster.claude-fallback.upstream_rq_retry", 0) >= 1
    assert stats.get("cluster.claude-fallback.sluice.upstream_attempts_total.backend.anthropic-direct.outcome.ok", 0) >= 1


def test_client_keys_never_reach_a_provider(gateway):
    r = requests.post(
        f"{gateway.base}/v1/chat/completions",
        headers={"Authorization": f"Bearer {DEMO_KEY}", "x-api-key": DEMO_KEY},
        json={"model": "azure-gpt", "messages": []},
    )
    seen = r.json()
    assert DEMO_KEY not in json.dumps(seen["headers"])


def test_upstream_stats_count_attempts_per_backend(gateway):
    post(gateway, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": []})
    # The module hands its summed counters to Envoy every 100 ms: this test may be the first of
    # its module to reach the backend (pytest-xdist splits modules), so wait for the flush.
    deadline = time.monotonic() + 3.0
    text = gateway.prometheus()
    while 'backend="local-vllm"' not in text and time.monotonic() < deadline:
        time.sleep(0.05)
        text = gateway.prometheus()
    assert 'backend="local-vllm"' in text


@pytest.mark.parametrize("read_only", [False, True])
def test_a_foreign_value_under_the_link_key_never_sends_an_attempt_out_unlinked(read_only):
    """The two filters share a module object in the request's filter state (key
    `sluice.filter_link`). Another filter that writes its own value under that key first (here
    Envoy's set_filter_state, as a misconfiguration would) must neither crash Envoy (the upstream
    filter would dereference a foreign object) nor let an attempt go upstream as if `sluice` had
    not routed it (untranslated, without the provider's credential). Envoy 1.40 refuses to store
    the link over another filter's value, read-only or not: the client gets a 500 in its own
    error shape, every time, and Envoy keeps serving."""
    with EchoUpstream() as echo:
        port = free_port()
        clusters = [
            static_cluster(
                "compat", echo.port, {"backend": "local-vllm", "schema": "openai", "credential": {"value": "sk-provider"}}
            )
        ]
        bootstrap = gateway_bootstrap(
            gateway_port=port,
            admin_port=free_port(),
            upstream_port=echo.port,
            filter_config=GATEWAY_CONFIG,
            routes=[{"match": {"prefix": "/"}, "route": {"cluster": "compat"}}],
            clusters=clusters,
        )
        manager = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        manager["http_filters"].insert(
            0,
            {
                "name": "envoy.filters.http.set_filter_state",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config",
                    "on_request_headers": [
                        {
                            "object_key": "sluice.filter_link",
                            "factory_key": "envoy.string",
                            "format_string": {"text_format_source": {"inline_string": "chat_completions 0 0 5 gpt-4o-mini"}},
                            "read_only": read_only,
                        }
                    ],
                },
            },
        )
        with Envoy(bootstrap) as envoy:
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
            for _ in range(3):
                r = requests.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    headers={"Authorization": f"Bearer {DEMO_KEY}"},
                    json=body,
                    timeout=10,
                )
                assert r.status_code == 500, r.text
                assert r.json()["error"]["code"] == "gateway_misconfigured"
                # The echo upstream never saw the request (its answer would carry "headers").
                assert "headers" not in r.json()
            assert envoy.process.poll() is None, envoy.logs()
