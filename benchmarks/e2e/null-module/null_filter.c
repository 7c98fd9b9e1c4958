// A dynamic-module HTTP filter that does nothing of its own, for measuring what Envoy 1.40 charges
// for a module of Sluice's shape: `compare.sh --null MODE` puts it where the `sluice` filter (and
// `sluice_upstream`) would be. See benchmarks/README.md, "The shape floor: a null module".
//
// `filter_name` picks the behaviour:
// - `pass`: every hook returns Continue (a dynamic-module filter in the chain);
// - `buffer`: the downstream shape of `sluice`: request headers held (StopIteration) when a body
//   follows, the body buffered (StopIterationAndBuffer) to its end, then one request header set
//   (`x-null-route: r`), the route cache cleared (Envoy matches the route again) and Continue;
//   response hooks Continue;
// - `upstream`: the shape of `sluice_upstream` without translation, for a cluster's upstream filter
//   chain: request headers write `:path` back to its own value (one header write), Continue.
//
// So that a check can see the filter is in the path without adding work to the measured requests
// (POSTs with a body), a request without a body gets a local reply naming the filter:
// `x-null-filter: pass|buffer` from the downstream filters for path /__null/filter, and
// `x-null-filter: upstream` from the upstream filter for any request without a body that reaches it.
// Any other request without a body passes.
//
// The filter keeps no per-stream state: `filter_new` returns the config (a static object).
#include <stdlib.h>
#include <string.h>

#include "envoy_dynamic_modules_abi.h"

typedef enum null_behaviour { null_pass, null_buffer, null_upstream } null_behaviour;

typedef struct null_config {
  null_behaviour behaviour;
  const char *name;
} null_config;

static const null_config configs[] = {
    {null_pass, "pass"},
    {null_buffer, "buffer"},
    {null_upstream, "upstream"},
};

static const char probe_path[] = "/__null/filter";

static envoy_dynamic_module_type_module_buffer text(const char *string) {
  envoy_dynamic_module_type_module_buffer buffer = {string, strlen(string)};
  return buffer;
}

static const null_config *config_of(envoy_dynamic_module_type_http_filter_module_ptr filter) {
  return (const null_config *)filter;
}

// The local reply that names the filter: 200, header `x-null-filter: <name>`, empty body.
static void answer_probe(envoy_dynamic_module_type_http_filter_envoy_ptr envoy_filter, const null_config *config) {
  envoy_dynamic_module_type_module_http_header header = {"x-null-filter", strlen("x-null-filter"), config->name,
                                                         strlen(config->name)};
  envoy_dynamic_module_type_module_buffer empty = {"", 0};
  envoy_dynamic_module_callback_http_send_response(envoy_filter, 200, &header, 1, empty, text("null_filter_probe"));
}

static bool is_probe_path(envoy_dynamic_module_type_http_filter_envoy_ptr envoy_filter) {
  envoy_dynamic_module_type_envoy_buffer path = {NULL, 0};
  if (!envoy_dynamic_module_callback_http_get_header(envoy_filter, envoy_dynamic_module_type_http_header_type_RequestHeader,
                                                     text(":path"), &path, 0, NULL)) {
    return false;
  }
  return path.ptr != NULL && path.length == sizeof(probe_path) - 1 && memcmp(path.ptr, probe_path, path.length) == 0;
}

// Writes :path back to its own value. The value is copied first: Envoy's view of it is only valid
// until a mutating callback runs, and set_header is one.
static void rewrite_path(envoy_dynamic_module_type_http_filter_envoy_ptr envoy_filter) {
  envoy_dynamic_module_type_envoy_buffer path = {NULL, 0};
  if (!envoy_dynamic_module_callback_http_get_header(envoy_filter, envoy_dynamic_module_type_http_header_type_RequestHeader,
                                                     text(":path"), &path, 0, NULL) ||
      path.ptr == NULL) {
    return;
  }
  char local[512];
  char *copy = path.length <= sizeof(local) ? local : malloc(path.length);
  if (copy == NULL) {
    return;
  }
  memcpy(copy, path.ptr, path.length);
  envoy_dynamic_module_type_module_buffer value = {copy, path.length};
  envoy_dynamic_module_callback_http_set_header(envoy_filter, envoy_dynamic_module_type_http_header_type_RequestHeader,
                                                text(":path"), value);
  if (copy != local) {
    free(copy);
  }
}

// MARK: - Program and config

envoy_dynamic_module_type_abi_version_module_ptr envoy_dynamic_module_on_program_init(void) {
  return SLUICE_ENVOY_ABI_VERSION;
}

envoy_dynamic_module_type_http_filter_config_module_ptr envoy_dynamic_module_on_http_filter_config_new(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr,
    envoy_dynamic_module_type_envoy_buffer name, envoy_dynamic_module_type_envoy_buffer config) {
  (void)filter_config_envoy_ptr;
  (void)config;
  for (size_t index = 0; index < sizeof(configs) / sizeof(configs[0]); index++) {
    if (name.length == strlen(configs[index].name) && memcmp(name.ptr, configs[index].name, name.length) == 0) {
      return &configs[index];
    }
  }
  // An unknown filter_name: NULL makes Envoy reject the configuration.
  return NULL;
}

void envoy_dynamic_module_on_http_filter_config_destroy(envoy_dynamic_module_type_http_filter_config_module_ptr filter_config_ptr) {
  (void)filter_config_ptr;
}

envoy_dynamic_module_type_http_filter_module_ptr envoy_dynamic_module_on_http_filter_new(
    envoy_dynamic_module_type_http_filter_config_module_ptr filter_config_ptr,
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr) {
  (void)filter_envoy_ptr;
  return filter_config_ptr;
}

void envoy_dynamic_module_on_http_filter_destroy(envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr) {
  (void)filter_module_ptr;
}

// MARK: - Request

envoy_dynamic_module_type_on_http_filter_request_headers_status envoy_dynamic_module_on_http_filter_request_headers(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, bool end_of_stream) {
  const null_config *config = config_of(filter_module_ptr);
  if (end_of_stream) {
    // No body: never a measured request. The probe (see the top of the file).
    if (config->behaviour == null_upstream || is_probe_path(filter_envoy_ptr)) {
      answer_probe(filter_envoy_ptr, config);
      return envoy_dynamic_module_type_on_http_filter_request_headers_status_StopIteration;
    }
    return envoy_dynamic_module_type_on_http_filter_request_headers_status_Continue;
  }
  switch (config->behaviour) {
  case null_buffer:
    // Hold the headers until the whole body is there, as `sluice` does to read the model.
    return envoy_dynamic_module_type_on_http_filter_request_headers_status_StopIteration;
  case null_upstream:
    rewrite_path(filter_envoy_ptr);
    return envoy_dynamic_module_type_on_http_filter_request_headers_status_Continue;
  case null_pass:
    break;
  }
  return envoy_dynamic_module_type_on_http_filter_request_headers_status_Continue;
}

envoy_dynamic_module_type_on_http_filter_request_body_status envoy_dynamic_module_on_http_filter_request_body(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, bool end_of_stream) {
  if (config_of(filter_module_ptr)->behaviour != null_buffer) {
    return envoy_dynamic_module_type_on_http_filter_request_body_status_Continue;
  }
  if (!end_of_stream) {
    return envoy_dynamic_module_type_on_http_filter_request_body_status_StopIterationAndBuffer;
  }
  // The whole body is here: pick the route again on a header, as `sluice` does with x-sluice-route.
  envoy_dynamic_module_callback_http_set_header(filter_envoy_ptr, envoy_dynamic_module_type_http_header_type_RequestHeader,
                                                text("x-null-route"), text("r"));
  envoy_dynamic_module_callback_http_clear_route_cache(filter_envoy_ptr);
  return envoy_dynamic_module_type_on_http_filter_request_body_status_Continue;
}

envoy_dynamic_module_type_on_http_filter_request_trailers_status envoy_dynamic_module_on_http_filter_request_trailers(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr) {
  (void)filter_envoy_ptr;
  (void)filter_module_ptr;
  return envoy_dynamic_module_type_on_http_filter_request_trailers_status_Continue;
}

// MARK: - Response

envoy_dynamic_module_type_on_http_filter_response_headers_status envoy_dynamic_module_on_http_filter_response_headers(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, bool end_of_stream) {
  (void)filter_envoy_ptr;
  (void)filter_module_ptr;
  (void)end_of_stream;
  return envoy_dynamic_module_type_on_http_filter_response_headers_status_Continue;
}

envoy_dynamic_module_type_on_http_filter_response_body_status envoy_dynamic_module_on_http_filter_response_body(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, bool end_of_stream) {
  (void)filter_envoy_ptr;
  (void)filter_module_ptr;
  (void)end_of_stream;
  return envoy_dynamic_module_type_on_http_filter_response_body_status_Continue;
}

envoy_dynamic_module_type_on_http_filter_response_trailers_status envoy_dynamic_module_on_http_filter_response_trailers(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr) {
  (void)filter_envoy_ptr;
  (void)filter_module_ptr;
  return envoy_dynamic_module_type_on_http_filter_response_trailers_status_Continue;
}

void envoy_dynamic_module_on_http_filter_stream_complete(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                         envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr) {
  (void)filter_envoy_ptr;
  (void)filter_module_ptr;
}

// MARK: - Hooks Envoy 1.40 requires that this filter never needs (no callouts, streams, schedulers)

void envoy_dynamic_module_on_http_filter_http_callout_done(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, uint64_t callout_id,
    envoy_dynamic_module_type_http_callout_result result, envoy_dynamic_module_type_envoy_http_header *headers,
    size_t headers_size, envoy_dynamic_module_type_envoy_buffer *body_chunks, size_t body_chunks_size) {
  (void)filter_envoy_ptr;
  (void)filter_module_ptr;
  (void)callout_id;
  (void)result;
  (void)headers;
  (void)headers_size;
  (void)body_chunks;
  (void)body_chunks_size;
}

void envoy_dynamic_module_on_http_filter_http_stream_headers(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, uint64_t stream_id,
    envoy_dynamic_module_type_envoy_http_header *headers, size_t headers_size, bool end_stream) {
  (void)filter_envoy_ptr;
  (void)filter_module_ptr;
  (void)stream_id;
  (void)headers;
  (void)headers_size;
  (void)end_stream;
}

void envoy_dynamic_module_on_http_filter_http_stream_data(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, uint64_t stream_id,
    const envoy_dynamic_module_type_envoy_buffer *data, size_t data_count, bool end_stream) {
  (void)filter_envoy_ptr;
  (void)filter_module_ptr;
  (void)stream_id;
  (void)data;
  (void)data_count;
  (void)end_stream;
}

void envoy_dynamic_module_on_http_filter_http_stream_trailers(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, uint64_t stream_id,
    envoy_dynamic_module_type_envoy_http_header *trailers, size_t trailers_size) {
  (void)filter_envoy_ptr;
  (void)filter_module_ptr;
  (void)stream_id;
  (void)trailers;
  (void)trailers_size;
}

void envoy_dynamic_module_on_http_filter_http_stream_complete(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, uint64_t stream_id) {
  (void)filter_envoy_ptr;
  (void)filter_module_ptr;
  (void)stream_id;
}

void envoy_dynamic_module_on_http_filter_http_stream_reset(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, uint64_t stream_id,
    envoy_dynamic_module_type_http_stream_reset_reason reason) {
  (void)filter_envoy_ptr;
  (void)filter_module_ptr;
  (void)stream_id;
  (void)reason;
}

void envoy_dynamic_module_on_http_filter_scheduled(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                   envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr,
                                                   uint64_t event_id) {
  (void)filter_envoy_ptr;
  (void)filter_module_ptr;
  (void)event_id;
}

void envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr) {
  (void)filter_envoy_ptr;
  (void)filter_module_ptr;
}

void envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr) {
  (void)filter_envoy_ptr;
  (void)filter_module_ptr;
}
