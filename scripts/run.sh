#!/usr/bin/env bash
# The run command: builds chat-server (scripts/build.sh) and starts it on PORT (default
# 3000), storing messages in data/chat.sqlite3 unless DATABASE_URL names a MySQL/MariaDB
# server. Arguments go to chat-server (see README, "Configuration").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/build.sh"
exec "$(swift build -c release --show-bin-path)/chat-server" "$@"
