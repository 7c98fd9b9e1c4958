#include "sluice_crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

int sluice_crypto_sha256(const uint8_t *data, size_t length, uint8_t *out) {
    unsigned int written = 0;
    static const uint8_t empty = 0;
    return EVP_Digest(data ? data : &empty, length, out, &written, EVP_sha256(), NULL) == 1 && written == 32;
}

int sluice_crypto_hmac_sha256(const uint8_t *key, size_t key_length, const uint8_t *message, size_t message_length,
                              uint8_t *out) {
    static const uint8_t empty = 0;
    unsigned int written = 0;
    if (key_length > 0x7fffffff) return 0;
    return HMAC(EVP_sha256(), key ? key : &empty, (int)key_length, message ? message : &empty, message_length, out,
                &written) != NULL && written == 32;
}
