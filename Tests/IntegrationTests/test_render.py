"""`envoy-module/envoy.yaml` is `sluiced render` of the embedded default (issue 9, item 4).

The static bootstrap is not written by hand: it is the output of `sluiced render` for
envoy-module/sluice.yaml, and this test renders again and compares, byte for byte, so an edit
of the config or of the encoder that is not re-rendered fails here. The JSON form says the same
as the YAML, and Envoy 1.40 accepts the file (`--mode validate`, module loaded).

The binary comes from env `SLUICE_SLUICED` or `.build/debug/sluiced`.
"""
from __future__ import annotations

import difflib
import json
import os
import subprocess

import pytest
import yaml

from harness import ROOT, envoy_binary, module_dir

ENVOY_YAML = ROOT / "envoy-module" / "envoy.yaml"
STALE = "envoy.yaml is stale: run `sluiced render > envoy-module/envoy.yaml`"


def sluiced_binary() -> str:
    path = os.environ.get("SLUICE_SLUICED") or str(ROOT / ".build" / "debug" / "sluiced")
    if not os.path.exists(path):
        raise RuntimeError(f"sluiced not built at {path}: run `swift build --product sluiced`")
    return path


def render(*args: str) -> str:
    """`sluiced render ARGS` on the embedded default, run from a scratch directory so nothing
    in the working tree (a .sluiced/ state, a sluice.yaml) can change what it renders."""
    result = subprocess.run(
        [sluiced_binary(), "render", *args], capture_output=True, text=True, timeout=60, cwd="/",
    )
    assert result.returncode == 0, f"sluiced render {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def rendered_yaml() -> str:
    return render()


def test_envoy_yaml_is_the_rendered_default(rendered_yaml):
    shipped = ENVOY_YAML.read_text()
    if rendered_yaml != shipped:
        diff = "".join(difflib.unified_diff(
            shipped.splitlines(keepends=True), rendered_yaml.splitlines(keepends=True),
            "envoy-module/envoy.yaml", "sluiced render", n=2,
        ))
        pytest.fail(f"{STALE}\n{diff[:6000]}", pytrace=False)


def test_render_is_deterministic(rendered_yaml):
    """Same config, same bytes (no hash-ordered maps): the comparison above is meaningful."""
    assert render() == rendered_yaml
    assert render("--format", "json") == render("--format", "json")


def test_json_format_says_what_the_yaml_says(rendered_yaml):
    as_json = json.loads(render("--format", "json"))
    assert as_json == yaml.safe_load(rendered_yaml)
    # The bootstrap the README and run.sh --static promise.
    resources = as_json["static_resources"]
    assert as_json["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 9901}
    assert [listener["address"]["socket_address"]["port_value"] for listener in resources["listeners"]] == [10000]
    assert "fallback-openai-azure" in {cluster["name"] for cluster in resources["clusters"]}


def test_the_rendered_file_passes_envoy_validation():
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(ENVOY_YAML)],
        env=dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=module_dir()),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr
