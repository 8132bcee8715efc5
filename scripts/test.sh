#!/usr/bin/env bash
# The test command: unit and EmbeddedChannel tests (swift test), then interop tests of
# the running servers with the real clients (pytest). Installs what it needs on the way.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

ensure_apt python3-venv chromium chromium-driver
ensure_client_bundle
ensure_test_venv

echo "==> swift build (debug)"
swift build --build-tests

echo "==> swift test"
swift test --skip-build

echo "==> interop tests"
CLIENT_BUNDLE="$CLIENT_BUNDLE" SWIFT_BIN_DIR="$(swift build --show-bin-path)" "$ROOT/.venv-test/bin/python" -m pytest -q -p no:cacheprovider Tests/interop "$@"
