#!/bin/sh
echo "bazel-shim: coverage tools are not available in this offline workspace" >&2
exit 1
