"""sluiced's xDS (SluiceXDS) against the real Envoy 1.40, run from the README's test command.

The scenarios are Swift tests (Tests/SluiceXDSTests/RealEnvoyADSTests.swift) that start the ADS
server in-process and spawn Envoy and sluice-sim themselves: Envoy bootstrapped with only the ADS
cluster gets listener, routes, clusters, endpoints, secrets and the `sluice` filter's config (ECDS)
from the server; a new model is live within a second with no listener update; a rotated key goes
out as SDS only; a config Envoy refuses is NACKed, reported and not served again; an Envoy started
after the bad edit gets the last accepted config; fail-static while sluiced is down and
reconnection to a restarted one; the embedded default config answers every demo model; the
`sluiced render` bootstrap validates and serves (TLS listener included).

They are opt-in in `swift test` (they need the release module); here they run with the module,
Envoy and simulator this suite uses, through the already built test binary.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from harness import ROOT, envoy_binary, module_dir
from sim import sim_binary


def swift_test_binary() -> str:
    bin_dir = subprocess.run(
        ["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    path = os.path.join(bin_dir, "sluicePackageTests.xctest")
    if not os.path.exists(path):
        pytest.skip(f"the Swift test binary is not built at {path}: run `swift build --build-tests`")
    return path


def test_ads_server_against_real_envoy():
    env = dict(os.environ)
    env.update(SLUICE_ENVOY=envoy_binary(), SLUICE_MODULE_DIR=module_dir(), SLUICE_SIM=sim_binary())
    result = subprocess.run(
        [swift_test_binary(), "--testing-library", "swift-testing", "--filter", "RealEnvoyADSTests"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    assert "Test run with 3 tests" in output and "passed" in output, output[-20000:]
    assert "Suite RealEnvoyADSTests skipped" not in output, output[-20000:]
