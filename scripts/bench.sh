#!/usr/bin/env bash
# The benchmark command (not part of the tests): builds in release mode, runs the load
# generator's scenarios against chat-server (SQLite and a throwaway MariaDB) and against the
# same chat on python-socketio, and writes BENCHMARKS.md. Takes about fifteen minutes.
# BENCH_QUICK=1 runs every scenario at a small size, to check the command itself.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$ROOT"

ensure_apt libmariadb-dev libsqlite3-dev zlib1g-dev pkg-config mariadb-server mariadb-client python3-venv redis-server haproxy chromium chromium-driver valgrind
ensure_client_bundle
ulimit -n 20000

echo "==> release build"
swift build -c release --static-swift-stdlib --product chat-server
swift build -c release --static-swift-stdlib --product socketio-bench
swift build -c release --product floor-broadcaster
BIN="$(swift build -c release --static-swift-stdlib --show-bin-path)"

VENV="$ROOT/.venv-bench"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
if ! cmp -s Tests/bench/requirements.txt "$VENV/.requirements"; then
    "$VENV/bin/pip" install -q --disable-pip-version-check -r Tests/bench/requirements.txt
    cp Tests/bench/requirements.txt "$VENV/.requirements"
fi

WORK="$(mktemp -d /tmp/chat-bench.XXXXXX)"
RESULTS="$WORK/results.jsonl"
SERVER_PID=""
MARIADB_DIR="$WORK/mariadb"
MARIADB_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
NODE_PIDS=()
REDIS_PID=""
HAPROXY_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    for pid in "${NODE_PIDS[@]}" $REDIS_PID $HAPROXY_PID; do kill "$pid" 2>/dev/null || true; done
    "$ROOT/scripts/throwaway-mariadb.sh" stop "$MARIADB_DIR" || true
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=3900
start_server() {  # label, then the command; the server listens on $PORT (within START_SECONDS)
    local label=$1
    shift
    PORT=$((PORT + 1))
    env PORT=$PORT HOST=127.0.0.1 "$@" >"$WORK/$label.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 $((${START_SECONDS:-20} * 10))); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), timeout=0.2)" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "$label did not start" >&2
    cat "$WORK/$label.log" >&2
    return 1
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
bench() {  # label, scenario, options...
    local label=$1 scenario=$2
    shift 2
    echo "==> $label: $scenario $*"
    "$BIN/socketio-bench" "$scenario" --port "$PORT" --server-pid "$SERVER_PID" --label "$label" "$@" | tee -a "$RESULTS"
}

if [ "${BENCH_QUICK:-}" = 1 ]; then
    IDLE_SMALL=200 IDLE_LARGE=500 IDLE_MAX=800 HOLD=6 DURATION=3 FANOUT_BIG=200 PAGE_RUNS=2 FORWARD_REQUESTS=200 REPLAY_RUNS=5
else
    IDLE_SMALL=2000 IDLE_LARGE=10000 IDLE_MAX=19000 HOLD=12 DURATION=10 FANOUT_BIG=1000 PAGE_RUNS=5 FORWARD_REQUESTS=2000 REPLAY_RUNS=100
fi
SWIFT_ENV=(DATA_DIR="$WORK/sqlite" "$BIN/chat-server")

# Idle connections, heartbeats every 5 s while they are held.
start_server swift env PING_INTERVAL=5000 PING_TIMEOUT=5000 DATA_DIR="$WORK/idle1" "$BIN/chat-server"
bench swift idle --connections "$IDLE_SMALL" --hold "$HOLD"
stop_server
start_server python env PING_INTERVAL=5000 "$VENV/bin/python" Tests/bench/python_chat_server.py
bench python-socketio idle --connections "$IDLE_SMALL" --hold "$HOLD"
stop_server
start_server swift env PING_INTERVAL=5000 PING_TIMEOUT=5000 DATA_DIR="$WORK/idle2" "$BIN/chat-server"
bench swift idle --connections "$IDLE_LARGE" --hold "$HOLD" --connect-concurrency 500
stop_server
start_server swift env PING_INTERVAL=5000 PING_TIMEOUT=5000 DATA_DIR="$WORK/idle3" "$BIN/chat-server"
bench swift idle --connections "$IDLE_MAX" --hold "$HOLD" --connect-concurrency 500
stop_server
# The same with permessage-deflate on and every client offering it, as browsers do: the
# agreement costs an idle connection no zlib state (one compressor per event loop).
start_server swift env PING_INTERVAL=5000 PING_TIMEOUT=5000 PER_MESSAGE_DEFLATE=1 DATA_DIR="$WORK/idle4" "$BIN/chat-server"
bench swift-permessage-deflate idle --connections "$IDLE_LARGE" --hold "$HOLD" --connect-concurrency 500 --offer-per-message-deflate
stop_server

# Fan-out: 200 receivers at 100 msg/s on both servers, then 1,000 receivers on ours.
start_server swift "${SWIFT_ENV[@]}"
bench swift fanout --receivers 200 --rate 100 --duration "$DURATION"
bench swift fanout --receivers "$FANOUT_BIG" --rate 100 --duration "$DURATION"
stop_server
start_server python "$VENV/bin/python" Tests/bench/python_chat_server.py
bench python-socketio fanout --receivers 200 --rate 100 --duration "$DURATION"
stop_server

# The same fan-out with the admin UI on: in production mode (statistics only), in
# development mode with nobody watching (nothing is reported), and with an admin UI watching
# (every event received and sent reported, once per recipient, as the reference does).
for mode in production development; do
    start_server "swift-admin-$mode" env ADMIN_UI_USER=admin ADMIN_UI_PASSWORD=bench ADMIN_UI_MODE=$mode DATA_DIR="$WORK/admin-$mode" "$BIN/chat-server"
    bench "swift-admin-$mode" fanout --receivers 200 --rate 100 --duration "$DURATION"
    if [ "$mode" = development ]; then
        "$VENV/bin/python" Tests/bench/admin_watcher.py "http://127.0.0.1:$PORT" admin bench >"$WORK/watcher.out" 2>&1 &
        WATCHER=$!
        NODE_PIDS+=("$WATCHER")
        for _ in $(seq 1 100); do grep -q watching "$WORK/watcher.out" && break; sleep 0.1; done
        bench "swift-admin-development-watched" fanout --receivers 200 --rate 100 --duration "$DURATION"
        kill -TERM "$WATCHER"
        wait "$WATCHER" || true
        echo "the admin UI was sent: $(tail -1 "$WORK/watcher.out")"
    fi
    stop_server
done

# Hosts: the chat as a Hummingbird app (the default) against its Socket.IO alone on the
# engine's own listener (FRAMEWORK=nio), same binary; twice each, in turns, so that drift
# of the machine falls on both.
for round in 1 2; do
    for host in nio hummingbird; do
        start_server "host-$host" env FRAMEWORK=$host PING_INTERVAL=5000 PING_TIMEOUT=5000 DATA_DIR="$WORK/host-$host-idle-$round" "$BIN/chat-server"
        bench "host:$host" idle --connections "$IDLE_LARGE" --hold "$HOLD" --connect-concurrency 500
        stop_server
        start_server "host-$host" env FRAMEWORK=$host DATA_DIR="$WORK/host-$host-$round" "$BIN/chat-server"
        for transport in websocket polling; do
            bench "host:$host" fanout --receivers 200 --rate 100 --duration "$DURATION" --transport $transport
            bench "host:$host" fanout --receivers "$FANOUT_BIG" --rate 100 --duration "$DURATION" --transport $transport
        done
        stop_server
    done
done

# The floor: Sources/FloorBroadcaster, a C broadcaster that only does the writes (one per
# recipient), against the chat, and against Node's socket.io chat where NODE_SOCKETIO_DIR
# has it (Tests/bench/node_chat_server.js); in turns, twice, 200 receivers.
for round in 1 2; do
    start_server floor "$BIN/floor-broadcaster"
    bench floor:floor fanout --receivers 200 --rate 100 --duration "$DURATION"
    stop_server
    start_server "floor-swift" env DATA_DIR="$WORK/floor-swift-$round" "$BIN/chat-server"
    bench floor:swift fanout --receivers 200 --rate 100 --duration "$DURATION"
    stop_server
    if [ -n "${NODE_SOCKETIO_DIR:-}" ]; then
        start_server "floor-node" env NODE_PATH="$NODE_SOCKETIO_DIR/node_modules" node Tests/bench/node_chat_server.js
        bench floor:node fanout --receivers 200 --rate 100 --duration "$DURATION"
        stop_server
    fi
done

# Instructions per delivery, counted by callgrind (no timing noise): the same small fan-out
# twice, with 10 and with 110 messages, each message to 20 receivers and its sender; the
# difference over the extra messages' deliveries. The chat's is checked against
# INSTRUCTIONS_BUDGET.
INSTRUCTIONS_BUDGET=${INSTRUCTIONS_BUDGET:-16800}
cc -O2 -shared -fPIC -o "$WORK/sigsuspend_copy.so" Tests/bench/sigsuspend_copy.c -ldl
count_instructions() {  # program, messages, FRAMEWORK → its instructions over its whole run
    local program=$1 messages=$2 framework=$3 out="$WORK/callgrind-$1-$2-$3.out"
    START_SECONDS=180 start_server "callgrind-$program-$messages-$framework" env PING_INTERVAL=600000 PING_TIMEOUT=600000 \
        FRAMEWORK="$framework" DATA_DIR="$WORK/callgrind-$program-$messages-$framework" \
        LD_PRELOAD="$WORK/sigsuspend_copy.so" valgrind --tool=callgrind --callgrind-out-file="$out" "$WORK/$program"
    "$BIN/socketio-bench" burst --port "$PORT" --label callgrind --receivers 20 --messages "$messages" --rate 20 >&2
    stop_server
    awk '/^totals:/ { print $2; exit }' "$out"
}
# The chat as the Hummingbird app (its default), as its Socket.IO alone on the engine's own
# listener, and the floor.
for run in chat-server:hummingbird:swift chat-server:nio:host:nio floor-broadcaster::floor; do
    IFS=: read -r program framework label <<<"$run"
    echo "==> $label: instructions per delivery (callgrind)"
    # Debian's valgrind (3.19) gives up on the DWARF 5 of Swift 6's debug info: count a copy without it.
    cp "$BIN/$program" "$WORK/$program"
    strip --strip-debug "$WORK/$program"
    FEW=$(count_instructions "$program" 10 "$framework")
    MANY=$(count_instructions "$program" 110 "$framework")
    python3 - "$label" "$FEW" "$MANY" "$INSTRUCTIONS_BUDGET" <<'PY' | tee -a "$RESULTS"
import json, sys
label, few, many, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
deliveries = 100 * 21
print(json.dumps({"scenario": "instructions", "server": label, "receivers": 20, "deliveries": deliveries,
                  "instructions_few": few, "instructions_many": many,
                  "instructions_per_delivery": round((many - few) / deliveries),
                  "budget": budget if label == "swift" else None}))
PY
done

# A reconnection storm: every client cut at once, then all back at once.
start_server swift env DATA_DIR="$WORK/storm" "$BIN/chat-server"
bench swift storm --clients "$FANOUT_BIG" --before 20 --during 50
stop_server
start_server python "$VENV/bin/python" Tests/bench/python_chat_server.py
bench python-socketio storm --clients "$FANOUT_BIG" --before 20 --during 50
stop_server

# Hostile packets, with a 1 s heartbeat, so that a held event loop shows as a missed one.
start_server swift env PING_INTERVAL=1000 PING_TIMEOUT=1000 DATA_DIR="$WORK/hostile" "$BIN/chat-server"
bench swift hostile
stop_server
start_server python env PING_INTERVAL=1000 PING_TIMEOUT=1000 "$VENV/bin/python" Tests/bench/python_chat_server.py
bench python-socketio hostile
stop_server

# The durable path: insert + broadcast + ack, SQLite then MariaDB.
start_server swift env DATA_DIR="$WORK/chat-sqlite" "$BIN/chat-server"
bench swift chat --senders 50 --window 4 --duration "$DURATION" --store sqlite
stop_server
"$ROOT/scripts/throwaway-mariadb.sh" start "$MARIADB_DIR" "$MARIADB_PORT"
"$ROOT/scripts/throwaway-mariadb.sh" sql "$MARIADB_DIR" \
    "CREATE DATABASE chat_bench; CREATE USER 'chat'@'127.0.0.1' IDENTIFIED BY 'chatpw'; GRANT ALL ON chat_bench.* TO 'chat'@'127.0.0.1';"
start_server swift env DATABASE_URL="mysql://chat:chatpw@127.0.0.1:$MARIADB_PORT/chat_bench" "$BIN/chat-server"
bench swift chat --senders 50 --window 4 --duration "$DURATION" --store mariadb
stop_server

# Several nodes, on MariaDB: fan-out on one node, then on three sharing Redis (receivers
# spread over them; CPU summed over the nodes and Redis); then a node SIGKILLed under its
# clients, who come back to the two others.
"$ROOT/scripts/throwaway-mariadb.sh" sql "$MARIADB_DIR" \
    "CREATE DATABASE chat_one; CREATE DATABASE chat_cluster; GRANT ALL ON chat_one.* TO 'chat'@'127.0.0.1'; GRANT ALL ON chat_cluster.* TO 'chat'@'127.0.0.1';"
start_server swift env DATABASE_URL="mysql://chat:chatpw@127.0.0.1:$MARIADB_PORT/chat_one" "$BIN/chat-server"
bench swift-mariadb-1-node fanout --receivers 200 --rate 100 --duration "$DURATION"
stop_server
REDIS_PORT=$((PORT + 50))
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
NODE_PORTS=()
for _ in 1 2 3; do
    start_server swift env DATABASE_URL="mysql://chat:chatpw@127.0.0.1:$MARIADB_PORT/chat_cluster" REDIS_URL="redis://127.0.0.1:$REDIS_PORT" "$BIN/chat-server"
    NODE_PIDS+=("$SERVER_PID")
    NODE_PORTS+=("$PORT")
    SERVER_PID=""
done
# A polling request on a node that does not hold its session, against the same on the node
# that does: the extra latency of a forward, on a quiet cluster.
echo "==> swift-cluster-3-nodes: a polling request on the wrong node"
"$BIN/socketio-bench" forward-latency --port "${NODE_PORTS[0]}" --other-port "${NODE_PORTS[1]}" \
    --label swift-cluster-3-nodes --requests "$FORWARD_REQUESTS" | tee -a "$RESULTS"
echo "==> swift-cluster-3-nodes: fanout"
"$BIN/socketio-bench" fanout --port "${NODE_PORTS[0]}" --more-ports "${NODE_PORTS[1]},${NODE_PORTS[2]}" \
    --server-pid "${NODE_PIDS[0]}" --more-pids "${NODE_PIDS[1]},${NODE_PIDS[2]},$REDIS_PID" \
    --label swift-cluster-3-nodes --receivers 200 --rate 100 --duration "$DURATION" | tee -a "$RESULTS"

# Behind HAProxy, sticky and not: one frontend per node (each client's requests all reach its
# node, through the same proxy: stickiness at its best) against one frontend in round robin
# without a cookie (two requests in three land on a node that forwards them, and two
# upgrades in three are relayed). Receivers polling, then receivers that open over polling
# and upgrade, as the official clients do; CPU summed over the nodes, Redis and HAProxy.
BALANCER_PORT=$((PORT + 70))
{
    printf 'global\n    maxconn 9000\ndefaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n'
    printf '    timeout server 60s\n    timeout tunnel 1h\n'
    printf 'frontend roundrobin\n    bind 127.0.0.1:%s\n    default_backend nodes\n' "$BALANCER_PORT"
    printf 'backend nodes\n    balance roundrobin\n'
    for index in 0 1 2; do printf '    server n%s 127.0.0.1:%s\n' "$index" "${NODE_PORTS[$index]}"; done
    for index in 0 1 2; do
        printf 'frontend sticky%s\n    bind 127.0.0.1:%s\n    default_backend node%s\n' "$index" $((BALANCER_PORT + 1 + index)) "$index"
        printf 'backend node%s\n    server n%s 127.0.0.1:%s\n' "$index" "$index" "${NODE_PORTS[$index]}"
    done
} >"$WORK/haproxy.cfg"
haproxy -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
for _ in $(seq 1 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $BALANCER_PORT), timeout=0.2)" 2>/dev/null && break
    sleep 0.1
done
CLUSTER_PIDS="${NODE_PIDS[1]},${NODE_PIDS[2]},$REDIS_PID,$HAPROXY_PID"
for transport in polling upgrade; do
    echo "==> swift-cluster-sticky: fanout, receivers on $transport"
    "$BIN/socketio-bench" fanout --port $((BALANCER_PORT + 1)) --more-ports "$((BALANCER_PORT + 2)),$((BALANCER_PORT + 3))" \
        --server-pid "${NODE_PIDS[0]}" --more-pids "$CLUSTER_PIDS" --transport "$transport" \
        --label swift-cluster-sticky --receivers 200 --rate 100 --duration "$DURATION" | tee -a "$RESULTS"
    echo "==> swift-cluster-round-robin: fanout, receivers on $transport"
    "$BIN/socketio-bench" fanout --port "$BALANCER_PORT" --server-pid "${NODE_PIDS[0]}" --more-pids "$CLUSTER_PIDS" \
        --transport "$transport" --label swift-cluster-round-robin --receivers 200 --rate 100 --duration "$DURATION" | tee -a "$RESULTS"
done
kill "$HAPROXY_PID" 2>/dev/null || true
wait "$HAPROXY_PID" 2>/dev/null || true
HAPROXY_PID=""

echo "==> swift-cluster-3-nodes: failover"
"$BIN/socketio-bench" storm --port "${NODE_PORTS[1]}" --receivers-port "${NODE_PORTS[0]}" --kill-pid "${NODE_PIDS[0]}" \
    --reconnect-ports "${NODE_PORTS[1]},${NODE_PORTS[2]}" --server-pid "${NODE_PIDS[1]}" --more-pids "${NODE_PIDS[2]},$REDIS_PID" \
    --label swift-cluster-3-nodes --clients "$FANOUT_BIG" --before 20 --during 50 | tee -a "$RESULTS"
kill "${NODE_PIDS[@]}" "$REDIS_PID" 2>/dev/null || true
wait "${NODE_PIDS[@]}" "$REDIS_PID" 2>/dev/null || true

# The page: the latest messages of a 50,000-message room, painted in headless Chromium.
echo "==> swift: page"
PORT=$((PORT + 60))
"$VENV/bin/python" Tests/bench/page_first_paint.py --server "$BIN/chat-server" --data-dir "$WORK/page" --port "$PORT" \
    --bundle "$CLIENT_BUNDLE" --runs "$PAGE_RUNS" | tee -a "$RESULTS"

# HTTP compression of polling responses: a 200-message replay read by a polling client that
# takes identity, gzip or deflate; response bytes and server CPU per replay.
echo "==> swift: polling replay"
PORT=$((PORT + 1))
"$VENV/bin/python" Tests/bench/polling_replay.py --server "$BIN/chat-server" --data-dir "$WORK/replay" --port "$PORT" \
    --runs "$REPLAY_RUNS" | tee -a "$RESULTS"

python3 Tests/bench/report.py "$RESULTS" > BENCHMARKS.md
echo "==> wrote BENCHMARKS.md"
PER_DELIVERY=$(python3 -c 'import json, sys; print(next(r["instructions_per_delivery"] for r in (json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")) if r["scenario"] == "instructions" and r["server"] == "swift"))' "$RESULTS")
if [ "$PER_DELIVERY" -gt "$INSTRUCTIONS_BUDGET" ]; then
    echo "instructions per delivery: $PER_DELIVERY, over the budget of $INSTRUCTIONS_BUDGET" >&2
    exit 1
fi
echo "==> instructions per delivery: $PER_DELIVERY (budget $INSTRUCTIONS_BUDGET)"
