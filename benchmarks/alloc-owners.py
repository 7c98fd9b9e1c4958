#!/usr/bin/env python3
"""Splits a benchmark's allocations by the Sluice target that made them.

The `Filter.*` benchmarks drive the module through the fake Envoy, whose in-memory header maps
and body buffers allocate far more than the module does; `mallocCountTotal` alone cannot tell
the two apart. This reads the folded allocation stacks package-benchmark exports and charges
each stack to the innermost frame that has a source path under `Sources/<Target>/`, or to the
fake host when an Envoy callback (`envoy_dynamic_module_callback_*`) comes first.

    swift package --disable-sandbox benchmark run --filter '^Filter.request.forwarded$' \\
        --export-allocation-stacks --allocation-stacks-export-path stdout --no-progress 2>/dev/null \\
        | python3 alloc-owners.py --per 1000

--per: iterations the stacks cover, to print allocations per request: scalingFactor (1000) times
the samples recorded (the plugin's `--allocation-stacks` report prints them; one here). The
printed total should equal the benchmark's own `Malloc (total)`.

Allocations made inside a fake-host callback the module called (a header lookup copying bytes)
are charged to SluiceTestHost: real Envoy hands out pointers there and does not allocate.
"""
from __future__ import annotations

import argparse
import collections
import re
import sys

CALLBACK = "envoy_dynamic_module_callback_"
SOURCE = re.compile(r" at \S*/(Sources/(\w+)|Benchmarks/\w+)/\S*?([\w+.-]+\.swift:\d+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=argparse.FileType(), default=sys.stdin)
    parser.add_argument("--per", type=float, default=1.0, help="divide counts by this many iterations")
    parser.add_argument("--sites", action="store_true", help="also list allocation sites per target")
    args = parser.parse_args()

    by_target: collections.Counter[str] = collections.Counter()
    by_site: collections.Counter[tuple[str, str]] = collections.Counter()
    for line in args.file:
        stack, _, count = line.rstrip().rpartition(" ")
        if ";" not in stack or not count.isdigit():
            continue
        target, site = "(benchmark or runtime)", ""
        for frame in reversed(stack.split(";")):
            # Envoy's side of the ABI: in the benchmark binary these are the fake's callbacks,
            # often specialised into frames that have lost their source path.
            if frame.startswith(CALLBACK):
                target, site = "SluiceTestHost", frame.split(" in ")[0][:70]
                break
            match = SOURCE.search(frame)
            if match:
                target = match.group(2) or "(benchmark)"
                site = f"{frame.split(' at ')[0][:70]} @ {match.group(3)}"
                break
        by_target[target] += int(count)
        by_site[(target, site)] += int(count)

    total = sum(by_target.values())
    if not total:
        sys.exit("alloc-owners: no folded stacks in the input")
    for target, count in by_target.most_common():
        print(f"{count / args.per:10.1f}  {target}")
    print(f"{total / args.per:10.1f}  total")
    if args.sites:
        for (target, site), count in sorted(by_site.items(), key=lambda item: (item[0][0], -item[1])):
            print(f"{count / args.per:10.1f}  {target:<16} {site}")


if __name__ == "__main__":
    main()
