// A tiny, prefixed shim over OpenSSL's libcrypto for the hashes the module needs on the request
// path (AWS SigV4). Prefixed so nothing can collide with the BoringSSL linked into Envoy (which
// Envoy does not export anyway); `void`-free C types so Swift imports it without pointers to
// OpenSSL structs.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// SHA-256 of `data`; writes 32 bytes to `out`. Returns 1 on success, 0 on failure.
int sluice_crypto_sha256(const uint8_t *data, size_t length, uint8_t *out);

/// HMAC-SHA256 of `message` under `key`; writes 32 bytes to `out`. Returns 1 on success, 0 on failure.
int sluice_crypto_hmac_sha256(const uint8_t *key, size_t key_length, const uint8_t *message, size_t message_length,
                              uint8_t *out);

#ifdef __cplusplus
}
#endif
