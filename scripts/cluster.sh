#!/usr/bin/env bash
# The cluster without Docker: Debian's redis-server, three chat-server nodes (ports
# 3001-3003) and Debian's haproxy in front of them on PORT (default 3000), in round robin
# without a cookie (any node serves any session's requests). Messages go to DATABASE_URL
# (MySQL/MariaDB) when set; otherwise a throwaway MariaDB is started under .cluster/ (the
# embedded SQLite store is one process's and cannot be shared). Ctrl-C stops everything it started.
#   scripts/cluster.sh                 # then open http://localhost:3000
#   NODES=5 scripts/cluster.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source "$ROOT/scripts/common.sh"

PORT="${PORT:-3000}"
NODES="${NODES:-3}"
STATE="$ROOT/.cluster"
ensure_apt redis-server haproxy
[ -z "${DATABASE_URL:-}" ] && ensure_apt mariadb-server mariadb-client
"$ROOT/scripts/build.sh"
BIN="$(swift build -c release --show-bin-path)"

rm -rf "$STATE"
mkdir -p "$STATE"
PIDS=()
stop() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${MARIADB_DIR:-}" ]; then "$ROOT/scripts/throwaway-mariadb.sh" stop "$MARIADB_DIR" || true; fi
}
trap stop EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if [ -z "${DATABASE_URL:-}" ]; then
    MARIADB_DIR="$STATE/mariadb"
    MARIADB_PORT="$(free_port)"
    echo "==> a throwaway MariaDB on port $MARIADB_PORT"
    "$ROOT/scripts/throwaway-mariadb.sh" start "$MARIADB_DIR" "$MARIADB_PORT"
    "$ROOT/scripts/throwaway-mariadb.sh" sql "$MARIADB_DIR" \
        "CREATE DATABASE chat CHARACTER SET utf8mb4; CREATE USER 'chat'@'127.0.0.1' IDENTIFIED BY 'chatpw'; GRANT ALL ON chat.* TO 'chat'@'127.0.0.1';"
    DATABASE_URL="mysql://chat:chatpw@127.0.0.1:$MARIADB_PORT/chat"
fi

REDIS_PORT="$(free_port)"
echo "==> redis-server on port $REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$STATE" --logfile "$STATE/redis.log" &
PIDS+=($!)

SERVERS=""
for index in $(seq 1 "$NODES"); do
    node_port=$((PORT + index))
    echo "==> chat node $index on port $node_port"
    DATABASE_URL="$DATABASE_URL" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" PORT="$node_port" HOST=127.0.0.1 \
        "$BIN/chat-server" > "$STATE/chat$index.log" 2>&1 &
    PIDS+=($!)
    SERVERS+="    server chat$index 127.0.0.1:$node_port check inter 1s"$'\n'
done

# HAProxy holds two descriptors per connection (the client's and the node's) and wants them
# all at start: ask for what this process's open-file limit allows, or it refuses to start.
NOFILE="$(ulimit -n)"
[ "$NOFILE" = unlimited ] && NOFILE=1048576
MAXCONN=$(((NOFILE - 200) / 2))
cat > "$STATE/haproxy.cfg" <<EOF
global
    maxconn $MAXCONN
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend chat
    bind :$PORT
    default_backend nodes
backend nodes
    balance roundrobin
    option redispatch
    retries 2
    option httpchk GET /healthz
$SERVERS
EOF
echo "==> haproxy on port $PORT: open http://localhost:$PORT (logs in $STATE)"
haproxy -f "$STATE/haproxy.cfg" &
PIDS+=($!)
wait -n "${PIDS[@]}" || true
echo "a process of the cluster ended; stopping the rest (logs in $STATE)" >&2
exit 1
