#!/usr/bin/env python3
"""Every module a target imports is declared in Package.swift: one of its target
dependencies, or a module of one of its product dependencies (or the toolchain's own).

A module that builds only because another dependency happens to bring it in breaks the day
that dependency changes; SwiftPM on Linux does not check this (its
--explicit-target-dependency-import-check needs explicit module builds), so this does.
Reads the manifests with `swift package dump-package` (this package's and its resolved
checkouts': nothing is fetched) and the imports from the sources. Exits 1 on a finding."""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The toolchain's modules: always there, never declared.
TOOLCHAIN = {
    "Swift", "Foundation", "FoundationEssentials", "Dispatch", "Glibc", "Musl", "Darwin", "WinSDK",
    "XCTest", "Testing", "_Concurrency", "Synchronization", "os",
}
IMPORT = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?import\s+(?:(?:struct|class|enum|protocol|func|var|let|typealias)\s+)?([A-Za-z_][A-Za-z0-9_]*)", re.M)


def dump(path: Path) -> dict:
    out = subprocess.run(["swift", "package", "dump-package", "--package-path", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> int:
    manifest = dump(ROOT)
    products: dict[tuple[str, str], list[str]] = {}  # (package, product) → its modules
    checkouts = ROOT / ".build" / "checkouts"
    for dependency in manifest["dependencies"]:
        identity = dependency["sourceControl"][0]["identity"]
        directory = next((d for d in checkouts.iterdir() if d.name.lower() == identity), None) if checkouts.exists() else None
        if directory is None:
            print(f"check-imports: {identity} is not resolved: run swift package resolve first", file=sys.stderr)
            return 2
        for product in dump(directory)["products"]:
            products[(identity, product["name"])] = product["targets"]

    findings = []
    for target in manifest["targets"]:
        name = target["name"]
        allowed = {name} | TOOLCHAIN
        for dependency in target["dependencies"]:
            if "byName" in dependency:
                allowed.add(dependency["byName"][0])
            elif "target" in dependency:
                allowed.add(dependency["target"][0])
            elif "product" in dependency:
                product, package = dependency["product"][0], dependency["product"][1]
                allowed.update(products.get((package.lower(), product), [product]))
        directory = ROOT / (target.get("path") or ("Tests" if target["type"] == "test" else "Sources") + "/" + name)
        for source in sorted(directory.rglob("*.swift")):
            for module in IMPORT.findall(source.read_text()):
                if module not in allowed:
                    findings.append(f"{source.relative_to(ROOT)}: imports {module}, which target {name} does not declare")
    for finding in findings:
        print(finding, file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
