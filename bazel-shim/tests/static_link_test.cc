// Links Sluice's static archive (:sluice_static) into a C++ executable the way a custom Envoy
// would (alwayslink, no dlopen, --gc-sections) and calls its prefixed hooks as Envoy's static
// module lookup would: program init first, then config hooks whose failure paths run real Swift
// code (JSON parsing, string interpolation, Result and error values) and report through the log
// callback this program implements in Envoy's place.
//
// The other Envoy callbacks the archive references are generated stubs that abort
// (envoy_callback_stubs.c): none may be reached by what this test calls.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "envoy_dynamic_modules_abi.h"

// The hooks as :sluice_static defines them: renamed `sluice_<hook>`.
extern "C" {
envoy_dynamic_module_type_abi_version_module_ptr sluice_envoy_dynamic_module_on_program_init(void);
envoy_dynamic_module_type_http_filter_config_module_ptr sluice_envoy_dynamic_module_on_http_filter_config_new(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr,
    envoy_dynamic_module_type_envoy_buffer name, envoy_dynamic_module_type_envoy_buffer config);
envoy_dynamic_module_type_http_filter_per_route_config_module_ptr
sluice_envoy_dynamic_module_on_http_filter_per_route_config_new(envoy_dynamic_module_type_envoy_buffer name,
                                                                envoy_dynamic_module_type_envoy_buffer config);
}

namespace {
std::vector<std::string> logged;  // messages the module wrote through Envoy's log callbacks
int failures = 0;

void expect(bool ok, const std::string &what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAIL", what.c_str());
  if (!ok) ++failures;
}

envoy_dynamic_module_type_envoy_buffer buffer(const char *text) { return {text, std::strlen(text)}; }

bool logged_containing(const std::string &needle) {
  for (const auto &line : logged)
    if (line.find(needle) != std::string::npos) return true;
  return false;
}
}  // namespace

// Envoy's log callbacks, implemented here in Envoy's place.
extern "C" bool envoy_dynamic_module_callback_log_enabled(envoy_dynamic_module_type_log_level) { return true; }

extern "C" void envoy_dynamic_module_callback_log_v2(envoy_dynamic_module_type_log_level,
                                                     envoy_dynamic_module_type_module_buffer message,
                                                     envoy_dynamic_module_type_module_buffer,
                                                     uint32_t) {
  logged.emplace_back(message.ptr, message.length);
  std::printf("  module log: %s\n", logged.back().c_str());
}

extern "C" void envoy_dynamic_module_callback_log(envoy_dynamic_module_type_log_level,
                                                  envoy_dynamic_module_type_module_buffer message) {
  logged.emplace_back(message.ptr, message.length);
  std::printf("  module log: %s\n", logged.back().c_str());
}

int main() {
  // 1. Program init returns the ABI version string Sluice declares for Envoy 1.40.
  const char *version = sluice_envoy_dynamic_module_on_program_init();
  expect(version != nullptr, "program_init returns an ABI version");
  expect(version != nullptr && std::strcmp(version, SLUICE_ENVOY_ABI_VERSION) == 0,
         std::string("ABI version is ") + SLUICE_ENVOY_ABI_VERSION + " (got " + (version ? version : "NULL") + ")");

  // 2. An unknown filter name is refused, and the refusal names the filters the module has: the
  //    message is built by Swift (array join, interpolation) and sent through the log callback.
  int envoy_side_config = 0;  // an opaque Envoy pointer; the refused config never dereferences it
  auto refused = sluice_envoy_dynamic_module_on_http_filter_config_new(&envoy_side_config, buffer("no_such_filter"),
                                                                       buffer("{}"));
  expect(refused == nullptr, "config_new refuses filter_name 'no_such_filter'");
  expect(logged_containing("unknown filter_name 'no_such_filter'; this module implements: sluice, sluice_upstream"),
         "the refusal lists the module's filters");

  // 3. A gateway config that fails validation: the JSON parser and config validation run and
  //    report the missing field precisely.
  logged.clear();
  auto invalid = sluice_envoy_dynamic_module_on_http_filter_config_new(
      &envoy_side_config, buffer("sluice"), buffer("{\"api_keys\":[{\"name\":\"demo\"}],\"models\":[]}"));
  expect(invalid == nullptr, "config_new refuses a gateway config without key_sha256");
  expect(logged_containing("invalid filter_config") && logged_containing("key_sha256"),
         "the refusal names the missing key_sha256");

  // 4. Per-route configs are refused with the name Envoy passed.
  logged.clear();
  auto per_route = sluice_envoy_dynamic_module_on_http_filter_per_route_config_new(buffer("route-x"), buffer("{}"));
  expect(per_route == nullptr, "per_route_config_new refuses 'route-x'");
  expect(logged_containing("unknown per_route_config_name 'route-x'"), "the refusal names 'route-x'");

  std::printf("%s\n", failures == 0 ? "PASS" : "FAILED");
  return failures == 0 ? 0 : 1;
}
