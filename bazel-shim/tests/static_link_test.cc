// Links Sluice's static archive (:sluice_static) into a C++ executable the way a custom Envoy
// would (alwayslink, hooks exported by a dynamic list, --gc-sections, no dlopen) and calls its
// prefixed hooks as Envoy's static module lookup would: program init found with dlsym first, then config hooks whose failure paths run real Swift
// code (JSON parsing, string interpolation, Result and error values) and report through the log
// callback this program implements in Envoy's place.
//
// This program implements the Envoy callbacks those hooks use (log, metric definition, config
// scheduler); the other callbacks the archive references are generated stubs that abort
// (envoy_callback_stubs.c): none may be reached by what this test calls.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "envoy_dynamic_modules_abi.h"

// The hooks as :sluice_static defines them: renamed `sluice_<hook>`.
extern "C" {
envoy_dynamic_module_type_abi_version_module_ptr sluice_envoy_dynamic_module_on_program_init(void);
envoy_dynamic_module_type_http_filter_config_module_ptr sluice_envoy_dynamic_module_on_http_filter_config_new(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr,
    envoy_dynamic_module_type_envoy_buffer name, envoy_dynamic_module_type_envoy_buffer config);
void sluice_envoy_dynamic_module_on_http_filter_config_destroy(
    envoy_dynamic_module_type_http_filter_config_module_ptr filter_config_ptr);
envoy_dynamic_module_type_http_filter_per_route_config_module_ptr
sluice_envoy_dynamic_module_on_http_filter_per_route_config_new(envoy_dynamic_module_type_envoy_buffer name,
                                                                envoy_dynamic_module_type_envoy_buffer config);
}

namespace {
std::vector<std::string> logged;  // messages the module wrote through Envoy's log callbacks
std::vector<std::string> metrics;  // metric names the module defined, in order
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

// Envoy's metric definition callbacks: each defined name gets the next id.
static envoy_dynamic_module_type_metrics_result define_metric(envoy_dynamic_module_type_module_buffer name,
                                                              size_t *id) {
  metrics.emplace_back(name.ptr, name.length);
  *id = metrics.size() - 1;
  return envoy_dynamic_module_type_metrics_result_Success;
}

extern "C" envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_http_filter_config_define_counter(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr, envoy_dynamic_module_type_module_buffer name,
    envoy_dynamic_module_type_module_buffer *, size_t, size_t *id) {
  return define_metric(name, id);
}

extern "C" envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_http_filter_config_define_gauge(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr, envoy_dynamic_module_type_module_buffer name,
    envoy_dynamic_module_type_module_buffer *, size_t, size_t *id) {
  return define_metric(name, id);
}

extern "C" envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_http_filter_config_define_histogram(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr, envoy_dynamic_module_type_module_buffer name,
    envoy_dynamic_module_type_module_buffer *, size_t, size_t *id) {
  return define_metric(name, id);
}

// No config scheduler: the module then flushes its counters per stream instead of on a timer.
extern "C" void *envoy_dynamic_module_callback_http_filter_config_scheduler_new(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr) {
  return nullptr;
}

int main() {
  // 1. Envoy finds a module linked into its binary by looking up `<name>_envoy_dynamic_module_on_program_init`
  //    in its own image, then calls it: it returns the ABI version Sluice declares for Envoy 1.40.
  using ProgramInit = envoy_dynamic_module_type_abi_version_module_ptr (*)(void);
  auto program_init =
      reinterpret_cast<ProgramInit>(dlsym(RTLD_DEFAULT, "sluice_envoy_dynamic_module_on_program_init"));
  expect(program_init == &sluice_envoy_dynamic_module_on_program_init,
         "dlsym(RTLD_DEFAULT) finds the prefixed program_init in the executable");
  const char *version = program_init != nullptr ? program_init() : nullptr;
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

  // 5. A valid gateway config loads: the module defines its metrics through Envoy's callbacks and
  //    builds its gateway (key table, model list, quota registry); then Envoy destroys it.
  logged.clear();
  const char *gateway_config =
      "{\"api_keys\":[{\"name\":\"demo\",\"key_sha256\":"
      "\"1c590839af894cf25f9a5fe06929af05b377f60efbe55508ef93d251887b9213\",\"team\":\"demo-team\"}],"
      "\"models\":[{\"id\":\"gpt-4o-mini\",\"owned_by\":\"openai\",\"created\":1721172741,\"route\":\"openai\"}]}";
  auto loaded = sluice_envoy_dynamic_module_on_http_filter_config_new(&envoy_side_config, buffer("sluice"),
                                                                      buffer(gateway_config));
  expect(loaded != nullptr, "config_new loads a valid gateway config");
  expect(logged_containing("filter config loaded: 1 client keys, 1 models"), "the module logs what it loaded");
  bool requests_total = false;
  for (const auto &name : metrics) requests_total = requests_total || name == "requests_total";
  expect(requests_total, "the module defined its requests_total counter (" + std::to_string(metrics.size()) +
                             " metrics defined)");
  if (loaded != nullptr) sluice_envoy_dynamic_module_on_http_filter_config_destroy(loaded);

  // 6. Hooks run on Envoy's worker threads too: the Swift runtime on a thread it has not seen.
  logged.clear();
  envoy_dynamic_module_type_http_filter_per_route_config_module_ptr on_worker = &envoy_side_config;
  std::thread worker([&] {
    on_worker = sluice_envoy_dynamic_module_on_http_filter_per_route_config_new(buffer("from-worker"), buffer("{}"));
  });
  worker.join();
  expect(on_worker == nullptr && logged_containing("unknown per_route_config_name 'from-worker'"),
         "a hook called on another thread runs and reports");

  std::printf("%s\n", failures == 0 ? "PASS" : "FAILED");
  return failures == 0 ? 0 : 1;
}
