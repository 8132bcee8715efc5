#!/usr/bin/env bash
# A throwaway MariaDB server in a directory of its own, for the tests.
#   throwaway-mariadb.sh start DIR PORT   initialise DIR once, start the server, wait for it
#   throwaway-mariadb.sh stop DIR         stop it (the data stays, so start brings it back)
#   throwaway-mariadb.sh sql DIR "SQL"    run SQL as root over the server's socket
# mariadbd runs as root with --user=root: these machines have no systemd and no mysql user.
set -euo pipefail
command=$1
dir=$2

case "$command" in
start)
    port=$3
    if [ ! -d "$dir/data/mysql" ]; then
        mkdir -p "$dir"
        mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
            --skip-test-db --user=root >"$dir/install.log" 2>&1
    fi
    echo "$port" >"$dir/port"
    mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/sock" --port="$port" --bind-address=127.0.0.1 \
        --user=root --skip-log-bin --innodb-flush-log-at-trx-commit=1 --pid-file="$dir/pid" \
        >>"$dir/server.log" 2>&1 &
    for _ in $(seq 1 150); do
        if mariadb-admin --no-defaults -S "$dir/sock" -uroot ping >/dev/null 2>&1; then exit 0; fi
        sleep 0.1
    done
    echo "mariadbd did not start; see $dir/server.log" >&2
    exit 1
    ;;
stop)
    if [ -f "$dir/pid" ]; then
        pid=$(cat "$dir/pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 200); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$dir/pid"
    fi
    ;;
sql)
    mariadb --no-defaults -S "$dir/sock" -uroot -N -e "$3"
    ;;
*)
    echo "usage: $0 start DIR PORT | stop DIR | sql DIR SQL" >&2
    exit 2
    ;;
esac
