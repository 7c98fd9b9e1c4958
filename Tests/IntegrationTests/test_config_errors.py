"""Envoy refuses an invalid filter_config with a message naming the field; it never crashes."""
import pytest

from harness import Envoy, free_port, gateway_bootstrap


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
    envoy = Envoy(bootstrap).start()
    try:
        code = envoy.wait_exit(timeout=30)
    finally:
        envoy.stop()
    logs = envoy.logs()
    assert code != 0
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
