#!/usr/bin/env bash
# The fuzz command: builds the libFuzzer targets (Sources/SocketIOFuzz) with
# -sanitize=fuzzer in .build-fuzz/ and runs each for SECONDS (default 60), starting from the
# seed corpus in Tests/fuzz/corpus/. A crash fails the command and leaves its input in
# .test-artifacts/fuzz/. Longer runs: scripts/fuzz.sh 3600
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_EACH="${1:-60}"

echo "==> fuzz build (-sanitize=fuzzer)"
swift build --scratch-path "$ROOT/.build-fuzz" --product socketio-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING -Xswiftc -use-ld=lld
BIN="$(swift build --scratch-path "$ROOT/.build-fuzz" --show-bin-path)/socketio-fuzz"
ARTIFACTS="$ROOT/.test-artifacts/fuzz"
mkdir -p "$ARTIFACTS"

for target in eio-payload sio-packet http-routing; do
    work="$(mktemp -d)"
    echo "==> fuzzing $target for ${SECONDS_EACH}s"
    FUZZ_TARGET=$target "$BIN" "$work" "Tests/fuzz/corpus/$target" \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$ARTIFACTS/$target-" 2>"$ARTIFACTS/$target.log" || {
        echo "fuzz target $target failed; see $ARTIFACTS/$target.log" >&2
        tail -40 "$ARTIFACTS/$target.log" >&2
        exit 1
    }
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$ARTIFACTS/$target.log" | sed "s/^/    $target /"
    rm -rf "$work"
done
echo "fuzz: 3 targets, ${SECONDS_EACH}s each, no crash"
