#!/usr/bin/env bash
# Installs the Debian packages building and testing Sluice needs, only if something is missing:
#   libssl-dev  OpenSSL libcrypto headers (the module signs AWS requests with it)
#   binutils    nm / readelf (the ABI checks of the test suite)
set -euo pipefail
missing=()
[ -f /usr/include/openssl/hmac.h ] || missing+=(libssl-dev)
{ command -v nm && command -v readelf; } >/dev/null 2>&1 || missing+=(binutils)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "install-system-packages: please install: ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
