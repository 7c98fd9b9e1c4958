#!/usr/bin/env python3
"""Splits `perf script -F ip,sym,dso` call stacks of the proxy Envoy by where the module's time goes.

Reads stacks on stdin (leaf first, as perf prints them) and prints µs per request: each sample is
worth (proxy CPU per request) / (samples), so the figures add up to the CPU per request measured
during the profile. Three views of the samples that have a `libsluice.so` frame:
- by hook: the outermost module frame (`envoy_dynamic_module_on_http_filter_*`);
- by callback: the Envoy function the innermost module frame called (an exported
  `envoy_dynamic_module_callback_*`, malloc, ...), with that module function;
- our own code: samples whose leaf is in `libsluice.so`, by leaf and inclusive by function.
"""
from __future__ import annotations

import argparse
import collections
import re
import sys

FRAME = re.compile(r"^\s*[0-9a-f]+\s+(.*) \((.*)\)$")
MODULE = "libsluice"


def read_stacks(lines):
    stack: list[tuple[str, str]] = []
    for line in lines:
        if not line.strip():
            if stack:
                yield stack
            stack = []
            continue
        match = FRAME.match(line)
        if match:
            stack.append((match.group(1), match.group(2)))
    if stack:
        yield stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-request", type=float, required=True, help="proxy CPU µs per request during the profile")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()

    total = 0
    hooks: collections.Counter[str] = collections.Counter()
    callbacks: collections.Counter[str] = collections.Counter()
    own_leaf: collections.Counter[str] = collections.Counter()
    own_inclusive: collections.Counter[str] = collections.Counter()
    for stack in read_stacks(sys.stdin):
        total += 1
        in_module = [index for index, (_, dso) in enumerate(stack) if MODULE in dso]
        if not in_module:
            continue
        innermost = in_module[0]
        hooks[stack[in_module[-1]][0]] += 1
        if innermost > 0:
            callbacks[f"{stack[innermost - 1][0]}  <-  {stack[innermost][0][:90]}"] += 1
        else:
            own_leaf[stack[0][0]] += 1
            for name in {stack[index][0] for index in in_module}:
                own_inclusive[name] += 1
    if total == 0:
        sys.exit("profile_hooks: no samples on stdin")
    scale = args.per_request / total

    def table(title: str, counts: collections.Counter[str], top: int, additive: bool = True) -> None:
        heading = f"{sum(counts.values()) * scale:.2f} µs per request" if additive else "nested, figures overlap"
        print(f"\n{title}: {heading}")
        for name, count in counts.most_common(top):
            print(f"  {count * scale:6.2f}  {name[:160]}")

    table("module hooks, with the callbacks they make", hooks, 10)
    table("Envoy callbacks (and libc) made from the module  <-  the module function that called", callbacks, args.top)
    table("our own code, by leaf function", own_leaf, args.top)
    table("our own code, inclusive", own_inclusive, args.top, additive=False)


if __name__ == "__main__":
    main()
