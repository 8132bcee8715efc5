#!/usr/bin/env bash
# The test command. Without a stage, every stage in order: the Swift tests (unit, model,
# store and in-process harness tests, on SQLite and a throwaway MariaDB), the documentation
# of the seven libraries (DocC, failing on any warning or undocumented symbol), the fuzz targets
# (48 s each; FUZZ_SECONDS to change), then interop tests of the running servers with the
# real clients. One stage on its own:
#   scripts/test.sh unit       swift test
#   scripts/test.sh docs       swift package generate-documentation --warnings-as-errors, and
#                              scripts/doc-coverage.py (every public symbol documented)
#   scripts/test.sh fuzz       scripts/fuzz.sh
#   scripts/test.sh interop    pytest (extra arguments go to pytest: -k upgrade, -m browser;
#                              the areas are in Tests/interop/pytest.ini, docs/testing.md)
# Installs what it needs on the way; stops what it starts.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

STAGES=(unit docs fuzz interop)
case "${1:-}" in
    unit | docs | fuzz | interop)
        STAGES=("$1")
        shift
        ;;
esac
wants() { [[ " ${STAGES[*]} " == *" $1 "* ]]; }
# How long each step took, printed at the end (CI has 30 minutes for all of them).
TIMES=()
LAST=$SECONDS
took() {
    TIMES+=("$1 $((SECONDS - LAST))s")
    LAST=$SECONDS
}

ensure_apt libmariadb-dev libsqlite3-dev zlib1g-dev pkg-config
if wants unit || wants interop; then
    ensure_apt mariadb-server mariadb-client redis-server redis-sentinel
fi
if wants interop; then
    ensure_apt python3-venv chromium chromium-driver docker-compose haproxy redis-server redis-sentinel
    ensure_client_bundle
    ensure_test_venv
fi

if wants unit || wants interop; then
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
    # Every target declares what it imports (SwiftPM on Linux does not check it).
    python3 "$ROOT/scripts/check-imports.py"
fi
took setup+build

if wants unit; then
    echo "==> swift test"
    "$ROOT/scripts/throwaway-mariadb.sh" sql "$MARIADB_DIR" "CREATE DATABASE chat_swift_tests"
    TEST_DATABASE_URL="$TEST_DATABASE_URL_BASE/chat_swift_tests" swift test --skip-build
    took unit
fi

if wants docs; then
    echo "==> documentation (DocC)"
    for target in EngineIO SocketIO Redis SocketIORedis SocketIOHummingbird SocketIOVapor SocketIOTesting SocketIOAdmin; do
        swift package --disable-sandbox generate-documentation --target "$target" --warnings-as-errors
    done
    # Every public symbol of the libraries has a doc comment.
    python3 "$ROOT/scripts/doc-coverage.py" .build/*/extracted-symbols/*/{EngineIO,SocketIO,Redis,SocketIORedis,SocketIOHummingbird,SocketIOVapor,SocketIOTesting,SocketIOAdmin}/*.symbols.json
    took docs
fi

RELEASE_BUILD=""
if wants fuzz && wants interop; then
    # The README's run command builds chat-server in release mode, and the interop tests run
    # it as written. A fuzz target keeps one core busy; the build takes the other meanwhile
    # (scripts/build.sh, as run.sh calls it), so the tests find it built.
    mkdir -p "$ROOT/.test-artifacts"
    echo "==> release build of chat-server beside the fuzzing (.test-artifacts/release-build.log)"
    "$ROOT/scripts/build.sh" > "$ROOT/.test-artifacts/release-build.log" 2>&1 &
    RELEASE_BUILD=$!
fi

if wants fuzz; then
    echo "==> fuzzing"
    "$ROOT/scripts/fuzz.sh" "${FUZZ_SECONDS:-48}"
    took fuzz
fi

if [ -n "$RELEASE_BUILD" ]; then
    if ! wait "$RELEASE_BUILD"; then
        tail -40 "$ROOT/.test-artifacts/release-build.log"
        echo "the release build failed" >&2
        exit 1
    fi
    grep "complete!" "$ROOT/.test-artifacts/release-build.log" || true
    took "release-build(wait)"
fi

if wants interop; then
    # The test code itself: an undefined name fails here, not halfway through a run.
    "$ROOT/.venv-test/bin/python" -m pyflakes Tests/interop Tests/bench
    echo "==> interop tests"
    # Short tracebacks: a failure's report shows the clients' and servers' logs, not library sources.
    CLIENT_BUNDLE="$CLIENT_BUNDLE" SWIFT_BIN_DIR="$(swift build --show-bin-path)" \
        "$ROOT/.venv-test/bin/python" -m pytest -q --tb=short -p no:cacheprovider Tests/interop "$@"
    took interop
fi
echo "==> done in $((SECONDS / 60)) min $((SECONDS % 60)) s: ${TIMES[*]}"
