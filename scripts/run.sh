#!/usr/bin/env bash
# The run command: builds chat-server in release mode and starts it on PORT (default 3000).
# Arguments and environment variables are passed through (see README, "Configuration").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

swift build -c release --product chat-server
exec "$(swift build -c release --show-bin-path)/chat-server" "$@"
