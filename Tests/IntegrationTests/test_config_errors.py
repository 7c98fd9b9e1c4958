"""Envoy refuses an invalid filter_config with a message naming the field; it never crashes."""
import pytest

from harness import Envoy, free_port, gateway_bootstrap


def refused(bootstrap: dict, *, as_yaml: bool = False) -> str:
    """Envoy's logs after it refused `bootstrap` and exited (asserted)."""
    envoy = Envoy(bootstrap, as_yaml=as_yaml).start()
    try:
        code = envoy.wait_exit(timeout=30)
    finally:
        envoy.stop()
    assert code != 0
    return envoy.logs()


@pytest.mark.parametrize(
    "filter_config,expected",
    [
        ('{"api_keys":[{"name":"demo","kee":"x"}]}', "api_keys[0]: needs one of 'key' or 'key_sha256'"),
        ('{"api_keys":[{"name":"demo","key":"x","role":"admin"}]}', "api_keys[0].role: unknown field"),
        ('{"models":[{"id":3}]}', "models[0].id: expected a string, got number"),
        ('{"modles":[]}', "modles: unknown field"),
        ('{"api_keys": [', "filter_config is not valid JSON"),
    ],
)
def test_invalid_filter_config_is_rejected_naming_the_field(filter_config, expected):
    bootstrap = gateway_bootstrap(
        gateway_port=free_port(), admin_port=free_port(), upstream_port=free_port(), filter_config=filter_config
    )
    logs = refused(bootstrap)
    assert expected in logs, logs[-3000:]
    assert "sluice: rejecting filter config 'sluice'" in logs
    # A clean config rejection, not a crash.
    assert "Caught Segmentation fault" not in logs and "Backtrace" not in logs


def test_unknown_filter_name_is_rejected():
    bootstrap = gateway_bootstrap(
        gateway_port=free_port(), admin_port=free_port(), upstream_port=free_port(), filter_config="{}",
        filter_name="sluice_typo",
    )
    envoy = Envoy(bootstrap).start()
    try:
        code = envoy.wait_exit(timeout=30)
    finally:
        envoy.stop()
    assert code != 0
    assert "unknown filter_name 'sluice_typo'" in envoy.logs()


def test_validate_mode_accepts_the_shipped_bootstrap():
    """envoy-module/envoy.yaml loads the module and passes Envoy's own validation."""
    import os
    import subprocess

    from harness import ROOT, envoy_binary, module_dir

    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(ROOT / "envoy-module" / "envoy.yaml")],
        env=dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=module_dir()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr


def struct_bootstrap(filter_config: dict) -> dict:
    """A gateway bootstrap whose `sluice` config is a protobuf Struct written in YAML."""
    bootstrap = gateway_bootstrap(
        gateway_port=free_port(), admin_port=free_port(), upstream_port=free_port(), filter_config="{}"
    )
    for chain in bootstrap["static_resources"]["listeners"][0]["filter_chains"]:
        for http_filter in chain["filters"][0]["typed_config"]["http_filters"]:
            if http_filter["typed_config"].get("filter_name") == "sluice":
                http_filter["typed_config"]["filter_config"] = {
                    "@type": "type.googleapis.com/google.protobuf.Struct",
                    "value": filter_config,
                }
    return bootstrap


def test_large_integers_in_yaml_are_integers():
    """Envoy's YAML loader hands large integers to the module as strings: they are accepted as
    the integers they are (here a limit of 10^10 tokens per minute, the largest allowed)."""
    config = {
        "api_keys": [{"name": "demo", "key": "sk-demo", "limits": {"tokens_per_minute": 10_000_000_000,
                                                                     "requests_per_minute": 100_000_000}}],
        "models": [{"id": "m", "created": 4_000_000_000}],
    }
    bootstrap = struct_bootstrap(config)
    gateway_port = bootstrap["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"]
    import requests

    with Envoy(bootstrap, as_yaml=True) as envoy:
        response = requests.get(
            f"http://127.0.0.1:{gateway_port}/v1/models", headers={"authorization": "Bearer sk-demo"}, timeout=10
        )
        assert response.status_code == 200, envoy.logs()[-3000:]
        assert response.headers["x-ratelimit-limit-tokens"] == "10000000000"
        assert response.json()["data"][0]["created"] == 4_000_000_000


@pytest.mark.parametrize(
    "limits,expected",
    [
        ({"tokens_per_minute": 1.5}, "api_keys[0].limits.tokens_per_minute: expected an integer, got 1.5"),
        (
            {"tokens_per_minute": 1_000_000_000_000},
            "api_keys[0].limits.tokens_per_minute: must be between 1 and 10000000000, got 1000000000000",
        ),
        (
            {"requests_per_minute": 99999999999999999999999},
            "api_keys[0].limits.requests_per_minute: must be between 1 and 100000000, got",
        ),
    ],
)
def test_fractions_and_overflow_in_yaml_are_refused_naming_the_field(limits, expected):
    logs = refused(struct_bootstrap({"api_keys": [{"name": "demo", "key": "sk-demo", "limits": limits}]}), as_yaml=True)
    assert expected in logs, logs[-3000:]
    assert "Caught " not in logs and "Backtrace" not in logs
