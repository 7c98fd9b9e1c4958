#!/usr/bin/env bash
# :static_symbols_test — what :sluice_static defines and needs, checked with nm:
#   1. it defines globally only `sluice_envoy_dynamic_module_on_*`, and exactly the hooks
#      libsluice.so exports (same set, prefixed);
#   2. it references no C++ standard library (libstdc++ or libc++), OpenSSL/BoringSSL, Swift
#      runtime, nghttp2 or allocator symbol: those live privately inside the archive, so none can
#      bind to Envoy's copies. What remains undefined is glibc, libm, libgcc/the unwinder, and
#      Envoy's callbacks.
#
#   static_symbols_test.sh <libsluice_static.a> <libsluice.so>
set -euo pipefail
archive="$1" module_so="$2"
failures=0
fail() { echo "static_symbols_test: FAIL: $*" >&2; failures=$((failures + 1)); }

defined="$(nm --defined-only -g "$archive" | awk 'NF == 3 { print $3 }' | sort)"
[ -n "$defined" ] || fail "the archive defines no global symbol"
not_hooks="$(printf '%s\n' "$defined" | grep -v '^sluice_envoy_dynamic_module_on_' || true)"
[ -z "$not_hooks" ] || fail "global symbols besides the prefixed hooks: $(echo "$not_hooks" | head -10 | tr '\n' ' ')"

exported="$(nm -D --defined-only "$module_so" | awk '{ print $3 }' | grep '^envoy_dynamic_module_on_' | sed 's/^/sluice_/' | sort)"
if [ "$defined" = "$exported" ]; then
    echo "static_symbols_test: $(echo "$defined" | wc -l) global definitions, all sluice_envoy_dynamic_module_on_*, the same hooks libsluice.so exports"
else
    fail "the archive's global definitions differ from libsluice.so's hooks: $(diff <(echo "$defined") <(echo "$exported") | head -10 | tr '\n' ' ')"
fi

# Strong undefined references (weak ones, such as libstdc++'s optional _ITM_ hooks, bind to nothing).
undefined="$(nm -u "$archive" | awk '$1 == "U" { print $2 }' | sort -u)"
forbidden="$(printf '%s\n' "$undefined" | grep -E '^(_Z|__cxa_(throw|allocate|begin|end|guard|demangle)|__gxx_personality|swift_|\$s|(EVP|HMAC|SHA[0-9]*|OPENSSL|CRYPTO|ERR|BIO|SSL)_|HMAC$|nghttp2_|je_|tc_)' || true)"
if [ -z "$forbidden" ]; then
    callbacks="$(printf '%s\n' "$undefined" | grep -c '^envoy_dynamic_module_callback_' || true)"
    others="$(printf '%s\n' "$undefined" | grep -vc '^envoy_dynamic_module_callback_' || true)"
    echo "static_symbols_test: undefined: $callbacks Envoy callbacks, $others C library/libgcc symbols (none from a C++ library, OpenSSL or the Swift runtime)"
else
    fail "undefined references that would bind to Envoy's C++ library, TLS library or allocator: $(echo "$forbidden" | head -20 | tr '\n' ' ')"
fi

[ "$failures" -eq 0 ] || exit 1
echo "static_symbols_test: PASS"
