#!/usr/bin/env bash
# Builds chat-server in release mode, installing what the build needs first (the MariaDB
# and SQLite client libraries, zlib) and fetching the official browser client it serves.
# Extra arguments go to `swift build` (the Dockerfile adds --static-swift-stdlib).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

ensure_apt libmariadb-dev libsqlite3-dev zlib1g-dev pkg-config
ensure_client_bundle || echo "(no local socket.io.min.js: the page will load it from the official CDN)"
mkdir -p "$ROOT/.cache"
swift build -c release --product chat-server "$@"
