#!/usr/bin/env python3
"""Lists the public symbols declared without a doc comment, from the symbol graphs that
`swift package generate-documentation` extracts, and fails if there is any.

Left out, as DocC documents them itself: compiler-synthesized members (`!=`, `hashValue`),
members that implement a protocol requirement or come from a protocol extension (they
show the protocol's documentation), and symbols from other modules.

usage: scripts/doc-coverage.py SYMBOL-GRAPH.json...
"""
import json
import sys


def undocumented(path):
    graph = json.load(open(path))
    inherited = {r["source"] for r in graph["relationships"] if "sourceOrigin" in r}
    for symbol in graph["symbols"]:
        identifier = symbol["identifier"]["precise"]
        if "docComment" in symbol or "::SYNTHESIZED::" in identifier or identifier in inherited:
            continue
        if "location" not in symbol or symbol.get("accessLevel") not in ("public", "open"):
            continue
        location = symbol["location"]
        file = location["uri"].split("/Sources/")[-1]
        yield f"Sources/{file}:{location['position']['line'] + 1}: {'.'.join(symbol['pathComponents'])}"


missing = sorted(line for path in sys.argv[1:] for line in undocumented(path))
for line in missing:
    print(line)
print(f"{len(missing)} public symbols without documentation in {len(sys.argv) - 1} symbol graphs", file=sys.stderr)
sys.exit(1 if missing or len(sys.argv) < 2 else 0)
