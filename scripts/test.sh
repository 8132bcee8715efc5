#!/usr/bin/env bash
# The test command: unit, store and EmbeddedChannel tests (swift test), the fuzz targets
# for 60 s each (scripts/fuzz.sh; FUZZ_SECONDS to change), then interop tests of the running
# servers with the real clients (pytest). Installs what it needs on the way.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

ensure_apt python3-venv chromium chromium-driver mariadb-server mariadb-client libmariadb-dev libsqlite3-dev pkg-config docker-compose
ensure_client_bundle
ensure_test_venv

# A throwaway MariaDB for the store and end-to-end tests, stopped and removed on exit.
MARIADB_DIR="$(mktemp -d /tmp/chat-test-mariadb.XXXXXX)"
MARIADB_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cleanup() {
    "$ROOT/scripts/throwaway-mariadb.sh" stop "$MARIADB_DIR" || true
    rm -rf "$MARIADB_DIR"
}
trap cleanup EXIT
echo "==> starting a throwaway MariaDB on port $MARIADB_PORT"
"$ROOT/scripts/throwaway-mariadb.sh" start "$MARIADB_DIR" "$MARIADB_PORT"
"$ROOT/scripts/throwaway-mariadb.sh" sql "$MARIADB_DIR" \
    "CREATE USER 'chat'@'127.0.0.1' IDENTIFIED BY 'chatpw'; GRANT ALL ON \`chat\\_%\`.* TO 'chat'@'127.0.0.1';"
export MARIADB_DIR MARIADB_PORT
export TEST_DATABASE_URL_BASE="mysql://chat:chatpw@127.0.0.1:$MARIADB_PORT"

echo "==> swift build (debug)"
swift build --build-tests

echo "==> swift test"
"$ROOT/scripts/throwaway-mariadb.sh" sql "$MARIADB_DIR" "CREATE DATABASE chat_swift_tests"
TEST_DATABASE_URL="$TEST_DATABASE_URL_BASE/chat_swift_tests" swift test --skip-build

echo "==> fuzzing"
"$ROOT/scripts/fuzz.sh" "${FUZZ_SECONDS:-60}"

echo "==> interop tests"
CLIENT_BUNDLE="$CLIENT_BUNDLE" SWIFT_BIN_DIR="$(swift build --show-bin-path)" "$ROOT/.venv-test/bin/python" -m pytest -q -p no:cacheprovider Tests/interop "$@"
