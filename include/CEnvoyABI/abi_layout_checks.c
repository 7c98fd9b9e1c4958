// Compile-time checks that our declarations have the layouts Envoy 1.40 (LP64) passes by value.
// This file exists because SwiftPM needs a source file in a C target; the asserts make it useful.
#include "envoy_dynamic_modules_abi.h"

_Static_assert(sizeof(envoy_dynamic_module_type_envoy_buffer) == 16, "envoy_buffer is two words");
_Static_assert(sizeof(envoy_dynamic_module_type_module_buffer) == 16, "module_buffer is two words");
_Static_assert(sizeof(envoy_dynamic_module_type_envoy_http_header) == 32, "envoy_http_header is four words");
_Static_assert(sizeof(envoy_dynamic_module_type_module_http_header) == 32, "module_http_header is four words");
_Static_assert(sizeof(envoy_dynamic_module_type_module_key_value_pair) == 32, "key_value_pair is four words");
_Static_assert(sizeof(envoy_dynamic_module_type_http_header_type) == 4, "C enums are int-sized");
_Static_assert(sizeof(envoy_dynamic_module_type_on_http_filter_request_headers_status) == 4, "status enums are int-sized");
