"""libsluice.so against the real Envoy 1.40 binary: what we reference exists, what we export is
looked up, all 20 mandatory HTTP-filter hooks, all 17 bootstrap-extension hooks and all 6 load-balancer
hooks are there, and
nothing else leaks out."""
import os
import re
import subprocess

from harness import ROOT, envoy_binary, module_dir

MANDATORY_HTTP_HOOKS = [
    "config_new", "config_destroy", "new", "request_headers", "request_body", "request_trailers",
    "response_headers", "response_body", "response_trailers", "stream_complete", "destroy",
    "http_callout_done", "http_stream_headers", "http_stream_data", "http_stream_trailers",
    "http_stream_complete", "http_stream_reset", "scheduled",
    "downstream_above_write_buffer_high_watermark", "downstream_below_write_buffer_low_watermark",
]

# Envoy 1.40 resolves every one of these when it loads a bootstrap extension (the fleet worker).
MANDATORY_BOOTSTRAP_HOOKS = [
    "config_new", "config_destroy", "new", "server_initialized", "worker_thread_initialized", "destroy",
    "drain_started", "shutdown", "config_scheduled", "http_callout_done", "timer_fired", "file_changed",
    "admin_request", "cluster_add_or_update", "cluster_removal", "listener_add_or_update", "listener_removal",
]

# Envoy 1.40 resolves every one of these when a cluster names the module's load-balancing policy.
MANDATORY_LB_HOOKS = ["config_new", "config_destroy", "new", "choose_host", "on_host_membership_update", "destroy"]


def nm(path: str, *flags: str) -> list[str]:
    out = subprocess.run(["nm", "-D", *flags, path], capture_output=True, text=True, check=True).stdout
    return [line.split()[-1] for line in out.splitlines() if line.strip()]


def module_path() -> str:
    return os.path.join(module_dir(), "libsluice.so")


def envoy_real_binary() -> str:
    return os.path.realpath(envoy_binary())


def envoy_strings() -> str:
    with open(envoy_real_binary(), "rb") as f:
        return f.read().decode("latin-1")


def test_every_referenced_callback_is_exported_by_envoy():
    referenced = {s for s in nm(module_path(), "--undefined-only") if s.startswith("envoy_dynamic_module_callback_")}
    exported = set(nm(envoy_real_binary(), "--defined-only"))
    assert referenced, "the module references no Envoy callbacks?"
    assert referenced <= exported, sorted(referenced - exported)


def test_every_exported_hook_is_one_envoy_looks_up():
    hooks = [s for s in nm(module_path(), "--defined-only", "--extern-only") if s.startswith("envoy_dynamic_module_on_")]
    names_in_envoy = envoy_strings()
    missing = [h for h in hooks if h not in names_in_envoy]
    assert not missing, missing


def test_all_mandatory_http_filter_hooks_are_exported():
    exported = set(nm(module_path(), "--defined-only", "--extern-only"))
    missing = [h for h in MANDATORY_HTTP_HOOKS if f"envoy_dynamic_module_on_http_filter_{h}" not in exported]
    assert not missing, missing
    assert "envoy_dynamic_module_on_program_init" in exported


def test_all_mandatory_bootstrap_hooks_are_exported():
    exported = set(nm(module_path(), "--defined-only", "--extern-only"))
    missing = [h for h in MANDATORY_BOOTSTRAP_HOOKS if f"envoy_dynamic_module_on_bootstrap_extension_{h}" not in exported]
    assert not missing, missing


def test_all_mandatory_load_balancer_hooks_are_exported():
    exported = set(nm(module_path(), "--defined-only", "--extern-only"))
    missing = [h for h in MANDATORY_LB_HOOKS if f"envoy_dynamic_module_on_lb_{h}" not in exported]
    assert not missing, missing


def test_only_envoy_hooks_are_exported():
    exported = nm(module_path(), "--defined-only", "--extern-only")
    others = [s for s in exported if not s.startswith("envoy_dynamic_module_on_")]
    assert not others, others


def test_module_does_not_depend_on_the_swift_toolchain():
    out = subprocess.run(["readelf", "-d", module_path()], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\).*\[(.*)\]", out)
    assert not [n for n in needed if "swift" in n.lower() or "Foundation" in n or "dispatch" in n], needed
    assert "/swift" not in out  # no RUNPATH into a toolchain


def test_header_declares_only_names_the_binary_has():
    header = (ROOT / "include" / "CEnvoyABI" / "envoy_dynamic_modules_abi.h").read_text()
    callbacks = set(re.findall(r"\b(envoy_dynamic_module_callback_\w+)\s*\(", header))
    hooks = set(re.findall(r"\b(envoy_dynamic_module_on_\w+)\s*\(", header))
    exported = set(nm(envoy_real_binary(), "--defined-only"))
    assert callbacks and callbacks <= exported, sorted(callbacks - exported)
    text = envoy_strings()
    assert hooks and all(h in text for h in hooks), [h for h in hooks if h not in text]


def test_header_abi_version_matches_envoy():
    header = (ROOT / "include" / "CEnvoyABI" / "envoy_dynamic_modules_abi.h").read_text()
    assert '#define SLUICE_ENVOY_ABI_VERSION "v0.2.0"' in header
    swift = (ROOT / "Sources" / "SluiceEnvoy" / "ABI" / "Hooks+Program.swift").read_text()
    assert 'sluiceABIVersion: StaticString = "v0.2.0"' in swift
