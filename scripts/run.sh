#!/usr/bin/env bash
# The run command: builds chat-server in release mode and starts it on PORT (default 3000),
# storing messages in data/chat.sqlite3 unless DATABASE_URL names a MySQL/MariaDB server.
# Arguments and environment variables are passed through (see README, "Configuration").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

ensure_apt libmariadb-dev libsqlite3-dev pkg-config
ensure_client_bundle || echo "(no local socket.io.min.js: the page will load it from the official CDN)"
swift build -c release --product chat-server
exec "$(swift build -c release --show-bin-path)/chat-server" "$@"
